"""Native stderr (ONNX Runtime's C++ warnings) goes to the message log, never over the screen (issue 18)."""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.ui.native_stderr import NativeStderr


def _model_with_unused_initializer(path):
    """ONNX Runtime warns on fd 2 when it creates a session for this (`Removing initializer 'unused'`)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(np.ones(4, np.float32), "unused")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_fd2_text_is_handed_over_and_the_terminal_keeps_its_own_descriptor(tmp_path):
    got = []
    before = os.fstat(2)
    with NativeStderr(lambda text: got.append(text) or True) as capture:
        os.write(2, b"\x1b[1;31m[W:onnxruntime:, graph.cc:4000 CleanUnusedInitializers] Removing initializer 'a'.\x1b[m\n")
        os.write(2, b"second line of the same burst\n")
        assert os.fstat(sys.__stderr__.fileno()).st_ino == before.st_ino  # Textual draws here: the terminal
    assert os.fstat(2).st_ino == before.st_ino  # restored
    assert got == ["[W:onnxruntime:, graph.cc:4000 CleanUnusedInitializers] Removing initializer 'a'.\n"
                   "second line of the same burst"]  # fmt: skip
    assert capture._saved_fd is None


def test_text_nobody_could_take_is_written_out_after_stop(capfd):
    with NativeStderr(lambda text: False):
        os.write(2, b"the app was not running\n")
    assert "the app was not running" in capfd.readouterr().err


async def test_onnxruntime_warning_lands_in_the_message_log(tmp_path):
    import onnxruntime as ort

    model = _model_with_unused_initializer(tmp_path / "unused.onnx")
    app = make_app(tmp_path=tmp_path)
    with NativeStderr(app.native_stderr):
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            options = ort.SessionOptions()
            options.log_severity_level = 1  # info and up: the initializer warning is certain to be written
            ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            for _ in range(50):
                await pilot.pause(0.05)
                entries = [e for e in app.messages.entries if e.title == "onnxruntime (stderr)"]
                if entries:
                    break
            assert entries and "unused" in entries[0].text
            assert any("message log (L)" in str(n.message) for n in app._notifications)  # told once

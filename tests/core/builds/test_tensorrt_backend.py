"""The TensorRT Python-API backend. TensorRT is not installed on the machines this was written on, so the
real build test skips with a reason; what does not need TensorRT is tested here: the missing-backend path
end to end, settings, and the pin-to-layer mapping through parser metadata."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.selection import select_backend
from trt_tui.core.build.trt_build import layers_to_pin
from trt_tui.core.build.trt_settings import TrtSettings
from trt_tui.core.build.types import BuildRequest, JobState
from trt_tui.core.build.worker_backends import EmulateBackend, TensorRTBackend
from trt_tui.core.errors import MissingBackendError, UserError

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
needs_no_trt = pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here: the missing-backend path cannot be shown")


def _request(tmp_path, model, backend="tensorrt", **settings) -> BuildRequest:
    preset = tmp_path / "p.toml"
    preset.write_text("x = 1\n")
    return BuildRequest(str(preset), preset.read_text(), str(model), backend,
                        settings={"precision": "fp16", "pinned_nodes": [], **settings})


@needs_no_trt
def test_missing_tensorrt_is_one_clear_line(tmp_path, demo_model):
    avail = TensorRTBackend().availability()
    assert not avail.ok and "TensorRT Python package is not installed" in avail.reason
    with pytest.raises(MissingBackendError, match="backend tensorrt is not available"):
        select_backend("tensorrt", {"tensorrt": TensorRTBackend()})
    # Even when forced into the queue, the worker child reports it in one line and nothing is claimed.
    m = JobManager(tmp_path / "state", kill_grace_s=0.5)
    try:
        job = m.wait(m.submit(_request(tmp_path, demo_model)).id, 30)
    finally:
        m.close()
    assert job.state == JobState.FAILED and job.result.exit_code == 2
    assert "TensorRT Python package is not installed" in job.result.message and "\n" not in job.result.message
    assert not job.result.engine_built
    assert "missing backend" in (tmp_path / "state" / "builds" / job.id / "build.log").read_text()


def test_auto_explains_its_choice():
    name, why = select_backend("auto", {"tensorrt": TensorRTBackend(), "emulate": _Always()})
    if HAVE_TRT:
        assert name == "tensorrt"
    else:
        assert name == "emulate" and why.startswith("auto picked emulate") and "skipped tensorrt (" in why
    with pytest.raises(MissingBackendError, match="no build backend is available"):
        select_backend("auto", {"x": _Never()})
    with pytest.raises(UserError, match="unknown build backend"):
        select_backend("gpu", {})


class _Always(EmulateBackend):
    def availability(self):
        from trt_tui.core.build.backend import Availability

        return Availability(True, "always")


class _Never(EmulateBackend):
    name = "x"

    def availability(self):
        from trt_tui.core.build.backend import Availability

        return Availability(False, "never")


def test_settings_are_validated_with_the_preset_named():
    s = TrtSettings.from_json({"precision": "BF16", "trt_major": "11", "pinned_nodes": ["a"], "optimization_level": 5,
                               "profiles": [{"x": {"min": [1, 8], "opt": [4, 8], "max": [8, 8]}}],
                               "memory_pools_mib": {"workspace": "1024"}, "tf32": False})
    assert (s.precision, s.trt_major, s.optimization_level, s.tf32) == ("bf16", 11, 5, False)
    assert s.profiles == [{"x": {"min": [1, 8], "opt": [4, 8], "max": [8, 8]}}]
    assert s.memory_pools_mib == {"workspace": 1024}
    for bad, words in [({"precision": "int4"}, "precision must be"), ({"optimization_level": 9}, "between 0 and 5"),
                       ({"profiles": [{"x": {"min": [1]}}]}, "min/opt/max"), ({"trt_major": "ten"}, "integer")]:
        with pytest.raises(UserError, match=words) as err:
            TrtSettings.from_json(bad, source="p.toml")
        assert err.value.one_line().startswith("p.toml: build settings:")


def test_layers_to_pin_follows_parser_metadata():
    layer = lambda name, meta: SimpleNamespace(name=name, metadata=meta)  # noqa: E731
    layers = [
        layer("/attn/Softmax", "[ONNX Layer: /attn/Softmax]"),
        layer("/attn/Softmax_12", "[ONNX Layer: /attn/Softmax]"),  # an extra layer the parser made for the node
        layer("/attn/MatMul", "[ONNX Layer: /attn/MatMul]"),
        layer("node_of_y", ""),  # no metadata: fall back to the name
    ]
    chosen = layers_to_pin(layers, {"/attn/Softmax", "node_of_y"})
    assert [lay.name for lay in chosen] == ["/attn/Softmax", "/attn/Softmax_12", "node_of_y"]


@pytest.mark.tensorrt
def test_real_tensorrt_build_with_pin_check(tmp_path, demo_model):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed: the real Python-API build cannot run here")
    from trt_tui.core.graph import load_graph

    softmax = [n.name for n in load_graph(demo_model).nodes if n.op_type == "Softmax"][:2]
    m = JobManager(tmp_path / "state")
    try:
        job = m.wait(m.submit(_request(tmp_path, demo_model, pinned_nodes=softmax)).id, 600)
    finally:
        m.close()
    assert job.state == JobState.SUCCEEDED, job.result.message
    assert job.result.engine_built
    info = json.loads((tmp_path / "state" / "builds" / job.id / "layers.json").read_text())
    assert info["Layers"]
    assert {row["node"] for row in job.result.pin_check["pins"]} == set(softmax)

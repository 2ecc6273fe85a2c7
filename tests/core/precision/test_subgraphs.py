"""Corpus finding F4 (silero VAD v4/v5 put the whole model in If branches on the sample rate): the emulation
rewrites If/Loop/Scan bodies like graphs of their own; the mixed-precision rewrite still refuses them."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.errors import UserError
from trt_tui.core.precision import emulate, emulation_session, to_mixed_precision
from trt_tui.core.precision.common import round_through
from trt_tui.core.precision.opsupport import LOW_TYPES

from tests.core.precision.helpers import ir10


def if_on_sample_rate() -> onnx.ModelProto:
    """An If on sr == 16000 around the computation: each branch scales x, squares it and adds an outer bias."""

    def branch(name: str, scale: float) -> onnx.GraphProto:
        s = numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{name}_scale")
        nodes = [
            helper.make_node("Mul", ["x", f"{name}_scale"], [f"{name}_m"], name=f"{name}_mul"),
            helper.make_node("Mul", [f"{name}_m", f"{name}_m"], [f"{name}_sq"], name=f"{name}_square"),
            helper.make_node("Add", [f"{name}_sq", "bias"], [f"{name}_y"], name=f"{name}_add"),
        ]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 8])], initializer=[s])

    inits = [numpy_helper.from_array(np.array(16000, dtype=np.int64), "sr16k"),
             numpy_helper.from_array(np.linspace(-1, 1, 8).astype(np.float32).reshape(1, 8) / 3, "bias")]  # fmt: skip
    nodes = [helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is16k"),
             helper.make_node("If", ["is16k"], ["y"], name="If_sr", then_branch=branch("then", 1.1), else_branch=branch("else", 3.3))]  # fmt: skip
    graph = helper.make_graph(
        nodes, "vad_if",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]), helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits,
    )  # fmt: skip
    return ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]))


@pytest.mark.parametrize("low", ["fp16", "bf16"])
@pytest.mark.parametrize("sr, scale", [(16000, 1.1), (8000, 3.3)])
def test_if_bodies_are_emulated(low, sr, scale):
    rnd = lambda v: round_through(np.asarray(v, np.float32), LOW_TYPES[low])  # noqa: E731
    result = emulate(if_on_sample_rate(), low, [])
    assert not result.low_precision.ran_nothing_low and result.low_precision.low_nodes >= 6
    x = np.linspace(-2, 2, 8).astype(np.float32).reshape(1, 8) * 1.37
    feeds = {"x": x, "sr": np.array(sr, np.int64)}
    (got,) = emulation_session(result.model).run(None, feeds)
    bias = np.linspace(-1, 1, 8).astype(np.float32).reshape(1, 8) / 3
    m = rnd(rnd(x) * rnd(scale))
    want = rnd(rnd(m * m) + rnd(bias))
    np.testing.assert_array_equal(got, want)
    (fp32,) = ort.InferenceSession(if_on_sample_rate().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert not np.array_equal(got, fp32)
    onnx.checker.check_model(result.model, full_check=True)


def test_pins_reach_into_bodies_and_outer_constants_stay_fp32_for_them():
    result = emulate(if_on_sample_rate(), "bf16", ["then_add"])
    assert "then_add" in result.pinned and "then_add" in {k.node for k in result.kept_fp32}
    x = np.ones((1, 8), np.float32) * 1.2345
    (got,) = emulation_session(result.model).run(None, {"x": x, "sr": np.array(16000, np.int64)})
    rnd = lambda v: round_through(np.asarray(v, np.float32), LOW_TYPES["bf16"])  # noqa: E731
    m = rnd(rnd(x) * rnd(1.1))
    bias = np.linspace(-1, 1, 8).astype(np.float32).reshape(1, 8) / 3  # FP32 for the pinned Add: not rounded
    np.testing.assert_allclose(got, rnd(m * m) + bias, rtol=1e-6)


def test_mixed_rewrite_still_refuses_subgraphs_clearly():
    with pytest.raises(UserError, match=r"has a subgraph; the mixed-precision rewrite supports graphs without If/Loop/Scan only \(the CPU preview, --emulate"):
        to_mixed_precision(if_on_sample_rate(), "fp16", [])

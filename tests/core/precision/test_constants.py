"""Issue 11.1: every rewrite keeps the dtype, shape (rank included) and values of every constant.

The fixture reproduces a ViT's position-embedding interpolation: `Pow(Constant 1369 [0-d], Constant 0.5
[0-d]) -> Cast -> Unsqueeze -> Concat` builds a Reshape target; a 0-d constant turned into [1] makes the
Unsqueeze rank 2 and the Concat fails to load in ONNX Runtime.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.precision import emulate, to_mixed_precision
from trt_tui.core.precision.common import round_through
from trt_tui.core.precision.opsupport import LOW_TYPES

from tests.core.precision.helpers import ir10

SIDE = 37


def vit_interpolation() -> onnx.ModelProto:
    n = helper.make_node
    scalar = lambda name, v: n("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(v, np.float32)))  # noqa: E731
    nodes = [
        scalar("num_patches", float(SIDE * SIDE)),
        scalar("half", 0.5),
        n("Constant", [], ["two"], name="two", value_float=2.0),  # 0-d through value_float
        n("Pow", ["num_patches", "half"], ["side_f"], name="pow"),
        n("Cast", ["side_f"], ["side"], name="cast", to=TensorProto.INT64),
        n("Unsqueeze", ["side", "axis0"], ["side_1d"], name="unsqueeze"),
        n("Concat", ["one", "side_1d", "side_1d", "dim"], ["shape"], name="concat", axis=0),
        n("Reshape", ["x", "shape"], ["grid"], name="reshape"),
        n("Mul", ["grid", "two"], ["scaled"], name="mul_scalar"),
        n("Mul", ["scaled", "gain"], ["gained"], name="mul_init_scalar"),
        n("Add", ["gained", "bias"], ["y"], name="add_bias"),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([4], np.int64), "dim"),
        numpy_helper.from_array(np.asarray(1.7, np.float32), "gain"),  # a 0-d initializer
        numpy_helper.from_array(np.linspace(-3, 3, 4).astype(np.float32), "bias"),
    ]
    graph = helper.make_graph(
        nodes, "vit_interp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SIDE * SIDE, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SIDE, SIDE, 4])],
        inits,
    )  # fmt: skip
    return ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            a = node.attribute[0]
            out[node.output[0]] = numpy_helper.to_array(a.t) if a.name == "value" else np.asarray(onnx.helper.get_attribute_value(a), np.float32)
    return out


REWRITES = [(to_mixed_precision, "fp16"), (to_mixed_precision, "bf16"), (emulate, "fp16"), (emulate, "bf16")]


@pytest.mark.parametrize("rewrite, low", REWRITES, ids=[f"{r.__name__}-{low}" for r, low in REWRITES])
def test_every_constant_keeps_dtype_shape_and_values(rewrite, low):
    model = vit_interpolation()
    before = constants(model)
    result = rewrite(model, low, [])
    after = constants(result.model)
    for name, value in before.items():
        copies = [v for k, v in after.items() if k == name or k.startswith(name + "__")]
        assert copies, name
        for got in copies:
            assert got.shape == value.shape, (name, got.shape, value.shape)  # rank included: 0-d stays 0-d
            if value.dtype != np.float32:
                assert got.dtype == value.dtype and np.array_equal(got, value), name
                continue
            assert got.dtype in (np.float32, np.float16) or "bfloat16" in str(got.dtype), (name, got.dtype)
            exact = got.astype(np.float32)
            assert np.array_equal(exact, value) or np.array_equal(exact, round_through(value, LOW_TYPES[low])), name
    # the size computation is folded by TensorRT in FP32: rounding 1369 to bf16 (1368) would make the side 36
    assert "pow" in {k.node for k in result.kept_fp32}
    onnx.checker.check_model(result.model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(result.model, strict_mode=True, data_prop=True)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in inferred.graph.value_info}
    assert shapes["side_1d"] == [1] and shapes["shape"] == [4]


@pytest.mark.parametrize("rewrite, low", REWRITES, ids=[f"{r.__name__}-{low}" for r, low in REWRITES])
def test_rewritten_vit_pattern_loads_and_runs_in_onnxruntime(rewrite, low):
    result = rewrite(vit_interpolation(), low, [])
    x = np.random.default_rng(0).standard_normal((1, SIDE * SIDE, 4)).astype(np.float32)
    try:
        session = ort.InferenceSession(result.model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT CPU has no bf16 Mul/Add kernels: the model loads, the kernels are missing
        assert low == "bf16" and rewrite is to_mixed_precision and "NOT_IMPLEMENTED" in str(exc), exc
        return
    (y,) = session.run(None, {"x": x})
    assert y.shape == (1, SIDE, SIDE, 4)

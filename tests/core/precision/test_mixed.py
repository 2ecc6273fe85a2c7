import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.modelgen.demo import build_demo_model
from trt_tui.core.modelgen.synth import transformer_encoder
from trt_tui.core.precision import to_mixed_precision

LOW = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}


def checked(model: onnx.ModelProto) -> dict[str, int]:
    """Full onnx.checker + strict shape inference; returns every tensor's elem type."""
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    types.update({i.name: i.data_type for i in inferred.graph.initializer})
    return types


def demo_feeds(model, rng=np.random.default_rng(0)):
    feeds = {}
    for vi in model.graph.input:
        tt = vi.type.tensor_type
        shape = [d.dim_value or 1 for d in tt.shape.dim]
        if tt.elem_type == TensorProto.INT64:
            feeds[vi.name] = np.full(shape, 8, np.int64)
        else:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


@pytest.mark.parametrize("low", ["fp16", "bf16"])
@pytest.mark.parametrize("which", ["transformer", "demo"])
def test_node_dtypes_match_pins(low, which):
    model = transformer_encoder(layers=1) if which == "transformer" else build_demo_model()
    pins = [n.name for n in model.graph.node if n.op_type in ("Softmax", "LayerNormalization", "LogSoftmax")]
    result = to_mixed_precision(model, low, pins)
    types = checked(result.model)
    auto = {a.node for a in result.auto_fp32}
    original = onnx.shape_inference.infer_shapes(model)
    float_out = {vi.name for vi in (*original.graph.value_info, *original.graph.output) if vi.type.tensor_type.elem_type == TensorProto.FLOAT}
    new_nodes = {n.name: n for n in result.model.graph.node}
    for node in model.graph.node:
        outs = [o for o in node.output if o in float_out]
        if not outs or node.op_type == "Constant":
            continue
        want = TensorProto.FLOAT if (node.name in pins or node.name in auto) else LOW[low]
        mixed = new_nodes[node.name]
        for o in mixed.output:
            assert types[o] == want, (node.name, o)
        if node.name in pins:  # FP32 compute: every float input arrives as FLOAT
            for t in mixed.input:
                if t and types.get(t) in (TensorProto.FLOAT, LOW[low]):
                    assert types[t] == TensorProto.FLOAT, (node.name, t)
    # graph IO kept FP32 (keep_io_types=True); original names all present
    assert all(types[vi.name] != LOW[low] for vi in (*result.model.graph.input, *result.model.graph.output))
    names = {t for n in result.model.graph.node for t in (*n.input, *n.output)} | {i.name for i in result.model.graph.initializer}
    assert {t for n in model.graph.node for t in (*n.input, *n.output) if t} <= names | {vi.name for vi in model.graph.input}
    if which == "demo" and low == "bf16":  # opset 17 Conv has no bfloat16 type
        # opset 17 Conv has no bfloat16 type: the model is upgraded to 22, where it has, and nothing stays FP32
        assert result.opset_upgrade == (17, 22) and not result.auto_fp32
        assert next(i.version for i in result.model.opset_import if i.domain == "") == 22
    else:
        assert result.auto_fp32 == []


@pytest.mark.parametrize("keep_io", [True, False])
def test_fp16_mixed_graph_runs_on_ort_cpu(keep_io):
    model = build_demo_model()
    pins = [n.name for n in model.graph.node if n.op_type == "Softmax"]
    result = to_mixed_precision(model, "fp16", pins, keep_io_types=keep_io)
    checked(result.model)
    sess = ort.InferenceSession(result.model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = demo_feeds(result.model)
    outs = sess.run(None, feeds)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in feeds.items()})
    want_dtype = np.float32 if keep_io else np.float16
    assert outs[0].dtype == want_dtype
    assert np.abs(outs[0].astype(np.float32) - ref[0]).max() < 0.05


def test_casts_only_at_boundaries():
    model = transformer_encoder(layers=1)
    clean = to_mixed_precision(model, "fp16", [])
    # only the graph input and output cross FP32 <-> fp16
    assert sorted(c.tensor for c in clean.casts_inserted) == ["log_probs", "x"]
    sm = "/encoder/layers.0/self_attn/Softmax"
    pinned = to_mixed_precision(model, "fp16", [sm])
    extra = [c for c in pinned.casts_inserted if c.tensor not in ("x", "log_probs")]
    assert [(c.tensor, c.to) for c in extra] == [
        ("/encoder/layers.0/self_attn/Mul_output_0", "fp32"),
        ("/encoder/layers.0/self_attn/Softmax_output_0", "fp16"),
    ]


def overflow_model():
    g = GraphBuilder("big_const")
    x = g.input("x", TensorProto.FLOAT, [2, 4])
    big = g.initializer(np.array([1.0, 2e5, 3.0, 4.0], np.float32), name="big")
    small = g.initializer(np.array([0.5, 0.25, 2.0, 1.0], np.float32), name="small")
    h = g.op("Mul", [x, big], name="scale_up")
    h = g.op("Mul", [h, small], name="scale_down")
    g.output(h, "y", TensorProto.FLOAT, [2, 4])
    return g.build()


def test_initializers_beyond_init_max_keep_their_consumers_fp32():
    result = to_mixed_precision(overflow_model(), "fp16", [])
    types = checked(result.model)
    assert [(o.name, o.max_abs, o.kept_fp32) for o in result.overflow_initializers] == [("big", 2e5, ("scale_up",))]
    assert types["big"] == TensorProto.FLOAT and types["small"] == TensorProto.FLOAT16
    assert types["scale_up_output_0"] == TensorProto.FLOAT
    assert types["scale_down_output_0"] == TensorProto.FLOAT16
    # a higher init_max converts it (and the value becomes inf, as the user asked)
    loose = to_mixed_precision(overflow_model(), "fp16", [], init_max=1e6)
    assert loose.overflow_initializers == []
    assert np.isinf(onnx.numpy_helper.to_array(next(i for i in loose.model.graph.initializer if i.name == "big"))).any()


def test_shared_initializer_gets_one_copy_per_precision():
    g = GraphBuilder("shared")
    x = g.input("x", TensorProto.FLOAT, [2, 4])
    w = g.initializer(np.full((4,), 0.1, np.float32), name="w")
    a = g.op("Mul", [x, w], name="low_mul")
    b = g.op("Add", [a, w], name="pinned_add")
    g.output(b, "y", TensorProto.FLOAT, [2, 4])
    result = to_mixed_precision(g.build(), "fp16", ["pinned_add"])
    types = checked(result.model)
    inits = {i.name: i.data_type for i in result.model.graph.initializer}
    assert inits == {"w": TensorProto.FLOAT, "w__fp16": TensorProto.FLOAT16}
    assert types["low_mul_output_0"] == TensorProto.FLOAT16 and types["pinned_add_output_0"] == TensorProto.FLOAT


def test_auto_fp32_for_ops_without_low_precision_type():
    g = GraphBuilder("range")
    x = g.input("x", TensorProto.FLOAT, [4])
    start = g.op("ReduceMin", [x], name="start", keepdims=0)
    h = g.op("Range", [start, g.op("Add", [start, g.const(4.0)], name="limit"), g.const(1.0)], name="range")
    h = g.op("Add", [x, h], name="add")
    g.output(h, "y", TensorProto.FLOAT, [4])
    result = to_mixed_precision(g.build(), "fp16", [])
    types = checked(result.model)
    assert [(a.node, a.op_type) for a in result.auto_fp32] == [("range", "Range")]
    assert "no float16" in result.auto_fp32[0].reason
    assert [(k.node, k.reason) for k in result.kept_fp32] == [("range", result.auto_fp32[0].reason)]
    assert types["range_output_0"] == TensorProto.FLOAT and types["add_output_0"] == TensorProto.FLOAT16
    assert result.low_precision.low_nodes == 4 and not result.low_precision.ran_nothing_low


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_nodes_computed_from_constants_stay_fp32_with_their_reason(low):
    """A Range of constants is folded by TensorRT in FP32: kept FP32 on both routes, listed with why."""
    from trt_tui.core.precision import emulate
    from trt_tui.core.precision.plan import HOST_REASON

    g = GraphBuilder("range")
    x = g.input("x", TensorProto.FLOAT, [4])
    h = g.op("Range", [g.const(0.0), g.const(4.0), g.const(1.0)], name="range")
    h = g.op("Add", [x, h], name="add")
    g.output(h, "y", TensorProto.FLOAT, [4])
    for result in (to_mixed_precision(g.build(), low, []), emulate(g.build(), low, [])):
        assert [(k.node, k.op_type, k.reason) for k in result.kept_fp32] == [("range", "Range", HOST_REASON)]
        assert not result.auto_fp32 and result.low_precision.low_nodes == 2  # Add and the output Identity


def test_cast_and_constant_nodes_are_retyped():
    g = GraphBuilder("casts")
    ids = g.input("ids", TensorProto.INT64, [4])
    h = g.op("Cast", [ids], name="to_float", to=TensorProto.FLOAT)
    c = g.op("Constant", [], name="const", value=onnx.numpy_helper.from_array(np.float32([0.5, 1, 2, 3])))
    h = g.op("Mul", [h, c], name="mul")
    g.output(h, "y", TensorProto.FLOAT, [4])
    result = to_mixed_precision(g.build(), "bf16", [])
    types = checked(result.model)
    assert types["to_float_output_0"] == TensorProto.BFLOAT16 and types["const_output_0"] == TensorProto.BFLOAT16


@pytest.mark.skipif(importlib.util.find_spec("modelopt") is None, reason="nvidia-modelopt (AutoCast) is not installed; it needs torch, so it is optional")
def test_node_dtypes_match_autocast(tmp_path):  # pragma: no cover - runs only where ModelOpt is installed
    from modelopt.onnx.autocast import convert_to_mixed_precision

    model = transformer_encoder(layers=1)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    ours = checked(to_mixed_precision(model, "fp16", [n.name for n in model.graph.node if n.op_type == "Softmax"]).model)
    theirs_model = convert_to_mixed_precision(str(path), "fp16", nodes_to_exclude=[], op_types_to_exclude=["Softmax"], keep_io_types=True)
    theirs = checked(theirs_model)
    for node in model.graph.node:
        for o in node.output:
            if o in ours and o in theirs:
                assert ours[o] == theirs[o], o

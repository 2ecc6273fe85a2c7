import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_tui.core.errors import UserError
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.modelgen.synth import transformer_encoder
from trt_tui.core.precision import emulate, emulation_session, session as session_module
from tests.core.precision.helpers import first_nonfinite, float_tensors, run

LOW_NP = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16}


def r(a, low):
    """numpy's / ml_dtypes' own round-to-nearest-even through the low precision."""
    return np.asarray(a, np.float32).astype(LOW_NP[low]).astype(np.float32)


def chain_model():
    g = GraphBuilder("chain", seed=3)
    x = g.input("x", TensorProto.FLOAT, [4, 8])
    w = g.weight((4, 8), scale=1.7, name="w")
    b = g.weight((8,), scale=0.3, name="b")
    c = g.initializer(np.float32(1.37 + np.arange(8, dtype=np.float32) / 7), name="c")
    h = g.op("Mul", [x, w], name="mul")
    h = g.op("Add", [h, b], name="add")
    h = g.op("Relu", [h], name="relu")
    h = g.op("Div", [h, c], name="div")
    h = g.op("Sqrt", [h], name="sqrt")
    h = g.op("Sub", [h, x], name="sub")
    g.output(h, "y", TensorProto.FLOAT, [4, 8])
    return g.build(), {n: numpy_init(g, n) for n in ("w", "b", "c")}


def numpy_init(g, name):
    return next(onnx.numpy_helper.to_array(t) for t in g.initializers if t.name == name)


@pytest.mark.parametrize("low", ["fp16", "bf16"])
@pytest.mark.parametrize("pin_div", [False, True])
def test_chain_matches_numpy_rounding_exactly(low, pin_div):
    model, w = chain_model()
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32) * 3
    result = emulate(model, low, ["div"] if pin_div else [])
    names = ["mul_output_0", "add_output_0", "relu_output_0", "div_output_0", "sqrt_output_0", "y"]
    got = run(result.model, names, {"x": x})

    xr = r(x, low)
    mul = r(xr * r(w["w"], low), low)
    add = r(mul + r(w["b"], low), low)
    relu = np.maximum(add, 0)  # exact: passes precision through
    if pin_div:
        div = relu / w["c"]  # pinned: FP32 with the original constant, no rounding
        sqrt = r(np.sqrt(r(div, low)), low)  # its low-precision reader rounds its input
    else:
        div = r(relu / r(w["c"], low), low)
        sqrt = r(np.sqrt(div), low)
    y = r(sqrt - xr, low)
    for name, want in zip(names, [mul, add, relu, div, sqrt, y]):
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    assert ("div_output_0" in result.rounded_tensors) is not pin_div
    assert "relu_output_0" not in result.rounded_tensors
    if pin_div:
        assert not np.array_equal(got["div_output_0"], r(got["div_output_0"], low))  # really FP32


@pytest.fixture(scope="module")
def encoder():
    return transformer_encoder(layers=1)


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_every_rounded_tensor_is_numpy_rounding_of_its_fp32_value(encoder, low):
    result = emulate(encoder, low, [], fuse_bias=False)
    names = float_tensors(encoder)
    accs = {t: next(o for n in result.model.graph.node for o in n.output if o.startswith(t + "__acc")) for t in result.rounded_tensors}
    x = np.random.default_rng(0).standard_normal((2, 5, 64)).astype(np.float32)
    got = run(result.model, names + list(accs.values()), {"x": x})
    assert len(result.rounded_tensors) > 20
    for t, acc in accs.items():
        np.testing.assert_array_equal(got[t], r(got[acc], low), err_msg=t)
    # every original float tensor stays addressable and holds low-precision values (nothing pinned)
    for t in names:
        np.testing.assert_array_equal(got[t], r(got[t], low), err_msg=t)


def test_pinned_outputs_untouched(encoder):
    softmax = [n.name for n in encoder.graph.node if n.op_type in ("Softmax", "LayerNormalization")]
    result = emulate(encoder, "fp16", softmax)
    producers = {o: n for n in result.model.graph.node for o in n.output}
    for node in encoder.graph.node:
        if node.name in softmax:
            out = node.output[0]
            assert out not in result.rounded_tensors
            assert producers[out].name == node.name and producers[out].op_type == node.op_type
    x = np.random.default_rng(0).standard_normal((1, 7, 64)).astype(np.float32)
    sm = next(n for n in encoder.graph.node if n.op_type == "Softmax")
    got = run(result.model, [sm.input[0], sm.output[0]], {"x": x})
    e = np.exp(got[sm.input[0]] - got[sm.input[0]].max(-1, keepdims=True))
    np.testing.assert_allclose(got[sm.output[0]], e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert not np.array_equal(got[sm.output[0]], r(got[sm.output[0]], "fp16"))


def test_fp16_overflow_found_where_fp16_overflows_and_pins_remove_it():
    model = transformer_encoder(layers=1, logit_scale=3e4)
    names = float_tensors(model)
    x = np.random.default_rng(0).standard_normal((1, 6, 64)).astype(np.float32)
    ref = run(model, names, {"x": x}, emulated=False)
    over = next(t for t, v in ref.items() if np.abs(v).max() > 65504)  # where real fp16 storage overflows
    assert first_nonfinite(ref) is None

    emu = run(emulate(model, "fp16", []).model, names, {"x": x})
    assert first_nonfinite(emu) == over == "/encoder/layers.0/self_attn/Mul_output_0"
    assert np.isnan(emu["/encoder/layers.0/self_attn/Softmax_output_0"]).any()

    # pinning the Softmax alone does not help: the overflow is upstream
    emu = run(emulate(model, "fp16", ["/encoder/layers.0/self_attn/Softmax"]).model, names, {"x": x})
    assert first_nonfinite(emu) == over
    pins = ["/encoder/layers.0/self_attn/Mul", "/encoder/layers.0/self_attn/Softmax"]
    emu = run(emulate(model, "fp16", pins).model, names, {"x": x})
    assert first_nonfinite(emu) is None
    # bf16 has fp32's range: no overflow at all
    assert first_nonfinite(run(emulate(model, "bf16", []).model, names, {"x": x})) is None


def test_bias_fusion_skips_rounding_between_matmul_and_bias(encoder):
    fused = emulate(encoder, "fp16", [])
    plain = emulate(encoder, "fp16", [], fuse_bias=False)
    mm = "/encoder/layers.0/self_attn/q_proj/MatMul_output_0"
    assert mm in plain.rounded_tensors and mm not in fused.rounded_tensors
    assert "/encoder/layers.0/self_attn/q_proj/MatMul" in fused.fused_matmuls
    # attention MatMuls have no constant bias: never fused
    assert "/encoder/layers.0/self_attn/MatMul_output_0" in fused.rounded_tensors
    assert len(fused.cast_pairs) < len(plain.cast_pairs)


def test_keep_io_types_false_rounds_io_even_around_pins():
    model, _ = chain_model()
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    # the whole tail pinned, including the Identity that writes the graph output "y"
    result = emulate(model, "fp16", ["sub", "/Identity"], keep_io_types=False)
    got = run(result.model, ["y", "sqrt_output_0", "sub_output_0"], {"x": x})
    assert "y" in result.rounded_tensors and "x" in result.rounded_inputs
    sub = got["sqrt_output_0"] - r(x, "fp16")  # the pinned Sub reads the fp16 graph input, in FP32
    np.testing.assert_array_equal(got["sub_output_0"], sub)
    np.testing.assert_array_equal(got["y"], r(sub, "fp16"))
    kept = emulate(model, "fp16", ["sub", "/Identity"])
    got = run(kept.model, ["y", "sqrt_output_0"], {"x": x})
    np.testing.assert_array_equal(got["y"], got["sqrt_output_0"] - x)


def test_session_refuses_when_cast_pairs_are_folded(encoder, monkeypatch):
    result = emulate(encoder, "fp16", [])
    counts = iter([len(result.cast_pairs), 3])
    monkeypatch.setattr(session_module, "count_roundings", lambda model: next(counts))
    with pytest.raises(UserError, match="removed the rounding of .* values"):
        emulation_session(result.model)


def test_a_models_own_fp16_round_trip_is_not_taken_for_a_removed_rounding():
    """x*x -> Cast(fp16) -> Cast(fp32) -> Relu: ORT folds the value-preserving fp16 -> fp32 -> fp16 middle that
    the emulation's own rounding of x*x makes with the model's pair; every value is still rounded once."""
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["a"], name="mul"),
        helper.make_node("Cast", ["a"], ["h"], to=TensorProto.FLOAT16, name="to_half"),
        helper.make_node("Cast", ["h"], ["f"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Relu", ["f"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    x = np.array([1.0001, 2.0, 3.0, 200.07], np.float32)
    got = emulation_session(emulate(model, "fp16", []).model).run(None, {"x": x})[0]
    xr = x.astype(np.float16).astype(np.float32)  # a low Mul reads its FP32 input rounded
    np.testing.assert_array_equal(got, (xr * xr).astype(np.float16).astype(np.float32))


def test_session_counts_pairs_in_the_model_ort_runs(encoder):
    result = emulate(encoder, "fp16", [])
    assert session_module.count_cast_pairs(result.model) == len(result.cast_pairs)
    emulation_session(result.model)  # the self-check passes on today's ORT

"""Issue 14 (rewrite side): rewrites of models with external data never hold the weights in memory and are
written with external data. The 2 GB limit is a module constant lowered here, so the >2 GB paths run on
models of a few MB."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

from trt_tui.cli import main
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.precision import emulate, to_mixed_precision, writing

from tests.core.precision.helpers import ir10

REWRITES = [(to_mixed_precision, "fp16"), (to_mixed_precision, "bf16"), (emulate, "fp16"), (emulate, "bf16")]
IDS = [f"{r.__name__}-{low}" for r, low in REWRITES]


def mlp(d: int = 256, layers: int = 3) -> onnx.ModelProto:
    """MatMul + bias + Softmax layers (the issue's benchmark model, small): ~0.8 MB of weights at d=256."""
    g = GraphBuilder("mlp")
    x = g.input("x", TensorProto.FLOAT, [2, d])
    for k in range(layers):
        with g.scope(f"layer{k}"):
            x = g.op("MatMul", [x, g.weight((d, d))])
            x = g.op("Add", [x, g.weight((d,), scale=0.1)])
            x = g.op("Softmax", [x], axis=-1)
            x = g.op("Mul", [x, g.const(float(d))])
    g.output(x, "y", TensorProto.FLOAT, [2, d])
    return ir10(g.build())


def run(path, feeds) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def initializers(path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


@pytest.mark.parametrize("rewrite, low", REWRITES, ids=IDS)
def test_external_data_model_rewritten_without_loading_weights(tmp_path, rewrite, low):
    model = mlp()
    src = tmp_path / "src" / "m.onnx"
    src.parent.mkdir()
    onnx.save(model, src, save_as_external_data=True, location="m.data", size_threshold=1024)
    result = rewrite(src, low, [])
    big = [i for i in result.model.graph.initializer if np.prod(i.dims) * 4 > writing.INLINE_BYTES]
    assert big and all(i.data_location == TensorProto.EXTERNAL for i in big)
    out = tmp_path / "out" / "m.rewritten.onnx"
    result.save(out)
    assert (out.parent / "m.rewritten.onnx.data").exists() and out.stat().st_size < 50_000
    # same values as the rewrite of the model held in memory (onnx.save above moved `model`'s weights out)
    eager = rewrite(mlp(), low, [])
    mem = tmp_path / "eager.onnx"
    onnx.save(eager.model, mem)
    assert initializers(out).keys() == initializers(mem).keys()
    for name, value in initializers(mem).items():
        assert same(initializers(out)[name], value), name
    onnx.checker.check_model(str(out), full_check=True)
    if not (low == "bf16" and rewrite is to_mixed_precision):  # ORT CPU has no bf16 kernels
        x = {"x": np.random.default_rng(0).standard_normal((2, 256)).astype(np.float32)}
        np.testing.assert_array_equal(run(out, x), run(mem, x))
    # external data offsets are page-aligned (ONNX Runtime can map them)
    for init in onnx.load(str(out), load_external_data=False).graph.initializer:
        info = {e.key: e.value for e in init.external_data}
        assert int(info.get("offset", 0)) % writing.ALIGN == 0


@pytest.mark.parametrize("rewrite, low", REWRITES, ids=IDS)
def test_inline_model_past_the_limit_is_written_with_external_data(tmp_path, monkeypatch, rewrite, low):
    """Above EXTERNAL_DATA_LIMIT (lowered to 100 kB here) weights are derived on demand and streamed."""
    monkeypatch.setattr(writing, "EXTERNAL_DATA_LIMIT", 100_000)
    monkeypatch.setattr(writing, "CHUNK_BYTES", 10_000)  # several chunks per weight
    model = mlp()
    result = rewrite(model, low, [])
    assert any(result.weights.is_derived(i) for i in result.model.graph.initializer)
    out = result.save(tmp_path / "big.onnx")
    assert (tmp_path / "big.onnx.data").stat().st_size >= 3 * 256 * 256 * 2
    monkeypatch.undo()
    eager = rewrite(model, low, [])
    for init in eager.model.graph.initializer:
        got = initializers(out)[init.name]
        assert same(got, numpy_helper.to_array(init)), init.name


def test_no_overwrite_of_the_data_file_without_force(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save(mlp(), src, save_as_external_data=True, location="m.data", size_threshold=1024)
    out = tmp_path / "o.onnx"
    (tmp_path / "o.onnx.data").write_bytes(b"precious")
    assert main(["convert", str(src), "--precision", "fp16", "--emulate", "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "o.onnx.data").read_bytes() == b"precious" and not out.exists()
    assert main(["convert", str(src), "--precision", "fp16", "--emulate", "-o", str(out), "--force"]) == 0
    x = {"x": np.ones((2, 256), np.float32)}
    assert np.isfinite(run(out, x)).all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind

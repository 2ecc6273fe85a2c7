"""The `trt` candidate (a TensorRT engine built from a preset), at three depths:

1. the plan (`plan_trt_candidate`): which loaders and CreateConfig arguments each preset asks for; no TensorRT;
2. the Polygraphy composition, with the stand-in `tensorrt` module (tests/fixtures/fake_tensorrt.py, a test
   double) in sys.modules: loader objects and their arguments are inspected, and our two network
   post-processing functions run on the stand-in's network. NOTHING is parsed or built: no engine exists;
3. a real build + comparison, skipped unless TensorRT is installed (it is not on the machines this was written on).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import onnx
import pytest

from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.parity import trt_preset
from trt_tui.core.parity.runners import CandidateSpec, parse_candidate
from trt_tui.core.parity.trt_preset import MARKED_ENGINE_WARNING, plan_trt_candidate, resolve_candidate_preset
from trt_tui.core.preset import Preset, load_preset, resolve_preset

from tests.fixtures import fake_tensorrt

PRESETS = Path(__file__).resolve().parents[3] / "presets"


@pytest.fixture(scope="module")
def resolved():
    return {name: resolve_preset(load_preset(PRESETS / f"{name}.toml")) for name in ("demo_fp16", "demo_bf16", "demo_fp16_trt11")}


def _has_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return not hasattr(tensorrt, "calls")  # the stand-in is never "installed"


# ---- 1. the plan ---------------------------------------------------------------------------------------------
def _config(plan) -> dict:
    return plan.to_json()["config"]


def test_plan_10x_fp16_flags_pins_profiles_and_tf32(resolved):
    r = resolved["demo_fp16"]
    plan = plan_trt_candidate(r)
    assert plan.onnx_path == r.model_path and plan.strongly_typed is False and plan.mark_all
    assert _config(plan) == {
        "tf32": True,  # explicit: Polygraphy turns TF32 off unless asked, trtexec leaves it on
        "fp16": True,
        "precision_constraints": "obey",
        "profiles": [{n: [list(s) for s in t] for n, t in r.profiles[0].items()}],
        "builder_optimization_level": 0,
    }
    assert _config(plan)["profiles"][0]["audio_signal"][1][0] == 64  # opt batch 64 from the preset
    layer_precisions = plan.to_json()["layer_precisions"]
    assert layer_precisions == {"*": "fp16", **{n: "fp32" for n in r.pinned_nodes}} and len(r.pinned_nodes) > 5
    assert plan.to_json()["layer_output_types"] == {n: "fp32" for n in r.pinned_nodes}
    assert plan.warnings[0] == MARKED_ENGINE_WARNING and "--outputs-only" in MARKED_ENGINE_WARNING
    assert plan.label.startswith("trt10 fp16 +") and plan.label.endswith("layer-wise)")


def test_plan_10x_bf16_notf32_and_outputs_only(resolved):
    plan = plan_trt_candidate(resolved["demo_bf16"], outputs_only=True)
    assert _config(plan)["tf32"] is False and _config(plan)["bf16"] is True and "fp16" not in _config(plan)
    assert not plan.mark_all and MARKED_ENGINE_WARNING not in plan.warnings and "outputs only" in plan.label


def test_plan_11x_strongly_typed_from_the_mixed_onnx_without_removed_options(resolved):
    plan = plan_trt_candidate(resolved["demo_fp16_trt11"])
    assert plan.onnx_path is None and plan.strongly_typed  # None: the mixed ONNX, written when composing
    assert not {"fp16", "bf16", "precision_constraints"} & set(_config(plan))
    assert _config(plan)["tf32"] is True and _config(plan)["builder_optimization_level"] == 0 and _config(plan)["profiles"]
    assert plan.spec.layer_precisions == [] and plan.spec.layer_output_types == []


def test_plan_constraints_none_timing_cache_pools_and_fp32(resolved, tmp_path):
    r = dataclasses.replace(resolved["demo_fp16"], precision_constraints="none", timing_cache=tmp_path / "t.cache",
                            memory_pools={"workspace": 64}, force_low_precision=False)  # fmt: skip
    plan = plan_trt_candidate(r)
    assert "precision_constraints" not in _config(plan) and ("*", "fp16") not in plan.spec.layer_precisions
    assert _config(plan)["load_timing_cache"] == str(tmp_path / "t.cache")
    assert _config(plan)["memory_pool_limits"] == {"workspace": 64 << 20}
    fp32 = plan_trt_candidate(dataclasses.replace(resolved["demo_fp16_trt11"], precision="fp32"))
    assert fp32.onnx_path == resolved["demo_fp16_trt11"].model_path and fp32.precision == "fp32"


def test_candidate_spec_and_parse():
    spec = parse_candidate("trt", preset="p.toml", outputs_only=True)
    assert (spec.kind, spec.path, spec.outputs_only) == ("trt", "p.toml", True)
    assert spec.label == "trt:p.toml (outputs only)"
    assert parse_candidate("trt:q.toml", preset="p.toml").path == "q.toml"  # explicit beats --preset
    with pytest.raises(UserError, match="give --preset FILE or trt:PRESET"):
        parse_candidate("trt")
    with pytest.raises(UserError, match="--outputs-only applies to"):
        parse_candidate("emulate", outputs_only=True)
    assert CandidateSpec("trt", preset=Preset(model="m.onnx", name="mine")).label == "trt:mine (layer-wise)"


@pytest.mark.skipif(_has_tensorrt(), reason="TensorRT is installed: the missing-backend path cannot be shown")
def test_without_tensorrt_one_clear_error(resolved):
    with pytest.raises(MissingBackendError, match="TensorRT is not installed"):
        trt_preset.trt_preset_runner(resolved["demo_fp16"])


# ---- 2. the composition, with the stand-in tensorrt module ----------------------------------------------------
def _chain(loader) -> list:
    """The network loaders from the outermost to NetworkFromOnnxPath."""
    out = [loader]
    while hasattr(loader, "_network"):
        loader = loader._network
        out.append(loader)
    return out


@pytest.fixture
def fake_trt(monkeypatch):
    yield lambda version: fake_tensorrt.install(monkeypatch, version)
    fake_tensorrt.forget_polygraphy_tensorrt()


def _build(plan, tmp_path):
    """THE builder's loader for the candidate's spec (what its build job runs), on the stand-in."""
    from trt_tui.core.build.onnx_outputs import write_mixed_model
    from trt_tui.core.build.trt_loaders import engine_bytes_loader

    onnx_path = plan.onnx_path or write_mixed_model(plan.spec, tmp_path)
    return engine_bytes_loader(plan.spec, onnx_path, sys.modules["tensorrt"])


def test_compose_10x_loaders_and_config_with_the_stand_in(fake_trt, resolved, tmp_path):
    from polygraphy.backend.trt import CreateConfig, EngineBytesFromNetwork

    trt = fake_trt("10.9.0.34")
    r = resolved["demo_fp16"]
    plan = plan_trt_candidate(r)
    build = _build(plan, tmp_path)
    assert isinstance(build, EngineBytesFromNetwork)
    chain = _chain(build._network)
    names = [getattr(step, "name", type(step).__name__) for step in chain]
    assert names == ["ModifyNetworkOutputs", "trt_tui IO formats", "trt_tui layer precisions", "NetworkFromOnnxPath"]
    assert chain[-1].path == str(r.model_path) and chain[-1].strongly_typed is False
    assert isinstance(build._config, CreateConfig)
    build()  # parse + configure + "build" through Polygraphy's loaders, on the stand-in
    network, config = trt.built["network"], trt.built["config"]
    assert {f.name for f in config.flags} == {"TF32", "FP16", "OBEY_PRECISION_CONSTRAINTS"}
    assert config.builder_optimization_level == 0
    lo, opt, hi = r.profiles[0]["audio_signal"]
    assert config.profiles[0].shapes["audio_signal"] == (tuple(lo), tuple(opt), tuple(hi))
    layers = {layer.name: layer for layer in network.layers}
    for node in r.pinned_nodes:
        assert layers[node].precision == trt.float32 and layers[node].output_types == {0: trt.float32}
    others = [layer for name, layer in layers.items() if name not in set(r.pinned_nodes)]
    assert others and sum(layer.precision == trt.float16 for layer in others) > 10
    assert all(layer.output_types == {} for layer in others)
    assert network.num_outputs > len(r.output_names)  # layer-wise: every tensor marked


def test_compose_outputs_only_leaves_the_engine_unmarked(fake_trt, resolved, tmp_path):
    trt = fake_trt("10.9.0.34")
    plan = plan_trt_candidate(resolved["demo_bf16"], outputs_only=True)
    names = [getattr(step, "name", type(step).__name__) for step in _chain(_build(plan, tmp_path)._network)]
    assert "ModifyNetworkOutputs" not in names and plan.warnings == []
    _build(plan, tmp_path)()
    assert {f.name for f in trt.built["config"].flags} == {"BF16", "OBEY_PRECISION_CONSTRAINTS"}  # noTF32
    assert [t.name for t in trt.built["network"].outputs] == resolved["demo_bf16"].output_names


def test_compose_11x_from_the_mixed_onnx(fake_trt, resolved, tmp_path):
    trt = fake_trt("11.1.0")
    r = resolved["demo_fp16_trt11"]
    plan = plan_trt_candidate(r)
    chain = _chain(_build(plan, tmp_path)._network)
    assert [getattr(s, "name", type(s).__name__) for s in chain] == ["ModifyNetworkOutputs", "trt_tui IO formats",
                                                                     "NetworkFromOnnxPath"]  # fmt: skip
    parsed = Path(chain[-1].path)
    assert chain[-1].strongly_typed is True and parsed.name == "model.mixed.onnx" and parsed != r.model_path
    model = onnx.load(parsed, load_external_data=False)
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert casts and {o.name for o in model.graph.output} == set(r.output_names)  # original names kept
    _build(plan, tmp_path)()
    assert trt.built["config"].flags == {trt.BuilderFlag.TF32}  # nothing 11.x removed was asked for


def test_compose_pools_and_timing_cache(fake_trt, resolved, tmp_path):
    trt = fake_trt("10.9.0.34")
    r = dataclasses.replace(resolved["demo_fp16"], memory_pools={"workspace": 64}, timing_cache=tmp_path / "t.cache")
    build = _build(plan_trt_candidate(r, outputs_only=True), tmp_path)
    assert build._config.memory_pool_limits == {trt.MemoryPoolType.WORKSPACE: 64 << 20}
    assert build._config.timing_cache_path == str(tmp_path / "t.cache") == build.timing_cache_path  # load AND save


def test_preset_object_or_file(resolved):
    r = resolved["demo_fp16"]
    assert resolve_candidate_preset(r) is r
    assert resolve_candidate_preset(PRESETS / "demo_fp16.toml").pinned_nodes == r.pinned_nodes
    assert resolve_candidate_preset(load_preset(PRESETS / "demo_fp16.toml")).name == r.name


# ---- 3. the real thing --------------------------------------------------------------------------------------
@pytest.mark.skipif(not _has_tensorrt(), reason="TensorRT is not installed: no engine can be built from a preset here")
def test_real_tensorrt_outputs_only_comparison():  # pragma: no cover - needs TensorRT and a GPU
    import tensorrt

    from trt_tui.core.parity.engine import compare

    name = "demo_fp16" if int(tensorrt.__version__.split(".")[0]) < 11 else "demo_fp16_trt11"
    preset = PRESETS / f"{name}.toml"
    model = load_preset(preset).model_path
    result = compare(model, CandidateSpec("trt", path=str(preset), outputs_only=True))
    assert result.tensors and {d.name for d in result.tensors} <= set(resolve_candidate_preset(preset).output_names)


def test_runner_output_names_for_a_trt_runner(monkeypatch):
    """Polygraphy runners have no get_output_metadata: a TrtRunner's outputs are its engine's OUTPUT tensors."""
    from types import SimpleNamespace

    from trt_tui.core.parity.sides import runner_output_names

    trt = fake_tensorrt.make("10.9.0.34")
    trt.TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    io = {"x": "INPUT", "y": "OUTPUT", "z": "OUTPUT"}
    engine = SimpleNamespace(num_io_tensors=3, get_tensor_name=list(io).__getitem__, get_tensor_mode=io.get)
    assert runner_output_names(SimpleNamespace(engine=engine, name="candidate")) == ["y", "z"]
    with pytest.raises(UserError, match="cannot tell which outputs"):
        runner_output_names(SimpleNamespace(name="odd"))

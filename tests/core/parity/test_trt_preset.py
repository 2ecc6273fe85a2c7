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
from trt_tui.core.preset import load_preset, resolve_preset

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
def test_plan_10x_fp16_flags_pins_profiles_and_tf32(resolved):
    r = resolved["demo_fp16"]
    plan = plan_trt_candidate(r)
    assert plan.onnx_path == r.model_path and plan.strongly_typed is False and plan.mark_all
    assert plan.config == {
        "tf32": True,  # explicit: Polygraphy turns TF32 off unless asked, trtexec leaves it on
        "fp16": True,
        "precision_constraints": "obey",
        "profiles": [{n: [list(s) for s in t] for n, t in r.profiles[0].items()}],
        "builder_optimization_level": 0,
    }
    assert plan.config["profiles"][0]["audio_signal"][1][0] == 64  # opt batch 64 from the preset
    assert plan.layer_precisions == {n: "float32" for n in r.pinned_nodes} and len(r.pinned_nodes) > 5
    assert plan.low_precision_default == "fp16" and plan.pin_output_types
    assert plan.warnings[0] == MARKED_ENGINE_WARNING and "--outputs-only" in MARKED_ENGINE_WARNING
    assert plan.label.startswith("trt10 fp16 +") and plan.label.endswith("layer-wise)")


def test_plan_10x_bf16_notf32_and_outputs_only(resolved):
    plan = plan_trt_candidate(resolved["demo_bf16"], outputs_only=True)
    assert plan.config["tf32"] is False and plan.config["bf16"] is True and "fp16" not in plan.config
    assert not plan.mark_all and MARKED_ENGINE_WARNING not in plan.warnings and "outputs only" in plan.label


def test_plan_11x_strongly_typed_from_the_mixed_onnx_without_removed_options(resolved):
    plan = plan_trt_candidate(resolved["demo_fp16_trt11"])
    assert plan.onnx_path is None and plan.strongly_typed  # None: the mixed ONNX, written when composing
    assert not {"fp16", "bf16", "precision_constraints"} & set(plan.config)
    assert plan.config["tf32"] is True and plan.config["builder_optimization_level"] == 0 and plan.config["profiles"]
    assert plan.layer_precisions == {} and plan.low_precision_default is None and not plan.pin_output_types


def test_plan_constraints_none_timing_cache_pools_and_fp32(resolved, tmp_path):
    r = dataclasses.replace(resolved["demo_fp16"], precision_constraints="none", timing_cache=tmp_path / "t.cache",
                            memory_pools={"workspace": 64}, force_low_precision=False)  # fmt: skip
    plan = plan_trt_candidate(r)
    assert "precision_constraints" not in plan.config and plan.low_precision_default is None
    assert plan.config["load_timing_cache"] == str(tmp_path / "t.cache")
    assert plan.config["memory_pool_limits"] == {"workspace": 64 << 20}
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
    assert CandidateSpec("trt", preset=object()).label.startswith("trt:preset")


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
    def install(version: str):
        trt = fake_tensorrt.make(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        return trt

    return install


def test_compose_10x_loaders_and_config_with_the_stand_in(fake_trt, resolved):
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, SetLayerPrecisions, TrtRunner

    trt = fake_trt("10.9.0.34")
    r = resolved["demo_fp16"]
    runner, plan = trt_preset.trt_preset_runner(r)
    assert isinstance(runner, TrtRunner) and runner.name == "candidate" and not runner.is_active
    engine = runner._engine_or_context
    assert isinstance(engine, EngineFromNetwork)
    chain = _chain(engine._network)
    names = [getattr(step, "name", type(step).__name__) for step in chain]
    assert names == ["trt_tui pin output types", "SetLayerPrecisions", "trt_tui low-precision default",
                     "ModifyNetworkOutputs", "NetworkFromOnnxPath"]  # fmt: skip
    assert isinstance(chain[1], SetLayerPrecisions) and isinstance(chain[-1], NetworkFromOnnxPath)
    assert chain[-1].path == str(r.model_path) and chain[-1].strongly_typed is False
    config = engine._config
    assert isinstance(config, CreateConfig)
    assert (config.tf32, config.fp16, config.bf16, config.precision_constraints) == (True, True, False, "obey")
    assert config.builder_optimization_level == 0 and config.timing_cache_path is None
    (profile,) = config.profiles
    lo, opt, hi = r.profiles[0]["audio_signal"]
    shape = profile["audio_signal"]
    assert [list(shape.min), list(shape.opt), list(shape.max)] == [list(lo), list(opt), list(hi)]

    # SetLayerPrecisions and our two post-processing functions, run on the stand-in's network (no build)
    network = trt.Builder(None).create_network(0)
    trt.OnnxParser(network, None).parse_from_file(str(r.model_path))
    for step in reversed(chain[:-2]):  # everything between the parser and the outputs marking... applied in order
        step._func(network=network)
    layers = {layer.name: layer for layer in network.layers}
    for node in r.pinned_nodes:
        assert layers[node].precision == trt.float32 and layers[node].output_types == {0: trt.float32}
    others = [layer for name, layer in layers.items() if name not in set(r.pinned_nodes)]
    assert others and all(layer.precision == trt.float16 for layer in others)
    assert all(layer.output_types == {} for layer in others)


def test_compose_outputs_only_leaves_the_engine_unmarked(fake_trt, resolved):
    fake_trt("10.9.0.34")
    runner, plan = trt_preset.trt_preset_runner(resolved["demo_bf16"], outputs_only=True)
    names = [getattr(step, "name", type(step).__name__) for step in _chain(runner._engine_or_context._network)]
    assert "ModifyNetworkOutputs" not in names and plan.warnings == []
    config = runner._engine_or_context._config
    assert (config.tf32, config.fp16, config.bf16) == (False, False, True)


def test_compose_11x_from_the_mixed_onnx(fake_trt, resolved):
    fake_trt("11.1.0")
    r = resolved["demo_fp16_trt11"]
    runner, plan = trt_preset.trt_preset_runner(r)
    chain = _chain(runner._engine_or_context._network)
    assert [getattr(s, "name", type(s).__name__) for s in chain] == ["ModifyNetworkOutputs", "NetworkFromOnnxPath"]
    parsed = Path(chain[-1].path)
    assert chain[-1].strongly_typed is True and parsed.name == "model.mixed.onnx" and parsed != r.model_path
    model = onnx.load(parsed, load_external_data=False)
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert casts and {o.name for o in model.graph.output} == set(r.output_names)  # original names kept
    config = runner._engine_or_context._config
    assert (config.tf32, config.fp16, config.bf16, config.precision_constraints) == (True, False, False, None)
    runner.trt_tui_workdir.cleanup()
    assert not parsed.exists()


def test_compose_pools_and_version_mismatch(fake_trt, resolved, tmp_path):
    fake_trt("10.9.0.34")
    r = dataclasses.replace(resolved["demo_fp16"], memory_pools={"workspace": 64}, timing_cache=tmp_path / "t.cache")
    runner, _ = trt_preset.trt_preset_runner(r)
    config = runner._engine_or_context._config
    assert config.memory_pool_limits == {"WORKSPACE": 64 << 20} and config.timing_cache_path == str(tmp_path / "t.cache")
    with pytest.raises(UserError, match="targets TensorRT 11.x but TensorRT 10.9.0.34 is installed"):
        trt_preset.trt_preset_runner(resolved["demo_fp16_trt11"])


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


def test_explicit_io_formats_are_reported_as_not_applied(resolved):
    r = resolved["demo_fp16"]
    preset = dataclasses.replace(r.preset, io=dataclasses.replace(r.preset.io, inputs={"audio_signal": "fp16:chw"}))
    plan = plan_trt_candidate(dataclasses.replace(r, preset=preset), outputs_only=True)
    assert len(plan.warnings) == 1 and "IO formats are not applied" in plan.warnings[0]

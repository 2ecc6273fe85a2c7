"""trt_build.run() driven through a stand-in `tensorrt` module (tests/fixtures/fake_tensorrt.py, a test double): the
10.x weak-typing flags and per-layer pins, the 11.x route through the mixed-precision ONNX, the progress
monitor, cancel through step_complete, artifacts and the pin check. The real thing: test_tensorrt_backend.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from trt_tui.core.build import trt_build
from trt_tui.core.build.types import BuildRequest, JobState
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph


def _request(demo_model, pins, **fields) -> BuildRequest:
    spec = EngineSpec(**{"name": "p", "model_path": str(demo_model), "precision": "fp16", "trt_major": 10,
                         "pinned_nodes": tuple(pins), "precision_constraints": "obey", "force_low_precision": True,
                         "pin_output_types": True, **fields})  # fmt: skip
    return BuildRequest("p.toml", "", str(demo_model), "tensorrt", settings=spec.to_json())


@pytest.fixture
def softmax(demo_model):
    return [n.name for n in load_graph(demo_model).nodes if n.op_type == "Softmax"]


def _run(tmp_path, request, cancelled=lambda: False):
    events = []
    result = trt_build.run(request, tmp_path, lambda phase, f: events.append((phase, f)), cancelled)
    return result, events


def test_10x_weak_typing_pins_and_pin_check(fake_trt, tmp_path, demo_model, softmax):
    trt = fake_trt("10.9.0.34")
    request = _request(demo_model, softmax, trt_major=10, tf32=False, optimization_level=0,
                       memory_pools_mib={"workspace": 64}, timing_cache=str(tmp_path / "shared.cache"),
                       profiles=({"audio_signal": ((1, 32, 8), (4, 32, 8), (4, 32, 8))},))
    result, events = _run(tmp_path, request)
    assert result.state == JobState.SUCCEEDED and result.engine_built, result.message
    config = trt.builder.config
    assert {f.name for f in config.flags} == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}  # TF32 off (tf32=False)
    assert config.builder_optimization_level == 0 and config.pools == {trt.MemoryPoolType.WORKSPACE: 64 << 20}
    assert config.profiles[0].shapes["audio_signal"] == ((1, 32, 8), (4, 32, 8), (4, 32, 8))
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED and config.progress_monitor is not None
    layers = {layer.name: layer for layer in trt.builder.network.layers}
    assert all(layers[n].precision == trt.float32 and layers[n].output_types == {0: trt.float32} for n in softmax)
    assert sum(layer.precision == trt.float16 for layer in layers.values()) > 10  # `*:fp16` for the rest
    assert (tmp_path / "engine.plan").read_bytes().startswith(b"FAKE ENGINE")
    assert (tmp_path / "layers.json").is_file() and (tmp_path / "shared.cache").read_bytes() == b"fake-timing-cache"
    assert (tmp_path / "timing.cache").read_bytes() == b"fake-timing-cache"  # a copy kept with the build
    assert result.pin_check["counts"] == {"fp32": len(softmax)} and result.pin_check["mismatches"] == []
    fractions = [f for _, f in events if f is not None]
    assert fractions == sorted(fractions) and events[-1] == ("done", 1.0)


def test_11x_builds_from_the_mixed_onnx_without_removed_flags(fake_trt, tmp_path, demo_model, softmax):
    trt = fake_trt("11.1.0")
    result, _ = _run(tmp_path, _request(demo_model, softmax, trt_major=11))
    assert result.state == JobState.SUCCEEDED, result.message
    assert trt.calls == [("parse", str(tmp_path / "model.mixed.onnx"))]
    assert trt.builder.config.flags == {trt.BuilderFlag.TF32}  # no FP16/OBEY: they do not exist in 11.x
    assert trt.builder.network.get_flag(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert result.pin_check["counts"] == {"fp32": len(softmax)}  # the Casts keep the pins in FP32


def test_cancel_through_the_progress_monitor(fake_trt, tmp_path, demo_model, softmax):
    trt = fake_trt("10.9.0.34")
    result, _ = _run(tmp_path, _request(demo_model, softmax, trt_major=10), cancelled=lambda: True)
    assert result.state == JobState.CANCELLED and not result.engine_built
    assert not (tmp_path / "engine.plan").exists()


def test_version_mismatch_is_a_user_error(fake_trt, tmp_path, demo_model):
    trt = fake_trt("11.1.0")
    with pytest.raises(UserError, match="targets TensorRT 10.x but TensorRT 11.1.0 is installed"):
        _run(tmp_path, _request(demo_model, [], trt_major=10))
    assert not Path(tmp_path / "engine.plan").exists()

"""One builder: `trt-tui build --backend tensorrt` and the comparison's `trt` candidate (a build job of its
own) build the same network with the same config from the same preset, the candidate's engine differing
only by its marked outputs (layer-wise). Both run the build worker's code through Polygraphy's real loaders
on the stand-in `tensorrt` module (tests/fixtures/fake_tensorrt.py, a test double): no engine exists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trt_tui.core.build import trt_build
from trt_tui.core.build.backend import Availability
from trt_tui.core.build.request import request_from_preset
from trt_tui.core.build.worker_backends import TensorRTBackend
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.parity import trt_preset

PRESETS = Path(__file__).resolve().parents[3] / "presets"


class _Available(TensorRTBackend):
    def availability(self) -> Availability:
        return Availability(True, "the stand-in")


def fingerprint(built: dict) -> dict:
    network, config = built["network"], built["config"]
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    return {
        "strongly_typed": network.flags,
        "layers": [(layer.name, layer._precision, dict(layer.output_types)) for layer in network.layers],
        "inputs": [(t.name, t.dtype, t.allowed_formats) for t in inputs],
        "outputs": {t.name: (t.dtype, t.allowed_formats) for t in network.outputs},
        "flags": sorted(f.name for f in config.flags),
        "profiles": [p.shapes for p in config.profiles],
        "pools": config.pools,
        "optimization_level": config.builder_optimization_level,
        "verbosity": config.profiling_verbosity,
        "timing_cache": config.get_timing_cache().loaded,
        "progress_monitor": config.progress_monitor is not None,
    }


@pytest.mark.parametrize(("preset", "version"), [("demo_fp16", "10.9.0.34"), ("demo_bf16", "10.9.0.34"),
                                                 ("demo_fp16_trt11", "11.1.0")])  # fmt: skip
def test_build_worker_and_trt_candidate_build_the_same_engine(fake_trt, tmp_path, preset, version):
    trt = fake_trt(version)
    request = request_from_preset(PRESETS / f"{preset}.toml", "tensorrt", {"tensorrt": _Available()})
    spec = EngineSpec.from_json(request.settings)  # what the child reads back: the one serialised spec
    assert spec.to_json() == request.settings and spec.pinned_nodes
    result = trt_build.run(request, tmp_path, lambda *a: None, lambda: False)
    assert result.engine_built, result.message
    built_by_worker = fingerprint(trt.built)

    for outputs_only in (True, False):
        candidate, plan = trt_preset.candidate_build_request(PRESETS / f"{preset}.toml", outputs_only=outputs_only,
                                                             backends={"tensorrt": _Available()})  # fmt: skip
        assert plan.spec == dataclasses.replace(spec, mark_all_outputs=not outputs_only)
        assert candidate.backend == "tensorrt" and "for compare" in candidate.label
        (tmp_path / str(outputs_only)).mkdir()
        result = trt_build.run(candidate, tmp_path / str(outputs_only), lambda *a: None, lambda: False)
        assert result.engine_built, result.message
        built_for_comparison = fingerprint(trt.built)
        outputs = built_for_comparison.pop("outputs")
        shipped = {name: outputs.pop(name) for name in built_by_worker["outputs"]}
        assert {**built_for_comparison, "outputs": shipped} == built_by_worker
        assert (outputs == {}) == outputs_only  # layer-wise: every other tensor is an engine output too
    if spec.trt_major < 11:
        pinned = [layer for layer in built_by_worker["layers"] if layer[0] in spec.pinned_nodes]
        assert pinned and all(p == trt.float32 for _, p, _ in pinned)

"""The CPU preview "build", run in the worker child: it writes the preset's mixed-precision ONNX and its
FP32 emulation so the build -> compare loop works without a GPU. It builds NO engine, and says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trt_tui.core.build.onnx_outputs import EMULATED_NAME, MIXED_NAME, write_emulated_model, write_mixed_model
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.engine_spec import EngineSpec

NO_ENGINE = "CPU preview (emulate backend): no TensorRT engine was built"


def run(request: BuildRequest, build_dir: Path, emit: Callable[[str, float | None], None],
        cancelled: Callable[[], bool]) -> BuildResult:
    spec = EngineSpec.from_json(request.settings, request.preset_path or None)
    result = BuildResult(state=JobState.SUCCEEDED, backend="emulate", engine_built=False, notes=[NO_ENGINE])
    if spec.precision == "fp32":
        result.message = f"{NO_ENGINE}; the preset is FP32, so there is nothing to rewrite or emulate"
        return result
    emit("writing the mixed-precision ONNX", 0.05)
    write_mixed_model(spec, build_dir)
    result.artifacts["mixed_onnx"] = MIXED_NAME
    if cancelled():
        result.state, result.message = JobState.CANCELLED, f"cancelled; {NO_ENGINE}"
        return result
    emit("writing the emulated ONNX", 0.5)
    write_emulated_model(spec, build_dir)
    result.artifacts["emulated_onnx"] = EMULATED_NAME
    emit("done", 1.0)
    pins = len(spec.pinned_nodes)
    result.message = (f"{NO_ENGINE}; wrote {MIXED_NAME} and {EMULATED_NAME} "
                      f"({spec.precision}, {pins} FP32 pin{'s' if pins != 1 else ''})")
    return result

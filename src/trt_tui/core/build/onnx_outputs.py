"""The ONNX files a build writes from the preset: the strongly-typed mixed-precision model (what TensorRT
11 builds from) and the FP32 emulation of it (what the CPU preview runs). Runs in the worker child."""

from __future__ import annotations

from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.build.trt_settings import TrtSettings
from trt_tui.core.build.types import BuildRequest
from trt_tui.core.fileio import atomic_write

MIXED_NAME = "model.mixed.onnx"
EMULATED_NAME = "model.emulated.onnx"


def write_mixed_model(request: BuildRequest, settings: TrtSettings, build_dir: Path) -> Path:
    from trt_tui.core.precision import to_mixed_precision

    return _write(to_mixed_precision, request, settings, build_dir / MIXED_NAME, build_dir / "mixed.json")


def write_emulated_model(request: BuildRequest, settings: TrtSettings, build_dir: Path) -> Path:
    from trt_tui.core.precision import emulate

    return _write(emulate, request, settings, build_dir / EMULATED_NAME, build_dir / "emulated.json")


def _write(rewrite, request: BuildRequest, settings: TrtSettings, target: Path, report: Path) -> Path:
    """Run one precision rewrite on the preset's model; save the model and what the rewrite did."""
    from trt_tui.core.precision import save_model

    result = rewrite(request.model_path, settings.precision, settings.pinned_nodes, keep_io_types=settings.keep_io_types)
    save_model(result.model, target, overwrite=True)
    atomic_write(report, jsonio.dumps(result.to_json(), indent=1), overwrite=True)
    return target

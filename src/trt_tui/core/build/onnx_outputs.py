"""The ONNX files a build writes from the preset: the strongly-typed mixed-precision model (what TensorRT
11 builds from) and the FP32 emulation of it (what the CPU preview runs). Runs in the worker child."""

from __future__ import annotations

from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.fileio import atomic_write

MIXED_NAME = "model.mixed.onnx"
EMULATED_NAME = "model.emulated.onnx"


def write_mixed_model(spec: EngineSpec, build_dir: Path) -> Path:
    from trt_tui.core.precision import to_mixed_precision

    return _write(to_mixed_precision, spec, build_dir / MIXED_NAME, build_dir / "mixed.json")


def write_emulated_model(spec: EngineSpec, build_dir: Path) -> Path:
    from trt_tui.core.precision import emulate

    return _write(emulate, spec, build_dir / EMULATED_NAME, build_dir / "emulated.json")


def _write(rewrite, spec: EngineSpec, target: Path, report: Path) -> Path:
    """Run one precision rewrite on the preset's model; save the model and what the rewrite did."""
    result = rewrite(spec.model_path, spec.precision, list(spec.pinned_nodes), keep_io_types=spec.keep_io_types)
    result.save(target, overwrite=True)
    atomic_write(report, jsonio.dumps(result.to_json(), indent=1), overwrite=True)
    return target

"""The ONNX files a build writes from the preset: the strongly-typed mixed-precision model (what TensorRT
11 builds from) and the FP32 emulation of it (what the CPU preview runs). Runs in the worker child."""

from __future__ import annotations

import json
from pathlib import Path

from trt_tui.core.build.trt_settings import TrtSettings
from trt_tui.core.build.types import BuildRequest
from trt_tui.core.fileio import atomic_write

MIXED_NAME = "model.mixed.onnx"
EMULATED_NAME = "model.emulated.onnx"


def write_mixed_model(request: BuildRequest, settings: TrtSettings, build_dir: Path) -> Path:
    from trt_tui.core.precision import save_model, to_mixed_precision

    result = to_mixed_precision(request.model_path, settings.precision, settings.pinned_nodes,
                                keep_io_types=settings.keep_io_types)
    target = build_dir / MIXED_NAME
    save_model(result.model, target, overwrite=True)
    atomic_write(build_dir / "mixed.json", json.dumps(result.to_json(), indent=1), overwrite=True)
    return target


def write_emulated_model(request: BuildRequest, settings: TrtSettings, build_dir: Path) -> Path:
    from trt_tui.core.precision import emulate, save_model

    result = emulate(request.model_path, settings.precision, settings.pinned_nodes,
                     keep_io_types=settings.keep_io_types)
    target = build_dir / EMULATED_NAME
    save_model(result.model, target, overwrite=True)
    atomic_write(build_dir / "emulated.json", json.dumps(result.to_json(), indent=1), overwrite=True)
    return target

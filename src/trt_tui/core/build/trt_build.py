"""The TensorRT Python-API build, run inside the worker child (never in the UI process).

It reads the request's EngineSpec, parses the model (11.x with fp16/bf16: the mixed-precision ONNX it
writes first), builds through THE builder (trt_loaders.engine_loaders: Polygraphy's loaders, the same
chain the comparison's `trt` candidate uses), saves the engine, the merged timing cache and the engine
inspector's layer information, and checks where each FP32 pin really ran.

NOT RUN against a real TensorRT (none is installable where this was written): it follows the documented
API and is driven end to end through the stand-in tests/fixtures/fake_tensorrt.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.build.phases import PhaseTracker
from trt_tui.core.build.pincheck import pin_check
from trt_tui.core.build.trt_loaders import engine_bytes_loader, make_progress_monitor
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.fileio import atomic_write

ENGINE_NAME = "engine.plan"
INSPECTOR_NAME = "layers.json"
TIMING_CACHE_NAME = "timing.cache"


def import_tensorrt():
    try:
        import tensorrt as trt  # noqa: PLC0415 - lazily: only a child process ever loads TensorRT
    except ImportError as exc:
        raise MissingBackendError(
            f"the TensorRT Python package is not installed (pip install 'trt-tui[trt]'): {exc}"
        ) from None
    return trt


def check_version(spec: EngineSpec, trt, source: str | None) -> None:
    """The installed TensorRT must be the major the spec was written for (10.x and 11.x build differently)."""
    major = int(str(trt.__version__).split(".")[0])
    if spec.trt_major != major:
        raise UserError(f"the preset targets TensorRT {spec.trt_major}.x but TensorRT {trt.__version__} is "
                        "installed; set `trt` in the preset to the installed version", source)  # fmt: skip


def network_source(spec: EngineSpec, request: BuildRequest, build_dir: Path,
                   emit: Callable[[str, float | None], None]) -> Path:  # fmt: skip
    """10.x parses the original model; 11.x with fp16/bf16 the mixed-precision ONNX (precision lives in the graph)."""
    if not spec.builds_from_mixed_onnx:
        return Path(spec.model_path)
    from trt_tui.core.build.onnx_outputs import write_mixed_model

    emit("writing the mixed-precision ONNX", 0.01)
    return write_mixed_model(spec, build_dir)


def run(request: BuildRequest, build_dir: Path, emit: Callable[[str, float | None], None],
        cancelled: Callable[[], bool]) -> BuildResult:
    trt = import_tensorrt()
    spec = EngineSpec.from_json(request.settings, request.preset_path or None)
    check_version(spec, trt, request.preset_path or None)
    result = BuildResult(state=JobState.FAILED, backend="tensorrt", trt_version=str(trt.__version__))
    onnx_path = network_source(spec, request, build_dir, emit)

    # The monitor's 0..1 is the building part of the whole run: map it into 5%..95%.
    tracker = PhaseTracker(lambda phase, f: emit(phase, None if f is None else 0.05 + 0.9 * f), cancelled=cancelled)
    monitor = make_progress_monitor(trt, tracker)  # must outlive the build: referenced until the end
    build = engine_bytes_loader(spec, onnx_path, trt, progress_monitor=monitor,
                                save_timing_cache=build_dir / TIMING_CACHE_NAME)
    cache_path = Path(build.timing_cache_path)

    from polygraphy.backend.trt import EngineFromBytes
    from polygraphy.exception import PolygraphyException

    emit("parsing and building", 0.02)
    try:
        serialized = build()
    except PolygraphyException as exc:  # a parse error, or the builder returned no engine (incl. a cancel)
        if cancelled():
            result.state, result.message = JobState.CANCELLED, "cancelled during the TensorRT build"
        else:
            result.message = f"TensorRT could not build the engine: {' '.join(str(exc).split())[:400]}"
        return result
    data = bytes(serialized)
    atomic_write(build_dir / ENGINE_NAME, data, overwrite=True)
    result.engine_built, result.engine_path = True, ENGINE_NAME
    result.artifacts["engine"] = ENGINE_NAME
    result.engine_size_mib = round(len(data) / 2**20, 3)
    if cache_path.is_file():
        if cache_path != build_dir / TIMING_CACHE_NAME:
            shutil.copyfile(cache_path, build_dir / TIMING_CACHE_NAME)
        result.artifacts["timing_cache"] = TIMING_CACHE_NAME

    emit("inspecting", 0.98)
    engine = EngineFromBytes(data)()
    info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    atomic_write(build_dir / INSPECTOR_NAME, jsonio.dumps(info, indent=1), overwrite=True)
    result.artifacts["layer_info"] = INSPECTOR_NAME
    if spec.pinned_nodes:
        result.pin_check = pin_check(info, list(spec.pinned_nodes))
        if result.pin_check["mismatches"]:
            result.notes.append(f"{len(result.pin_check['mismatches'])} FP32 pin(s) did not run in FP32")
    if spec.mark_all_outputs:
        result.notes.append("every tensor is marked as an engine output (layer-wise comparison): "
                            "this is not the engine you ship")  # fmt: skip
    result.state = JobState.SUCCEEDED
    result.message = f"engine built ({result.engine_size_mib} MiB) with TensorRT {trt.__version__}"
    emit("done", 1.0)
    del monitor
    return result

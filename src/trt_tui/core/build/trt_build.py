"""The TensorRT Python-API build, run inside the worker child (never in the UI process).

NOT RUN on the machines this was written on (no TensorRT there): it follows the documented API
(see the research note on 10.x vs 11.x) and stays thin; the parts that do not need TensorRT (settings,
pin-to-layer mapping through metadata, progress bookkeeping, the pin check) live elsewhere and are tested.

10.x, weakly typed: precision flags + OBEY_PRECISION_CONSTRAINTS, pinned layers get `precision` and
output types FP32. 11.x, strongly typed: the network is parsed from the mixed-precision ONNX (Casts around
the FP32 pins), no precision flags exist. Both: profiles, IO formats, optimization level, TF32, timing
cache (loaded and saved), memory pools, an IProgressMonitor, DETAILED profiling verbosity so the engine
inspector can prove where each pin ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trt_tui.core import jsonio
from trt_tui.core.build.phases import PhaseTracker
from trt_tui.core.build.pincheck import onnx_nodes_of, pin_check
from trt_tui.core.build.trt_settings import TrtSettings
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.fileio import atomic_write

ENGINE_NAME = "engine.plan"
INSPECTOR_NAME = "layers.json"
TIMING_CACHE_NAME = "timing.cache"


def import_tensorrt():
    try:
        import tensorrt as trt  # noqa: PLC0415 - lazily: only the worker child ever loads TensorRT
    except ImportError as exc:
        raise MissingBackendError(
            f"the TensorRT Python package is not installed (pip install 'trt-tui[trt]'): {exc}"
        ) from None
    return trt


def layers_to_pin(layers: list[Any], pinned: set[str]) -> list[Any]:
    """Network layers made from pinned ONNX nodes, found through their `[ONNX Layer: name]` metadata
    (the parser also makes extra layers `<name>_<N>` for one node; metadata catches those too)."""
    chosen = []
    for layer in layers:
        nodes = onnx_nodes_of({"Metadata": getattr(layer, "metadata", "") or "", "Name": layer.name})
        if (set(nodes) & pinned) or (not nodes and layer.name in pinned):
            chosen.append(layer)
    return chosen


def run(request: BuildRequest, build_dir: Path, emit: Callable[[str, float | None], None],
        cancelled: Callable[[], bool]) -> BuildResult:
    trt = import_tensorrt()
    settings = TrtSettings.from_request(request)
    major = int(trt.__version__.split(".")[0])
    if settings.trt_major and settings.trt_major != major:
        raise UserError(f"the preset targets TensorRT {settings.trt_major}.x but TensorRT {trt.__version__} "
                        "is installed; re-export the preset for this version", request.preset_path)
    result = BuildResult(state=JobState.FAILED, backend="tensorrt", trt_version=trt.__version__)

    logger = _StdoutLogger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode since 10.0
    parser = trt.OnnxParser(network, logger)
    onnx_path = _network_source(request, settings, major, build_dir, emit)
    emit("parsing", 0.02)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        result.message = f"TensorRT could not parse {onnx_path.name}: {errors or 'no detail'}"
        return result

    config = builder.create_builder_config()
    # The monitor's 0..1 is the building part of the whole run: map it into 5%..95%.
    tracker = PhaseTracker(lambda phase, f: emit(phase, None if f is None else 0.05 + 0.9 * f), cancelled=cancelled)
    monitor = _make_monitor(trt, tracker)
    config.progress_monitor = monitor  # must outlive the build: `monitor` stays referenced below
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if settings.optimization_level is not None:
        config.builder_optimization_level = settings.optimization_level
    if not settings.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    for pool, mib in settings.memory_pools_mib.items():
        config.set_memory_pool_limit(getattr(trt.MemoryPoolType, pool.upper()), int(mib) << 20)
    if major < 11:
        _weak_typing(trt, config, network, settings)
    _io_formats(trt, network, settings, major)
    _profiles(builder, config, settings)
    cache = _load_timing_cache(config, settings)

    emit("building", 0.05)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        result.message = "cancelled during the TensorRT build" if cancelled() else "TensorRT failed to build the engine (see the log)"
        result.state = JobState.CANCELLED if cancelled() else JobState.FAILED
        return result
    atomic_write(build_dir / ENGINE_NAME, bytes(serialized), overwrite=True)
    result.engine_built, result.engine_path = True, ENGINE_NAME
    result.artifacts["engine"] = ENGINE_NAME
    result.engine_size_mib = round(len(bytes(serialized)) / 2**20, 3)
    if cache is not None:
        atomic_write(build_dir / TIMING_CACHE_NAME, bytes(config.get_timing_cache().serialize()), overwrite=True)
        result.artifacts["timing_cache"] = TIMING_CACHE_NAME
        if settings.timing_cache:
            atomic_write(settings.timing_cache, bytes(config.get_timing_cache().serialize()), overwrite=True)

    emit("inspecting", 0.98)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(serialized)
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    atomic_write(build_dir / INSPECTOR_NAME, jsonio.dumps(info, indent=1), overwrite=True)
    result.artifacts["layer_info"] = INSPECTOR_NAME
    if settings.pinned_nodes:
        result.pin_check = pin_check(info, settings.pinned_nodes)
        if result.pin_check["mismatches"]:
            result.notes.append(f"{len(result.pin_check['mismatches'])} FP32 pin(s) did not run in FP32")
    result.state = JobState.SUCCEEDED
    result.message = f"engine built ({result.engine_size_mib} MiB) with TensorRT {trt.__version__}"
    emit("done", 1.0)
    del monitor
    return result


def _network_source(request: BuildRequest, settings: TrtSettings, major: int, build_dir: Path,
                    emit: Callable[[str, float | None], None]) -> Path:
    """10.x parses the original model; 11.x parses the mixed-precision ONNX (precision lives in the graph)."""
    if major < 11 or settings.precision == "fp32":
        return Path(request.model_path)
    from trt_tui.core.build.onnx_outputs import write_mixed_model

    emit("writing the mixed-precision ONNX", 0.01)
    return write_mixed_model(request, settings, build_dir)


def _weak_typing(trt, config, network, settings: TrtSettings) -> None:
    """10.x: the seeds' flags, as trtexec's --fp16 --precisionConstraints --layerPrecisions
    --layerOutputTypes would set them."""
    if settings.precision == "fp32":
        return
    config.set_flag(trt.BuilderFlag.FP16 if settings.precision == "fp16" else trt.BuilderFlag.BF16)
    if settings.precision_constraints == "obey":
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    elif settings.precision_constraints == "prefer":
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    floats = (trt.float32, trt.float16, trt.bfloat16)
    low = trt.float16 if settings.precision == "fp16" else trt.bfloat16
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    pinned = layers_to_pin(layers, set(settings.pinned_nodes))
    pinned_ids = {id(layer) for layer in pinned}
    if settings.force_low_precision:  # `*:fp16`: every float layer that is not pinned
        for layer in layers:
            outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
            if id(layer) not in pinned_ids and outputs and all(t.dtype in floats for t in outputs):
                layer.precision = low
    for layer in pinned:
        layer.precision = trt.float32
        if settings.pin_output_types:
            for i in range(layer.num_outputs):
                if layer.get_output(i).dtype in floats:
                    layer.set_output_type(i, trt.float32)


def _io_formats(trt, network, settings: TrtSettings, major: int) -> None:
    if not settings.linear_io:
        return
    linear = 1 << int(trt.TensorFormat.LINEAR)
    dtypes = {"fp32": trt.float32, "fp16": trt.float16, "bf16": getattr(trt, "bfloat16", None),
              "int32": trt.int32, "int64": getattr(trt, "int64", None), "bool": trt.bool}
    tensors = [network.get_input(i) for i in range(network.num_inputs)] + [
        network.get_output(i) for i in range(network.num_outputs)]
    for tensor in tensors:
        tensor.allowed_formats = linear
        wanted = settings.io_dtypes.get(tensor.name)
        if major < 11 and wanted and dtypes.get(wanted) is not None:  # 11.x: the dtype comes from the graph
            tensor.dtype = dtypes[wanted]


def _profiles(builder, config, settings: TrtSettings) -> None:
    for profile_spec in settings.profiles:
        profile = builder.create_optimization_profile()
        for name, shapes in profile_spec.items():
            profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
        config.add_optimization_profile(profile)


def _load_timing_cache(config, settings: TrtSettings):
    data = b""
    if settings.timing_cache and Path(settings.timing_cache).is_file():
        data = Path(settings.timing_cache).read_bytes()
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _make_monitor(trt, tracker: PhaseTracker):
    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            tracker.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            return tracker.step_complete(phase_name, step)

        def phase_finish(self, phase_name):
            tracker.phase_finish(phase_name)

    return _Monitor()


def _StdoutLogger(trt):  # noqa: N802 - a factory standing in for a class that needs `trt` at runtime
    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if severity == trt.ILogger.VERBOSE:
                return  # tens of thousands of tactic lines; INFO and above tell the story
            tag = {trt.ILogger.ERROR: "E", trt.ILogger.WARNING: "W", trt.ILogger.INFO: "I",
                   trt.ILogger.INTERNAL_ERROR: "F"}.get(severity, "V")
            print(f"[{tag}] [TRT] {msg}", flush=True)

    return Logger()

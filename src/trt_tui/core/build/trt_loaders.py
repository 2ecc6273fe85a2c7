"""THE TensorRT builder: an EngineSpec as a chain of Polygraphy's lazy loaders. The build worker (trt_build.py)
and the comparison's `trt` candidate both call `engine_loaders`, so the engine a comparison measures is built
exactly as the engine `build` ships (same pins, IO formats, config, timing cache).

    NetworkFromOnnxPath(onnx, strongly_typed=...)           the original model (10.x) or the mixed ONNX (11.x)
      [-> PostprocessNetwork(layer precisions)]             10.x: `*:fp16` default, FP32 pins, pinned output types;
                                                            pins found through the parser's `[ONNX Layer: node]`
                                                            layer metadata (a node may make several layers)
      [-> PostprocessNetwork(IO formats)]                   linear layout for every binding; 10.x IO dtypes
      [-> ModifyNetworkOutputs(MARK_ALL)]                   the comparison's layer-wise mode only
    CreateConfig(tf32=..., fp16/bf16=..., precision_constraints=..., profiles=[...], builder_optimization_level=...,
                 memory_pool_limits=..., load_timing_cache=..., progress_monitor=..., profiling_verbosity=DETAILED)
    EngineBytesFromNetwork(network, config, save_timing_cache=...)   the cache is merged and written back

Polygraphy's CreateConfig turns TF32 OFF unless `tf32=True` (trtexec leaves it on): it is always passed.
`tensorrt` is the caller's module (imported lazily, in a child process): nothing here imports it.

NOT RUN against a real TensorRT (none is installable where this was written): the chain runs end to end
on the stand-in module tests/fixtures/fake_tensorrt.py, through Polygraphy's real loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trt_tui.core.build.pincheck import onnx_nodes_of
from trt_tui.core.engine_spec import EngineSpec

_TRT_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int32": "int32", "int64": "int64",
               "int8": "int8", "bool": "bool", "uint8": "uint8"}  # fmt: skip


def layers_to_pin(layers: list[Any], pinned: set[str]) -> list[Any]:
    """Network layers made from pinned ONNX nodes, found through their `[ONNX Layer: name]` metadata
    (the parser also makes extra layers `<name>_<N>` for one node; metadata catches those too)."""
    chosen = []
    for layer in layers:
        nodes = onnx_nodes_of({"Metadata": getattr(layer, "metadata", "") or "", "Name": layer.name})
        if (set(nodes) & pinned) or (not nodes and layer.name in pinned):
            chosen.append(layer)
    return chosen


def _float_types(trt) -> tuple:
    return tuple(t for t in (trt.float32, trt.float16, getattr(trt, "bfloat16", None)) if t is not None)


def apply_layer_precisions(trt, network, spec: EngineSpec):
    """10.x weak typing, as trtexec's --layerPrecisions / --layerOutputTypes entries of the spec would set it."""
    entries = dict(spec.layer_precisions)
    default = entries.pop("*", None)
    floats = _float_types(trt)
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    pinned = layers_to_pin(layers, {n for n, p in entries.items() if p == "fp32"})
    pinned_ids = {id(layer) for layer in pinned}
    if default:
        low = getattr(trt, _TRT_DTYPES[default])
        for layer in layers:
            outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
            if id(layer) not in pinned_ids and outputs and all(t.dtype in floats for t in outputs):
                layer.precision = low
    typed = {n for n, _ in spec.layer_output_types}
    for layer in pinned:
        layer.precision = trt.float32
        if typed:
            for i in range(layer.num_outputs):
                if layer.get_output(i).dtype in floats:
                    layer.set_output_type(i, trt.float32)
    return network


def apply_io_formats(trt, network, spec: EngineSpec):
    """Linear layout for every binding (the seeds' `type:chw`); the IO dtype too on 10.x (11.x: the graph's)."""
    linear = 1 << int(trt.TensorFormat.LINEAR)
    dtypes = spec.io_dtypes
    tensors = [network.get_input(i) for i in range(network.num_inputs)] + [
        network.get_output(i) for i in range(network.num_outputs)]
    for tensor in tensors:
        tensor.allowed_formats = linear
        wanted = getattr(trt, _TRT_DTYPES.get(dtypes.get(tensor.name, ""), ""), None)
        if wanted is not None:
            tensor.dtype = wanted
    return network


def config_kwargs(spec: EngineSpec) -> dict[str, Any]:
    """CreateConfig's arguments in plain values (profiles as {input: (min, opt, max)}, pools in bytes by name)."""
    kwargs: dict[str, Any] = {"tf32": spec.tf32}  # explicit: Polygraphy's default is OFF, trtexec's is ON
    if spec.precision_flag:
        kwargs[spec.precision_flag] = True
    if spec.constraints:
        kwargs["precision_constraints"] = spec.constraints
    if spec.profiles:
        kwargs["profiles"] = [dict(p) for p in spec.profiles]
    if spec.optimization_level is not None:
        kwargs["builder_optimization_level"] = spec.optimization_level
    if spec.memory_pools_mib:
        kwargs["memory_pool_limits"] = {pool: int(mib) << 20 for pool, mib in spec.memory_pools_mib.items()}
    if spec.timing_cache:
        kwargs["load_timing_cache"] = spec.timing_cache
    return kwargs


def engine_loaders(spec: EngineSpec, onnx_path: str | Path, trt, *, progress_monitor=None) -> tuple[Any, Any]:
    """(network loader, CreateConfig) for `spec`, parsing `onnx_path` (the model, or 11.x's mixed ONNX).

    Nothing runs here: the loaders parse and configure when called (EngineBytesFromNetwork calls them).
    """
    from polygraphy import constants
    from polygraphy.backend.trt import CreateConfig, ModifyNetworkOutputs, NetworkFromOnnxPath, PostprocessNetwork, Profile

    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=spec.network_strongly_typed)
    if spec.layer_precisions:
        network = PostprocessNetwork(network, lambda network: apply_layer_precisions(trt, network, spec),
                                     name="trt_tui layer precisions")  # fmt: skip
    if spec.linear_io:
        network = PostprocessNetwork(network, lambda network: apply_io_formats(trt, network, spec),
                                     name="trt_tui IO formats")  # fmt: skip
    if spec.mark_all_outputs:
        network = ModifyNetworkOutputs(network, outputs=constants.MARK_ALL)
    kwargs = config_kwargs(spec)
    if "profiles" in kwargs:
        profiles = []
        for shapes in kwargs["profiles"]:
            profile = Profile()
            for name, (lo, opt, hi) in shapes.items():
                profile.add(name, min=list(lo), opt=list(opt), max=list(hi))
            profiles.append(profile)
        kwargs["profiles"] = profiles
    if "memory_pool_limits" in kwargs:
        kwargs["memory_pool_limits"] = {_pool(trt, p): b for p, b in kwargs["memory_pool_limits"].items()}
    if progress_monitor is not None:
        kwargs["progress_monitor"] = progress_monitor
    verbosity = {"detailed": "DETAILED", "layer_names_only": "LAYER_NAMES_ONLY", "none": "NONE"}[spec.profiling_verbosity]
    kwargs["profiling_verbosity"] = getattr(trt.ProfilingVerbosity, verbosity)
    return network, CreateConfig(**kwargs)


def engine_bytes_loader(spec: EngineSpec, onnx_path: str | Path, trt, *, progress_monitor=None,
                        save_timing_cache: str | Path | None = None):
    """THE build: EngineBytesFromNetwork over `engine_loaders`; the timing cache (the spec's, else
    `save_timing_cache`) is merged and written back after the build. Calling it builds the engine."""
    from polygraphy.backend.trt import EngineBytesFromNetwork

    network, config = engine_loaders(spec, onnx_path, trt, progress_monitor=progress_monitor)
    cache = spec.timing_cache or (str(save_timing_cache) if save_timing_cache else None)
    return EngineBytesFromNetwork(network, config=config, save_timing_cache=cache)


# preset pool names (trtexec's --memPoolSize names) -> trt.MemoryPoolType members
_POOLS = {"workspace": "WORKSPACE", "dlaSRAM": "DLA_MANAGED_SRAM", "dlaLocalDRAM": "DLA_LOCAL_DRAM",
          "dlaGlobalDRAM": "DLA_GLOBAL_DRAM", "tacticSharedMem": "TACTIC_SHARED_MEMORY"}


def _pool(trt, name: str):
    return getattr(trt.MemoryPoolType, _POOLS.get(name, name.upper()))


def make_progress_monitor(trt, tracker):
    """A trt.IProgressMonitor forwarding to a PhaseTracker (which answers False to cancel the build)."""

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

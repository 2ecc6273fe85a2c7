"""A TensorRT engine built from a preset, as a comparison candidate, composed from Polygraphy's lazy loaders.

    plan = plan_trt_candidate(resolved, outputs_only=False)    # pure: what will be built, no TensorRT needed
    runner = trt_preset_runner(resolved, outputs_only=False)   # Polygraphy TrtRunner; needs TensorRT

The composition (nothing runs until the runner is activated, which parses and builds the engine):

    NetworkFromOnnxPath(onnx, strongly_typed=...)
      [-> ModifyNetworkOutputs(outputs=MARK_ALL)]            layer-wise mode only (see MARKED_ENGINE_WARNING)
      [-> PostprocessNetwork(low-precision default)]          10.x, `*:fp16` / `*:bf16` (force_low_precision)
      [-> SetLayerPrecisions({pin: float32})]                 10.x pins, exact layer names (as --layerPrecisions)
      [-> PostprocessNetwork(pin output types)]               10.x, as --layerOutputTypes: Polygraphy has no
                                                              loader for layer output types (SetTensorDatatypes
                                                              only touches network I/O), so a small function does it
    EngineFromNetwork(network, CreateConfig(tf32=..., fp16/bf16=..., precision_constraints=..., profiles=[...],
                      builder_optimization_level=..., load_timing_cache=..., memory_pool_limits=...))
    TrtRunner(engine)

TensorRT 10.x (weakly typed): the original model, precision flags, constraints and per-layer pins, as the
trtexec / polygraphy exports of the same preset. TensorRT 11.x (strongly typed; fp16/bf16/precision
constraints are gone and Polygraphy's CreateConfig fails on them): the mixed-precision ONNX written by
`trt_tui.core.precision.to_mixed_precision` (Casts around the FP32 pins, original tensor names kept), parsed
strongly typed, with none of those options.

TF32: Polygraphy's CreateConfig turns TF32 OFF unless `tf32=True`, while trtexec leaves it on; the preset's
`tf32` (False only for noTF32 presets) is passed explicitly so the engine matches the trtexec build.

Not exercised against a real TensorRT here (none is installable on these machines): the composition is
checked against a stand-in `tensorrt` module in the tests; the plan (`plan_trt_candidate`) needs no TensorRT.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_tui.core.errors import UserError
from trt_tui.core.preset.resolved import ResolvedPreset

MARKED_ENGINE_WARNING = (
    "layer-wise TensorRT comparison marks every tensor as an engine output, which blocks layer fusions and can "
    "force FP32 where the shipped engine runs fp16/bf16: the marked engine is not the engine you ship. "
    "Use --outputs-only to compare only the model's final outputs on the unmarked engine."
)
# the same, short enough for a status line
MARKED_ENGINE_SHORT = "marked engine ≠ shipped engine (outputs block fusions, may force FP32); outputs-only compares the unmarked one"

_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass
class TrtPresetPlan:
    """What the candidate engine is built from and with, in plain values (JSON-able; no TensorRT objects)."""

    preset: str  # the preset's name
    trt_major: int
    precision: str  # fp32 | fp16 | bf16
    onnx_path: Path | None  # what NetworkFromOnnxPath parses; None = the mixed-precision ONNX, written at build time
    strongly_typed: bool
    mark_all: bool  # layer-wise: every tensor marked as an output (ModifyNetworkOutputs MARK_ALL)
    low_precision_default: str | None  # 10.x `*:fp16`: every unpinned float layer asked to run in this type
    layer_precisions: dict[str, str]  # 10.x pins: exact layer name -> "float32" (SetLayerPrecisions)
    pin_output_types: bool  # 10.x: the pins' float outputs typed FP32 as well
    config: dict[str, Any]  # CreateConfig keyword arguments (profiles as {input: [min, opt, max]} dicts)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        mode = "layer-wise" if self.mark_all else "outputs only"
        pins = f" +{len(self.layer_precisions)} pinned" if self.layer_precisions else ""
        return f"trt{self.trt_major} {self.precision}{pins} ({self.preset}, {mode})"

    def to_json(self) -> dict:
        return {
            "preset": self.preset, "trt": self.trt_major, "precision": self.precision,
            "onnx": str(self.onnx_path) if self.onnx_path else "mixed-precision ONNX (to_mixed_precision)",
            "strongly_typed": self.strongly_typed, "mark_all": self.mark_all,
            "low_precision_default": self.low_precision_default, "layer_precisions": dict(self.layer_precisions),
            "pin_output_types": self.pin_output_types, "config": self.config, "warnings": list(self.warnings),
        }  # fmt: skip


def plan_trt_candidate(r: ResolvedPreset, *, outputs_only: bool = False) -> TrtPresetPlan:
    """The loaders and CreateConfig arguments for preset `r`, decided without TensorRT."""
    ten = r.trt_major < 11
    low = r.precision if r.low_precision else None
    config: dict[str, Any] = {"tf32": bool(r.tf32)}  # explicit: Polygraphy's default is OFF, trtexec's is ON
    if ten and low:
        config[low] = True
        if r.precision_constraints in ("obey", "prefer"):
            config["precision_constraints"] = r.precision_constraints
    if r.profiles:
        config["profiles"] = [{name: [list(s) for s in triple] for name, triple in prof.items()} for prof in r.profiles]
    if r.optimization_level is not None:
        config["builder_optimization_level"] = r.optimization_level
    if r.timing_cache is not None:
        config["load_timing_cache"] = str(r.timing_cache)  # read only: a comparison never rewrites the shared cache
    if r.memory_pools:
        config["memory_pool_limits"] = {pool: int(mib) << 20 for pool, mib in r.memory_pools.items()}  # bytes
    warnings = [] if outputs_only else [MARKED_ENGINE_WARNING]
    io = getattr(r.preset, "io", None)
    if io is not None and (io.inputs or io.outputs):  # `auto` formats are the ONNX types: nothing lost
        warnings.append("the preset's explicit IO formats are not applied to the comparison engine: its bindings "
                        "keep the ONNX types and linear layout, so both sides exchange the same tensors")  # fmt: skip
    return TrtPresetPlan(
        preset=r.name, trt_major=r.trt_major, precision=r.precision,
        onnx_path=r.model_path if ten or not low else None,
        strongly_typed=True if not ten else bool(r.strongly_typed),
        mark_all=not outputs_only,
        low_precision_default=low if ten and low and r.force_low_precision else None,
        layer_precisions={n: "float32" for n in r.pinned_nodes} if ten and low else {},
        pin_output_types=bool(ten and low and r.pinned_nodes and r.pin_output_types),
        config=config, warnings=warnings,
    )  # fmt: skip


def resolve_candidate_preset(preset: Any, index=None) -> ResolvedPreset:
    """A ResolvedPreset from a ResolvedPreset, a Preset object (e.g. unsaved edits in the TUI) or a preset file."""
    from trt_tui.core.preset import load_preset, resolve_preset

    if isinstance(preset, ResolvedPreset):
        return preset
    if isinstance(preset, (str, Path)):
        preset = load_preset(preset)
    return resolve_preset(preset, index)


class _Workdir:
    """A private temporary folder for the mixed-precision ONNX, removed when the runner is garbage collected
    (TemporaryDirectory has its own finalizer) or explicitly through `cleanup()`."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="trt_tui_cand_")
        self.path = Path(self._tmp.name)

    def cleanup(self) -> None:
        self._tmp.cleanup()


def compose_trt_loaders(plan: TrtPresetPlan, onnx_path: Path, trt) -> tuple[Any, Any]:
    """(network loader, CreateConfig) for `plan`, through Polygraphy's lazy loaders; `trt` is the tensorrt module.

    Nothing is parsed or built here: the loaders run when the TrtRunner is activated.
    """
    from polygraphy import constants
    from polygraphy.backend.trt import (
        CreateConfig,
        ModifyNetworkOutputs,
        NetworkFromOnnxPath,
        PostprocessNetwork,
        Profile,
        SetLayerPrecisions,
    )

    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=plan.strongly_typed)
    if plan.mark_all:
        network = ModifyNetworkOutputs(network, outputs=constants.MARK_ALL)
    pinned = set(plan.layer_precisions)
    if plan.low_precision_default:
        low = getattr(trt, _DTYPES[plan.low_precision_default])
        network = PostprocessNetwork(network, lambda network: force_low_precision(trt, network, low, pinned),
                                     name="trt_tui low-precision default")  # fmt: skip
    if plan.layer_precisions:
        network = SetLayerPrecisions(network, {n: getattr(trt, dt) for n, dt in plan.layer_precisions.items()})
    if plan.pin_output_types:
        network = PostprocessNetwork(network, lambda network: pin_output_types(trt, network, pinned),
                                     name="trt_tui pin output types")  # fmt: skip
    kwargs = dict(plan.config)
    if "profiles" in kwargs:
        profiles = []
        for spec in kwargs["profiles"]:
            profile = Profile()
            for name, (lo, opt, hi) in spec.items():
                profile.add(name, min=lo, opt=opt, max=hi)
            profiles.append(profile)
        kwargs["profiles"] = profiles
    if "memory_pool_limits" in kwargs:
        kwargs["memory_pool_limits"] = {getattr(trt.MemoryPoolType, p.upper()): b for p, b in kwargs["memory_pool_limits"].items()}
    return network, CreateConfig(**kwargs)


def _float_types(trt) -> tuple:
    return tuple(t for t in (trt.float32, trt.float16, getattr(trt, "bfloat16", None)) if t is not None)


def force_low_precision(trt, network, low, pinned: set[str]):
    """10.x `--layerPrecisions=*:fp16`: every layer with only float outputs, other than the pins, runs in `low`."""
    floats = _float_types(trt)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(k) for k in range(layer.num_outputs)]
        if layer.name not in pinned and outputs and all(t.dtype in floats for t in outputs):
            layer.precision = low
    return network


def pin_output_types(trt, network, pinned: set[str]):
    """10.x `--layerOutputTypes=<pin>:fp32`: the float outputs of the pinned layers are typed FP32."""
    floats = _float_types(trt)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.name in pinned:
            for k in range(layer.num_outputs):
                if layer.get_output(k).dtype in floats:
                    layer.set_output_type(k, trt.float32)
    return network


def trt_preset_runner(preset: Any, *, outputs_only: bool = False, index=None, name: str = "candidate"):
    """Polygraphy's TrtRunner over an engine built from `preset` (not activated: activation builds it).

    Returns (runner, plan). Needs TensorRT, of the major version the preset targets.
    """
    from trt_tui.core.parity.runners import require_tensorrt

    require_tensorrt("building a candidate engine from a preset")
    import tensorrt as trt

    r = resolve_candidate_preset(preset, index)
    installed = int(str(trt.__version__).split(".")[0])
    if installed != r.trt_major:
        raise UserError(f"the preset targets TensorRT {r.trt_major}.x but TensorRT {trt.__version__} is installed; "
                        "set `trt` in the preset to the installed major version", r.source_path)  # fmt: skip
    plan = plan_trt_candidate(r, outputs_only=outputs_only)
    workdir = None
    onnx_path = plan.onnx_path
    if onnx_path is None:  # 11.x low precision: the precision lives in the graph
        from trt_tui.core.precision import save_model, to_mixed_precision

        workdir = _Workdir()
        mixed = to_mixed_precision(r.model_path, r.precision, list(r.pinned_nodes), keep_io_types=r.keep_io_types)
        onnx_path = save_model(mixed.model, workdir.path / "model.mixed.onnx", overwrite=True)
    from polygraphy.backend.trt import EngineFromNetwork, TrtRunner

    network, config = compose_trt_loaders(plan, onnx_path, trt)
    runner = TrtRunner(EngineFromNetwork(network, config=config), name=name)
    runner.trt_tui_workdir = workdir  # keeps the mixed ONNX alive as long as the runner (parsed at activation)
    runner.trt_tui_plan = plan
    return runner, plan

"""A TensorRT engine built from a preset, as a comparison candidate: the preset's EngineSpec built by THE
builder (trt_tui.core.build.trt_loaders, the chain the build worker uses), layer-wise or outputs only.

    plan = plan_trt_candidate(resolved, outputs_only=False)    # pure: what will be built, no TensorRT needed
    runner = trt_preset_runner(resolved, outputs_only=False)   # Polygraphy TrtRunner; needs TensorRT

Layer-wise, the spec marks every tensor as an engine output (ModifyNetworkOutputs MARK_ALL), which blocks
fusions: the marked engine is not the shipped one (MARKED_ENGINE_WARNING). Everything else (pins through
the layer metadata, IO formats, config, timing cache) is the build's.

Not exercised against a real TensorRT here (none is installable on these machines): the composition runs
through Polygraphy's loaders on a stand-in `tensorrt` module in the tests; the plan needs no TensorRT.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.preset.resolved import ResolvedPreset

MARKED_ENGINE_WARNING = (
    "layer-wise TensorRT comparison marks every tensor as an engine output, which blocks layer fusions and can "
    "force FP32 where the shipped engine runs fp16/bf16: the marked engine is not the engine you ship. "
    "Use --outputs-only to compare only the model's final outputs on the unmarked engine."
)
# the same, short enough for a status line
MARKED_ENGINE_SHORT = "marked engine ≠ shipped engine (outputs block fusions, may force FP32); outputs-only compares the unmarked one"

@dataclass
class TrtPresetPlan:
    """What the candidate engine is built from and with: the preset's EngineSpec (layer-wise: every tensor
    marked) plus what the comparison should say about it. Plain values; no TensorRT objects."""

    spec: EngineSpec
    warnings: list[str] = field(default_factory=list)

    preset = property(lambda self: self.spec.name)
    trt_major = property(lambda self: self.spec.trt_major)
    precision = property(lambda self: self.spec.precision)
    mark_all = property(lambda self: self.spec.mark_all_outputs)
    strongly_typed = property(lambda self: self.spec.network_strongly_typed)

    @property
    def onnx_path(self) -> Path | None:
        """What NetworkFromOnnxPath parses; None = the mixed-precision ONNX, written at build time."""
        return None if self.spec.builds_from_mixed_onnx else Path(self.spec.model_path)

    @property
    def label(self) -> str:
        mode = "layer-wise" if self.mark_all else "outputs only"
        pins = f" +{len(self.spec.pinned_nodes)} pinned" if self.spec.pinned_nodes and self.spec.low_precision else ""
        return f"trt{self.trt_major} {self.precision}{pins} ({self.preset}, {mode})"

    def to_json(self) -> dict:
        from trt_tui.core.build.trt_loaders import config_kwargs

        config = config_kwargs(self.spec)
        if "profiles" in config:
            config["profiles"] = [{n: [list(s) for s in t] for n, t in p.items()} for p in config["profiles"]]
        return {
            "preset": self.preset, "trt": self.trt_major, "precision": self.precision,
            "onnx": str(self.onnx_path) if self.onnx_path else "mixed-precision ONNX (to_mixed_precision)",
            "strongly_typed": self.strongly_typed, "mark_all": self.mark_all,
            "layer_precisions": dict(self.spec.layer_precisions), "layer_output_types": dict(self.spec.layer_output_types),
            "config": config, "warnings": list(self.warnings),
        }  # fmt: skip


def plan_trt_candidate(r: ResolvedPreset, *, outputs_only: bool = False) -> TrtPresetPlan:
    """The EngineSpec of preset `r` for a comparison (layer-wise unless `outputs_only`), decided without TensorRT."""
    spec = EngineSpec.from_resolved(r, mark_all_outputs=not outputs_only)
    return TrtPresetPlan(spec, [] if outputs_only else [MARKED_ENGINE_WARNING])


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


def trt_preset_runner(preset: Any, *, outputs_only: bool = False, index=None, name: str = "candidate"):
    """Polygraphy's TrtRunner over an engine built from `preset` (not activated: activation builds it).

    Returns (runner, plan). Needs TensorRT, of the major version the preset targets.
    """
    from trt_tui.core.build.trt_build import check_version
    from trt_tui.core.parity.runners import require_tensorrt

    require_tensorrt("building a candidate engine from a preset")
    import tensorrt as trt

    r = resolve_candidate_preset(preset, index)
    plan = plan_trt_candidate(r, outputs_only=outputs_only)
    check_version(plan.spec, trt, r.source_path)
    workdir = None
    onnx_path = plan.onnx_path
    if onnx_path is None:  # 11.x low precision: the precision lives in the graph
        from trt_tui.core.build.onnx_outputs import write_mixed_model

        workdir = _Workdir()
        onnx_path = write_mixed_model(plan.spec, workdir.path)
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    from trt_tui.core.build.trt_loaders import engine_bytes_loader

    runner = TrtRunner(EngineFromBytes(engine_bytes_loader(plan.spec, onnx_path, trt)), name=name)
    runner.trt_tui_workdir = workdir  # keeps the mixed ONNX alive as long as the runner (parsed at activation)
    runner.trt_tui_plan = plan
    return runner, plan

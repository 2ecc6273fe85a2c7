"""A TensorRT engine built from a preset, as a comparison candidate: a BUILD JOB of the preset's EngineSpec
(the job manager's worker child runs THE builder, trt_tui.core.build.trt_loaders, as `trt-tui build` does:
same pins, IO formats, config, timing cache), then the comparison runs `engine:PATH`.

    plan = plan_trt_candidate(resolved, outputs_only=False)          # pure: what will be built, no TensorRT
    built = build_candidate_engine(manager, preset, cancel=event)    # a job: progress, cancel, history, artifacts
    built = trt_preset_runner(preset)     # CLI: the job, then CandidateRunner(TrtRunner in-process, plan)

Layer-wise, the spec marks every tensor as an engine output (ModifyNetworkOutputs MARK_ALL), which blocks
fusions: the marked engine is not the shipped one (MARKED_ENGINE_WARNING). The TUI never loads TensorRT: it
builds through its job manager and compares in a child process (trt_tui.core.parity.isolated).

Not exercised against a real TensorRT here (none is installable on these machines): the build runs through
Polygraphy's loaders on a stand-in `tensorrt` module in the tests; the plan needs no TensorRT.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError
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


@dataclass
class CandidateEngine:
    """An engine built for a comparison by a build job: a child process with progress, cancel, history and
    artifacts like any `trt-tui build`, listed in the Builds screen and `trt-tui builds`."""

    path: str
    plan: TrtPresetPlan
    job_id: str


def candidate_build_request(preset: Any, *, outputs_only: bool, backends: dict) -> tuple[Any, TrtPresetPlan]:
    """The build request for the candidate engine of `preset` (a file, a Preset with unsaved edits, or a
    ResolvedPreset): the preset's own EngineSpec, with every tensor marked unless `outputs_only`."""
    import copy
    import dataclasses

    from trt_tui.core.build.request import request_from_edited_preset, request_from_preset

    if isinstance(preset, ResolvedPreset):
        preset = preset.preset
    if isinstance(preset, (str, Path)):
        request = request_from_preset(preset, "tensorrt", backends)
    else:
        request = request_from_edited_preset(copy.deepcopy(preset), "tensorrt", backends)
    spec = dataclasses.replace(EngineSpec.from_json(request.settings), mark_all_outputs=not outputs_only)
    plan = TrtPresetPlan(spec, [] if outputs_only else [MARKED_ENGINE_WARNING])
    mode = "outputs only" if outputs_only else "layer-wise, every tensor marked"
    request = dataclasses.replace(request, settings=spec.to_json(), label=f"{request.label} · for compare ({mode})")
    return request, plan


def build_candidate_engine(manager, preset: Any, *, outputs_only: bool = False,
                           on_progress: Callable[[str, float | None], None] | None = None,
                           cancel: threading.Event | None = None, poll_s: float = 0.25) -> CandidateEngine:  # fmt: skip
    """Submit the candidate's build to `manager` (a JobManager) and wait for it; `cancel` cancels the job.

    A build that does not succeed is a UserError naming the job (its log says why)."""
    from trt_tui.core.build.types import JobState

    request, plan = candidate_build_request(preset, outputs_only=outputs_only, backends=manager.backends)
    job = manager.submit(request)
    seen = None
    while not job.state.terminal:
        if cancel is not None and cancel.is_set():
            manager.cancel(job.id)
        job = manager.wait(job.id, poll_s)
        if on_progress is not None and (job.phase, job.progress) != seen:
            seen = (job.phase, job.progress)
            on_progress(job.phase or job.state.value, job.progress)
    result = job.result
    if job.state != JobState.SUCCEEDED or result is None or not result.engine_built or not result.engine_path:
        why = result.message if result is not None and result.message else job.state.value
        raise UserError(f"the candidate engine was not built ({job.state.value}: {why}); "
                        f"see `trt-tui builds show {job.id}`")  # fmt: skip
    return CandidateEngine(path=result.engine_path, plan=plan, job_id=job.id)


@dataclass
class CandidateRunner:
    """The runner over an engine built for a comparison, with the plan it was built from (the plan says the
    label, the precision and the warnings the comparison shows)."""

    runner: Any  # Polygraphy TrtRunner, not activated (a test double: any runner)
    plan: TrtPresetPlan


def trt_preset_runner(preset: Any, *, outputs_only: bool = False, index=None, name: str = "candidate",
                      manager=None, on_progress: Callable[[str, float | None], None] | None = None) -> CandidateRunner:  # fmt: skip
    """A CandidateRunner: Polygraphy's TrtRunner (not activated) over the engine a build job built from
    `preset`, and its plan.

    The build runs in the job manager's child process (`manager`, else one on the default state dir, so
    the build is in the history); the runner loads the engine in THIS process: a front that must never load
    TensorRT (the TUI) compares in a child process instead (trt_tui.core.parity.isolated). `index` is unused
    (the build request resolves the preset itself) and kept for the callers' signature.
    """
    from trt_tui.core.parity.runners import require_tensorrt, trt_engine_runner

    require_tensorrt("building a candidate engine from a preset")  # before queueing a build that cannot run
    own = manager is None
    if own:
        from trt_tui.core.build.manager import JobManager
        from trt_tui.core.build.state import state_dir

        manager = JobManager(state_dir())
    try:
        built = build_candidate_engine(manager, preset, outputs_only=outputs_only, on_progress=on_progress)
    finally:
        if own:
            manager.close()
    return CandidateRunner(trt_engine_runner(built.path, name=name), built.plan)

"""The registry of candidate kinds: what a comparison's candidate side can be, behind one written protocol.

    kind = candidate_kind(spec.kind)           # CANDIDATES["emulate"], ... ; unknown names are a UserError
    setup = kind.setup(CandidateContext(...))  # CandidateSetup: the Side, its low precision, its summary

A kind says what it needs before anything is built (`needs_path`: NAME:PATH; `needs_model`: the FP32 model
with its weights; `seedable`: random ops can get the reference's seed on its side; `gpu`: both sides on the
CUDA EP; `saved`: outputs of an earlier run; `static_recurrent`: recurrent ops get the fed shapes) and builds its side (`setup`, for a comparison) or its bare runner (`runner`, for `make_runners` and
streaming). Every side follows `sides.Side`. Adding a candidate is one class and one entry
in CANDIDATES (and its name in runners.CANDIDATE_KINDS, which CandidateSpec checks; a test keeps both equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import onnx

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.determinism import seed_random_ops
from trt_tui.core.parity.inputs import load_saved_outputs
from trt_tui.core.parity import runners  # runners.trt_*: looked up on use (test doubles replace them there)
from trt_tui.core.parity.runners import CandidateSpec, candidate_model_and_weights
from trt_tui.core.parity.sides import OnnxSide, RunnerSide, SavedSide, Side
from trt_tui.core.precision.summary import LowPrecisionSummary, read_low_precision


@dataclass
class CandidateContext:
    """What a kind may use to build its side or its runner (built once by prepare_comparison / make_runners)."""

    spec: CandidateSpec
    index: GraphIndex | None  # the reference model, indexed (None: a bare runner, make_runners)
    model_path: Path | None  # None: the model came as a proto, without a folder for its external data
    model: onnx.ModelProto | None  # the FP32 model with weights (None unless the kind needs_model)
    providers: list[str]
    random: set[str] = field(default_factory=set)  # random nodes, seeded alike on both sides when seedable
    warnings: list[str] = field(default_factory=list)  # the kind appends what the user should know
    # streaming at scale: a segmentable kind's runner holds one segment's weights at a time (None: whole)
    segment_bytes: int | None = None
    model_weights: Any = None  # the DerivedWeights holding `model`'s placeholders (writing.by_reference); None: none

    @property
    def base_dir(self) -> Path | None:
        """The folder of the model's external data."""
        return self.model_path.parent if self.model_path is not None else None


@dataclass
class CandidateSetup:
    side: Side
    precision: str | None  # the low precision it computes in (headroom, default tolerance, no-op check); None: unknown
    low_precision: LowPrecisionSummary | None = None  # what a trt_tui rewrite really put in low precision


class CandidateKind(Protocol):
    """What every candidate kind is: its needs, and how its comparison side (`setup`) and its bare Polygraphy
    runner (`runner`: streaming and `make_runners` call `infer(feed)` on it; not activated) are built."""

    name: str
    needs_path: bool
    needs_model: bool
    seedable: bool
    gpu: bool
    saved: bool
    static_recurrent: bool
    segmentable: bool

    def setup(self, ctx: CandidateContext) -> CandidateSetup: ...

    def runner(self, ctx: CandidateContext, outputs: Sequence[str] | None = None, name: str = "candidate") -> Any: ...


@dataclass(frozen=True)
class _Kind:
    """The needs every kind declares (the registry below sets them per kind); subclasses add the building."""

    name: str
    gpu: bool = False
    needs_path: bool = True
    needs_model: bool = False
    seedable: bool = False
    saved: bool = False  # outputs computed earlier: compared on the inputs that made them, never random ones
    # a GRU/LSTM/RNN state is rounded at every step only over a static sequence length: the emulation gets
    # the shapes the comparison feeds (the reference runs the model as it is)
    static_recurrent: bool = False
    # its runner can run the model segment by segment with the same numbers (the emulation: every tensor is
    # rounded where it is made). Not the mixed ONNX: ORT's CPU fp16 fallback would round again at the cuts.
    segmentable: bool = False


class RewriteKind(_Kind):
    """emulate / mixed / cuda: a trt_tui rewrite of the FP32 model, run on ONNX Runtime (cuda: its CUDA EP)."""

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        model, weights = candidate_model_and_weights(ctx.model, ctx.spec, ctx.base_dir, ctx.model_weights)
        side = OnnxSide(model, ctx.spec.label, ctx.providers, weights)
        return CandidateSetup(side, ctx.spec.precision, read_low_precision(model))

    def runner(self, ctx: CandidateContext, outputs: Sequence[str] | None = None, name: str = "candidate") -> Any:
        model, weights = candidate_model_and_weights(ctx.model, ctx.spec, ctx.base_dir)
        if ctx.segment_bytes is not None and self.segmentable and outputs is None:
            from trt_tui.core.parity.segments import SegmentedRunner  # a model too big to hold whole

            return SegmentedRunner(model, weights, ctx.segment_bytes, ctx.providers, name=name)
        return runners.onnx_runner(model, outputs, providers=ctx.providers, name=name, weights=weights)


class OnnxFileKind(RewriteKind):
    """onnx:PATH: any ONNX model whose tensors keep the reference's names (e.g. `trt-tui convert` output)."""

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        model, weights = candidate_model_and_weights(None, ctx.spec, ctx.base_dir)
        if ctx.random:
            seed_random_ops(model, ctx.random)  # the same node names as the reference: the same seed
        summary = read_low_precision(model)  # a converted model says what it runs in low precision
        return CandidateSetup(OnnxSide(model, ctx.spec.label, ctx.providers, weights), summary.low if summary else None, summary)


class EngineKind(_Kind):
    """engine:PATH: a serialized TensorRT engine through Polygraphy's TrtRunner (needs TensorRT)."""

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        return CandidateSetup(RunnerSide(self.runner(ctx), ctx.spec.label), None)

    def runner(self, ctx: CandidateContext, outputs: Sequence[str] | None = None, name: str = "candidate") -> Any:
        return runners.trt_engine_runner(ctx.spec.path, name=name)  # an engine keeps the outputs it was built with


class TrtKind(_Kind):
    """trt[:PRESET]: an engine built from a preset by a build job, then run like engine:PATH."""

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        spec = ctx.spec
        model_path = spec.preset.model_path if spec.preset is not None else _preset_model(spec)  # Preset or ResolvedPreset
        same = _same_file(model_path, ctx.index.path)
        built = runners.trt_candidate_runner(spec, index=ctx.index if same else None, name="candidate")
        ctx.warnings.extend(built.plan.warnings)
        if not same:
            ctx.warnings.append(f"the preset builds from {built.plan.onnx_path or 'its own model'}, not from {ctx.index.path}")
        # a marked engine has tensors of its own (Casts of the mixed ONNX, unnamed layers): not worth listing
        side = RunnerSide(built.runner, built.plan.label, private_names=True)
        return CandidateSetup(side, built.plan.precision if built.plan.precision in ("fp16", "bf16") else None)

    def runner(self, ctx: CandidateContext, outputs: Sequence[str] | None = None, name: str = "candidate") -> Any:
        return runners.trt_candidate_runner(ctx.spec, name=name).runner


class SavedKind(_Kind):
    """outputs:PATH[#runner]: outputs saved by an earlier run (.npz or Polygraphy RunResults JSON)."""

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        return CandidateSetup(SavedSide(load_saved_outputs(ctx.spec.path)), None)

    def runner(self, ctx: CandidateContext, outputs: Sequence[str] | None = None, name: str = "candidate") -> Any:
        raise UserError("saved outputs are not a runner; compare them with trt_tui.core.parity.engine instead")


# a rewrite copies the seeded FP32 model's nodes (seedable); trt's preset is the command's --preset when absent
_REWRITE = {"needs_path": False, "needs_model": True, "seedable": True}
CANDIDATES: dict[str, CandidateKind] = {
    k.name: k
    for k in (RewriteKind("emulate", static_recurrent=True, segmentable=True, **_REWRITE), RewriteKind("mixed", **_REWRITE),
              RewriteKind("cuda", gpu=True, **_REWRITE), OnnxFileKind("onnx", seedable=True), EngineKind("engine"),
              TrtKind("trt", needs_path=False), SavedKind("outputs", saved=True))
}  # fmt: skip


def kind_providers(kind: CandidateKind, default: Sequence[str]) -> list[str]:
    """The execution providers a kind's candidate runs on: the CUDA EP for a gpu kind (one line, exit 2, when
    this ONNX Runtime has none), else `default`."""
    if not kind.gpu:
        return list(default)
    from trt_tui.core.parity.providers import GPU_PROVIDERS, require_cuda

    require_cuda(f"the {kind.name} candidate")
    return list(GPU_PROVIDERS)


def candidate_kind(name: str) -> CandidateKind:
    kind = CANDIDATES.get(name)
    if kind is None:
        raise UserError(f"unknown candidate {name!r}; choose {', '.join(CANDIDATES)}")
    return kind


def _preset_model(spec: CandidateSpec):
    """The model a preset file names (None when it cannot be read: resolving it later says why)."""
    try:
        from trt_tui.core.preset import load_preset

        return load_preset(spec.path).model_path if spec.path else None
    except UserError:
        return None


def _same_file(a, b) -> bool:
    import os

    try:
        return a is not None and os.path.samefile(a, b)
    except OSError:
        return False

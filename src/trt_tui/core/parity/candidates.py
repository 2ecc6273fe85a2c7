"""The registry of candidate kinds: what a comparison's candidate side can be, behind one written protocol.

    kind = candidate_kind(spec.kind)           # CANDIDATES["emulate"], ... ; unknown names are a UserError
    setup = kind.setup(CandidateContext(...))  # CandidateSetup: the Side, its low precision, its summary

A kind says what it needs before anything is built (`needs_path`: NAME:PATH; `needs_model`: the FP32 model
with its weights; `seedable`: random ops can get the reference's seed on its side; `gpu`: both sides on the
CUDA EP) and builds its side. Every side follows `sides.Side`. Adding a candidate is one class and one entry
in CANDIDATES (and its name in runners.CANDIDATE_KINDS, which CandidateSpec checks; a test keeps both equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
    """What a kind may use to build its side (built once by prepare_comparison)."""

    spec: CandidateSpec
    index: GraphIndex  # the reference model, indexed
    model_path: Path
    model: onnx.ModelProto | None  # the FP32 model with weights (None unless the kind needs_model)
    providers: list[str]
    random: set[str] = field(default_factory=set)  # random nodes, seeded alike on both sides when seedable
    warnings: list[str] = field(default_factory=list)  # the kind appends what the user should know


@dataclass
class CandidateSetup:
    side: Side
    precision: str | None  # the low precision it computes in (headroom, default tolerance, no-op check); None: unknown
    low_precision: LowPrecisionSummary | None = None  # what a trt_tui rewrite really put in low precision


class CandidateKind(Protocol):
    name: str
    needs_path: bool
    needs_model: bool
    seedable: bool
    gpu: bool

    def setup(self, ctx: CandidateContext) -> CandidateSetup: ...


@dataclass(frozen=True)
class RewriteKind:
    """emulate / mixed / cuda: a trt_tui rewrite of the FP32 model, run on ONNX Runtime (cuda: its CUDA EP)."""

    name: str
    gpu: bool = False
    needs_path: bool = False
    needs_model: bool = True
    seedable: bool = True  # the rewrite copies the seeded FP32 model's nodes

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        model, weights = candidate_model_and_weights(ctx.model, ctx.spec, ctx.model_path.parent)
        side = OnnxSide(model, ctx.spec.label, ctx.providers, weights)
        return CandidateSetup(side, ctx.spec.precision, read_low_precision(model))


@dataclass(frozen=True)
class OnnxFileKind:
    """onnx:PATH: any ONNX model whose tensors keep the reference's names (e.g. `trt-tui convert` output)."""

    name: str = "onnx"
    gpu: bool = False
    needs_path: bool = True
    needs_model: bool = False
    seedable: bool = True

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        model, weights = candidate_model_and_weights(None, ctx.spec, ctx.model_path.parent)
        if ctx.random:
            seed_random_ops(model, ctx.random)  # the same node names as the reference: the same seed
        summary = read_low_precision(model)  # a converted model says what it runs in low precision
        return CandidateSetup(OnnxSide(model, ctx.spec.label, ctx.providers, weights), summary.low if summary else None, summary)


@dataclass(frozen=True)
class EngineKind:
    """engine:PATH: a serialized TensorRT engine through Polygraphy's TrtRunner (needs TensorRT)."""

    name: str = "engine"
    gpu: bool = False
    needs_path: bool = True
    needs_model: bool = False
    seedable: bool = False

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        return CandidateSetup(RunnerSide(runners.trt_engine_runner(ctx.spec.path, name="candidate"), ctx.spec.label), None)


@dataclass(frozen=True)
class TrtKind:
    """trt[:PRESET]: an engine built from a preset by a build job, then run like engine:PATH."""

    name: str = "trt"
    gpu: bool = False
    needs_path: bool = False  # the command's --preset when absent
    needs_model: bool = False
    seedable: bool = False

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        spec = ctx.spec
        model_path = getattr(spec.preset, "model_path", None) or _preset_model(spec)
        same = _same_file(model_path, ctx.index.path)
        runner, plan = runners.trt_candidate_runner(spec, index=ctx.index if same else None, name="candidate")
        ctx.warnings.extend(plan.warnings)
        if not same:
            ctx.warnings.append(f"the preset builds from {plan.onnx_path or 'its own model'}, not from {ctx.index.path}")
        # a marked engine has tensors of its own (Casts of the mixed ONNX, unnamed layers): not worth listing
        side = RunnerSide(runner, plan.label, private_names=True)
        return CandidateSetup(side, plan.precision if plan.precision in ("fp16", "bf16") else None)


@dataclass(frozen=True)
class SavedKind:
    """outputs:PATH[#runner]: outputs saved by an earlier run (.npz or Polygraphy RunResults JSON)."""

    name: str = "outputs"
    gpu: bool = False
    needs_path: bool = True
    needs_model: bool = False
    seedable: bool = False

    def setup(self, ctx: CandidateContext) -> CandidateSetup:
        return CandidateSetup(SavedSide(load_saved_outputs(ctx.spec.path)), None)


CANDIDATES: dict[str, CandidateKind] = {
    k.name: k
    for k in (RewriteKind("emulate"), RewriteKind("mixed"), RewriteKind("cuda", gpu=True), OnnxFileKind(), EngineKind(),
              TrtKind(), SavedKind())  # fmt: skip
}


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

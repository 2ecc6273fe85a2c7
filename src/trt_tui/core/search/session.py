"""Model + samples + target (+ contract) -> a prepared search -> `SearchResult`: what the CLI and the TUI call.

    job = prepare_search("model.onnx", precision="fp16", targets=["logits:rel_rms<=1e-3"], inputs=["data/"])
    job = search_request(request, targets=[...])            # the CLI's and TUI's way: a ComparisonRequest
    result = job.run(cancel=event, on_progress=callback)     # Progress after every evaluation

Everything that can be checked before the first inference is checked in `prepare_search` (UserError naming
the file if not). Samples: `.npz` files, Polygraphy JSON (several iterations = several samples), folders of
them, or random data (Polygraphy's DataLoader, `InputSpec`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from trt_tui.core.errors import UserError
from trt_tui.core.parity.metrics import TolerancePolicy
from trt_tui.core.search.evaluate import Evaluation
from trt_tui.core.search.result import PinRulesFound, SearchResult
from trt_tui.core.search.strategy import Outcome, Progress, against_monotone, run_search
from trt_tui.core.search.targets import Criterion, parse_target

SAMPLE_SUFFIXES = (".npz", ".json")


@dataclass
class SearchJob:
    model_path: Path
    model: onnx.ModelProto
    precision: str
    evaluator: object  # ModelEvaluator or StreamEvaluator
    criterion_text: list[str]
    outputs: list[str]  # the checked outputs
    budget: int | None
    fuse_bias: bool = True
    warnings: list[str] = field(default_factory=list)
    chunks: int | None = None

    def run(self, cancel: threading.Event | None = None, on_progress: Callable[[Progress], None] | None = None, *,
            minimal: bool = False) -> SearchResult:  # fmt: skip
        """Search (strategy.py); `minimal`: then drop each pin left alone if the set still passes (step 7)."""
        from trt_tui.core.search.sensitivity import rank_nodes

        t0 = time.perf_counter()
        ev = self.evaluator
        ranking_box = {"inferences": 0}  # the last ranking, and every pass's inferences (a fold-in runs two)

        def rank():
            ranking_box["r"] = rank_nodes(self.model, self.precision, ev.sensitivity_samples(), self.outputs,
                                          fuse_bias=self.fuse_bias, base_dir=self.model_path.parent,
                                          **ev.sensitivity_inputs())  # fmt: skip
            ranking_box["inferences"] += ranking_box["r"].inferences
            return ranking_box["r"]

        try:
            outcome = run_search(ev, rank, budget=self.budget, cancel=cancel, on_progress=on_progress, minimal=minimal)
        except UserError as exc:
            if exc.message.startswith("ONNX Runtime failed") and any(w.startswith(("dynamic dim", "unnamed dynamic axis")) for w in self.warnings):
                # the usual cause of a model that loads but will not run on its random samples, as `compare` says
                raise UserError(f"{exc.message}; dynamic dims were set to 1 (see the warnings): give real ones with "
                                "--dim NAME=N or --shape INPUT:SHAPE", exc.path) from None  # fmt: skip
            raise
        finally:
            ev.close()
        return self._result(outcome, ranking_box.get("r"), time.perf_counter() - t0, ranking_box["inferences"])

    def _result(self, out: Outcome, ranking, elapsed: float, ranking_inferences: int) -> SearchResult:
        from trt_tui.core.precision.plan import node_name

        order = {node_name(n): i for i, n in enumerate(self.model.graph.node)}
        pins = sorted(out.best, key=lambda p: order.get(p, 0)) if out.best is not None else []
        outputs: dict[str, dict] = {}
        for label, ev in (("without", out.baseline), ("with", out.final)):
            if ev is None:
                continue
            for name, metrics in ev.verdict.errors.items():
                row = outputs.setdefault(name, {})
                row[label] = metrics
                row[f"failed_{label}"] = ev.verdict.failed.get(name, [])
        if out.fp32 is not None:
            for name, metrics in out.fp32.verdict.errors.items():
                outputs.setdefault(name, {})["fp32_vs_fp32"] = metrics
        reasons = []
        if out.status == "fp32-fails" and out.fp32 is not None:
            reasons = out.fp32.verdict.reasons or [_fp32_failure(n, f, out.fp32.verdict.errors.get(n, {}))
                                                   for n, f in out.fp32.verdict.failed.items()]  # fmt: skip
        ev = self.evaluator
        samples = ({"stream_chunks": self.chunks} if ev.stateful else {"search": len(ev.samples.search), "held_out": len(ev.samples.held_out)})
        sensitivity = {}
        if ranking is not None:
            sensitivity = {"seconds": round(ranking.seconds, 4), "inferences": ranking.inferences,
                           "unreachable": len(ranking.unreachable), "top": ranking.top(10)}  # fmt: skip
        passed = out.best is not None and (out.final is None or out.final.passed)
        if (out.status in ("budget", "cancelled") and ranking is not None and out.best is not None
                and len(ranking.model.from_names(out.best)) >= len(ranking.order)):  # fmt: skip
            passed, pins = False, []  # every candidate pinned is FP32 everywhere: what there was before searching
        total = len(ev.samples.search) + len(ev.samples.held_out) if not ev.stateful else 0
        if passed and out.final is not None and out.final.verdict.samples < total:  # stopped before the check on every sample
            reasons.append(f"the set kept passed on {out.final.verdict.samples} of {total} samples: the search stopped "
                           f"({out.status}) before checking it on the held-out ones")  # fmt: skip
        if ranking is not None:  # the log's evidence that the error is noise here
            reasons += _fragile(against_monotone(out.log, ranking.model), ranking.model.from_names)
        return SearchResult(
            model=str(self.model_path), precision=self.precision, criterion=self.criterion_text, status=out.status,
            pins=pins, rules=PinRulesFound.from_pins(self.model, pins), passed=passed,
            evaluations=sum(1 for e in out.log if e.number > 0), inferences=ev.inferences + ranking_inferences,
            outputs=outputs, log=[e.to_json(order) for e in out.log], elapsed_s=elapsed,
            candidates=len(ranking.order) if ranking is not None else 0, float_nodes=ev.low_nodes, samples=samples,
            held_out=out.held_out, sensitivity=sensitivity, budget=self.budget, reasons=reasons,
            carriers=[p for p in pins if ranking is None or p not in ranking.model.index],
        )  # fmt: skip


def _fp32_failure(name: str, failed: list[str], errors: dict) -> str:
    """Why the FP32 model misses a target against a second FP32 run: its output holds inf/NaN (inf - inf
    counts as a difference, as in Polygraphy: the run is not nondeterministic), or the two runs differ."""
    nonfinite = int(errors.get("nonfinite") or 0)
    if nonfinite:
        return (f"{name}: the FP32 output holds {nonfinite} inf/NaN value{'s' if nonfinite != 1 else ''} (an inf/NaN "
                f"input gives that too), so its error is not finite and {', '.join(failed)} cannot be met by any pin "
                "set: target another output, give inputs that keep it finite, or (the same infinities in every run, a "
                "masked logit) pass --infinities-compare-equal")  # fmt: skip
    return f"{name}: a second FP32 run differs from the first (a nondeterministic graph) and misses {', '.join(failed)}"


def _fragile(pair: tuple[Evaluation, Evaluation, float] | None, from_names) -> list[str]:
    """A line saying the margins are noise here, when a set with more FP32 nodes measured much more error."""
    if pair is None:
        return []
    small, big, ratio = pair
    return [(f"fragile: evaluation {big.number} kept {len(from_names(big.pins))} nodes in FP32 and measured {ratio:.1f}x the "
            f"error of evaluation {small.number}, which kept {len(from_names(small.pins))} of them. On these samples the "
            "error is rounding noise that a few values dominate (one more FP32 node can move it by more than the "
            "target's margin), so a set may pass by chance and fail on other inputs: check the set on more samples "
            "(--inputs DIR), or loosen the target")]  # fmt: skip


def load_samples(paths: Sequence[str | os.PathLike[str]], index) -> list[dict[str, np.ndarray]]:
    """Every sample in the given files and folders (a folder: its .npz and .json files, sorted by name)."""
    from trt_tui.core.parity.inputs import load_feeds

    feeds: list[dict[str, np.ndarray]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix in SAMPLE_SUFFIXES and f.is_file())
            if not files:
                raise UserError("folder holds no .npz or .json sample", p)
            for f in files:
                feeds.extend(load_feeds(f, index))
        else:
            feeds.extend(load_feeds(p, index))
    return feeds


def prepare_search(
    model: str | os.PathLike[str],
    *,
    precision: str = "fp16",
    targets: Sequence[str] = (),
    policy: TolerancePolicy | None = None,
    inputs: Sequence[str | os.PathLike[str]] = (),
    input_spec=None,
    contract: str | os.PathLike[str] | None = None,
    chunks: int | None = None,
    stream_inputs: str | os.PathLike[str] | None = None,
    budget: int | None = None,
    fuse_bias: bool = True,
    infinities_equal: bool = False,
    index=None,
) -> SearchJob:
    """Check the request and build the evaluator (the FP32 reference session); nothing is searched yet.
    `index`: the model already indexed (None: indexed here). `infinities_equal`: the same +-inf in an output's
    FP32 and low-precision runs is no difference (Polygraphy's infinities_compare_equal), targets or not."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.runners import load_model

    if precision not in ("fp16", "bf16"):
        raise UserError(f"unknown precision {precision!r}; choose fp16 or bf16")
    if budget is not None and budget < 1:
        raise UserError("--budget must be at least 1")
    path = Path(model)
    index = index if index is not None else load_graph(path)
    proto = load_model(path)
    from trt_tui.core.precision.plan import prepare_model

    from trt_tui.core.precision.common import subgraphs

    body = next((n for n in proto.graph.node if subgraphs(n)), None)
    if body is not None:
        raise UserError(f"node {body.name or body.op_type!r} ({body.op_type}) has a subgraph; the search supports graphs without "
                        "If/Loop/Scan only (its sensitivity pass and the TensorRT 11 mixed-ONNX export do not rewrite bodies; "
                        "compare and convert --emulate do)", path)  # fmt: skip
    prepare_model(proto, path.parent)  # refuses missing weights before any inference
    if contract is not None:
        if inputs:  # the closed loop feeds the contract's inputs chunk by chunk: these samples would go unused
            raise UserError("--inputs gives the samples of a stateless search; with --contract give the stream's inputs "
                            "with --stream-inputs FILE")  # fmt: skip
        return _prepare_stream(path, index, proto, precision, contract, chunks, stream_inputs, budget, fuse_bias, targets)
    if chunks is not None:
        raise UserError("--chunks applies to a stateful model's --contract")
    if stream_inputs is not None:
        raise UserError("--stream-inputs applies to a stateful model's --contract; without one give samples with --inputs")
    from trt_tui.core.parity.inputs import InputSpec, random_feeds
    from trt_tui.core.search.evaluate import ModelEvaluator, SearchSamples

    warnings: list[str] = []
    feeds = load_samples(inputs, index) if inputs else random_feeds(index, input_spec or InputSpec(), warnings)
    if not feeds:
        raise UserError("no input data: zero samples")
    outputs = [o.name for o in proto.graph.output]
    infinities_equal = infinities_equal or (policy is not None and policy.default.infinities_equal)
    if targets:  # the targets judge: of the tolerances only the infinities switch applies
        policy = None
    if infinities_equal:
        policy = (policy or TolerancePolicy()).with_infinities_equal(True)
    criterion = Criterion(outputs, [parse_target(t) for t in targets], policy)
    warnings += integer_target_warnings(proto, criterion)
    samples = SearchSamples.split(feeds)
    evaluator = ModelEvaluator(proto, precision, criterion, samples, fuse_bias=fuse_bias, base_dir=path.parent)
    return SearchJob(path, proto, precision, evaluator, criterion.describe(), criterion.outputs, budget, fuse_bias, warnings)


def integer_target_warnings(proto: onnx.ModelProto, criterion: Criterion) -> list[str]:
    """A target that bounds only integer outputs (a class label, a length) is met by any set that keeps those
    values, however far the scores behind them drift: worth a line, not a refusal (it may be what is wanted).
    Integer outputs checked beside float ones (parakeet's lengths beside its log-probs) need no word."""
    kind = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)
    whole = [o for o in criterion.outputs if kind.get(o, onnx.TensorProto.FLOAT) not in floats]
    if not whole or len(whole) < len(criterion.outputs):
        return []
    names = ", ".join(f"{o!r} ({onnx.helper.tensor_dtype_to_np_dtype(kind[o]).name})" for o in whole)
    floats_out = [o for o, k in kind.items() if k in floats]
    hint = f" such as {floats_out[0]!r}" if floats_out else ""
    text = (f"the target checks only integer output{'s' if len(whole) > 1 else ''} {names}: any set that keeps "
            f"those values passes, however far the float values behind them drift; target a float output{hint} "
            "to bound the drift")  # fmt: skip
    return [text]


def search_request(
    request,
    *,
    targets: Sequence[str] = (),
    samples: Sequence[str | os.PathLike[str]] = (),
    contract: str | os.PathLike[str] | None = None,
    chunks: int | None = None,
    stream_inputs: str | os.PathLike[str] | None = None,
    budget: int | None = None,
) -> SearchJob:
    """The search of a ComparisonRequest (core.parity.request), the one `trt-tui compare` builds from its flags
    and the Parity screen from its controls: its model (indexed once), precision, emulation setting, random
    inputs (seed, samples = iterations, the preset's first-profile OPT shapes) or input data; a request made
    from a preset brings the preset's tolerances as the target when no `targets` are given. `samples`: sample
    files/folders, in place of the request's input data."""
    from trt_tui.core.parity.inputs import InputSpec

    inputs = list(samples)
    if not inputs and not isinstance(request.inputs, InputSpec) and contract is None:
        inputs = [request.inputs]  # the request's data file (--inputs, or the preset's input_data)
    return prepare_search(
        request.model, precision=request.precision, targets=targets, policy=search_policy(request), inputs=inputs,
        input_spec=request.inputs if isinstance(request.inputs, InputSpec) else None, contract=contract, chunks=chunks,
        stream_inputs=stream_inputs, budget=budget, fuse_bias=request.candidate.fuse_bias, index=request.index,
        infinities_equal=request.options.tolerances.default.infinities_equal,  # the preset's or the flag's
    )  # fmt: skip


def search_policy(request) -> TolerancePolicy | None:
    """The tolerances a search may take as its target: a preset's (a choice the user made), never the defaults
    a request without a preset falls back to."""
    return request.options.tolerances if request.resolved is not None else None


def _prepare_stream(path, index, proto, precision, contract, chunks, stream_inputs, budget, fuse_bias, targets) -> SearchJob:
    from trt_tui.core.search.stateful import StreamEvaluator
    from trt_tui.core.streaming.contract_choice import check_contract
    from trt_tui.core.streaming.feeds import StreamInputs

    if targets:
        raise UserError("with --contract the contract's tolerances are the target: drop --target")
    c, warnings = check_contract(contract, index)
    n = c.schedule.chunks if chunks is None else chunks
    if n < 2:
        raise UserError("--chunks must be at least 2 (a closed loop feeds the state back)")
    inputs = StreamInputs(c, stream_inputs)
    if inputs.available_chunks is not None and n > inputs.available_chunks:
        raise UserError(f"holds {inputs.available_chunks} chunks but {n} were asked for (use --chunks)", inputs.file)
    evaluator = StreamEvaluator(proto, precision, c, n, inputs, fuse_bias=fuse_bias, base_dir=path.parent)
    return SearchJob(path, proto, precision, evaluator, evaluator.describe(), list(c.outputs), budget, fuse_bias, list(warnings), chunks=n)


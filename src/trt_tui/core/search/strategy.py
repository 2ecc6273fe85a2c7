"""The search over the ranked nodes: few evaluations, each one verified, the best passing set always kept.

1. FP32 against itself: a target the FP32 model misses (a nondeterministic graph) cannot be met: not searched.
2. Nothing pinned (every sample): passes -> no pin needed. Its errors say by how much they must shrink.
3. Rank the nodes (sensitivity.py). Every candidate pinned is the FP32 model itself: known to pass (step 1),
   not evaluated.
4. The shortest passing prefix of the ranking, starting from a guess: the ranking's scores, read as each
   node's share of the output error (errors adding in quadrature), give the prefix that removes enough of
   it; nodes whose error alone is non-finite (overflow) are always in it. Then exponential search around the
   guess (k-1 when k passes; k+1, k+2, k+4... when it fails) and binary search in the bracket.
5. Pruning by group testing: try dropping the prefix's lower-ranked pins in one group; a failing group is
   split in halves. The prefix's last pin (the prefix without it failed) and overflowing nodes stay. At most
   2 log2(pins) + 6 tries: on a dense set (most pins needed) group testing costs ~2 evaluations a pin.
6. Held-out samples (when several were given): the answer is checked on every sample; if a held-out sample
   fails, the held-out samples join the search samples and steps 4-5 run again.

Every reported set passed an evaluation; monotonicity (more pins, less error) is assumed only to choose
what to evaluate next. `budget` caps the evaluations; `cancel` is checked before each one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from trt_tui.core.search.evaluate import Evaluation


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


def run_search(evaluator, rank: Callable[[], object], *, budget: int | None = None, cancel: threading.Event | None = None,
               on_progress: Callable[[Progress], None] | None = None) -> Outcome:  # fmt: skip
    """Run steps 1-6 (module docstring). `rank()` returns a `sensitivity.Ranking` (most sensitive first)."""
    return _Runner(evaluator, rank, budget, cancel, on_progress).run()


class _Runner:
    def __init__(self, evaluator, rank, budget, cancel, on_progress):
        self.ev = evaluator
        self.rank = rank
        self.budget = budget
        self.cancel = cancel
        self.on_progress = on_progress
        self.log: list[Evaluation] = []
        self.count = 0
        self.best: frozenset[str] | None = None
        self.candidates: list[str] = []
        self.ranking = None

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
        if verdict.passed and counted and (self.best is None or len(pins) < len(self.best)) and not every_sample:
            self.best = pins
        if self.on_progress is not None and not cached:
            self.on_progress(Progress(self.count, self.budget, phase, ev, self.best, len(self.candidates)))
        return ev

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
            self.ranking = self.rank()
            self.candidates = list(self.ranking.order)
            fraction = out.baseline.verdict.fraction
            pins = self._prune(self._shortest_prefix(fraction))
            if self.ev.has_held_out:
                check = self._eval(pins, "held-out", every_sample=True)
                out.held_out = {"samples": len(self.ev.samples.held_out), "passed": check.passed, "folded_in": False}
                if not check.passed:
                    # the answer does not generalise: search again with the held-out samples included
                    self.ev.fold_in_held_out()
                    out.held_out["folded_in"] = True
                    self.best = None
                    pins = self._prune(self._shortest_prefix(check.verdict.fraction))
            out.status, out.best = "found", pins
        except Stop as stop:
            # no further evaluation (the budget is spent, or the user wants out): the best set as evaluated
            out.status, out.best = stop.reason, self.best
            out.final = next((e for e in reversed(self.log) if e.pins == self.best and e.passed), None)
            return out
        out.final = self._final(out.best)
        if not out.final.passed:  # only when every candidate pinned (the FP32 model) fails: it cannot
            out.status, out.best = "unreachable", None
        return out

    def _final(self, pins: frozenset[str]) -> Evaluation | None:
        """The answer's evaluation on every sample (from the cache when it was already run)."""
        verdict, cached = self.ev.check(pins, every_sample=True)
        ev = Evaluation(self.count, "final", pins, verdict, 0.0, cached)
        if not cached:
            self.count += 1
            ev.number = self.count
            self.log.append(ev)
        return ev

    def _guess(self, fraction: float | None) -> tuple[int, int]:
        """(prefix length assumed to fail, guessed passing length) from the ranking's scores."""
        scores = [self.ranking.score[c] for c in self.candidates]
        overflow = sum(1 for v in scores if math.isinf(v))  # ranked first
        finite = [v * v for v in scores[overflow:]]
        total = sum(finite)
        if overflow and not fraction:  # the overflow hides everything else: pin it first, look again
            return overflow - 1, overflow
        f = 0.5 if fraction is None or not 0 < fraction < 1 else fraction
        k, left = overflow, total
        while k < len(scores) and total > 0 and left > (f * f) * total:
            left -= finite[k - overflow]
            k += 1
        return max(overflow - 1, 0), max(k, overflow, 1)

    def _shortest_prefix(self, fraction: float | None) -> frozenset[str]:
        """The shortest passing prefix of the ranking, searched around the guess (every candidate: passes)."""
        ranked = self.candidates
        n = len(ranked)
        lo, k = self._guess(fraction)
        hi = n  # every candidate pinned: the FP32 model, known to pass
        k = min(k, n)
        if k < hi:
            if self._eval(frozenset(ranked[:k]), "prefix").passed:
                hi = k
                if k - 1 > lo:  # the guess is often exact: one look just below it
                    if self._eval(frozenset(ranked[: k - 1]), "prefix").passed:
                        hi = k - 1
                    else:
                        lo = k - 1
            else:
                lo, step = k, 1
                while lo + step < hi:  # exponential search upwards
                    if self._eval(frozenset(ranked[: lo + step]), "prefix").passed:
                        hi = lo + step
                        break
                    lo, step = lo + step, 2 * step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._eval(frozenset(ranked[:mid]), "prefix").passed:
                hi = mid
            else:
                lo = mid
        return frozenset(ranked[:hi])

    def _prune(self, pins: frozenset[str]) -> frozenset[str]:
        """Drop the pins that are not needed, lowest ranked first, by halving groups."""
        rank = {c: i for i, c in enumerate(self.candidates)}
        ordered = sorted(pins, key=lambda p: rank.get(p, -1))
        droppable = [p for p in ordered[:-1] if not math.isinf(self.ranking.score.get(p, 0.0))]
        if not droppable:
            return pins
        current = set(pins)
        groups = [list(reversed(droppable))]  # the prefix's last pin and overflowing nodes stay
        # a dense set (most pins needed) would cost ~2 evaluations a pin: stop after O(log) of them; every
        # drop made so far was verified, the rest simply stays pinned
        allowance = 2 * math.ceil(math.log2(len(droppable) + 1)) + 6
        while groups and allowance > 0:
            allowance -= 1
            group = groups.pop(0)
            trial = frozenset(current - set(group))
            if self._eval(trial, "prune").passed:
                current = set(trial)
            elif len(group) > 1:
                half = len(group) // 2
                groups[:0] = [group[:half], group[half:]]
        return frozenset(current)

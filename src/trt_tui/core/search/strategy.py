"""The search over the ranked nodes: few evaluations, each one verified, the best passing set always kept.

1. FP32 against itself: a target the FP32 model misses (a nondeterministic graph) cannot be met: not searched.
2. Nothing pinned (every sample): passes -> no pin needed.
3. Rank the nodes (sensitivity.py); every candidate pinned: the first passing set (Ctrl-C keeps it).
4. The shortest passing prefix of the ranking: galloping (1, 2, 4, ... pins) then binary search between the
   last failing and the first passing prefix: about 2 log2(needed) evaluations, not log2(all nodes).
5. Pruning by group testing: try dropping the prefix's lower-ranked pins in one group; a failing group is
   split in halves (the prefix's last pin is needed: the prefix without it failed).
6. Held-out samples (when several were given): the answer is checked on every sample; if a held-out sample
   fails, the held-out samples join the search samples and steps 4-5 run again.

Every reported set passed an evaluation; monotonicity (more pins, less error) is assumed only to choose
what to evaluate next. `budget` caps the evaluations; `cancel` is checked before each one.
"""

from __future__ import annotations

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


def run_search(evaluator, rank: Callable[[], list[str]], *, budget: int | None = None, cancel: threading.Event | None = None,
               on_progress: Callable[[Progress], None] | None = None) -> Outcome:  # fmt: skip
    """Run steps 1-6 (module docstring). `rank()` returns the candidate nodes, most sensitive first."""
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
        self.best_eval: Evaluation | None = None
        self.candidates: list[str] = []

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
            self.candidates = self.rank()
            every = frozenset(self.candidates)
            if not self._eval(every, "all-pinned").passed:
                out.status = "unreachable"
                return out
            pins = self._shortest_prefix(frozenset())
            pins = self._prune(pins)
            if self.ev.has_held_out:
                check = self._eval(pins, "held-out", every_sample=True)
                out.held_out = {"samples": len(self.ev.samples.held_out), "passed": check.passed, "folded_in": False}
                if not check.passed:
                    # the answer does not generalise: search again with the held-out samples included
                    self.ev.fold_in_held_out()
                    out.held_out["folded_in"] = True
                    self.best = None
                    if not self._eval(every, "all-pinned").passed:
                        out.status = "unreachable"
                        return out
                    pins = self._prune(self._shortest_prefix(frozenset()))
            out.status, out.best = "found", pins
        except Stop as stop:
            # no further evaluation (the budget is spent, or the user wants out): the best set as evaluated
            out.status, out.best = stop.reason, self.best
            out.final = next((e for e in reversed(self.log) if e.pins == self.best and e.passed), None)
            return out
        out.final = self._final(out.best)
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

    def _shortest_prefix(self, base: frozenset[str]) -> frozenset[str]:
        """The shortest passing prefix of the ranking (prefix of all: known to pass)."""
        ranked = [c for c in self.candidates if c not in base]
        n = len(ranked)
        lo, hi, k = 0, n, 1  # prefix lo fails (0: the baseline), prefix hi passes
        while k < hi:  # gallop: 1, 2, 4, ...
            if self._eval(base | frozenset(ranked[:k]), "prefix").passed:
                hi = k
                break
            lo, k = k, 2 * k
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._eval(base | frozenset(ranked[:mid]), "prefix").passed:
                hi = mid
            else:
                lo = mid
        return base | frozenset(ranked[:hi])

    def _prune(self, pins: frozenset[str]) -> frozenset[str]:
        """Drop the pins that are not needed, lowest ranked first, by halving groups."""
        rank = {c: i for i, c in enumerate(self.candidates)}
        ordered = sorted(pins, key=lambda p: rank.get(p, -1))
        if len(ordered) < 2:
            return pins
        current = set(pins)
        groups = [list(reversed(ordered[:-1]))]  # the last pin of the prefix is needed: not tried
        while groups:
            group = groups.pop(0)
            trial = frozenset(current - set(group))
            if self._eval(trial, "prune").passed:
                current = set(trial)
            elif len(group) > 1:
                half = len(group) // 2
                groups[:0] = [group[:half], group[half:]]
        return frozenset(current)

"""Bookkeeping for TensorRT's IProgressMonitor callbacks, kept free of TensorRT so it can be tested.

TensorRT calls `phase_start(name, parent, num_steps)`, `step_complete(name, step) -> bool` and
`phase_finish(name)`, possibly from several threads, with nested phases (phase names change between
versions, so nothing here depends on them). The overall fraction is computed from the top-level phases:
each nested phase refines the step of its parent that is in progress. Returning False from
`step_complete` asks TensorRT to cancel the build.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Phase:
    name: str
    parent: str | None
    steps: int
    done: int = 0
    children: list[str] = field(default_factory=list)


class PhaseTracker:
    """Receives the monitor callbacks; reports (phase path, fraction) through `emit`, at most every
    `min_interval_s` unless a phase starts or finishes."""

    def __init__(
        self,
        emit: Callable[[str, float | None], None],
        *,
        cancelled: Callable[[], bool] = lambda: False,
        min_interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._cancelled = cancelled
        self._min_interval = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._phases: dict[str, _Phase] = {}
        self._top: list[str] = []  # top-level phases in start order
        self._last_emit = float("-inf")
        # Highest fraction reported per top-level phase: a finished child phase stops counting before its
        # parent's step_complete arrives, and the bar must not jump back in between.
        self._high: dict[str, float] = {}
        self.finished: list[str] = []

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        with self._lock:
            phase = _Phase(phase_name, parent_phase or None, max(int(num_steps), 0))
            self._phases[phase_name] = phase
            parent = self._phases.get(phase.parent) if phase.parent else None
            if parent is not None:
                parent.children.append(phase_name)
            elif phase_name not in self._top:
                self._top.append(phase_name)
            self._report(phase_name, force=True)

    def step_complete(self, phase_name: str, step: int) -> bool:
        with self._lock:
            phase = self._phases.get(phase_name)
            if phase is not None:
                phase.done = max(phase.done, int(step) + 1)
                self._report(phase_name, force=False)
        return not self._cancelled()

    def phase_finish(self, phase_name: str) -> None:
        with self._lock:
            phase = self._phases.pop(phase_name, None)
            if phase is None:
                return
            self.finished.append(phase_name)
            parent = self._phases.get(phase.parent) if phase.parent else None
            if parent is not None and phase_name in parent.children:
                parent.children.remove(phase_name)
            if phase_name in self._top:
                self._top.remove(phase_name)
                self._high.pop(phase_name, None)
            self._report(phase.parent or phase_name, force=True)

    def fraction(self) -> float | None:
        with self._lock:
            return self._fraction()

    # ---- internals (lock held) ----

    def _fraction_of(self, name: str) -> float:
        phase = self._phases[name]
        if phase.steps <= 0:
            return 0.0
        inner = 0.0
        for child in phase.children:
            if child in self._phases:
                inner = max(inner, self._fraction_of(child))
        return min(1.0, (phase.done + inner) / phase.steps)

    def _fraction(self) -> float | None:
        # Only the outermost running phase counts: TensorRT reports one top-level build phase at a time.
        live = [n for n in self._top if n in self._phases]
        if not live:
            return None
        value = max(self._high.get(live[0], 0.0), self._fraction_of(live[0]))
        self._high[live[0]] = value
        return value

    def _path(self, name: str) -> str:
        parts = []
        while name in self._phases:
            parts.append(name)
            name = self._phases[name].parent or ""
        return " > ".join(reversed(parts)) or name

    def _report(self, name: str, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_emit < self._min_interval:
            return
        self._last_emit = now
        self._emit(self._path(name) if name in self._phases else name, self._fraction())

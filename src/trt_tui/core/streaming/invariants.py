"""Invariants a streaming model must keep at every chunk, checked on the reference and the candidate alike.

`equals` (an output is a constant, e.g. encoded_lengths == 2), `monotonic` (non-decreasing from chunk to
chunk, e.g. a cache length), `range` (stays in [min, max]). A NaN fails every check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trt_tui.core.streaming.contract import Invariant


@dataclass(frozen=True)
class InvariantResult:
    check: str  # the invariant in words, e.g. "cache_len_next non-decreasing"
    output: str
    side: str  # "reference" or "candidate"
    passed: bool
    detail: str = ""

    def to_json(self) -> dict:
        return {"check": self.check, "output": self.output, "side": self.side, "passed": self.passed, "detail": self.detail}


class InvariantChecker:
    """Checks a contract's invariants chunk after chunk; remembers the last value per side for `monotonic`."""

    def __init__(self, invariants: tuple[Invariant, ...]) -> None:
        self.invariants = invariants
        self._previous: dict[tuple[str, str], np.ndarray] = {}

    def check(self, side: str, outputs: dict[str, np.ndarray]) -> list[InvariantResult]:
        results = []
        for inv in self.invariants:
            value = outputs.get(inv.output)
            if value is None:
                results.append(InvariantResult(inv.describe(), inv.output, side, False, "output missing"))
                continue
            value = np.asarray(value)
            ok, detail = self._check_one(inv, side, value)
            results.append(InvariantResult(inv.describe(), inv.output, side, ok, detail))
        for inv in self.invariants:
            if inv.check == "monotonic" and inv.output in outputs:
                self._previous[(side, inv.output)] = np.array(outputs[inv.output], copy=True)
        return results

    def _check_one(self, inv: Invariant, side: str, value: np.ndarray) -> tuple[bool, str]:
        if inv.check == "equals":
            bad = ~(value == inv.value)
            return _verdict(bad, value, f"expected {_fmt(inv.value)}")
        if inv.check == "range":
            bad = np.isnan(value) if value.dtype.kind == "f" else np.zeros(value.shape, bool)
            if inv.min is not None:
                bad |= value < inv.min
            if inv.max is not None:
                bad |= value > inv.max
            lo = "-inf" if inv.min is None else _fmt(inv.min)
            hi = "inf" if inv.max is None else _fmt(inv.max)
            return _verdict(bad, value, f"outside [{lo}, {hi}]")
        prev = self._previous.get((side, inv.output))
        if prev is None:
            return True, ""
        if prev.shape != value.shape:
            return False, f"shape changed from {list(prev.shape)} to {list(value.shape)}"
        bad = ~(value >= prev)
        if not bad.any():
            return True, ""
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        where = f" at {list(i)}" if value.ndim else ""
        return False, f"decreased from {_fmt(prev[i])} to {_fmt(value[i])}{where}"


def _verdict(bad: np.ndarray, value: np.ndarray, what: str) -> tuple[bool, str]:
    bad = np.asarray(bad)
    if not bad.any():
        return True, ""
    i = tuple(int(x) for x in np.argwhere(bad)[0]) if bad.ndim else ()
    n = int(np.count_nonzero(bad))
    where = f" at {list(i)}" if value.ndim else ""
    return False, f"{what}, got {_fmt(value[i])}{where}" + (f" ({n} of {bad.size} entries)" if bad.size > 1 else "")


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.6g}"

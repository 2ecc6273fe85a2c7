"""Tolerances: how close a candidate tensor must be to its reference. A shared building block: presets,
the comparison, streaming contracts, the search and the trtexec 11.1 accuracy export all read it, so it
lives on its own (parity.metrics re-exports it for the code that imports it from there).

Semantics are Polygraphy's SimpleCompareFunc (see parity.metrics for the checks themselves).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trt_tui.core.numbers import require_finite
from trt_tui.core.parity.constants import DEFAULT_TOLERANCES, ERROR_STATS


@dataclass(frozen=True)
class Tolerance:
    atol: float = 1e-5
    rtol: float = 1e-5
    stat: str = "elemwise"  # one of ERROR_STATS
    quantile: float = 0.99  # used when stat == "quantile"

    def __post_init__(self) -> None:
        for key in ("atol", "rtol"):  # NaN would make every comparison pass (NaN > x is False)
            require_finite(getattr(self, key), key, minimum=0.0)
        if self.stat not in ERROR_STATS:
            raise ValueError(f"error statistic must be one of {', '.join(ERROR_STATS)}, not {self.stat!r}")
        if not (isinstance(self.quantile, (int, float)) and 0.0 <= self.quantile <= 1.0):
            raise ValueError(f"quantile must be in [0, 1], not {self.quantile}")


def default_tolerance(precision: str | None) -> Tolerance:
    """The default tolerance for a candidate in `precision` (fp16/bf16: constants.DEFAULT_TOLERANCES, see
    there why); anything else keeps Polygraphy's 1e-5 elementwise."""
    if precision in DEFAULT_TOLERANCES:
        atol, rtol, stat = DEFAULT_TOLERANCES[precision]
        return Tolerance(atol=atol, rtol=rtol, stat=stat)
    return Tolerance()


@dataclass(frozen=True)
class TolerancePolicy:
    """Tolerances per output-name pattern (regex, searched); the first matching rule wins, else `default`."""

    default: Tolerance = Tolerance()
    rules: tuple[tuple[str, Tolerance], ...] = ()

    def for_tensor(self, name: str) -> Tolerance:
        for pattern, tol in self.rules:
            if re.search(pattern, name):
                return tol
        return self.default

"""Tolerances: how close a candidate tensor must be to its reference. A shared building block: presets,
the comparison, streaming contracts, the search and the trtexec 11.1 accuracy export all read it, so it
lives on its own (parity.metrics re-exports it for the code that imports it from there).

Semantics are Polygraphy's SimpleCompareFunc (see parity.metrics for the checks themselves).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from trt_tui.core.errors import UserError
from trt_tui.core.numbers import require_finite
from trt_tui.core.parity.constants import DEFAULT_TOLERANCES, ERROR_STATS


@dataclass(frozen=True)
class Tolerance:
    atol: float = 1e-5
    rtol: float = 1e-5
    stat: str = "elemwise"  # one of ERROR_STATS
    quantile: float = 0.99  # used when stat == "quantile"
    # Polygraphy's infinities_compare_equal: the same +-inf on both sides is no difference (a masked logit, a
    # log of 0); off, inf - inf is NaN and fails, as in Polygraphy. One switch for a whole comparison
    # ([comparison] infinities_compare_equal, --infinities-compare-equal), stamped on every tolerance
    infinities_equal: bool = False

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

    def with_infinities_equal(self, on: bool) -> TolerancePolicy:
        """This policy with matching infinities counted equal (or not) in every tolerance."""
        return TolerancePolicy(replace(self.default, infinities_equal=on),
                               tuple((p, replace(t, infinities_equal=on)) for p, t in self.rules))  # fmt: skip

    def for_tensor(self, name: str) -> Tolerance:
        for pattern, tol in self.rules:
            if re.search(pattern, name):
                return tol
        return self.default


# ---- output targets ----------------------------------------------------------------------------------
# `OUTPUT:METRIC<=VALUE` (`cosine>=VALUE`), or `METRIC<=VALUE` for every graph output, on the comparison's
# LayerDrift metrics: what `trt-tui search` must achieve, and what a preset's `[comparison] targets` make
# compare's verdict.
UPPER_METRICS = ("rel_rms", "max_abs", "p99_abs")
LOWER_METRICS = ("cosine",)
METRICS = UPPER_METRICS + LOWER_METRICS
_TARGET = re.compile(r"^(?:(?P<output>.+):)?(?P<metric>[a-z_0-9]+)\s*(?P<op><=|>=)\s*(?P<value>\S+)$")


@dataclass(frozen=True)
class Target:
    output: str | None  # None: every graph output
    metric: str
    op: str  # "<=" or ">="
    value: float

    @property
    def bound(self) -> str:
        """'<=0.001': :g unless it rounds the value (cosine>=0.99999999 read 'cosine>=1', which the set failed)."""
        return self.op + (f"{self.value:g}" if float(f"{self.value:g}") == self.value else repr(self.value))

    @property
    def text(self) -> str:
        return f"{self.output + ':' if self.output else ''}{self.metric}{self.bound}"

    def met_by(self, measured: float) -> bool:
        if math.isnan(measured):
            return False
        return measured <= self.value if self.op == "<=" else measured >= self.value


def parse_target(text: str, what: str = "--target") -> Target:
    """'logits:rel_rms<=1e-3', 'cosine>=0.999' (every output) -> Target; bad text is a UserError."""
    m = _TARGET.match(text.strip())
    if not m:
        raise UserError(f"bad {what} {text!r}: expected OUTPUT:METRIC<=VALUE (or METRIC<=VALUE for every output), "
                        "e.g. logits:rel_rms<=1e-3 or cosine>=0.999")  # fmt: skip
    metric, op = m.group("metric"), m.group("op")
    if metric not in METRICS:
        raise UserError(f"bad {what} {text!r}: unknown metric {metric!r}; choose {', '.join(METRICS)}")
    want = ">=" if metric in LOWER_METRICS else "<="
    if op != want:
        raise UserError(f"bad {what} {text!r}: {metric} is bounded with {want}")
    try:
        value = float(m.group("value"))
    except ValueError:
        raise UserError(f"bad {what} {text!r}: {m.group('value')!r} is not a number") from None
    if not math.isfinite(value) or (metric in UPPER_METRICS and value < 0):
        raise UserError(f"bad {what} {text!r}: the bound must be a finite number >= 0")
    if metric in LOWER_METRICS and not -1.0 <= value <= 1.0:  # a cosine above 1: no model can meet it, FP32 included
        raise UserError(f"bad {what} {text!r}: a {metric} bound lies in [-1, 1]")
    return Target(m.group("output"), metric, op, value)

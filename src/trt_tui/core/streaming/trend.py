"""Does the per-chunk error grow? A least-squares slope and a t-test on it, without scipy.

The seeds call a closed-loop run stable when the fitted slope of error against chunk is ~0; a recurrent
state rounded to fp16 shows a clear positive slope instead. A slope is called `significant` when it is
positive and its two-sided p-value (Student t, n-2 degrees of freedom) is below `alpha`, and `growing`
when it is also large: the fitted change over the run is at least `min_growth` times the mean error
(a tiny but significant slope over 300 chunks is not accumulation anyone needs to act on).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TrendFit:
    n: int  # finite points used
    slope: float  # error per chunk
    intercept: float
    stderr: float  # standard error of the slope
    t: float
    p_value: float  # two-sided
    growth: float  # fitted change over the run / mean error
    start: float  # fitted error at the first and last chunk
    end: float
    significant: bool
    growing: bool
    nonfinite: int = 0  # chunks whose error was inf/NaN (left out of the fit)

    def to_json(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in asdict(self).items()}

    @property
    def verdict(self) -> str:
        if self.n < 3:
            return "n/a"
        return "GROWING" if self.growing else ("rising slightly" if self.significant else "flat")

    def short(self) -> str:
        if self.n < 3:
            return f"n/a ({self.n} chunks)"
        return f"{self.verdict} {self.slope:+.2g}/chunk p={self.p_value:.2g} ({self.growth:+.0%})"

    def describe(self) -> str:
        if self.n < 3:
            return f"too few chunks for a trend ({self.n})"
        return (
            f"{self.verdict}: slope {self.slope:+.3g}/chunk (p={self.p_value:.2g}), fitted {self.start:.3g} -> {self.end:.3g}"
            f" ({self.growth:+.0%} of the mean)"
        )


def fit_trend(values, alpha: float = 0.01, min_growth: float = 0.5) -> TrendFit:
    y_all = np.asarray(values, dtype=np.float64)
    x_all = np.arange(y_all.size, dtype=np.float64)
    finite = np.isfinite(y_all)
    x, y = x_all[finite], y_all[finite]
    n = int(y.size)
    nonfinite = int(y_all.size - n)
    if n < 3:
        mean = float(y.mean()) if n else 0.0
        return TrendFit(n, 0.0, mean, math.inf, 0.0, 1.0, 0.0, mean, mean, False, False, nonfinite)
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (intercept + slope * x)
    dof = n - 2
    s2 = float(np.sum(resid**2)) / dof
    stderr = math.sqrt(s2 / sxx) if s2 > 0 else 0.0
    if stderr == 0.0:
        # a perfect line: any nonzero slope is certain, a zero slope is no trend at all
        t, p = (math.copysign(math.inf, slope), 0.0) if slope != 0 else (0.0, 1.0)
    else:
        t = slope / stderr
        p = t_two_sided_p(t, dof)
    start, end = intercept + slope * x_all[0], intercept + slope * x_all[-1]
    scale = float(np.mean(np.abs(y)))
    growth = (end - start) / scale if scale > 0 else (0.0 if slope == 0 else math.inf)
    significant = bool(slope > 0 and p < alpha)  # p comes from numpy: keep plain bools in results
    return TrendFit(n, slope, intercept, stderr, t, p, growth, start, end, significant,
                    significant and growth >= min_growth, nonfinite)  # fmt: skip


def t_two_sided_p(t: float, dof: int) -> float:
    """P(|T| >= |t|) for Student's t with `dof` degrees of freedom: I_{dof/(dof+t^2)}(dof/2, 1/2)."""
    if not math.isfinite(t):
        return 0.0
    x = dof / (dof + t * t)
    return min(1.0, max(0.0, _betainc(dof / 2.0, 0.5, x)))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h

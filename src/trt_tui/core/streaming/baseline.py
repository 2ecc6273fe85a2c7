""""Is candidate X worse than ONNX Runtime FP32 against the reference?", answered per output from the two
per-chunk error series of one run (the seeds' first troubleshooting question).

Both series come from the same chunks and the same reference, so they are compared pair by pair: a sign
test on how many chunks the candidate's error is the larger (ties left out), one-sided. The candidate is
WORSE when it is larger on significantly many chunks (p < alpha) and its p95 is higher too; otherwise it
is "not worse" (comparable, or better when the baseline is the larger on significantly many chunks).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.01


@dataclass(frozen=True)
class BaselineAnswer:
    candidate: str
    baseline: str
    output: str
    metric: str
    candidate_p95: float
    baseline_p95: float
    larger: int  # chunks where the candidate's error is the larger
    smaller: int
    p_worse: float  # one-sided sign-test p-values
    p_better: float
    verdict: str  # "worse", "better" or "comparable"

    @property
    def worse(self) -> bool:
        return self.verdict == "worse"

    def sentence(self) -> str:
        ratio = self.candidate_p95 / self.baseline_p95 if self.baseline_p95 > 0 else float("inf")
        ratio_s = f", {ratio:.2g}x" if math.isfinite(ratio) else ""
        head = {"worse": "YES, worse than", "better": "no, better than", "comparable": "no, comparable to"}[self.verdict]
        return (f"is {self.candidate} worse than {self.baseline} against the reference on {self.output}? {head} it: "
                f"p95 {self.metric} {self.candidate_p95:.2g} vs {self.baseline_p95:.2g}{ratio_s}; larger on "
                f"{self.larger}/{self.larger + self.smaller} chunks (sign test p={self.p_worse:.2g})")  # fmt: skip

    def to_json(self) -> dict:
        return {**{k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in asdict(self).items()},
                "sentence": self.sentence()}  # fmt: skip


def sign_test(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): exact, with integers (n of a few thousand is fine)."""
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / (1 << n)


def compare(candidate: str, baseline: str, output: str, metric: str, cand: list[float], base: list[float],
            alpha: float = ALPHA) -> BaselineAnswer:  # fmt: skip
    a = np.asarray(cand, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    a_cmp = np.where(np.isfinite(a), a, np.inf)
    b_cmp = np.where(np.isfinite(b), b, np.inf)
    larger = int(np.sum(a_cmp > b_cmp))
    smaller = int(np.sum(a_cmp < b_cmp))
    p_worse = sign_test(larger, larger + smaller)
    p_better = sign_test(smaller, larger + smaller)
    pa = _p95(a)
    pb = _p95(b)
    if p_worse < alpha and pa > pb:
        verdict = "worse"
    elif p_better < alpha and pa < pb:
        verdict = "better"
    else:
        verdict = "comparable"
    return BaselineAnswer(candidate, baseline, output, metric, pa, pb, larger, smaller, p_worse, p_better, verdict)


def versus_baseline(reports: dict, baseline: str, outputs: tuple[str, ...], metric: str) -> list[BaselineAnswer]:
    """Every other candidate against `baseline`, per output."""
    base = reports.get(baseline)
    if base is None:
        return []
    out = []
    for label, report in reports.items():
        if label == baseline:
            continue
        for name in outputs:
            a, b = report.metric_series(name, metric), base.metric_series(name, metric)
            if a and b:
                out.append(compare(label, baseline, name, metric, a, b))
    return out


def _p95(x: np.ndarray) -> float:
    if x.size == 0:
        return float("nan")
    if not np.all(np.isfinite(x)) and np.mean(~np.isfinite(x)) > 0.05:
        return float("inf")
    f = x[np.isfinite(x)]
    return float(np.quantile(f, 0.95)) if f.size else float("nan")

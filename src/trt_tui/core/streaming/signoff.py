"""The seeds' sign-off table, from a stream report and the contract's acceptance criteria.

    | Metric                          | Target                | Actual                        | Status |
    | p95 encoder_output max_abs      | < 5e-4                | 6.6e-4                        | FAIL   |
    | encoder_output chunks <= 5e-4   | >= 80%                | 90% (45/50)                   | PASS   |
    | encoder_output max_abs / chunk  | warn > 5e-4, fail > 1e-3 | max 6.4e-4; 5 chunks > 5e-4 | WARN   |
    | contract invariants             | 100%                  | 100% (150 checks)             | PASS   |
    | error accumulation              | none                  | slope -3e-7/chunk, p=0.41     | PASS   |

Percentiles are numpy's (linear interpolation) over the run's per-chunk errors; p100 is the maximum. WARN
never fails a run; FAIL does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True)
class SignoffRow:
    metric: str
    target: str
    actual: str
    status: str  # PASS, WARN or FAIL
    value: float | None = None

    def to_json(self) -> dict:
        v = self.value
        return {"metric": self.metric, "target": self.target, "actual": self.actual, "status": self.status,
                "value": v if v is None or math.isfinite(v) else str(v)}  # fmt: skip


def g(v: float) -> str:
    """2 significant digits, small numbers as the seeds write them (5e-4, 1.3e-3)."""
    if not math.isfinite(v):
        return str(v)
    if v and abs(v) < 0.01:
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.removesuffix('.0')}e{int(exp)}"
    return f"{v:.2g}"


def criterion_rows(criteria, series_of) -> list[SignoffRow]:
    """Rows of the contract's per-output criteria; `series_of(output, metric)` is the per-chunk error list."""
    rows = []
    for c in criteria:
        series = [float(x) for x in series_of(c.output, c.metric)]
        if not series:
            continue
        arr = np.asarray(series, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        nonfinite = arr.size - finite.size
        for q, limit in c.percentiles:
            label = f"p{q * 100:g} {c.output} {c.metric}"
            value = float("inf") if nonfinite and q >= 1.0 else (float(np.quantile(finite, q)) if finite.size else float("nan"))
            ok = math.isfinite(value) and value < limit
            rows.append(SignoffRow(label, f"< {g(limit)}", g(value), PASS if ok else FAIL, value))
        if c.within is not None and c.min_rate is not None:
            k = int(np.sum(finite <= c.within))
            rate = k / arr.size
            rows.append(SignoffRow(f"{c.output} chunks with {c.metric} <= {g(c.within)}", f">= {c.min_rate:.0%}",
                                   f"{rate:.0%} ({k}/{arr.size})", PASS if rate >= c.min_rate else FAIL, rate))  # fmt: skip
        if c.warn_above is not None or c.fail_above is not None:
            worst = float("inf") if nonfinite else (float(finite.max()) if finite.size else float("nan"))
            parts, status, target = [f"max {g(worst)}"], PASS, []
            if c.warn_above is not None:
                n_warn = int(np.sum(~(arr <= c.warn_above)))
                parts.append(f"{n_warn} chunk(s) > {g(c.warn_above)}")
                target.append(f"warn > {g(c.warn_above)}")
                status = WARN if n_warn else status
            if c.fail_above is not None:
                n_fail = int(np.sum(~(arr <= c.fail_above)))
                parts.append(f"{n_fail} > {g(c.fail_above)}")
                target.append(f"fail > {g(c.fail_above)}")
                status = FAIL if n_fail else status
            rows.append(SignoffRow(f"{c.output} {c.metric} per chunk", ", ".join(target), "; ".join(parts), status, worst))
    return rows


def report_rows(report) -> list[SignoffRow]:
    """Every row of a StreamReport's sign-off: criteria, tolerance pass rate, invariants, accumulation."""
    rows = criterion_rows(report.criteria, report.metric_series)
    n = report.chunks_run
    passed = sum(r.passed for r in report.results)
    rows.append(SignoffRow("chunks within the tolerances", f">= {report.min_pass_rate:.0%}", f"{report.pass_rate:.0%} ({passed}/{n})",
                           PASS if n and report.pass_rate >= report.min_pass_rate else FAIL, report.pass_rate))  # fmt: skip
    checks = sum(len(r.invariants) for r in report.results)
    bad = len(report.invariant_failures)
    if checks:
        rate = 1 - bad / checks
        rows.append(SignoffRow("contract invariants", "100%", f"{rate:.1%} ({checks - bad}/{checks} checks)", PASS if not bad else FAIL, rate))
    for name in report.trend_outputs:
        fit = report.trends.get(name)
        if fit is None or fit.n < 3:
            continue
        status = (FAIL if report.fail_on_growth else WARN) if fit.growing else PASS
        rows.append(SignoffRow(f"{name} error accumulation", "none", f"slope {fit.slope:+.2g}/chunk, p={fit.p_value:.2g}", status, fit.slope))
    return rows


def table_lines(rows: list[SignoffRow]) -> list[str]:
    """A Markdown table, as the seeds write it."""
    head = ("Metric", "Target", "Actual", "Status")
    cells = [head] + [(r.metric, r.target, r.actual, r.status) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    fmt = lambda c: "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths)) + " |"  # noqa: E731
    return [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(c) for c in cells[1:])]

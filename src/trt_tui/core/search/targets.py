"""What a pin set must achieve: per-output targets, or the preset's tolerances, checked on every sample.

A target is `OUTPUT:METRIC<=VALUE` (`cosine>=VALUE`), or `METRIC<=VALUE` for every graph output. Metrics are
the parity engine's (`LayerDrift`): rel_rms, max_abs, p99_abs (upper bounds) and cosine (a lower bound).
Without targets, the tolerance policy (a preset's `[comparison]`, Polygraphy's pass/fail semantics) decides.
Over several samples the worst sample counts: a set passes only when it passes on all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.parity.metrics import LayerDrift, TolerancePolicy, merge_iterations, tensor_drift
from trt_tui.core.tolerance import LOWER_METRICS, METRICS, UPPER_METRICS, Target, parse_target  # noqa: F401 - re-exported

@dataclass
class OutputCheck:
    """One output over all samples: its worst-sample drift row and whether every check passed."""

    name: str
    drift: LayerDrift
    passed: bool
    failed: list[str]  # target texts (or "tolerance") that failed
    # target / error: below 1, by how much the error must shrink to pass; above 1, the slack a passing output
    # has (0.0: non-finite or unknown; inf: no error). The search scales its error model with it
    fraction: float = 1.0

    def metrics(self) -> dict[str, float]:
        d = self.drift
        return {"rel_rms": d.rel_rms, "max_abs": d.max_abs, "p99_abs": d.p99_abs, "cosine": d.cosine,
                "nonfinite": d.nonfinite_cand}  # fmt: skip


class Criterion:
    """Checks candidate outputs against reference outputs, for the chosen outputs of the model."""

    def __init__(self, outputs: list[str], targets: list[Target] | None = None, policy: TolerancePolicy | None = None):
        if not targets and policy is None:
            raise UserError("no target: give --target OUTPUT:METRIC<=VALUE or a --preset with [comparison] tolerances")
        self.targets = list(targets or [])
        self.policy = policy or TolerancePolicy()
        unknown = sorted({t.output for t in self.targets if t.output and t.output not in outputs})
        if unknown:
            raise UserError(f"--target names no graph output {', '.join(map(repr, unknown))}; outputs are {', '.join(outputs)}")
        # outputs that are checked; with only per-output targets, the others are measured but not checked
        every = not self.targets or any(t.output is None for t in self.targets)
        self.outputs = list(outputs) if every else [o for o in outputs if any(t.output == o for t in self.targets)]

    def targets_for(self, output: str) -> list[Target]:
        return [t for t in self.targets if t.output in (None, output)]

    def describe(self) -> list[str]:
        if self.targets:
            return [t.text for t in self.targets]
        return [f"tolerances ({self.policy.default.stat}, atol {self.policy.default.atol:g}, rtol {self.policy.default.rtol:g}"
                f"{', ' + str(len(self.policy.rules)) + ' per-output rules' if self.policy.rules else ''})"]  # fmt: skip

    def check(self, refs: list[dict[str, np.ndarray]], cands: list[dict[str, np.ndarray]]) -> dict[str, OutputCheck]:
        """Per checked output: the worst sample's drift and pass/fail over every sample."""
        out = {}
        for name in self.outputs:
            shapes = next(((np.shape(r[name]), np.shape(c[name])) for r, c in zip(refs, cands)
                           if np.shape(r[name]) != np.shape(c[name])), None)  # fmt: skip
            if shapes is not None:  # low precision changed the output's shape (a Range limit, a count): it fails
                out[name] = self._other_shape(name, *shapes)
                continue
            rows = [tensor_drift(name, r[name], c[name], self.policy.for_tensor(name), top_k=0) for r, c in zip(refs, cands)]
            out[name] = self._judge(name, rows)
        return out

    def _other_shape(self, name: str, ref: tuple, cand: tuple) -> OutputCheck:
        inf, nan = math.inf, math.nan
        drift = LayerDrift(name, list(ref), "float32", inf, inf, inf, inf, inf, nan, 0, 0, 0.0, [], nan, nan, False,
                           self.policy.for_tensor(name))  # fmt: skip
        return OutputCheck(name, drift, False, [f"shape {list(cand)} where the reference has {list(ref)}"], 0.0)

    def _judge(self, name: str, rows: list[LayerDrift]) -> OutputCheck:
        merged = merge_iterations(rows)
        failed = []
        fraction = math.inf
        targets = self.targets_for(name)
        if targets:
            for t in targets:
                values = [getattr(r, t.metric) for r in rows]
                if t.op == ">=":
                    worst = min(values, key=lambda v: -math.inf if math.isnan(v) else v)
                else:
                    worst = max(values, key=lambda v: math.inf if math.isnan(v) else v)
                nonfinite = any(r.nonfinite_difference() for r in rows)
                if not t.met_by(worst) or nonfinite:
                    failed.append(t.text)
                fraction = min(fraction, 0.0 if nonfinite else _shrink(t, worst))
        else:
            d = merged  # Polygraphy's check passes when either statistic gets within its tolerance
            tol = d.tolerance
            ratios = [b / v for b, v in ((tol.atol, d.required_atol), (tol.rtol, d.required_rtol)) if v > 0 and math.isfinite(v)]
            if not merged.passed:
                failed.append("tolerance")
                fraction = max(ratios, default=0.0)
            else:
                fraction = max(ratios, default=math.inf)
        return OutputCheck(name, merged, not failed, failed, fraction)


def _shrink(t: Target, measured: float) -> float:
    """The factor the error must shrink by to meet `t` (errors scale alike; 1 - cosine goes as error^2)."""
    if not math.isfinite(measured):
        return 0.0
    if t.metric == "cosine":
        gap, allowed = 1.0 - measured, 1.0 - t.value
        if gap <= 0:
            return math.inf
        return math.sqrt(allowed / gap) if allowed > 0 else 0.0
    return t.value / measured if measured > 0 else math.inf

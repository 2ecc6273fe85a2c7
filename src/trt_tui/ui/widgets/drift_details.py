"""Drill-down for one compared tensor: metrics, |diff| distribution, the worst element, its node and pins."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.metrics import LayerDrift
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.drift_table import fmt

BAR = 24


def _bar(value: float, lo: float, hi: float) -> str:
    """A log-scale bar of `value` between lo and hi (|diff| spans decades)."""
    if not math.isfinite(value) or value <= 0:
        return "█" * BAR if not math.isfinite(value) else ""
    span = max(hi - lo, 1e-9)
    frac = (math.log10(value) - lo) / span
    return "█" * max(1, round(BAR * min(max(frac, 0.0), 1.0)))


def drift_renderable(d: LayerDrift, index: GraphIndex | None, selection: PinSelection | None) -> Group:
    verdict = Text("within tolerance", style="green") if d.passed else Text("OUTSIDE tolerance", style="bold red")
    head = Table.grid(padding=(0, 1))
    head.add_column(style="dim", no_wrap=True)
    head.add_column()
    head.add_row("tensor", Text(d.name, style="bold"))
    head.add_row("node", f"{d.node or '?'} ({d.op_type or '?'}, #{d.topo_index})")
    head.add_row("shape", f"{d.dtype} {'x'.join(map(str, d.shape)) or 'scalar'}")
    head.add_row("verdict", verdict)
    t = d.tolerance
    head.add_row("tolerance", f"atol {t.atol:g} rtol {t.rtol:g} ({t.stat})")
    head.add_row("needs", f"atol ≥ {fmt(d.required_atol)} or rtol ≥ {fmt(d.required_rtol)}")
    metrics = Table.grid(padding=(0, 1))
    metrics.add_column(style="dim")
    metrics.add_column(justify="right")
    for label, value in (("rel_rms", d.rel_rms), ("cosine", d.cosine), ("headroom", d.headroom)):
        metrics.add_row(label, fmt(value))
    if d.nonfinite_ref or d.nonfinite_cand:
        metrics.add_row("inf/nan", Text(f"ref {d.nonfinite_ref}, cand {d.nonfinite_cand}", style="bold red"))
    # |diff| distribution from the statistics the engine keeps (it drops the arrays after reducing them)
    dist = [("mean", d.mean_abs), ("p50", d.median_abs), *sorted(d.quantiles.items(), key=lambda kv: kv[1]),
            ("p99", d.p99_abs), ("max", d.max_abs)]  # fmt: skip
    seen: set[str] = set()
    dist = [(k, v) for k, v in dist if not (k in seen or seen.add(k))]
    positive = [math.log10(v) for _, v in dist if math.isfinite(v) and v > 0]
    lo, hi = (min(positive) - 0.5, max(positive)) if positive else (0.0, 1.0)
    hist = Table(title="|diff| distribution (log scale)", title_justify="left", title_style="bold", box=None,
                 show_header=False, padding=(0, 1))  # fmt: skip
    hist.add_column(style="dim")
    hist.add_column(justify="right")
    hist.add_column(style="red" if not d.passed else "green")
    for label, value in dist:
        hist.add_row(label, fmt(value), _bar(value, lo, hi))
    worst = Text("worst element ", style="bold")
    worst.append(f"[{', '.join(map(str, d.worst_index))}]\n", style="cyan")
    worst.append(f"  reference {d.worst_ref:.6g}\n  candidate {d.worst_cand:.6g}\n  |diff|    {fmt(d.max_abs)}")
    parts: list = [head, metrics, hist, worst]
    if selection is not None and d.node:
        reasons = selection.reasons(d.node)
        pins = Text("node pins: ", style="bold")
        pins.append(", ".join(reasons) if reasons else "not pinned (press p to pin it to FP32 and re-run)",
                    style="magenta" if reasons else "dim")  # fmt: skip
        parts.append(pins)
    return Group(*parts)


class DriftDetails(VerticalScroll):
    drift: LayerDrift | None = None

    def compose(self):
        yield Static("Run a comparison (r), then select a tensor to drill into its drift.", id="drift-body")

    def show(self, drift: LayerDrift | None, index: GraphIndex | None, selection: PinSelection | None) -> None:
        self.drift = drift
        body = self.query_one("#drift-body", Static)
        if drift is None:
            body.update("Run a comparison (r), then select a tensor to drill into its drift.")
        else:
            body.update(drift_renderable(drift, index, selection))

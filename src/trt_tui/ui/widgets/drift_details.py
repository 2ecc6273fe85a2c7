"""Drill-down for one compared tensor: metrics, |diff| histogram, the worst elements, its node and pins."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from trt_tui.ui.plain import plain_text
from textual.containers import VerticalScroll
from textual.widgets import Static

from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.metrics import LayerDrift
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.drift_table import fmt

BAR = 16
WORST_ROWS = 8


def _bar(count: int, top: int) -> str:
    """A linear bar of `count` out of the largest bucket; any non-empty bucket gets at least one cell."""
    if count <= 0 or top <= 0:
        return ""
    return "█" * max(1, round(BAR * count / top))


def _count(n: int) -> str:
    return f"{n:,}" if n < 100_000 else f"{n:.3g}"


def histogram_table(d: LayerDrift) -> Table | None:
    """|diff| counts per decade bucket, from the first to the last non-empty decade (empty ones between stay:
    a gap is information), exact zeros and non-finite only when present."""
    if not d.histogram or not any(d.histogram.values()):
        return None
    items = list(d.histogram.items())
    ranged = [i for i, (label, n) in enumerate(items) if n and label not in ("0", "nonfinite")]
    rows = [items[i] for i in range(ranged[0], ranged[-1] + 1)] if ranged else []
    if d.histogram.get("0"):
        rows.insert(0, ("0", d.histogram["0"]))
    if d.histogram.get("nonfinite"):
        rows.append(("nonfinite", d.histogram["nonfinite"]))
    total = sum(d.histogram.values())
    size = f"{d.iterations} × {_count(total // d.iterations)}" if d.iterations > 1 else _count(total)
    title = f"|diff| histogram ({size} elements)"
    table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False, padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    top = max(n for _, n in rows)
    for label, n in rows:
        style = "bold red" if label == "nonfinite" else ("red" if not d.passed else "green")
        table.add_row(label, _count(n), Text(_bar(n, top), style=style))
    return table


def worst_table(d: LayerDrift) -> Table | None:
    """The worst elements with their indices and both values (exact ties at |diff| 0 say nothing: left out)."""
    rows = [e for e in d.worst[:WORST_ROWS] if e["abs"] != 0]
    if not rows:
        return None
    table = Table(title="worst elements", title_justify="left", title_style="bold", box=None, padding=(0, 1, 0, 0),
                  header_style="dim", pad_edge=False)  # fmt: skip  one space between columns: it must fit 41 cells
    several = d.iterations > 1
    if several:
        table.add_column("it", justify="right", no_wrap=True)
    table.add_column("index", style="cyan", no_wrap=True)
    for label in ("reference", "candidate", "|diff|"):
        table.add_column(label, justify="right", no_wrap=True)
    for e in rows:
        cells = [f"[{','.join(map(str, e['index']))}]", f"{e['ref']:.6g}", f"{e['cand']:.6g}", fmt(e["abs"])]
        table.add_row(*([str(e["iteration"])] if several else []), *cells)
    return table


def drift_renderable(d: LayerDrift, index: GraphIndex | None, selection: PinSelection | None) -> Group:
    verdict = Text("within tolerance", style="green") if d.passed else Text("OUTSIDE tolerance", style="bold red")
    head = Table.grid(padding=(0, 1))
    head.add_column(style="dim", no_wrap=True)
    head.add_column()
    head.add_row("tensor", plain_text(d.name, "bold"))
    head.add_row("node", plain_text(f"{d.node or '?'} ({d.op_type or '?'}, #{d.topo_index})"))
    head.add_row("shape", f"{d.dtype} {'x'.join(map(str, d.shape)) or 'scalar'}")
    head.add_row("verdict", verdict)
    t = d.tolerance
    head.add_row("tolerance", f"atol {t.atol:g} rtol {t.rtol:g} ({t.stat})")
    head.add_row("needs", f"atol ≥ {fmt(d.required_atol)} or rtol ≥ {fmt(d.required_rtol)}")
    # metrics and |diff| statistics side by side, two pairs a line: the histogram below needs the height
    stats = [("rel_rms", d.rel_rms), ("cosine", d.cosine), ("headroom", d.headroom), ("mean", d.mean_abs),
             ("p50", d.median_abs), *sorted(d.quantiles.items(), key=lambda kv: kv[1]), ("p99", d.p99_abs),
             ("max", d.max_abs)]  # fmt: skip
    seen: set[str] = set()
    stats = [(k, v) for k, v in stats if not (k in seen or seen.add(k))]
    metrics = Table.grid(padding=(0, 1))
    for _ in range(2):
        metrics.add_column(style="dim", no_wrap=True)
        metrics.add_column(justify="right", no_wrap=True)
    for i in range(0, len(stats), 2):
        pair = stats[i : i + 2]
        metrics.add_row(*(cell for k, v in pair for cell in (k, fmt(v))))
    parts: list = [head, metrics]
    if d.nonfinite_ref or d.nonfinite_cand:
        parts.append(Text(f"inf/nan: ref {d.nonfinite_ref}, cand {d.nonfinite_cand}", style="bold red"))
    parts.extend(x for x in (histogram_table(d), worst_table(d)) if x is not None)
    if not d.worst:  # rows made without the element summaries (e.g. an equal-integer shortcut): the one worst
        worst = Text("worst element ", style="bold")
        worst.append(f"[{', '.join(map(str, d.worst_index))}]\n", style="cyan")
        worst.append(f"  reference {d.worst_ref:.6g}\n  candidate {d.worst_cand:.6g}\n  |diff|    {fmt(d.max_abs)}")
        parts.append(worst)
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

"""The live parity table: one row per compared tensor (LayerDrift), appended as batches finish."""

from __future__ import annotations

import math

from rich.text import Text

from trt_tui.core.parity.metrics import LayerDrift
from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable

SORT_KEYS = ("topo_index", "rel_rms", "max_abs", "p99_abs", "cosine")
PASS = Text("ok", style="green")
FAIL = Text("FAIL", style="bold red")


def fmt(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def drift_cells(d: LayerDrift) -> tuple:
    nonfinite = f"{d.nonfinite_ref}/{d.nonfinite_cand}" if (d.nonfinite_ref or d.nonfinite_cand) else ""
    return (
        PASS if d.passed else FAIL,
        str(d.topo_index if d.topo_index is not None else ""),
        d.name,
        fmt(d.rel_rms),
        fmt(d.max_abs),
        fmt(d.p99_abs),
        fmt(d.cosine),
        Text(nonfinite, style="bold red") if nonfinite else "",
        d.op_type or "",
    )


def sort_value(d: LayerDrift, key: str) -> tuple:
    """Worst first for metrics (cosine: lowest first), graph order for topo_index; NaN is the worst."""
    if key == "topo_index":
        return (d.topo_index if d.topo_index is not None else 1 << 30,)
    v = getattr(d, key)
    if math.isnan(v):
        return (0, 0.0)
    return (1, v if key == "cosine" else -v)


class DriftTable(FastTable):
    """The metrics must stay on screen whatever the names: the tensor column is flex (it gets what the fixed
    metric columns leave, eliding the middle of long names), the op type goes last (it is in the drill-down
    too) and columns are one space apart."""

    CELL_GAP = 1
    DEFAULT_CSS = "DriftTable " + FLEX_CSS

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drifts: dict[str, LayerDrift] = {}
        self.failing_only = False
        self.sort_key = "topo_index"
        self.add_column("", "pass", width=4)
        self.add_column("#", "topo", max_width=6)
        self.add_column("tensor", "tensor", max_width=160, flex=True, min_width=12, overflow="middle")
        for label, key, width in (("rel_rms", "rel_rms", 8), ("max_abs", "max_abs", 8), ("p99_abs", "p99_abs", 8),
                                  ("cosine", "cosine", 8), ("inf/nan", "nonfinite", 7)):  # fmt: skip
            self.add_column(label, key, width=width)  # fmt() gives at most 8 characters for these ("1.23e-05")
        self.add_column("op", "op", max_width=20, keep_visible=False)

    NARROW = 90  # below this width p99_abs and cosine step aside (the drill-down shows them) for the name

    def on_resize(self) -> None:
        width = 0 if self.size.width < self.NARROW else 8
        for key in ("p99_abs", "cosine"):
            if self.columns[self._col_index[key]].width != width:
                self.columns[self._col_index[key]].width = width
        super().on_resize()
        self._resize()

    def reset(self) -> None:
        self.drifts = {}
        self.highlighted_keys = set()
        self.set_rows([])

    def _visible(self, drifts: list[LayerDrift]) -> list[LayerDrift]:
        return [d for d in drifts if not d.passed] if self.failing_only else drifts

    def add_drifts(self, drifts: list[LayerDrift]) -> None:
        """A batch arrived: append (or, when sorted by a metric, re-sort; only visible rows are drawn)."""
        for d in drifts:
            self.drifts[d.name] = d
        if self.sort_key == "topo_index":
            self.append_rows((d.name, drift_cells(d)) for d in self._visible(drifts))
        else:
            self.rebuild()

    def rebuild(self) -> None:
        rows = sorted(self.drifts.values(), key=lambda d: sort_value(d, self.sort_key))
        self.set_rows(((d.name, drift_cells(d)) for d in self._visible(rows)), keep_key=self.cursor_key)

    def drift_at_cursor(self) -> LayerDrift | None:
        key = self.cursor_key
        return self.drifts.get(key) if key is not None else None

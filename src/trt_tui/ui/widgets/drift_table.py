"""The live parity table: one row per compared tensor (LayerDrift), appended as batches finish."""

from __future__ import annotations

import math

from rich.text import Text

from trt_tui.core.parity.metrics import LayerDrift
from trt_tui.ui.widgets.fast_table import FastTable

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
        d.op_type or "",
        d.name,
        fmt(d.rel_rms),
        fmt(d.max_abs),
        fmt(d.p99_abs),
        fmt(d.cosine),
        Text(nonfinite, style="bold red") if nonfinite else "",
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
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.drifts: dict[str, LayerDrift] = {}
        self.failing_only = False
        self.sort_key = "topo_index"
        for label, key, width in (("", "pass", 4), ("#", "topo", 5), ("op", "op", None), ("tensor", "tensor", None),
                                  ("rel_rms", "rel_rms", 9), ("max_abs", "max_abs", 9), ("p99_abs", "p99_abs", 9),
                                  ("cosine", "cosine", 9), ("inf/nan", "nonfinite", 7)):  # fmt: skip
            self.add_column(label, key, width=width, max_width=48 if key == "tensor" else 20)

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

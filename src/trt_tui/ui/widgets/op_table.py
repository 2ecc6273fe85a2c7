"""Op types with counts and how many of each are pinned; selecting one filters the node table."""

from __future__ import annotations

from rich.text import Text

from trt_tui.core.graph import GraphIndex
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.fast_table import FastTable

ALL = "__all__"


class OpTypeTable(FastTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_column("op type", "op", max_width=20)
        self.add_column("count", "count", width=6)
        self.add_column("FP32", "pinned", width=4)

    def rows_for(self, index: GraphIndex, selection: PinSelection | None) -> list[tuple[str, tuple]]:
        pinned = _pinned_by_op(index, selection)
        rows: list[tuple[str, tuple]] = [(ALL, (Text("(all)", style="italic"), str(len(index.nodes)), ""))]
        for op, n in sorted(index.op_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append((op, (op, str(n), _pin_text(pinned.get(op, 0), n))))
        return rows

    def update_pins(self, index: GraphIndex, selection: PinSelection) -> None:
        pinned = _pinned_by_op(index, selection)
        for op, n in index.op_counts.items():
            self.update_cell(op, "pinned", _pin_text(pinned.get(op, 0), n))

    def op_at_cursor(self) -> str | None:
        key = self.cursor_key
        return None if key in (None, ALL) else key


def _pinned_by_op(index: GraphIndex, selection: PinSelection | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    if selection is None:
        return counts
    for name in selection.pinned:
        node = index.node(name)
        if node is not None:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _pin_text(pinned: int, total: int) -> Text | str:
    if not pinned:
        return ""
    return Text("all" if pinned == total else str(pinned), style="bold magenta")

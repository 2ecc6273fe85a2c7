"""The node table: one row per node (pin, index, name, op, output dtype/shape, flags, scope).

The name is what users read and search: it comes right after the pin and index and takes the width the
viewport leaves (the columns after it scroll into view to the right when it needs all of it)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from trt_tui.core.graph import GraphIndex, NodeInfo
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable

PIN = Text("FP32", style="bold magenta")
NO_PIN = ""


def _output_text(index: GraphIndex, node: NodeInfo) -> tuple[str, str]:
    for name in node.outputs:
        if name:
            info = index.tensor(name)
            if info is None:
                return "?", "?"
            return info.dtype or "?", info.shape_text()
    return "", ""


def _flags_text(node: NodeInfo) -> Text | str:
    if "trtexec-unsafe-name" in node.flags:
        return Text("⚠ trtexec", style="yellow")
    if "duplicate-name" in node.flags:
        return Text("⚠ dup", style="yellow")
    if "in-subgraph" in node.flags:
        return Text("sub", style="dim")
    return ""


@dataclass
class NodeRows:
    """Everything the table shows per node except the pin, built once per model (in the loader thread)."""

    index: GraphIndex
    cells: list[tuple]  # per position in index.nodes: (#, name, op, dtype, shape, flags, scope)
    positions: dict[str, list[int]]  # node name -> positions (names can repeat)
    position_of: dict[int, int]  # id(node) -> position
    widths: dict[str, int]  # widest cell per column over all nodes (the table never re-measures on filter)

    @classmethod
    def build(cls, index: GraphIndex) -> NodeRows:
        cells, positions, position_of = [], {}, {}
        for pos, node in enumerate(index.nodes):
            dtype, shape = _output_text(index, node)
            cells.append((str(node.topo_index), node.name, node.op_type, dtype, shape, _flags_text(node), node.scope))
            positions.setdefault(node.name, []).append(pos)
            position_of[id(node)] = pos
        keys = ("idx", "name", "op", "dtype", "shape", "flags", "scope")
        widths = {k: max((len(str(c[i])) for c in cells), default=0) for i, k in enumerate(keys)}
        return cls(index, cells, positions, position_of, widths)


def _drift_cell(value: float | None) -> Text | str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return Text(str(value), style="bold red")
    style = "red" if value >= 1e-2 else "yellow" if value >= 1e-3 else "green"
    return Text(f"{value:.2g}", style=style)


def node_drift(result) -> dict[str, float]:
    """Node name -> the largest rel_rms among its compared outputs (NaN counts as the worst)."""
    out: dict[str, float] = {}
    for d in result.tensors:
        if d.node:
            v = math.inf if math.isnan(d.rel_rms) else d.rel_rms
            out[d.node] = max(out.get(d.node, -1.0), v)
    return out


class NodeTable(FastTable):
    """Rows are keyed by the node's position in `index.nodes` (names can repeat)."""

    DEFAULT_CSS = "NodeTable " + FLEX_CSS

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model: NodeRows | None = None
        self.drift: dict[str, float] = {}
        self._row_cache: list[tuple[str, tuple]] = []
        self.add_column("pin", "pin", width=4)
        self.add_column("#", "idx", max_width=6)
        self.add_column("drift", "drift", width=0)  # rel_rms of the node's worst output: shown after a comparison
        self.add_column("name", "name", max_width=160, flex=True, min_width=12, overflow="middle")
        self.add_column("op", "op", max_width=22, keep_visible=False)
        self.add_column("dtype", "dtype", max_width=8, keep_visible=False)
        self.add_column("shape", "shape", max_width=20, keep_visible=False)
        self.add_column("flags", "flags", width=9, keep_visible=False)
        self.add_column("scope", "scope", max_width=50, keep_visible=False)

    @property
    def index(self) -> GraphIndex | None:
        return self.model.index if self.model is not None else None

    def set_model(self, model: NodeRows, selection: PinSelection | None) -> None:
        self.model = model
        self.set_content_widths(model.widths)
        pinned = selection.pinned if selection is not None else frozenset()
        nodes = model.index.nodes
        # every row, ready to show; pin edits patch the entries they change, filters only pick from it
        drift = self.drift
        self._row_cache = [
            (str(pos), (PIN if nodes[pos].name in pinned else NO_PIN, cells[0], _drift_cell(drift.get(nodes[pos].name)),
                        *cells[1:]))
            for pos, cells in enumerate(model.cells)
        ]  # fmt: skip

    def set_drift(self, drift: dict[str, float], selection: PinSelection | None) -> None:
        """Node name -> rel_rms from the last comparison (the drift column); rows are rebuilt once."""
        self.drift = drift
        self.set_column_width("drift", 7 if drift else 0)
        if self.model is not None:
            self.set_model(self.model, selection)

    def rows_for(self, nodes: list[NodeInfo]) -> list[tuple[str, tuple]]:
        assert self.model is not None
        position_of, cache = self.model.position_of, self._row_cache
        return [cache[position_of[id(node)]] for node in nodes]

    def node_at_cursor(self) -> NodeInfo | None:
        key = self.cursor_key
        if self.model is None or key is None:
            return None
        return self.model.index.nodes[int(key)]

    def update_pins(self, changed: Iterable[str], selection: PinSelection) -> None:
        """Refresh the pin cell of changed nodes only (the column has a fixed width)."""
        if self.model is None:
            return
        for name in changed:
            pin = PIN if selection.is_pinned(name) else NO_PIN
            for pos in self.model.positions.get(name, ()):
                key, cells = self._row_cache[pos]
                self._row_cache[pos] = (key, (pin, *cells[1:]))
                self.update_cell(key, "pin", pin)

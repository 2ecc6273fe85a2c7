"""The node table: one row per node (pin, index, name, op, scope, output dtype/shape, flags)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from trt_tui.core.graph import GraphIndex, NodeInfo
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.chunked_table import ChunkedTable

PIN = Text("FP32", style="bold magenta")
NO_PIN = Text("")


def _output_text(index: GraphIndex, node: NodeInfo) -> tuple[str, str]:
    for name in node.outputs:
        if name:
            info = index.tensor(name)
            if info is None:
                return "?", "?"
            return info.dtype or "?", info.shape_text()
    return "", ""


def _flags_text(node: NodeInfo) -> Text:
    if "trtexec-unsafe-name" in node.flags:
        return Text("⚠ trtexec", style="yellow")
    if "duplicate-name" in node.flags:
        return Text("⚠ dup", style="yellow")
    if "in-subgraph" in node.flags:
        return Text("sub", style="dim")
    return Text("")


class NodeTable(ChunkedTable):
    """Rows are keyed by the node's position in `index.nodes` (names can repeat)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index: GraphIndex | None = None
        self._pos: dict[str, list[int]] = {}  # name -> positions

    def on_mount(self) -> None:
        self.add_column("pin", key="pin", width=4)
        self.add_column("#", key="idx", width=5)
        self.add_column("op", key="op")
        self.add_column("name", key="name")
        self.add_column("dtype", key="dtype")
        self.add_column("shape", key="shape")
        self.add_column("flags", key="flags", width=9)
        self.add_column("scope", key="scope")

    def set_index(self, index: GraphIndex) -> None:
        self.index = index
        self._pos = {}
        for pos, node in enumerate(index.nodes):
            self._pos.setdefault(node.name, []).append(pos)
        self._position = {id(n): i for i, n in enumerate(index.nodes)}

    def rows_for(self, nodes: list[NodeInfo], selection: PinSelection | None) -> list[tuple[str, tuple]]:
        index = self.index
        assert index is not None
        pinned = selection.pinned if selection is not None else frozenset()
        position = self._position
        rows = []
        for node in nodes:
            dtype, shape = _output_text(index, node)
            rows.append(
                (
                    str(position[id(node)]),
                    (PIN if node.name in pinned else NO_PIN, str(node.topo_index), node.op_type, node.name,
                     dtype, shape, _flags_text(node), node.scope),
                )
            )  # fmt: skip
        return rows

    def node_at_cursor(self) -> NodeInfo | None:
        if self.index is None or self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
        return self.index.nodes[int(key)] if key is not None else None

    def update_pins(self, changed: Iterable[str], selection: PinSelection) -> None:
        """Refresh the pin cell of changed nodes only (no width re-measuring: the column is fixed)."""
        for name in changed:
            for pos in self._pos.get(name, ()):
                key = str(pos)
                if key in self.rows:
                    self.update_cell(key, "pin", PIN if selection.is_pinned(name) else NO_PIN)

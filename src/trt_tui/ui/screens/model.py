"""Model screen: op types with counts and the node table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from trt_tui.core.graph import GraphIndex

CHUNK = 250  # rows per batch: DataTable width measuring stalls the loop on big single adds


class ModelScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No model loaded. Run `trt-tui MODEL` or `trt-tui demo`.", id="model-summary")
        with Horizontal(id="model-body"):
            yield DataTable(id="op-types", cursor_type="row")
            yield DataTable(id="nodes", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#op-types", DataTable).add_columns("op type", "count")
        self.query_one("#nodes", DataTable).add_columns("#", "name", "op", "scope")

    async def show_index(self, index: GraphIndex) -> None:
        summary = f"{index.path.name}: {len(index.nodes)} nodes, {len(index.op_counts)} op types"
        if index.warnings:
            summary += f"  [{len(index.warnings)} warning(s)]"
        self.query_one("#model-summary", Static).update(summary)
        ops = self.query_one("#op-types", DataTable)
        ops.clear()
        ops.add_rows([(op, str(n)) for op, n in sorted(index.op_counts.items(), key=lambda kv: (-kv[1], kv[0]))])
        nodes = self.query_one("#nodes", DataTable)
        nodes.clear()
        rows = [(str(n.topo_index), n.name, n.op_type, n.scope) for n in index.nodes]
        for start in range(0, len(rows), CHUNK):
            nodes.add_rows(rows[start : start + CHUNK])

"""Model screen: op types, the filterable node table, the details panel, and pinning."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Input, Static

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex
from trt_tui.core.selection import NodeFilter
from trt_tui.ui.plain import printable
from trt_tui.ui.screens.base import PaletteCommand, TrtScreen
from trt_tui.ui.widgets.fast_table import FastTable
from trt_tui.ui.widgets.node_details import NodeDetails
from trt_tui.ui.widgets.node_table import NodeTable, node_drift
from trt_tui.ui.widgets.op_table import ALL, OpTypeTable

FILTER_DEBOUNCE_S = 0.15


class ModelScreen(TrtScreen):
    MODE_TITLE = "Model"
    AUTO_FOCUS = "#nodes"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="model.filter"),
        Binding("s", "focus_scope", "Scope", id="model.scope"),
        Binding("escape", "clear_filter", "Clear filter", id="model.clear_filter"),
        Binding("space", "pin_node", "Pin/unpin node", id="model.pin_node"),
        Binding("o", "pin_op", "Pin/unpin op type", id="model.pin_op"),
        Binding("m", "pin_matches", "Pin matches", id="model.pin_matches"),
        Binding("M", "unpin_matches", "Unpin matches", id="model.unpin_matches", show=False),
        Binding("w", "show_warnings", "Warnings", id="model.warnings", show=False),
        Binding("d", "sort_drift", "Sort by drift", id="model.sort_drift"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.node_filter = NodeFilter()
        self._debounce: Timer | None = None
        self.sort_by_drift = False
        self._shown_index: GraphIndex | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="model-filters"):
            yield Input(placeholder="/ name regex (smart case)", id="filter")
            yield Input(placeholder="s module scope prefix", id="scope-filter")
        yield Static("No model loaded. Run `trt-tui MODEL` or `trt-tui demo`.", id="model-summary", markup=False)
        yield Static("", id="model-warnings", markup=False)
        with Horizontal(id="model-body"):
            yield OpTypeTable(id="op-types")
            yield NodeTable(id="nodes")
            yield NodeDetails(id="details")

    def on_mount(self) -> None:
        self.query_one("#model-warnings").display = False
        ws = self.workspace
        ws.model_changed.subscribe(self, self._on_model_changed)
        ws.pins_changed.subscribe(self, self._on_pins_changed)
        ws.comparison_changed.subscribe(self, self._on_comparison)
        if ws.index is not None:
            self._on_model_changed(ws.index)

    # ---- model and pins arriving ----------------------------------------------------------------------
    def _on_model_changed(self, index: GraphIndex) -> None:
        self.show_index(index)

    def show_index(self, index: GraphIndex) -> None:
        self._shown_index = index
        self.node_filter = NodeFilter()
        self.query_one("#filter", Input).value = ""
        scope_input = self.query_one("#scope-filter", Input)
        scope_input.value = ""
        ws = self.workspace
        scope_input.suggester = SuggestFromList(ws.scopes, case_sensitive=False)
        warnings = self.query_one("#model-warnings", Static)
        warnings.update(printable("\n".join(f"⚠ {w}" for w in index.warnings), keep_newlines=True))
        warnings.display = bool(index.warnings)
        self.query_one(NodeTable).set_model(ws.node_rows, ws.selection)
        self._unsafe = sum(1 for n in index.nodes if "trtexec-unsafe-name" in n.flags)
        self._op_count = len(index.op_counts)
        ops = self.query_one(OpTypeTable)
        ops.set_rows(ops.rows_for(index, ws.selection))
        self._update_summary()
        self.call_after_refresh(self._fill_nodes)  # draw the frame first, then the 10,000 rows

    def _fill_nodes(self) -> None:
        index = self._shown_index
        if index is None:
            return
        table = self.query_one(NodeTable)
        try:
            shown = self.node_filter.apply(index)
            self.query_one("#filter", Input).remove_class("bad-regex")
        except UserError as exc:
            self.query_one("#filter", Input).add_class("bad-regex")
            self._update_summary(error=exc.one_line())
            return
        self._shown_count = len(shown)
        if self.sort_by_drift:
            drift = table.drift
            shown = sorted(shown, key=lambda n: -drift.get(n.name, -1.0))  # worst first, then not compared
        self._update_summary()
        table.set_rows(table.rows_for(shown), keep_key=table.cursor_key, measure=False)

    def _update_summary(self, error: str | None = None) -> None:
        index = self._shown_index
        if index is None:
            return
        sel = self.workspace.selection
        unsafe = self._unsafe
        text = (
            f"{index.path.name}: {len(index.nodes)} nodes, {self._op_count} op types · "
            f"showing {getattr(self, '_shown_count', len(index.nodes))} ({self.node_filter.describe()}) · "
            f"pinned FP32: {len(sel) if sel else 0}"
        )
        if unsafe:
            text += f" · ⚠ {unsafe} trtexec-unsafe name(s)"
        if error:
            text += f" · {error}"
        self.query_one("#model-summary", Static).update(printable(text))

    def _on_pins_changed(self, changed: set[str]) -> None:
        index, sel = self._shown_index, self.workspace.selection
        if index is None or sel is None or sel.index is not index:
            return
        self.query_one(NodeTable).update_pins(changed, sel)
        self.query_one(OpTypeTable).update_pins(index, sel)
        self._update_summary()
        self._show_details()

    def _on_comparison(self, result) -> None:
        table = self.query_one(NodeTable)
        table.set_drift(node_drift(result) if result is not None else {}, self.workspace.selection)
        if self._shown_index is not None:
            self._fill_nodes()

    def action_sort_drift(self) -> None:
        if not self.query_one(NodeTable).drift:
            self.notify("No comparison yet: run one on the Parity screen (4), or open a kept run there (h).")
            return
        self.sort_by_drift = not self.sort_by_drift
        self._fill_nodes()
        self.notify("nodes sorted by drift of the last comparison (worst first)" if self.sort_by_drift
                    else "nodes in graph order")  # fmt: skip

    # ---- filtering ------------------------------------------------------------------------------------
    @on(Input.Changed, "#filter, #scope-filter")
    def _filter_typed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(FILTER_DEBOUNCE_S, self._apply_filter_inputs)

    @on(Input.Submitted, "#filter, #scope-filter")
    def _filter_submitted(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._apply_filter_inputs()
        self.query_one(NodeTable).focus()

    def _apply_filter_inputs(self) -> None:
        self.set_filter(
            NodeFilter(
                text=self.query_one("#filter", Input).value.strip(),
                op_type=self.node_filter.op_type,
                scope=self.query_one("#scope-filter", Input).value.strip(),
            )
        )

    def set_filter(self, node_filter: NodeFilter) -> None:
        if node_filter == self.node_filter and self._shown_index is not None:
            return
        self.node_filter = node_filter
        self._fill_nodes()

    @on(FastTable.RowSelected, "#op-types")
    def _op_selected(self, event: FastTable.RowSelected) -> None:
        op = None if event.key == ALL else event.key
        self.set_filter(NodeFilter(text=self.node_filter.text, op_type=op, scope=self.node_filter.scope))

    @on(FastTable.RowHighlighted, "#nodes")
    def _node_highlighted(self) -> None:
        self._show_details()

    def _show_details(self) -> None:
        table = self.query_one(NodeTable)
        self.query_one(NodeDetails).show(self._shown_index, table.node_at_cursor(), self.workspace.selection)

    # ---- actions --------------------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_scope(self) -> None:
        self.query_one("#scope-filter", Input).focus()

    def action_clear_filter(self) -> None:
        for selector in ("#filter", "#scope-filter"):
            self.query_one(selector, Input).value = ""
        if self._debounce is not None:
            self._debounce.stop()
        self.query_one(NodeTable).focus()
        self.set_filter(NodeFilter())

    def _focused_node(self):
        return self.query_one(NodeTable).node_at_cursor()

    def action_pin_node(self) -> None:
        node = self._focused_node()
        if node is not None:
            self.edit_pins(lambda sel: sel.toggle_node(node.name))

    def action_pin_op(self) -> None:
        op = None
        if self.focused is self.query_one(OpTypeTable):
            op = self.query_one(OpTypeTable).op_at_cursor()
        if op is None:
            node = self._focused_node()
            op = node.op_type if node is not None else None
        if op is not None:
            self.edit_pins(lambda sel: sel.toggle_op(op), describe=f"op type {op}")

    def action_pin_matches(self) -> None:
        if self._shown_index is not None:
            f = self.node_filter
            self.edit_pins(lambda sel: sel.pin_filter(f), describe=f"matches of {f.describe()}")

    def action_unpin_matches(self) -> None:
        if self._shown_index is not None:
            f = self.node_filter
            self.edit_pins(lambda sel: sel.unpin_filter(f), describe=f"matches of {f.describe()}")

    def action_show_warnings(self) -> None:
        index = self._shown_index
        if index is None or not index.warnings:
            self.notify("No warnings for this model.")
            return
        self.notify("\n".join(index.warnings), title="Model warnings", severity="warning", timeout=15)

    def palette_commands(self):
        index = self._shown_index
        if index is None:
            return
        for op in sorted(index.op_counts):
            yield PaletteCommand(
                f"Pin/unpin op type: {op}",
                f"Toggle the FP32 pin of all {index.op_counts[op]} {op} node(s)",
                lambda op=op: self.edit_pins(lambda sel: sel.toggle_op(op), describe=f"op type {op}"),
            )
            yield PaletteCommand(
                f"Filter op type: {op}", f"Show only {op} nodes",
                lambda op=op: self.set_filter(NodeFilter(self.node_filter.text, op, self.node_filter.scope)),
            )  # fmt: skip
        yield PaletteCommand("Clear all pins", "Unpin every node", lambda: self.edit_pins(lambda s: s.clear()))

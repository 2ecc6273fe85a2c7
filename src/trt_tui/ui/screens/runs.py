"""Kept comparisons: the history of runs (open one, or mark one and compare it with another), and two runs
side by side (which tensors got better or worse between them)."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from trt_tui.core.runstore import RunRecord, RunStore, TensorChange, compare_tensors
from trt_tui.ui.heap import let_ui_run, long_lived
from trt_tui.ui.plain import printable
from trt_tui.ui.widgets.drift_table import fmt
from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable

VERDICT_STYLE = {"PASS": "green", "FAIL": "bold red", "CANCELLED": "yellow"}
CHANGE_STYLE = {"worse": "bold red", "better": "green", "same": "dim", "only in A": "yellow", "only in B": "yellow"}
CHANGE_ORDER = {"worse": 0, "better": 1, "only in A": 2, "only in B": 3, "same": 4}


class RunTable(FastTable):
    DEFAULT_CSS = "RunTable " + FLEX_CSS


def run_cells(r: RunRecord, marked: bool) -> tuple:
    return (
        Text("A", style="bold reverse") if marked else "",
        r.when(),
        Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")),
        f"{r.failed}/{r.compared}",
        str(r.pins),
        printable(r.candidate),
        printable(r.first_divergence or ""),
    )


class RunHistoryScreen(ModalScreen[tuple | None]):
    """Dismisses with ("open", id), ("compare", id_a, id_b) or None."""

    BINDINGS = [
        Binding("escape,h", "dismiss_none", "Close", id="runs.close"),
        Binding("enter", "open", "Open run", id="runs.open"),
        Binding("space", "mark", "Mark as A", id="runs.mark"),
        Binding("c", "compare", "Compare A with this", id="runs.compare"),
    ]

    def __init__(self, store: RunStore) -> None:
        super().__init__()
        self.store = store
        self.records: list[RunRecord] = []
        self.marked: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-body"):
            yield Static(Text("Kept comparisons (loading…)", style="bold"), id="runs-title")
            yield RunTable(id="runs-table")
            yield Static(Text("enter open · space mark as A · c compare A with the run under the cursor · "
                              f"esc close · files: {self.store.root}", style="dim"))  # fmt: skip

    def on_mount(self) -> None:
        table = self.query_one(RunTable)
        for label, key, width in (("", "mark", 1), ("when", "when", 16), ("verdict", "verdict", 9),
                                  ("failed", "failed", 11), ("pins", "pins", 5)):  # fmt: skip
            table.add_column(label, key, width=width)
        table.add_column("candidate", "candidate", max_width=40)
        table.add_column("first divergence", "first", max_width=200, flex=True, min_width=10, overflow="middle")
        table.focus()
        self.load_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs", name="load-run-history")
    def load_runs(self) -> None:
        records = self.store.runs()  # reads one small meta.json per run, off the UI thread
        self.app.call_from_thread(self._loaded, records)

    def _loaded(self, records: list[RunRecord]) -> None:
        self.records = records
        self.query_one("#runs-title", Static).update(Text(f"Kept comparisons: {len(records)}", style="bold"))
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(RunTable)
        table.set_rows([(r.id, run_cells(r, r.id == self.marked)) for r in self.records], keep_key=table.cursor_key)

    def action_open(self) -> None:
        key = self.query_one(RunTable).cursor_key
        if key is not None:
            self.dismiss(("open", key))

    @on(FastTable.RowSelected, "#runs-table")
    def _selected(self) -> None:  # Enter on the table (it binds Enter itself)
        self.action_open()

    def action_mark(self) -> None:
        key = self.query_one(RunTable).cursor_key
        if key is not None:
            self.marked = None if self.marked == key else key
            self._fill()

    def action_compare(self) -> None:
        key = self.query_one(RunTable).cursor_key
        if self.marked is None or key is None or key == self.marked:
            self.notify("Mark run A with space, then put the cursor on run B and press c.", severity="warning")
            return
        self.dismiss(("compare", self.marked, key))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def change_cells(c: TensorChange) -> tuple:
    ratio = c.ratio
    return (
        Text(c.change, style=CHANGE_STYLE.get(c.change, "")),
        str(c.topo_index if c.topo_index is not None else ""),
        printable(c.name),
        fmt(c.rel_rms_a) if c.rel_rms_a is not None else "",
        fmt(c.rel_rms_b) if c.rel_rms_b is not None else "",
        f"×{fmt(ratio)}" if ratio is not None else "",
        printable(c.op_type or ""),
    )


def worst_first_key(c: TensorChange) -> tuple:
    """Worse (biggest ratio first), better (smallest ratio first), only in one run, the same."""
    return (CHANGE_ORDER.get(c.change, 9), -(c.ratio or 0) if c.change == "worse" else (c.ratio or 0))


class RunDiffScreen(ModalScreen[None]):
    """Two kept runs tensor by tensor: worse first, then better, then the rest."""

    BINDINGS = [Binding("escape", "dismiss", "Close", id="rundiff.close"),
                Binding("o", "order", "Graph order / worst first", id="rundiff.order")]  # fmt: skip

    def __init__(self, store: RunStore, a: str, b: str) -> None:
        super().__init__()
        self.store, self.a, self.b = store, a, b
        self.changes: list[TensorChange] = []
        self.graph_order = False
        self._rows: dict[bool, list] = {True: [], False: []}  # graph order / worst first, built by the worker

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-body"):
            yield Static(Text(f"A {self.a}  vs  B {self.b} (loading…)", style="bold"), id="rundiff-title")
            yield RunTable(id="rundiff-table")
            yield Static(Text("o graph order / worst first · esc close", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(RunTable)
        table.add_column("change", "change", width=9)
        table.add_column("#", "topo", max_width=6)
        table.add_column("tensor", "tensor", max_width=200, flex=True, min_width=12, overflow="middle")
        for label, key in (("A rel_rms", "a"), ("B rel_rms", "b"), ("B/A", "ratio")):
            table.add_column(label, key, width=9)
        table.add_column("op", "op", max_width=20, keep_visible=False)
        table.focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs", name="compare-runs")
    def load(self) -> None:
        # reading, comparing, counting, sorting and the cells of both orders happen here, with a pause between
        # steps (let_ui_run) so the UI thread's redraws do not share the GIL with them: it only swaps rows
        with long_lived():  # two big runs: no collector pauses while building them (ui/heap.py)
            a = self.store.load_summary(self.a, pace=let_ui_run)
            let_ui_run()
            b = self.store.load_summary(self.b, pace=let_ui_run)
            let_ui_run()
            changes = compare_tensors(a, b)
            let_ui_run()
            kinds = [c.change for c in changes]
            counts = {k: kinds.count(k) for k in CHANGE_ORDER}
            cells = []
            for c in changes:
                cells.append(change_cells(c))
                if len(cells) % 500 == 0:
                    let_ui_run()
            worst_first = sorted(range(len(changes)), key=lambda i: worst_first_key(changes[i]))
            self._rows = {
                True: [(str(i), cells[i]) for i in range(len(changes))],
                False: [(str(i), cells[i]) for i in worst_first],
            }
        self.app.call_from_thread(self._loaded, changes, counts)

    def _loaded(self, changes: list[TensorChange], counts: dict[str, int]) -> None:
        self.changes = changes
        summary = " · ".join(f"{n} {k}" for k, n in counts.items() if n)
        self.query_one("#rundiff-title", Static).update(Text(f"A {self.a}  vs  B {self.b}: {summary}", style="bold"))
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(RunTable)
        table.set_rows(self._rows[self.graph_order], keep_key=table.cursor_key)

    def action_order(self) -> None:
        self.graph_order = not self.graph_order
        self._fill()

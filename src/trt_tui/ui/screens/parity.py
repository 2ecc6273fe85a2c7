"""Parity screen: run a layer-wise comparison, watch the table fill, chase the first divergence, pin, re-run."""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, ProgressBar, Select, Sparkline, Static

from trt_tui.core.build.state import state_dir
from trt_tui.core.parity.model_explorer import write_node_data
from trt_tui.core.runstore import RunStore
from trt_tui.core.parity.request import ComparisonRequest, build_request
from trt_tui.ui.heap import let_ui_run, long_lived
from trt_tui.core.parity.results import CompareResult
from trt_tui.core.backends import tensorrt_status
from trt_tui.core.errors import UserError
from trt_tui.core.parity.runners import CandidateSpec
from trt_tui.core.parity.trt_preset import MARKED_ENGINE_SHORT, MARKED_ENGINE_WARNING
from trt_tui.ui.messages import ParityBatch, ParityFinished
from trt_tui.ui.plain import printable
from trt_tui.ui.screens.base import TrtScreen
from trt_tui.ui.screens.runs import RunDiffScreen, RunHistoryScreen
from trt_tui.ui.widgets.path_prompt import PathPrompt
from trt_tui.ui.widgets.drift_details import DriftDetails
from trt_tui.ui.widgets.drift_table import SORT_KEYS, DriftTable
from trt_tui.ui.widgets.fast_table import FastTable

CANDIDATES = [
    ("CPU emulation (storage rounding)", "emulate"),
    ("ONNX Runtime, mixed-precision rewrite", "mixed"),
    ("TensorRT from preset, layer-wise", "trt"),  # every tensor marked: not the shipped engine
    ("TensorRT from preset, outputs only", "trt-outputs"),  # the unmarked engine, final outputs
]
PRECISIONS = [("fp16", "fp16"), ("bf16", "bf16")]
PLOT_EVERY_S = 0.25


def parity_request(*, index, preset, pins, choice: str, precision: str, seed: int | None, inputs: str | None,
                   iterations: int = 1) -> ComparisonRequest:  # fmt: skip
    """The Parity screen's ComparisonRequest: core's `build_request`, the one `trt-tui compare` builds from its
    flags, so that the screen on preset P runs what `compare MODEL --preset P` runs (the preset's pins,
    tolerances, and its first profile's OPT shapes for dynamic inputs). With a preset its pins are the
    workspace's (kept in sync), so `pins` (the selection's rules) count only without one."""
    trt = choice in ("trt", "trt-outputs")
    return build_request(index.path, index=index, preset=preset, pins=None if preset is not None else pins,
                         candidate="trt" if trt else choice, outputs_only=choice == "trt-outputs", precision=precision,
                         seed=seed, inputs=inputs, iterations=iterations)  # fmt: skip


class ParityScreen(TrtScreen):
    MODE_TITLE = "Parity"
    AUTO_FOCUS = "#drift-table"
    BINDINGS = [
        Binding("r", "run", "Run", id="parity.run"),
        Binding("c", "cancel", "Cancel", id="parity.cancel"),
        Binding("f", "toggle_failing", "Failing only", id="parity.failing"),
        Binding("n", "first_divergence", "First divergence", id="parity.first"),
        Binding("o", "cycle_sort", "Sort", id="parity.sort"),
        Binding("p", "pin_rerun", "Pin node + re-run", id="parity.pin_rerun"),
        Binding("s", "search", "Search pins", id="parity.search"),
        Binding("h", "history", "Kept runs", id="parity.history"),
        Binding("x", "model_explorer", "Model Explorer export", id="parity.model_explorer", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self.result: CompareResult | None = None
        self.running = False
        self._failing = 0
        self._plotted_at = 0.0
        self.run_id: str | None = None  # the kept run on screen when reopened from the history

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="parity-controls"):
            yield Label("candidate")
            yield Select(CANDIDATES, value="emulate", allow_blank=False, id="parity-candidate")
            yield Label("precision")
            yield Select(PRECISIONS, value="fp16", allow_blank=False, id="parity-precision")
            yield Label("seed")
            yield Input("1", id="parity-seed", type="integer")
            yield Input(placeholder="inputs file (.npz / Polygraphy JSON); empty = random", id="parity-inputs")
        with Horizontal(id="parity-progress-row"):
            yield Static("reference: onnxruntime fp32 · press r to run", id="parity-status", markup=False)
            yield ProgressBar(total=100, id="parity-progress", show_eta=False)
        with Horizontal(id="parity-body"):
            yield DriftTable(id="drift-table")
            yield DriftDetails(id="drift-details")
        yield Static("drift along depth (log10 rel_rms, graph order)", id="parity-plot-label")
        yield Sparkline([], id="parity-plot")

    def on_mount(self) -> None:
        self.workspace.pins_changed.subscribe(self, lambda _changed: self._show_details())
        self.workspace.preset_changed.subscribe(self, lambda _p: self._apply_preset_defaults())
        self._apply_preset_defaults()

    def _apply_preset_defaults(self) -> None:
        preset = self.workspace.preset
        if preset is None:
            return
        if preset.precision.mode in ("fp16", "bf16"):
            self.query_one("#parity-precision", Select).value = preset.precision.mode
        if preset.comparison.seed is not None:
            self.query_one("#parity-seed", Input).value = str(preset.comparison.seed)
        if preset.comparison.input_data != "random":
            self.query_one("#parity-inputs", Input).value = str(preset.resolve_path(preset.comparison.input_data))

    @on(Select.Changed, "#parity-candidate")
    def _candidate_changed(self, event: Select.Changed) -> None:
        if self.running:
            return
        idle = "reference: onnxruntime fp32 · press r to run"
        self.query_one("#parity-status", Static).update(f"⚠ {MARKED_ENGINE_SHORT}" if event.value == "trt" else idle)

    def request_settings(self, choice: str | None = None) -> dict | None:
        """What the controls say, as `parity_request`'s arguments (read on the UI thread; None: nothing to run,
        the reason notified); `choice` overrides the candidate control. A TensorRT candidate gets a copy of the
        current preset, unsaved edits included."""
        ws = self.workspace
        if ws.index is None:
            self.notify("Open a model first.", severity="warning")
            return None
        choice = choice or str(self.query_one("#parity-candidate", Select).value)
        if choice in ("trt", "trt-outputs"):
            status = tensorrt_status()  # THE availability probe: never imports TensorRT into this process
            if not status.available:
                self.notify(f"a TensorRT candidate needs TensorRT: {status.detail}", severity="error")
                return None
        preset = copy.deepcopy(ws.current_preset()) if choice in ("trt", "trt-outputs") or ws.preset is not None else None
        seed = self.query_one("#parity-seed", Input).value.strip()
        if seed and not seed.lstrip("-").isdigit():  # the integer Input lets a lone "-" through
            self.notify(f"seed {seed!r} is not an integer", severity="warning")
            return None
        return {
            "index": ws.index, "preset": preset, "pins": ws.selection.rules if ws.selection is not None else None,
            "choice": choice, "precision": str(self.query_one("#parity-precision", Select).value),
            "seed": int(seed) if seed else None, "inputs": self.query_one("#parity-inputs", Input).value.strip() or None,
        }  # fmt: skip

    # ---- running ---------------------------------------------------------------------------------------
    def action_run(self) -> None:
        if self.running:
            self.notify("A comparison is running: cancel it (c) first.", severity="warning")
            return
        settings = self.request_settings()
        if settings is None:
            return
        self.query_one(DriftTable).reset()
        self.run_id = None
        self._failing = 0
        self._plotted_at = 0.0
        self.query_one(DriftDetails).show(None, None, None)
        self.query_one("#parity-plot", Sparkline).data = []
        self.query_one("#parity-progress", ProgressBar).update(total=None, progress=0)
        self._cancel = threading.Event()
        self.running = True
        self.query_one("#parity-status", Static).update("preparing (building both sides)…")
        self.run_comparison(settings, self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="parity", name="parity-compare")
    def run_comparison(self, settings: dict, cancel: threading.Event) -> None:
        try:
            request = parity_request(**settings)  # resolves the preset, the pins: off the UI thread
            if request.candidate.kind == "trt":
                self._compare_built_engine(request, cancel)
                return
            comparison = request.prepare()
            for update in comparison.run(cancel=cancel):  # one message per batch: rows arrive batched
                self.post_message(ParityBatch(update))
            self.post_message(ParityFinished(comparison.result(), comparison.warnings))
        finally:
            self.app.call_from_thread(setattr, self, "running", False)

    def _compare_built_engine(self, request: ComparisonRequest, cancel: threading.Event) -> None:
        """TensorRT never enters this process: the engine is built by a build job (child process, in the
        Builds history), then compared in a child process (core.parity.isolated). Runs in the worker thread."""
        from trt_tui.core.parity.isolated import compare_isolated
        from trt_tui.core.parity.trt_preset import build_candidate_engine

        def progress(phase: str, fraction: float | None) -> None:
            done = "" if fraction is None else f" {fraction:.0%}"
            self.app.call_from_thread(self.query_one("#parity-status", Static).update,
                                      f"building the candidate engine (Builds screen): {phase}{done}")  # fmt: skip

        built = build_candidate_engine(self.app.job_manager(), request.candidate.preset, outputs_only=request.candidate.outputs_only,
                                       on_progress=progress, cancel=cancel)  # fmt: skip
        self.app.call_from_thread(self.query_one("#parity-status", Static).update,
                                  f"comparing engine {built.path} (child process)…")  # fmt: skip
        engine = CandidateSpec("engine", path=built.path, precision=request.precision)
        for kind, payload in compare_isolated(dataclasses.replace(request, candidate=engine), cancel=cancel):
            if kind == "batch":
                self.post_message(ParityBatch(payload))
            else:
                result, warnings = payload
                result.candidate = built.plan.label
                result.warnings = [*built.plan.warnings, *result.warnings]
                self.post_message(ParityFinished(result, [*built.plan.warnings, *warnings]))

    def on_parity_batch(self, message: ParityBatch) -> None:
        u = message.update
        table = self.query_one(DriftTable)
        table.add_drifts(u.drifts)
        self.query_one("#parity-progress", ProgressBar).update(total=u.total, progress=u.done)
        self._failing += sum(1 for d in u.drifts if not d.passed)
        failing = self._failing
        self.query_one("#parity-status", Static).update(
            f"batch {u.batch + 1}/{u.batches} · {u.done}/{u.total} tensors · {failing} outside tolerance · "
            f"{u.elapsed_s:.1f} s"
        )
        now = time.monotonic()
        if now - self._plotted_at >= PLOT_EVERY_S or u.done == u.total:  # the plot redraws every point
            self._plotted_at = now
            self._update_plot()
        if table.row_count and self.query_one(DriftDetails).drift is None:
            self._show_details()

    def on_parity_finished(self, message: ParityFinished) -> None:
        self._show_result(message.result)
        if message.result.tensors:
            self.keep_run(message.result, self.workspace.pinned_names())

    @work(thread=True, exit_on_error=False, group="parity-keep", name="keep-comparison")
    def keep_run(self, result: CompareResult, pins: list[str]) -> None:
        record = self._store().save(result, pins=pins)
        self.app.call_from_thread(self.notify, f"kept as run {record.id} (h: kept runs, side by side)", timeout=3)

    def _store(self) -> RunStore:
        return RunStore(self.workspace.state_dir or state_dir())

    def _show_result(self, result: CompareResult) -> None:
        self.result = result
        self.running = False
        self.workspace.set_last_comparison(result)
        first = result.first_divergence
        table = self.query_one(DriftTable)
        self._update_plot()
        table.highlighted_keys = {first.name} if first else set()
        table.refresh()
        verdict = "PASS" if result.passed else ("CANCELLED" if result.cancelled else "FAIL")
        text = (
            (f"run {self.run_id} · " if self.run_id else "") + f"{verdict}: {len(result.tensors)} tensors, {len(result.failed)} outside tolerance, "
            f"{result.elapsed_s:.1f} s · {result.reference} vs {result.candidate}"
        )
        if result.targets:  # a preset's output targets decide the verdict: say so next to it
            met = sum(1 for t in result.targets if t["passed"])
            text += f" · the preset's targets decide: {met}/{len(result.targets)} met"
        if first is not None:
            text += f" · first divergence #{first.topo_index} {first.name} (n)"
        if MARKED_ENGINE_WARNING in result.warnings:
            text += " · ⚠ marked engine ≠ shipped engine (outputs only compares the unmarked one)"
        self.query_one("#parity-status", Static).update(printable(text))
        for problem in result.errors[:3]:
            self.notify(problem, title="not compared", severity="warning")

    def _update_plot(self) -> None:
        drifts = sorted(self.query_one(DriftTable).drifts.values(), key=lambda d: d.topo_index or 0)
        values = []
        for d in drifts:
            v = d.rel_rms
            values.append(-8.0 if v <= 0 else 3.0 if not math.isfinite(v) else max(math.log10(v), -8.0))
        self.query_one("#parity-plot", Sparkline).data = values

    def worker_failed(self, worker) -> None:
        self.running = False
        error = worker.error
        line = error.one_line() if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        self.query_one("#parity-status", Static).update(printable(f"✗ failed: {line} (L: message log)"))
        self.query_one("#parity-progress", ProgressBar).update(total=100, progress=0)  # stop the animation

    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#parity-status", Static).update("cancelling after the current batch…")

    # ---- browsing ----------------------------------------------------------------------------------------
    @on(FastTable.RowHighlighted, "#drift-table")
    def _row_highlighted(self) -> None:
        self._show_details()

    def _show_details(self) -> None:
        table = self.query_one(DriftTable)
        self.query_one(DriftDetails).show(table.drift_at_cursor(), self.workspace.index, self.workspace.selection)

    def action_toggle_failing(self) -> None:
        table = self.query_one(DriftTable)
        table.failing_only = not table.failing_only
        table.rebuild()
        self.notify("showing failing tensors only" if table.failing_only else "showing every tensor")

    def action_cycle_sort(self) -> None:
        table = self.query_one(DriftTable)
        table.sort_key = SORT_KEYS[(SORT_KEYS.index(table.sort_key) + 1) % len(SORT_KEYS)]
        table.rebuild()
        self.notify(f"sorted by {table.sort_key}" + ("" if table.sort_key == "topo_index" else " (worst first)"))

    def action_first_divergence(self) -> None:
        table = self.query_one(DriftTable)
        first = self.result.first_divergence if self.result is not None else None
        if first is None:
            first = next((d for d in sorted(table.drifts.values(), key=lambda d: d.topo_index or 0) if not d.passed), None)
        if first is None:
            self.notify("No tensor outside tolerance.")
            return
        if first.name not in table:
            table.failing_only = False
            table.rebuild()
        table.move_to_key(first.name)
        table.focus()

    def action_pin_rerun(self) -> None:
        drift = self.query_one(DriftTable).drift_at_cursor()
        if drift is None or not drift.node:
            self.notify("Select a compared tensor first.", severity="warning")
            return
        if self.running:
            self.notify("A comparison is running: cancel it (c) first.", severity="warning")
            return
        node = drift.node
        selection = self.workspace.selection
        if selection is not None and not selection.is_pinned(node):
            self.edit_pins(lambda sel: sel.pin_nodes([node]), describe=f"node {node}")
        self.action_run()

    def action_search(self) -> None:
        """The pin search dialog (screens/search.py) on this screen's request: the CPU emulation at its precision,
        with its preset, seed and inputs."""
        from trt_tui.ui.screens.search import SearchScreen

        settings = self.request_settings("emulate")  # the search emulates, whatever candidate is chosen here
        if settings is None:
            return

        def request_for(samples: int) -> ComparisonRequest:  # a data file typed in the dialog is its samples
            return parity_request(**{**settings, "inputs": None}, iterations=samples)

        self.app.push_screen(SearchScreen(request_for, settings["precision"], settings["inputs"] or "1"))

    # ---- kept runs -----------------------------------------------------------------------------------------
    def action_history(self) -> None:
        if self.running:
            self.notify("A comparison is running: cancel it (c) first.", severity="warning")
            return
        store = self._store()

        def chosen(answer: tuple | None) -> None:
            if answer is None:
                return
            if answer[0] == "open":
                self.open_run(answer[1])
            elif answer[0] == "compare":
                self.app.push_screen(RunDiffScreen(store, answer[1], answer[2]))

        self.app.push_screen(RunHistoryScreen(store), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="parity", name="open-kept-run")
    def open_run(self, run_id: str) -> None:
        with long_lived():  # a big run: no collector pauses while it is read (ui/heap.py)
            result = self._store().load(run_id, pace=let_ui_run)
        self.app.call_from_thread(self._reopened, run_id, result)

    def _reopened(self, run_id: str, result: CompareResult) -> None:
        table = self.query_one(DriftTable)
        table.reset()
        table.add_drifts(result.tensors)
        self.run_id = run_id
        self._show_result(result)
        self._show_details()

    def action_model_explorer(self) -> None:
        result = self.result
        if result is None:
            self.notify("Run or open a comparison first.", severity="warning")
            return
        stem = self.workspace.index.path.stem if self.workspace.index is not None else "model"

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                target = write_node_data(result, path)
            except (UserError, OSError) as exc:
                text = exc.one_line() if isinstance(exc, UserError) else f"{path}: {exc}"
                self.notify(text, title="not written", severity="error")
                return
            self.notify(f"wrote {target}: load it in Model Explorer as node data over {stem}.onnx")

        self.app.push_screen(PathPrompt("Model Explorer node data (JSON)", str(Path.cwd() / f"{stem}.drift.json")), done)

    def palette_commands(self):
        from trt_tui.ui.screens.base import PaletteCommand

        for key in SORT_KEYS:
            yield PaletteCommand(f"Sort parity table by {key}", "worst first" if key != "topo_index" else "graph order",
                                 lambda key=key: self._sort_by(key))  # fmt: skip

    def _sort_by(self, key: str) -> None:
        table = self.query_one(DriftTable)
        table.sort_key = key
        table.rebuild()



"""Streaming screen: choose a streaming contract (remembered per model; else found by name, see
`core.streaming.contract_choice`), run its closed-loop (or functional) check and watch per-chunk error plots
fill live, with pass rate and the first failing chunk.

Several candidates (`emulate, emulate:bf16, ort, engine:PATH`, comma-separated) run in one go against ONNX
Runtime FP32 or a recorded reference (`recorded:PATH`); with one candidate there is a plot per output, with
several one plot per candidate (of the contract's trend outputs). When the run ends, the same table as the
CLI's: per candidate and output the metric, the threshold, pass rate, p95 and worst error, trend slope and
p-value, first failing chunk; and whether each candidate is worse than ONNX Runtime FP32."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, ProgressBar, Select, Sparkline, Static

from trt_tui.core.build.state import state_dir
from trt_tui.core.errors import UserError
from trt_tui.core.preset.exports.common import shown_path
from trt_tui.core.streaming.contract import MODES
from trt_tui.core.streaming.contract_choice import ContractChoices, check_contract, find_contract
from trt_tui.core.streaming.engine import ChunkResult, StreamReport
from trt_tui.core.streaming.session import setup_stream, stream_all
from trt_tui.ui.plain import plain_text
from trt_tui.ui.screens.base import TrtScreen, error_line
from trt_tui.ui.widgets.path_prompt import PathPrompt

BATCH_S = 0.1  # chunk results are posted at most this often
# Placeholders, longest first: each field shows the longest that fits its width (100x30 cut them mid-word)
PLACEHOLDERS = {
    "stream-contract": ("contract JSON: o to choose, Enter to check (`trt-tui contract init MODEL` writes one)",
                        "contract JSON: o to choose, Enter to check", "contract JSON (o: choose)", "contract"),
    "stream-candidates": ("emulate (comma-separated: ort, emulate:bf16, mixed, engine:PATH, onnx:PATH)",
                          "emulate (list: ort, mixed, emulate:bf16, engine:PATH…)", "emulate (list: ort, mixed, …)",
                          "emulate"),
    "stream-reference": ("onnxruntime (or recorded:PATH)", "onnxruntime | recorded:PATH", "onnxruntime"),
}  # fmt: skip


class ChunksDone(Message):
    def __init__(self, results: list[dict[str, ChunkResult]], total: int) -> None:
        super().__init__()
        self.results = results
        self.total = total


class StreamFinished(Message):
    def __init__(self, reports: dict[str, StreamReport], warnings: list[str], summary: Table) -> None:
        super().__init__()
        self.reports = reports
        self.report = next(iter(reports.values()))
        self.warnings = warnings
        self.summary = summary


class StreamingScreen(TrtScreen):
    MODE_TITLE = "Streaming"
    DEFAULT_CSS = """
    #stream-candidates-row { height: 3; }
    #stream-candidates-row Label { padding: 1 1 0 1; }
    #stream-candidates { width: 2fr; }
    #stream-reference { width: 1fr; }
    #stream-summary { margin-top: 1; }
    """
    AUTO_FOCUS = "#stream-plots"
    BINDINGS = [
        Binding("r", "run", "Run", id="streaming.run"),
        Binding("c", "cancel", "Cancel", id="streaming.cancel"),
        Binding("o", "choose_contract", "Contract", id="streaming.contract"),
        Binding("p", "pin", "Pin", id="streaming.pin"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self._cancel = threading.Event()
        self.series: dict[str, list[float]] = {}
        self.results: list[ChunkResult] = []  # the first candidate's
        self.report: StreamReport | None = None  # the first candidate's
        self.reports: dict[str, StreamReport] = {}
        self.summary: Table | None = None  # the table shown when a run ends

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="stream-controls"):
            yield Label("contract")
            yield Input(placeholder=PLACEHOLDERS["stream-contract"][0], id="stream-contract")
            yield Label("mode")
            yield Select([(m, m) for m in MODES], value="closed-loop", allow_blank=False, id="stream-mode")
            yield Label("chunks")
            yield Input(placeholder="contract", id="stream-chunks", type="integer")  # empty: the contract's count
        with Horizontal(id="stream-candidates-row"):
            yield Label("candidates")
            yield Input(placeholder=PLACEHOLDERS["stream-candidates"][0], id="stream-candidates")
            yield Label("reference")
            yield Input(placeholder=PLACEHOLDERS["stream-reference"][0], id="stream-reference")
        with Horizontal(id="stream-progress-row"):
            yield Static("press r to run the contract's check", id="stream-status")
            yield ProgressBar(total=100, id="stream-progress", show_eta=False)
        yield VerticalScroll(id="stream-plots")

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_placeholders)  # the fields' new widths are known after the layout

    def _fit_placeholders(self) -> None:
        for field_id, variants in PLACEHOLDERS.items():
            field = self.query_one(f"#{field_id}", Input)
            room = field.content_region.width - 1  # the cursor takes a cell
            if room > 0:
                field.placeholder = next((v for v in variants if len(v) <= room), variants[-1])

    def on_mount(self) -> None:
        self.app.model_changed.subscribe(self, lambda index: self._default_contract(index.path))
        if self.app.index is not None:
            self._default_contract(self.app.index.path)

    def _choices(self) -> ContractChoices:
        return ContractChoices(self.app.build_state_dir or state_dir())

    def _default_contract(self, model: Path) -> None:
        """The contract remembered for this model, else one found by name (a few stats and one tiny file)."""
        found = self._choices().get(model) or find_contract(model)
        self.query_one("#stream-contract", Input).value = shown_path(found, Path.cwd()) if found else ""

    # ---- choosing a contract -----------------------------------------------------------------------------
    def action_choose_contract(self) -> None:
        if self.app.index is None:
            self.notify("Open a model first.", severity="warning")
            return
        current = self.query_one("#stream-contract", Input).value.strip()
        suggestion = current or shown_path(Path.cwd() / "contracts" / f"{self.app.index.path.stem}.contract.json", Path.cwd())

        def done(path: str | None) -> None:
            if path:
                self.check_contract_file(path)

        self.app.push_screen(PathPrompt(f"Streaming contract for {self.app.index.path.name}", suggestion), done)

    @on(Input.Submitted, "#stream-contract")
    def _contract_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() and self.app.index is not None:
            self.check_contract_file(event.value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False, group="streaming-contract", name="streaming contract")
    def check_contract_file(self, path: str) -> None:
        """Check the chosen file against the open model and remember it; a missing or invalid file raises a
        UserError, which the app's one handler shows (the field keeps its previous value)."""
        index = self.app.index
        _contract, warnings = check_contract(path, index)
        self._choices().remember(index.path, path)
        self.app.call_from_thread(self._contract_chosen, Path(path), len(warnings))

    def _contract_chosen(self, path: Path, warnings: int) -> None:
        self.query_one("#stream-contract", Input).value = shown_path(path, Path.cwd())
        extra = f" ({warnings} warning(s))" if warnings else ""
        self.notify(f"{path.name} fits {self.app.model_label()}{extra}; remembered for this model",
                    title="streaming contract")  # fmt: skip

    def action_pin(self) -> None:
        """Pin a node (its exact name) or an op type (`op:TYPE`) in FP32 from here; the next run (r) uses it."""
        if self.app.index is None:
            self.notify("Open a model first.", severity="warning")
            return

        def done(text: str | None) -> None:
            if not text:
                return
            if text.startswith("op:"):
                op = text[3:].strip()
                self.edit_pins(lambda sel: sel.pin_op(op), describe=f"op type {op}")
            elif self.app.index.node(text) is None:
                self.notify(f"no node named {text!r} (an op type is op:TYPE)", severity="error")
            else:
                self.edit_pins(lambda sel: sel.pin_nodes([text]), describe=f"node {text}")

        self.app.push_screen(PathPrompt("Pin in FP32 for the next run: a node name, or op:TYPE (e.g. op:Softmax)", ""), done)

    def action_run(self) -> None:
        app = self.app
        if self.running:
            self.notify("A stream is running: cancel it (c) first.", severity="warning")
            return
        if app.index is None:
            self.notify("Open a model first.", severity="warning")
            return
        contract = self.query_one("#stream-contract", Input).value.strip()
        if not contract:
            self.notify("Give a streaming contract (create one with `trt-tui contract init MODEL`).", severity="warning")
            return
        chunks_text = self.query_one("#stream-chunks", Input).value.strip()
        precision = app.preset.precision.mode if app.preset and app.preset.precision.mode in ("fp16", "bf16") else "fp16"
        self.series, self.results, self.report, self.reports = {}, [], None, {}
        candidates = [c.strip() for c in self.query_one("#stream-candidates", Input).value.split(",") if c.strip()]
        reference = self.query_one("#stream-reference", Input).value.strip() or "onnxruntime"
        plots = self.query_one("#stream-plots", VerticalScroll)
        plots.remove_children()
        self._cancel = threading.Event()
        self.running = True
        self.query_one("#stream-status", Static).update("preparing runners…")
        self.query_one("#stream-status", Static).remove_class("-failed")
        self.query_one("#stream-progress", ProgressBar).update(total=None, progress=0)
        self.run_stream(str(app.index.path), contract, str(self.query_one("#stream-mode", Select).value),
                        int(chunks_text) if chunks_text else None, precision,
                        sorted(app.selection.pinned) if app.selection else [], self._cancel,
                        candidates or ["emulate"], reference)  # fmt: skip

    @work(thread=True, exclusive=True, exit_on_error=False, group="streaming", name="stream-check")
    def run_stream(self, model, contract, mode, chunks, precision, pins, cancel, candidates=("emulate",),
                   reference="onnxruntime") -> None:  # fmt: skip
        try:
            setup = setup_stream(model, contract, candidates=list(candidates), reference=reference, precision=precision,
                                 pins=pins)  # fmt: skip
            try:
                self._choices().remember(model, contract)  # it ran: the next session starts with it
            except UserError as exc:
                self.app.call_from_thread(self.notify, exc.one_line(), severity="warning")
            from trt_tui.core.streaming.session import default_chunks

            total = chunks or default_chunks(setup)
            pending: list[dict[str, ChunkResult]] = []
            last = [time.monotonic()]

            def on_chunk(result: dict[str, ChunkResult]) -> None:
                pending.append(result)
                now = time.monotonic()
                if now - last[0] >= BATCH_S:
                    self.post_message(ChunksDone(pending.copy(), total))
                    pending.clear()
                    last[0] = now

            reports = stream_all(setup, mode=mode, chunks=chunks, on_chunk=on_chunk, cancel=cancel)
            if pending:
                self.post_message(ChunksDone(pending.copy(), total))
            self.post_message(StreamFinished(reports, setup.warnings, summary_table(setup, reports)))
        finally:
            self.app.call_from_thread(setattr, self, "running", False)

    def on_chunks_done(self, message: ChunksDone) -> None:
        plots = self.query_one("#stream-plots", VerticalScroll)
        for results in message.results:
            multi = len(results) > 1
            first = next(iter(results.values()))
            self.results.append(first)
            for label, result in results.items():
                for name, value in result.errors.items():
                    if multi and name not in self._trend_outputs(result):
                        continue
                    key = f"{label}: {name}" if multi else name
                    if key not in self.series:
                        self.series[key] = []
                        plots.mount(Static(key, classes="stream-plot-label", id=f"label-{len(self.series)}"))
                        plots.mount(Sparkline([], classes="stream-plot", id=f"plot-{len(self.series)}"))
                    self.series[key].append(value)
        for i, (name, values) in enumerate(self.series.items(), start=1):
            finite = [v for v in values if math.isfinite(v)]
            worst = max(finite) if finite else float("nan")
            for label in plots.query(f"#label-{i}"):
                label.update(Text(f"{name}  last {values[-1]:.3g}  worst {worst:.3g}"))
            for plot in plots.query(f"#plot-{i}"):
                plot.data = [v if math.isfinite(v) else (worst if finite else 0.0) for v in values]
        if self.query_one("#stream-status", Static).has_class("-failed"):
            return  # a batch that arrived after the failure: the error stays on screen, the bar stays still
        passed = sum(r.passed for r in self.results)
        first = next((r.index for r in self.results if not r.passed), None)
        self.query_one("#stream-progress", ProgressBar).update(total=message.total, progress=len(self.results))
        self.query_one("#stream-status", Static).update(
            f"chunk {len(self.results)}/{message.total} · pass {passed}/{len(self.results)}"
            + (f" · first failing chunk {first}" if first is not None else "")
        )

    def _trend_outputs(self, result: ChunkResult) -> tuple[str, ...]:
        # with several candidates, one plot each: of the outputs the contract judges for trend
        if not hasattr(self, "_trend_cache"):
            from trt_tui.core.streaming.contract import load_contract

            try:
                self._trend_cache = load_contract(self.query_one("#stream-contract", Input).value.strip()).trend_outputs()
            except UserError:
                self._trend_cache = tuple(result.errors)
        return self._trend_cache or tuple(result.errors)

    def on_stream_finished(self, message: StreamFinished) -> None:
        report = self.report = message.report
        self.reports = message.reports
        self.summary = message.summary
        if hasattr(self, "_trend_cache"):
            del self._trend_cache
        self.running = False
        if len(message.reports) > 1:
            verdicts = [f"{label} {'PASS' if r.passed else 'FAIL'}" for label, r in message.reports.items()]
            text = f"{' · '.join(verdicts)} · {report.mode} · {report.chunks_run} chunks · {report.seconds:.1f} s"
        else:
            verdict = "PASS" if report.passed else ("CANCELLED" if report.cancelled else "FAIL")
            text = f"{verdict} · {report.mode} · {report.chunks_run} chunks · pass rate {report.pass_rate:.0%} · {report.seconds:.1f} s"
            if report.growing:
                text += f" · error grows: {', '.join(report.growing)}"
        self.query_one("#stream-status", Static).update(text)
        plots = self.query_one("#stream-plots", VerticalScroll)
        for old in plots.query("#stream-summary"):
            old.remove()
        plots.mount(Static(message.summary, id="stream-summary"), before=0 if plots.children else None)
        for label, r in message.reports.items():
            for reason in r.reasons[:3] if not r.passed else []:
                self.notify(reason if len(message.reports) == 1 else f"{label}: {reason}", severity="warning")
        for note in report.unchecked:
            self.notify(note, severity="warning")

    def worker_failed(self, worker) -> None:
        if worker.group == "streaming-contract":
            return  # the notification says why; the field keeps the contract it had
        self.running = False
        # the error stays here (a toast goes away); the app's handler put it in the message log (L)
        status = self.query_one("#stream-status", Static)
        status.update(plain_text(f"✗ {worker.name} failed: {error_line(worker.error)} (L: message log)", "red"))
        status.add_class("-failed")
        progress = self.query_one("#stream-progress", ProgressBar)
        progress.update(total=max(progress.progress, 1), progress=progress.progress)  # stops the animation

    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#stream-status", Static).update("cancelling after the current chunk…")


def summary_table(setup, reports: dict[str, StreamReport]) -> Table:
    """The CLI's table (commands/stream.py): per candidate and output the metric, threshold, pass rate, p95
    and worst per-chunk error, trend slope and p-value, first failing chunk; and the answer against ONNX
    Runtime FP32 when it ran. Names from the model are plain Text (never markup)."""
    from trt_tui.core.streaming.baseline import versus_baseline
    from trt_tui.core.streaming.session import ORT_LABEL

    c = setup.contract
    first = next(iter(reports.values()))
    metric = first.metric
    table = Table(title=f"vs {setup.reference_label}, {first.chunks_run} chunks", title_justify="left", expand=False)
    for col in ("candidate", "output", "metric", "threshold", "pass rate", "p95", "worst", "slope/chunk", "p-value", "first fail"):
        table.add_column(col, no_wrap=True)
    for label, report in reports.items():
        for name, s in report.outputs.items():
            if name not in report.float_outputs:
                continue
            tol = c.tolerance_for(name)
            stat = f"p{tol.quantile * 100:g}" if tol.stat == "quantile" else tol.stat
            data = s.to_json(metric)
            p95 = data.get(f"{metric}_p95")
            fit = report.trends.get(name)
            table.add_row(
                Text(label), Text(name), metric, f"{stat} <= {tol.atol:g} (+{tol.rtol:g} rel)",
                f"{(s.chunks - s.failed) / s.chunks:.0%}" if s.chunks else "-",
                "-" if p95 is None else (p95 if isinstance(p95, str) else f"{p95:.3g}"), f"{s.worst_max_abs:.3g}",
                f"{fit.slope:+.2g}" if fit and fit.n >= 3 else "-", f"{fit.p_value:.2g}" if fit and fit.n >= 3 else "-",
                "-" if s.first_failure is None else str(s.first_failure),
            )  # fmt: skip
    if ORT_LABEL in reports and len(reports) > 1:
        answers = versus_baseline(reports, ORT_LABEL, c.trend_outputs(), metric)
        table.caption = Text("\n".join(a.sentence() for a in answers))
        table.caption_justify = "left"
    return table

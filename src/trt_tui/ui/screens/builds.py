"""Builds screen: queue and history, start a build of the current preset (backend chooser with reasons),
live log (batched writes into a bounded widget; the full log stays on disk), progress, cancel, result."""

from __future__ import annotations

import copy
import time
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Log, ProgressBar, Select, Static

from trt_tui.core.build import CHOICES, BuildJob, JobChanged, JobManager, LogLines, Progress
from trt_tui.core.build.request import request_from_edited_preset, request_from_preset
from trt_tui.core.preset import Preset
from trt_tui.core.build.protocol import readable_line
from trt_tui.ui.messages import BuildEvents
from trt_tui.ui.plain import printable
from trt_tui.ui.screens.base import TrtScreen
from trt_tui.ui.widgets.fast_table import FastTable

LOG_LINES = 5_000  # the widget keeps the tail; the whole log is in the job's build directory
# A chatty build (trtexec --verbose: 10^5 lines/s) reaches the widget at most every LOG_FLUSH_S, newest
# LOG_FLUSH_MAX lines at a time: writing every batch as it came stalled the UI for 0.25 s under load.
LOG_FLUSH_S = 0.05
LOG_FLUSH_MAX = 1_000
STATE_STYLE = {"succeeded": "green", "failed": "bold red", "cancelled": "yellow", "running": "cyan",
               "queued": "dim", "timed_out": "red", "interrupted": "red"}  # fmt: skip


def source_name(job: BuildJob) -> str:
    """The preset file a build came from, or what stands in for one."""
    return Path(job.request.preset_path).name if job.request.preset_path else "a new preset"


def job_cells(job: BuildJob) -> tuple:
    r = job.result
    label = job.request.label or Path(job.request.preset_path).stem
    return (
        job.id,
        Text(job.state.value, style=STATE_STYLE.get(job.state.value, "")),
        job.request.backend,
        ("● " if job.request.unsaved_edits else "") + label,  # the status bar's "unsaved" marker, first: the column is narrow
        job.phase or "",
        f"{job.progress * 100:.0f}%" if job.progress is not None else "",
        f"{r.build_time_s:.1f}s" if r and r.build_time_s is not None else "",
        f"{r.engine_size_mib:.1f}" if r and r.engine_size_mib is not None else "",
    )


def result_text(job: BuildJob | None) -> Text:
    if job is None:
        return Text("No build selected. Press b to build the current preset.", style="dim")
    text = Text()
    text.append(f"{job.id}  ", style="bold")
    text.append(job.state.value, style=STATE_STYLE.get(job.state.value, ""))
    text.append(f"  backend {job.request.backend}")
    if job.request.backend_reason:
        text.append(f" ({job.request.backend_reason})", style="dim")
    if job.request.unsaved_edits:
        text.append(f"\nbuilt from unsaved edits of {source_name(job)} (snapshot: preset.toml in the build dir)",
                    style="yellow")  # fmt: skip
    r = job.result
    if r is not None:
        text.append(f"\n{r.message}")
        facts = []
        if r.build_time_s is not None:
            facts.append(f"build {r.build_time_s:.1f} s")
        if r.engine_size_mib is not None:
            facts.append(f"engine {r.engine_size_mib:.1f} MiB")
        if r.engine_path:
            facts.append(f"{r.engine_path}")
        if r.performance:
            facts.extend(f"{k} {v}" for k, v in list(r.performance.items())[:4] if k != "slowest_layers")
        if facts:
            text.append("\n" + " · ".join(facts))
        if r.pin_check:
            ok = r.pin_check.get("ok", r.pin_check.get("passed"))
            text.append("\npin check: ", style="bold")
            text.append(str(r.pin_check.get("summary", "ok" if ok else r.pin_check)), style="green" if ok else "red")
            for row in [row for row in r.pin_check.get("pins", []) if row.get("status") != "fp32"][:5]:
                text.append(f"\n  {row['node']}: {row.get('verdict', row['status'])}", style="red")
        if r.accuracy:
            text.append("\ntrtexec accuracy: ", style="bold")
            text.append("passed" if r.accuracy["passed"] else f"FAILED ({', '.join(r.accuracy['failed'][:3])})",
                        style="green" if r.accuracy["passed"] else "red")
        for note in r.notes[:3]:
            text.append(f"\n⚠ {note}", style="yellow")
    text.append(f"\nbuild dir: {job.build_dir}", style="dim")
    return text


class BuildsScreen(TrtScreen):
    MODE_TITLE = "Builds"
    AUTO_FOCUS = "#jobs"
    BINDINGS = [
        Binding("b", "build", "Build preset", id="builds.start"),
        Binding("c", "cancel", "Cancel build", id="builds.cancel"),
        Binding("l", "focus_log", "Log", id="builds.log", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.manager: JobManager | None = None
        self._unsubscribe = None
        self.shown_job: str | None = None
        self._pending_lines: deque[str] = deque(maxlen=LOG_FLUSH_MAX)  # log lines not drawn yet
        self._pending_skipped = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="builds-controls"):
            yield Label("backend")
            yield Select([(c, c) for c in CHOICES], value="auto", allow_blank=False, id="builds-backend")
            yield Static("", id="builds-backends")
        with Horizontal(id="builds-body"):
            with Vertical(id="builds-left"):
                yield FastTable(id="jobs")
                yield Static("", id="builds-result")
            with Vertical(id="builds-right"):
                with Horizontal(id="builds-progress-row"):
                    yield Static("", id="builds-phase", markup=False)
                    yield ProgressBar(total=100, id="builds-progress", show_eta=False)
                yield Log(max_lines=LOG_LINES, id="builds-log", auto_scroll=True)

    def on_mount(self) -> None:
        jobs = self.query_one("#jobs", FastTable)
        for label, key, width in (("id", "id", None), ("state", "state", 11), ("backend", "backend", 9),
                                  ("preset", "preset", None), ("phase", "phase", 14), ("%", "pct", 4),
                                  ("time", "time", 7), ("MiB", "mib", 7)):  # fmt: skip
            jobs.add_column(label, key, width=width, max_width=24)
        self.open_manager()

    @work(thread=True, exclusive=True, exit_on_error=False, group="builds", name="open-build-manager")
    def open_manager(self) -> None:
        manager = self.app.job_manager()  # the app's: it closes it on exit
        availability = {name: b.availability() for name, b in manager.backends.items()}
        self.app.call_from_thread(self._manager_ready, manager, availability)

    def _manager_ready(self, manager: JobManager, availability: dict) -> None:
        self.manager = manager
        # the hub already batches (every ~100 ms, bounded line counts): one message per batch
        self._unsubscribe = manager.subscribe(lambda events: self.post_message(BuildEvents(list(events))))
        text = Text()
        # what works first: at 100x30 the reasons of the missing ones may not all fit the three lines
        for name, a in sorted(availability.items(), key=lambda item: not item[1].ok):
            text.append(f" {name} ", style="bold")
            text.append("✓" if a.ok else "✗", style="green" if a.ok else "red")
            if not a.ok:
                text.append(f" ({a.reason})", style="dim")
        self.query_one("#builds-backends", Static).update(text)
        self._reload_jobs()
        for job_id in manager.recovered:
            self.notify(f"build {job_id} was interrupted when trt_tui last exited", severity="warning")

    def _reload_jobs(self) -> None:
        if self.manager is None:
            return
        jobs = self.manager.jobs(200)
        table = self.query_one("#jobs", FastTable)
        table.set_rows([(j.id, job_cells(j)) for j in jobs], keep_key=table.cursor_key)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    # ---- events -----------------------------------------------------------------------------------------
    def on_build_events(self, message: BuildEvents) -> None:
        table = self.query_one("#jobs", FastTable)
        lines: list[str] = []
        reload = False
        for event in message.events:
            if isinstance(event, JobChanged):
                job = event.job
                if job.id in table:
                    for key, value in zip(("state", "phase", "pct", "time", "mib"), job_cells(job)[1:2] + job_cells(job)[4:]):
                        table.update_cell(job.id, key, value)
                else:
                    reload = True
                if job.id == self.shown_job:
                    self.query_one("#builds-result", Static).update(result_text(job))
            elif isinstance(event, Progress) and event.job_id == self.shown_job:
                self.query_one("#builds-phase", Static).update(event.phase)
                bar = self.query_one("#builds-progress", ProgressBar)
                bar.update(total=100 if event.fraction is not None else None,
                           progress=(event.fraction or 0) * 100)  # fmt: skip
            elif isinstance(event, LogLines) and event.job_id == self.shown_job:
                if event.skipped:
                    lines.append(f"… {event.skipped} line(s) skipped here (the full log is in the build directory)")
                lines.extend(printable(line) for line in event.lines)  # trtexec output: no control sequences
        if reload:
            self._reload_jobs()
        if lines:
            if not self._pending_lines and not self._pending_skipped:
                self.set_timer(LOG_FLUSH_S, self._flush_log)
            overflow = len(self._pending_lines) + len(lines) - LOG_FLUSH_MAX
            if overflow > 0:  # only the newest reach the screen; the build directory keeps every line
                self._pending_skipped += overflow
            self._pending_lines.extend(lines)

    def _flush_log(self) -> None:
        lines = list(self._pending_lines)
        if self._pending_skipped:
            lines.insert(0, f"… {self._pending_skipped} line(s) arrived faster than shown (the full log is in the build directory)")
        self._pending_lines.clear()
        self._pending_skipped = 0
        if lines:
            self.query_one("#builds-log", Log).write_lines(lines)

    @on(FastTable.RowHighlighted, "#jobs")
    def _job_highlighted(self, event: FastTable.RowHighlighted) -> None:
        if event.key is None or self.manager is None or event.key == self.shown_job:
            return
        self.show_job(event.key)

    def show_job(self, job_id: str) -> None:
        assert self.manager is not None
        self.shown_job = job_id
        self._pending_lines.clear()  # another job's lines, not yet drawn
        self._pending_skipped = 0
        job = self.manager.get(job_id)
        self.query_one("#builds-result", Static).update(result_text(job))
        log = self.query_one("#builds-log", Log)
        log.clear()
        # build.log keeps the worker's raw `@@trt_tui {...}` progress lines: show them in words, as live
        log.write_lines([printable(readable_line(line)) for line in self.manager.log_tail(job_id, 500)])
        self.query_one("#builds-phase", Static).update(job.phase if job else "")
        bar = self.query_one("#builds-progress", ProgressBar)
        if job is not None and job.state.terminal:
            bar.update(total=100, progress=100)
        else:
            bar.update(total=None if job is None or job.progress is None else 100,
                       progress=(job.progress or 0) * 100 if job else 0)  # fmt: skip

    # ---- actions ----------------------------------------------------------------------------------------
    def action_build(self) -> None:
        ws = self.workspace
        if self.manager is None:
            self.notify("The build manager is still starting.", severity="warning")
            return
        backend = str(self.query_one("#builds-backend", Select).value)
        if ws.preset is None and ws.preset_path:
            self.notify("The preset is still loading.", severity="warning")
            return
        if ws.preset is None and ws.index is None:
            self.notify("Open a model or a preset first.", severity="warning")
            return
        if ws.preset is not None and ws.preset_path and not ws.dirty:
            self.submit_build(backend, preset_path=ws.preset_path)  # the file itself: its snapshot keeps comments
            return
        # A copy taken here, on the UI thread: later edits must not change what the worker resolves.
        self.submit_build(backend, edited=copy.deepcopy(ws.current_preset()))

    @work(thread=True, exit_on_error=False, group="builds", name="submit-build")
    def submit_build(self, backend: str, *, preset_path: str | None = None, edited: Preset | None = None) -> None:
        if edited is not None:
            request = request_from_edited_preset(edited, backend, self.manager.backends)
        else:
            request = request_from_preset(preset_path, backend, self.manager.backends)
        job = self.manager.submit(request)
        self.app.call_from_thread(self._submitted, job, time.time())

    def _submitted(self, job: BuildJob, _at: float) -> None:
        self._reload_jobs()
        table = self.query_one("#jobs", FastTable)
        table.move_to_key(job.id)
        self.show_job(job.id)
        what = f"building unsaved edits of {source_name(job)}: " if job.request.unsaved_edits else ""
        self.notify(f"{what}build {job.id} queued on {job.request.backend}: {job.request.backend_reason}")

    def action_cancel(self) -> None:
        key = self.query_one("#jobs", FastTable).cursor_key
        if self.manager is None or key is None:
            return
        self.notify(self.manager.cancel(key))

    def action_focus_log(self) -> None:
        self.query_one("#builds-log", Log).focus()

"""The trt_tui app: thin on purpose (modes, global bindings, loading into the workspace, the build queue's
lifetime, workers' error handling). What screens work on lives in the workspace (ui/workspace.py)."""

from __future__ import annotations

import gc
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from trt_tui.core.build.manager import JobManager

from trt_tui.core.backends import BackendStatus, detect
from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex, load_graph
from trt_tui.core.preset import Preset, load_preset
from trt_tui.core.preset.roundtrip import PresetSource, read_source
from trt_tui.core.selection import PinSelection, scopes_of
from trt_tui.ui.commands import TrtCommands
from trt_tui.ui.heap import long_lived
from trt_tui.ui.keymap import load_keymap
from trt_tui.ui.messages import ModelLoaded, NativeStderrText
from trt_tui.ui.screens.base import error_line
from trt_tui.ui.screens.help import HelpScreen
from trt_tui.ui.screens.model import ModelScreen
from trt_tui.ui.widgets.node_table import NodeRows
from trt_tui.ui.screens.parity import ParityScreen
from trt_tui.ui.screens.builds import BuildsScreen
from trt_tui.ui.screens.streaming import StreamingScreen
from trt_tui.ui.screens.preset import PresetScreen
from trt_tui.ui.message_log import MessageLog
from trt_tui.ui.plain import printable
from trt_tui.ui.screens.messages import MessageLogScreen
from trt_tui.ui.widgets.choice_prompt import ChoicePrompt
from trt_tui.ui.workspace import Workspace

TOAST_CHARS = 600  # a toast shows this much; the message log keeps everything

SCREENS_BY_MODE: dict[str, type[Screen]] = {
    "model": ModelScreen,
    "preset": PresetScreen,
    "builds": BuildsScreen,
    "parity": ParityScreen,
    "streaming": StreamingScreen,
}


class TrtTuiApp(App):
    TITLE = "trt_tui"
    CSS_PATH = "trt_tui.tcss"
    MODES = dict(SCREENS_BY_MODE)
    COMMANDS = App.COMMANDS | {TrtCommands}
    # below 130 columns the side panels narrow so names and the columns that matter keep their width
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]
    BINDINGS = [
        Binding("1", "switch_mode('model')", "Model", id="app.mode.model"),
        Binding("2", "switch_mode('preset')", "Preset", id="app.mode.preset"),
        Binding("3", "switch_mode('builds')", "Builds", id="app.mode.builds"),
        Binding("4", "switch_mode('parity')", "Parity", id="app.mode.parity"),
        Binding("5", "switch_mode('streaming')", "Streaming", id="app.mode.streaming"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("L,f2", "messages", "Messages", id="app.messages"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    status_version: reactive[int] = reactive(0, init=False)

    def __init__(
        self,
        model_path: str | None = None,
        preset_path: str | None = None,
        *,
        backends: list[BackendStatus] | None = None,
        keymap_file: Path | None = None,
        build_state_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.keymap_file = keymap_file
        self.messages = MessageLog()
        self.workspace = Workspace(
            self,
            model_path=model_path,
            preset_path=preset_path,
            backends=backends if backends is not None else detect(),
            state_dir=build_state_dir,
        )
        self.build_manager: JobManager | None = None  # opened on first use (job_manager()), closed on exit
        self._told_native_stderr = False
        self._manager_lock = threading.Lock()
        self._hangup: threading.Thread | None = None  # ends the builds when the terminal goes (SIGHUP/SIGTERM)
        self._previous_handlers: dict[int, object] = {}  # put back on unmount (tests run many apps in one process)

    # ---- read-only views for screens not yet moved to the workspace (streaming.py) ---------------------
    @property
    def index(self) -> GraphIndex | None:
        return self.workspace.index

    @property
    def preset(self) -> Preset | None:
        return self.workspace.preset

    @property
    def selection(self) -> PinSelection | None:
        return self.workspace.selection

    @property
    def build_state_dir(self) -> Path | None:
        return self.workspace.state_dir

    @property
    def model_changed(self) -> Signal[GraphIndex]:
        return self.workspace.model_changed

    def model_label(self) -> str:
        return self.workspace.model_label()

    # ---- start-up and shut-down ----------------------------------------------------------------------
    def on_mount(self) -> None:
        gc.freeze()  # imports and start-up objects live forever: keep them out of every later GC pass
        self._end_builds_on_hangup()
        try:
            keymap = load_keymap(self.keymap_file, known_ids={b.id for _, b in self.all_bindings() if b.id})
        except UserError as exc:
            self.notify(exc.one_line(), title="keymap ignored", severity="error", timeout=10)
        else:
            if keymap:
                self.set_keymap(keymap)
        self.switch_mode("model")
        ws = self.workspace
        if ws.preset_path:
            self.load_preset_file(ws.preset_path)  # opens the preset's model when no MODEL was given
        elif ws.model_path:
            self.load_model(ws.model_path)

    def _end_builds_on_hangup(self) -> None:
        """The terminal closing (SIGHUP) or SIGTERM would kill the app at once: the builds' groups would die
        with it (PDEATHSIG, watchdog) but the history would say `running` until the next start. Instead,
        cancel them, which records the outcome, then leave. A plain signal handler, not the event loop's:
        when the terminal goes, Textual may already be blocked in its own shutdown (writing to the dead
        terminal), and a loop callback would never run."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGHUP, signal.SIGTERM):
            self._previous_handlers[sig] = signal.signal(sig, self._on_hangup)

    def _on_hangup(self, sig: int, _frame: object = None) -> None:
        if self._hangup is not None:
            return
        self._hangup = threading.Thread(target=self._end_builds_then_exit, args=(sig,), name="hangup", daemon=True)
        self._hangup.start()

    def _end_builds_then_exit(self, sig: int) -> None:
        try:
            if self.build_manager is not None:
                self.build_manager.close()  # cancels, waits for the groups to be gone, records the outcome
        finally:
            if sig == signal.SIGHUP:
                # No terminal left to restore, and Textual's orderly exit can block for ever writing to it.
                os._exit(128 + sig)
            self.call_from_thread(self.exit, return_code=128 + sig)

    def on_unmount(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if self.build_manager is not None:
            self.build_manager.close()  # cancels what still runs: no build outlives the app

    def job_manager(self) -> JobManager:
        """The app's one build queue and history, opened on first use (from a worker: opening reads the
        history and probes the backends); the app closes it when it exits."""
        from trt_tui.core.build.manager import JobManager
        from trt_tui.core.build.state import state_dir

        with self._manager_lock:
            if self.build_manager is None:
                self.build_manager = JobManager(self.workspace.state_dir or state_dir())
            return self.build_manager

    @work(thread=True, exclusive=True, exit_on_error=False, group="preset", name="load-preset")
    def load_preset_file(self, path: str) -> None:
        preset = load_preset(path)
        source = read_source(path)  # after a successful load: the text its layout is kept from on save
        self.call_from_thread(self._preset_loaded, preset, source)

    def _preset_loaded(self, preset: Preset, source: PresetSource) -> None:
        ws = self.workspace
        ws.set_preset(preset, source=source, dirty=False)
        if ws.selection is not None:
            return
        if not ws.model_path:
            ws.model_path = str(preset.model_path)
            self.load_model(ws.model_path)
        elif ws.index is None and not self._model_loading():
            self.load_model(ws.model_path)

    def _model_loading(self) -> bool:
        return any(w.name == "load-model" and w.is_running for w in self.workers)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", name="load-model")
    def load_model(self, path: str) -> None:
        # Indexing allocates ~10^5 long-lived objects; with the collector on, each full pass walks all of
        # them while holding the GIL (measured: 250-300 ms UI stalls on a 10,000-node model).
        with long_lived():
            index = load_graph(path)
            preset = self.workspace.preset
            pins = preset.pins if preset is not None else None
            message = ModelLoaded(index, NodeRows.build(index), scopes_of(index), PinSelection(index, pins))
        self.post_message(message)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.workspace.set_model(message.index, message.rows, message.scopes, message.selection)

    # ---- bindings: help screen, palette, keymap ------------------------------------------------------
    def all_bindings(self, current: Screen | None = None) -> Iterator[tuple[str, Binding]]:
        """("global" | mode title, binding) for the app and every mode (or only the current screen)."""
        for b in self.BINDINGS:
            if isinstance(b, Binding):
                yield "global", b
        classes = [type(current)] if current is not None else list(SCREENS_BY_MODE.values())
        for cls in classes:
            title = getattr(cls, "MODE_TITLE", "") or cls.__name__
            for b in cls.__dict__.get("BINDINGS", []):
                if isinstance(b, Binding):
                    yield title, b

    def keys_for(self, binding: Binding) -> str:
        keys = self._keymap.get(binding.id, binding.key) if binding.id else binding.key
        return ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))

    # ---- quitting: never lose edits or builds without a word ----------------------------------------------
    async def action_quit(self) -> None:  # q, ctrl+q
        ws = self.workspace
        running = self._unfinished_builds()
        if not ws.dirty and not running:
            self.exit()
            return
        lines = []
        if ws.dirty:
            lines.append(f"The preset ({ws.preset_label()}) has unsaved edits.")
        if running:
            lines.append(f"{running} build(s) still queued or running will be cancelled.")
        choices = [("s", "save the preset, then quit")] if ws.dirty else []
        choices.append(("q", "quit" + (" without saving" if ws.dirty else "")))

        def chosen(answer: str | None) -> None:
            if answer == "q":
                self.exit()
            elif answer == "s":
                self.switch_mode("preset")
                self.call_later(lambda: self.screen.action_save(then=self.exit))

        self.push_screen(ChoicePrompt("Quit trt_tui?", "\n".join(lines), choices), chosen)

    def _unfinished_builds(self) -> int:
        if self.build_manager is None:
            return 0
        return sum(1 for job in self.build_manager.jobs(200) if not job.state.terminal)

    # ---- messages: every notification is plain text, and kept in the log -------------------------------
    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False, detail: str | None = None) -> None:  # fmt: skip
        """Show a toast and keep it in the message log. Never markup: messages carry names from models and
        files (`[ONNXRuntimeError]`, a node named `[/]`); control characters are escaped. `detail` (a
        traceback, a long list) goes to the log only."""
        self.messages.add(severity, title, message + (f"\n\n{detail}" if detail else ""))
        if len(message) > TOAST_CHARS:
            message = message[:TOAST_CHARS] + " … (L: full text in the message log)"
        super().notify(printable(message, keep_newlines=True), title=printable(title), severity=severity,
                       timeout=timeout, markup=False)  # fmt: skip

    def native_stderr(self, text: str) -> bool:
        """Text a native library wrote to fd 2 (ui/native_stderr.py), from its reader thread: logged as a
        warning (no toast: ONNX Runtime can be chatty). False when the app cannot take it."""
        if not self.is_running:
            return False
        return self.post_message(NativeStderrText(text))

    def on_native_stderr_text(self, message: NativeStderrText) -> None:
        first = message.text.splitlines()[0] if message.text else ""
        source = "onnxruntime" if "onnxruntime" in first.lower() else "native library"
        if not self._told_native_stderr:  # once: where such text goes from now on
            self._told_native_stderr = True
            super().notify(f"{source} wrote to stderr; that text is in the message log (L)", severity="warning",
                           timeout=5, markup=False)  # fmt: skip
        self.messages.add("warning", f"{source} (stderr)", message.text)

    def action_messages(self) -> None:
        if not isinstance(self.screen, MessageLogScreen):
            self.push_screen(MessageLogScreen(self.messages))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---- the one error handler -----------------------------------------------------------------------
    @on(Worker.StateChanged)
    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface (screens forward theirs): a notification, never a crash."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            text, detail = error_line(error), None
            if not isinstance(error, UserError):  # unexpected: the log keeps the traceback for a bug report
                detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.notify(text, title=f"{event.worker.name} failed", severity="error", timeout=10, detail=detail)

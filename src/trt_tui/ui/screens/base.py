"""The frame every mode shares: header, the screen's body, the status bar, the footer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerState

from trt_tui.core.errors import UserError
from trt_tui.core.selection import PinSelection
from trt_tui.ui.widgets.status_bar import StatusBar
from trt_tui.ui.workspace import Workspace, describe_pin_edit


class PaletteCommand(NamedTuple):
    title: str
    help: str
    callback: Callable[[], object]


def error_line(error: BaseException | None) -> str:
    """One line for a worker's error, as the toast and the message log say it (UserError: its own line)."""
    if isinstance(error, UserError):
        return error.one_line()
    return f"{type(error).__name__}: {error}"


class TrtScreen(Screen):
    MODE_TITLE = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="≋")
        yield from self.compose_body()
        yield StatusBar(id="status-bar")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def workspace(self) -> Workspace:
        return self.app.workspace

    def edit_pins(self, edit: Callable[[PinSelection], set[str]], describe: str | None = None) -> None:
        """Apply one pin edit to the workspace and say what it did (or why it did nothing)."""
        try:
            result = self.workspace.edit_pins(edit)
        except UserError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        if result is None:
            self.notify("Open a model first.", severity="warning")
        elif describe and not result.changed:
            self.notify(f"No change: {describe}")
        elif describe:
            self.notify(describe_pin_edit(result, describe))

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """Worker messages do not bubble: hand this screen's workers to the app's one error handler."""
        self.app.worker_state_changed(event)
        if event.state is WorkerState.ERROR:
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Reset whatever showed the work as running (the app already notified the error)."""

    def on_screen_resume(self) -> None:
        self.app.sub_title = self.MODE_TITLE

    def palette_commands(self) -> Iterable[PaletteCommand]:
        """Extra commands this screen offers in the command palette (beyond its key bindings)."""
        return ()

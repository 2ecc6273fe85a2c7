"""The trt_tui app: thin on purpose (modes, global bindings, workers' error handling)."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex, load_graph
from trt_tui.ui.messages import ModelLoaded
from trt_tui.ui.screens.model import ModelScreen


class TrtTuiApp(App):
    TITLE = "trt_tui"
    CSS_PATH = "trt_tui.tcss"
    BINDINGS = [Binding("q", "quit", "Quit", id="app.quit")]

    def __init__(self, model_path: str | None = None, preset_path: str | None = None) -> None:
        super().__init__()
        self.model_path = model_path
        self.preset_path = preset_path
        self.index: GraphIndex | None = None

    def on_mount(self) -> None:
        self.push_screen(ModelScreen())
        if self.model_path:
            self.sub_title = Path(self.model_path).name
            self.load_model(self.model_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", name="load-model")
    def load_model(self, path: str) -> None:
        index = load_graph(path)
        self.post_message(ModelLoaded(index))

    async def on_model_loaded(self, message: ModelLoaded) -> None:
        self.index = message.index
        screen = self.screen
        if isinstance(screen, ModelScreen):
            await screen.show_index(message.index)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface: a notification, never a crash."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            text = error.one_line() if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            self.notify(text, title=f"{event.worker.name} failed", severity="error", timeout=10)

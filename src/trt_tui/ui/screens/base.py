"""The frame every mode shares: header, the screen's body, the status bar, the footer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

from trt_tui.ui.widgets.status_bar import StatusBar


class PaletteCommand(NamedTuple):
    title: str
    help: str
    callback: Callable[[], object]


class TrtScreen(Screen):
    MODE_TITLE = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="≋")
        yield from self.compose_body()
        yield StatusBar(id="status-bar")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.app.sub_title = self.MODE_TITLE

    def palette_commands(self) -> Iterable[PaletteCommand]:
        """Extra commands this screen offers in the command palette (beyond its key bindings)."""
        return ()

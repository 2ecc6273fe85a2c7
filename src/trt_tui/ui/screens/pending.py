"""A mode whose core has not landed yet says so, instead of pretending."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from trt_tui.ui.screens.base import TrtScreen


class PendingScreen(TrtScreen):
    MODE_TITLE = ""
    WAITING_FOR = ""

    def compose_body(self) -> ComposeResult:
        yield Static(
            f"{self.MODE_TITLE}: waiting for {self.WAITING_FOR}. Press 1 for the Model screen.",
            classes="pending",
        )


class PresetScreen(PendingScreen):
    MODE_TITLE = "Preset"
    WAITING_FOR = "the presets core (trt_tui.core.preset)"


class BuildsScreen(PendingScreen):
    MODE_TITLE = "Builds"
    WAITING_FOR = "the builds core (trt_tui.core.build)"


class ParityScreen(PendingScreen):
    MODE_TITLE = "Parity"
    WAITING_FOR = "the parity engine (trt_tui.core.parity)"


class StreamingScreen(PendingScreen):
    MODE_TITLE = "Streaming"
    WAITING_FOR = "the streaming contracts core"

"""The status bar: model, pinned count, preset (with an unsaved marker) and which backends exist."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from trt_tui.ui.plain import printable


class StatusBar(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "status_version", self._update_status, init=True)

    def _update_status(self, _version: int = 0) -> None:
        ws = getattr(self.app, "workspace", None)
        if ws is None:  # an app without a workspace (widget tests)
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" model ", style="bold reverse")
        text.append(f" {printable(ws.model_label()) or 'none'} ")
        if ws.selection is not None:
            text.append(f" pinned {len(ws.selection)} ", style="bold")
        text.append(" preset ", style="bold reverse")
        text.append(f" {printable(ws.preset_label())} ")
        for backend in ws.backends:
            mark, style = ("✓", "green") if backend.available else ("✗", "red")
            text.append(f" {backend.name} ", style="bold")
            text.append(mark, style=style)
        self.update(text)

"""The status bar: model, pinned count, preset (with an unsaved marker) and which backends exist."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "status_version", self._update_status, init=True)

    def _update_status(self, _version: int = 0) -> None:
        app = self.app
        text = Text(no_wrap=True, overflow="ellipsis")
        index = getattr(app, "index", None)
        model = index.path.name if index is not None else (app.model_label() if hasattr(app, "model_label") else "")
        text.append(" model ", style="bold reverse")
        text.append(f" {model or 'none'} ")
        selection = getattr(app, "selection", None)
        if selection is not None:
            text.append(f" pinned {len(selection)} ", style="bold")
        text.append(" preset ", style="bold reverse")
        preset = app.preset_label() if hasattr(app, "preset_label") else "none"
        text.append(f" {preset} ")
        for backend in getattr(app, "backends", []):
            mark, style = ("✓", "green") if backend.available else ("✗", "red")
            text.append(f" {backend.name} ", style="bold")
            text.append(mark, style=style)
        self.update(text)

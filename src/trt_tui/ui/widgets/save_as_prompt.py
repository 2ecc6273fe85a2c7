"""Save as: the file, and the preset's name and description (a copy saved under a new file name should not keep
claiming the old name: builds are labelled with it). The name follows the file name until it is edited."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


@dataclass
class SaveAs:
    path: str
    name: str
    description: str


class SaveAsPrompt(ModalScreen[SaveAs | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="prompt.cancel")]

    def __init__(self, path: str, name: str, description: str) -> None:
        super().__init__()
        self.path, self.name_text, self.description = path, name, description
        self._name_follows = True  # until the user edits the name
        self._name_set = name  # the name as last written by the prompt itself

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-body"):
            yield Label("Save preset as (an existing file is not replaced)")
            yield Input(self.path, id="save-path")
            yield Label("name (shown in builds and the status bar)", classes="prompt-hint")
            yield Input(self.name_text, id="save-name")
            yield Label("description", classes="prompt-hint")
            yield Input(self.description, id="save-description")
            yield Label("Enter to save, Tab to the next field, Esc to cancel", classes="prompt-hint")

    @on(Input.Changed, "#save-path")
    def _path_changed(self, event: Input.Changed) -> None:
        stem = Path(event.value.strip()).stem
        if event.value != self.path and self._name_follows and stem:
            self._name_set = stem
            self.query_one("#save-name", Input).value = stem

    @on(Input.Changed, "#save-name")
    def _name_edited(self, event: Input.Changed) -> None:
        if event.value != self._name_set:
            self._name_follows = False

    @on(Input.Submitted)
    def _submitted(self) -> None:
        path = self.query_one("#save-path", Input).value.strip()
        if not path:
            self.query_one("#save-path", Input).focus()
            return
        self.dismiss(SaveAs(path, self.query_one("#save-name", Input).value.strip(),
                            self.query_one("#save-description", Input).value.strip()))  # fmt: skip

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

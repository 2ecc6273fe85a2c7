"""A modal question with a few answers, each on its own key (reload / overwrite / save as, save / quit ...);
dismisses with the chosen answer's id, or None on Esc."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ChoicePrompt(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, body: str, choices: list[tuple[str, str]]) -> None:
        """`choices`: (key, label) pairs; the key is what the user presses and what the prompt returns."""
        super().__init__()
        self.title_text, self.body, self.choices = title, body, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-body"):
            yield Static(Text(self.title_text, style="bold"))
            if self.body:
                yield Static(Text(self.body))
            answers = Text()
            for key, label in self.choices:
                answers.append(f"\n {key} ", style="bold reverse")
                answers.append(f" {label}")
            answers.append("\n esc ", style="bold reverse")
            answers.append(" cancel")
            yield Static(answers, id="prompt-choices")

    def on_key(self, event: events.Key) -> None:
        for key, _label in self.choices:
            if event.key == key or event.character == key:
                event.stop()
                self.dismiss(key)
                return

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

"""The help screen: every key binding of every mode, with its id (for keymap.toml) and current keys."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from trt_tui.ui.keymap import keymap_path


def bindings_table(app) -> Table:
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    table.add_column("where", style="dim", no_wrap=True, max_width=10)
    table.add_column("keys", style="bold", no_wrap=True, max_width=16)
    table.add_column("does", ratio=1)
    table.add_column("binding id", style="dim", no_wrap=True)
    for where, binding in app.all_bindings():
        table.add_row(where, app.keys_for(binding), binding.description, binding.id or "")
    table.add_row("anywhere", app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")), "Command palette", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        close = self.app.keys_for(self.BINDINGS[0])
        with Vertical(id="help-body"):
            # the way out stays in view (docked above the scrolling table), in the keys it has now
            title = Text("trt_tui keys", style="bold")
            title.append(f"  ·  {close} closes this screen  ·  ↑↓ PgUp PgDn scroll", style="dim")
            yield Static(title, id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(bindings_table(self.app))
                yield Static(
                    Text(
                        f"Remap any key in {keymap_path()} with lines like  \"model.pin_node\" = \"p\"  "
                        f"(binding id = comma-separated keys). {close} closes this screen.",
                        style="dim",
                    ),
                    id="help-footer",
                )

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()  # the arrow keys scroll the table

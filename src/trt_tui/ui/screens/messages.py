"""The message log: every error, warning and notice the app showed, with its full text (y copies one,
w writes the whole log to a file). Opened from anywhere with L (or F2)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write
from trt_tui.ui.message_log import LogEntry, MessageLog
from trt_tui.ui.plain import plain_text, printable
from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable
from trt_tui.ui.widgets.path_prompt import PathPrompt

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "information": "dim"}
# The table lists the newest entries only: building rows for a 50,000-entry log on the UI thread stalls it
# (w writes the whole log). Appends while the screen is open are drawn together, at most every FLUSH_S.
SHOWN_MAX = 2_000
FLUSH_S = 0.1


def entry_cells(entry: LogEntry) -> tuple:
    first = entry.text.split("\n", 1)[0]
    return (
        entry.clock(),
        Text(entry.severity[:4], style=SEVERITY_STYLE.get(entry.severity, "")),
        printable(entry.title),
        printable(first),
    )


class MessageTable(FastTable):
    DEFAULT_CSS = "MessageTable " + FLEX_CSS


class MessageLogScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,L,f2", "dismiss", "Close", id="messages.close"),
        Binding("y", "copy", "Copy message", id="messages.copy"),
        Binding("w", "write", "Write log to file", id="messages.write"),
        Binding("e", "errors_only", "Errors/warnings only", id="messages.errors"),
    ]

    def __init__(self, log: MessageLog) -> None:
        super().__init__()
        self.message_log = log
        self.errors_only = False
        self._stop_listening = None
        self._pending: list[LogEntry] = []  # appended since the last flush
        self._shown = 0  # entries in the table

    def compose(self) -> ComposeResult:
        with Vertical(id="messages-body"):
            yield Static("", id="messages-title")
            with Horizontal(id="messages-panes"):
                yield MessageTable(id="messages-table")
                with VerticalScroll(id="messages-detail"):
                    yield Static("", id="messages-text")
            yield Static(Text("↑↓ browse · y copy (OSC 52) · w write the log to a file · e errors and warnings "
                              "only · esc close", style="dim"))  # fmt: skip

    def on_mount(self) -> None:
        table = self.query_one(MessageTable)
        table.add_column("time", "time", width=8)
        table.add_column("level", "level", width=4)
        table.add_column("title", "title", max_width=24)
        table.add_column("message", "text", max_width=400, flex=True, min_width=10, overflow="end")
        self._fill()
        table.action_last()  # the newest first in view
        table.focus()
        self._stop_listening = self.message_log.listen(self._appended)

    def on_unmount(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()

    def _visible(self, entry: LogEntry) -> bool:
        return not self.errors_only or entry.severity in ("error", "warning")

    def _fill(self) -> None:
        table = self.query_one(MessageTable)
        newest: list[LogEntry] = []
        for e in reversed(self.message_log.entries):  # newest first, stop at the cap
            if self._visible(e):
                newest.append(e)
                if len(newest) == SHOWN_MAX:
                    break
        newest.reverse()
        self._pending.clear()
        self._shown = len(newest)
        table.set_rows([(str(e.seq), entry_cells(e)) for e in newest])
        self._title()
        self._show()

    def _title(self) -> None:
        c = self.message_log.counts()
        total = len(self.message_log)
        text = f"Messages: {total} ({c['error']} errors, {c['warning']} warnings)"
        if self.errors_only:
            text += " · errors and warnings only"
        if self._shown < (c["error"] + c["warning"] if self.errors_only else total):
            text += f" · listing the newest {self._shown:,} (w writes them all)"
        self.query_one("#messages-title", Static).update(Text(text, style="bold"))

    def _appended(self, entry: LogEntry) -> None:
        if not self._pending:
            self.set_timer(FLUSH_S, self._flush)
        self._pending.append(entry)

    def _flush(self) -> None:
        rows = [(str(e.seq), entry_cells(e)) for e in self._pending if self._visible(e)]
        self._pending.clear()
        if rows:
            self.query_one(MessageTable).append_rows(rows)
            self._shown += len(rows)
        self._title()

    def _entry(self) -> LogEntry | None:
        key = self.query_one(MessageTable).cursor_key
        if key is None:
            return None
        seq = int(key)
        first = self.message_log.entries[0].seq if self.message_log.entries else 0
        pos = seq - first  # entries are consecutive: the deque only drops from the left
        if 0 <= pos < len(self.message_log.entries) and self.message_log.entries[pos].seq == seq:
            return self.message_log.entries[pos]
        return None

    @on(FastTable.RowHighlighted, "#messages-table")
    def _show(self) -> None:
        entry = self._entry()
        body = self.query_one("#messages-text", Static)
        if entry is None:
            body.update(Text("No messages yet.", style="dim"))
            return
        text = Text()
        text.append(f"{entry.clock()} {entry.severity}", style=SEVERITY_STYLE.get(entry.severity, ""))
        if entry.title:
            text.append_text(plain_text(f" · {entry.title}", "bold"))
        text.append("\n")
        text.append_text(plain_text(entry.text, keep_newlines=True))
        body.update(text)

    def action_copy(self) -> None:
        entry = self._entry()
        if entry is None:
            return
        self.app.copy_to_clipboard(entry.as_text())
        self.notify("copied to the clipboard through the terminal (OSC 52); if nothing arrived, w writes a file",
                    timeout=4)  # fmt: skip

    def action_write(self) -> None:
        def done(path: str | None) -> None:
            if not path:
                return
            try:
                target = atomic_write(Path(path), self.message_log.as_text())
            except UserError as exc:
                self.notify(exc.one_line(), title="log not written", severity="error")
                return
            except OSError as exc:
                self.notify(f"{path}: {exc.strerror or exc}", title="log not written", severity="error")
                return
            self.notify(f"wrote {len(self.message_log)} messages to {target}")

        self.app.push_screen(PathPrompt("Write the message log to (an existing file is not replaced)",
                                        str(Path.cwd() / "trt_tui-messages.txt")), done)  # fmt: skip

    def action_errors_only(self) -> None:
        self.errors_only = not self.errors_only
        self._fill()

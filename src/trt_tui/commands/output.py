"""Shared CLI output helpers: rich consoles, JSON printing, and the terminal-safety layer.

Everything a command prints passes the core sanitizer (`trt_tui.core.safe_text`): `cli.main` wraps stdout
and stderr in `SafeStream` for the duration of a command, so a plain `print()` of a node name cannot emit
an escape sequence; rich consoles write to the real stream (their own styling is ours) and sanitize every
string they render (`_SafeConsole.render_str`), and a string that is not valid markup is shown as text
rather than crashing with MarkupError. Data interpolated into markup goes through `safe()`, so `[bold]` or
`[link=...]` in a name is shown, never interpreted.
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Any

from trt_tui.core import jsonio
from trt_tui.core.safe_text import escape_controls

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported when a console is first asked for, not here: every command module imports this one, and
# `trt-tui --help` should not pay for rich.

# Layout characters our own output uses; every other control character is escaped.
LAYOUT = "\n\t\r"


def plain(value: Any) -> str:
    """Text from a model or file, safe for a terminal: control characters escaped (one line)."""
    return escape_controls(str(value))


def safe(value: Any) -> str:
    """`plain(value)` with rich markup escaped too: for data interpolated into a markup string."""
    from rich.markup import escape

    return escape(plain(value))


class SafeStream(io.TextIOBase):
    """A text stream that escapes control characters (except LAYOUT) before they reach `raw`."""

    def __init__(self, raw) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape_controls(text, keep=LAYOUT))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


def raw_stream(stream):
    """The stream below a SafeStream (rich writes its own escape sequences there)."""
    return stream.raw if isinstance(stream, SafeStream) else stream


def _console_class():
    from rich.console import Console
    from rich.errors import MarkupError
    from rich.text import Text

    class _SafeConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Text:
            text = escape_controls(text, keep=LAYOUT)
            try:
                return super().render_str(text, **kwargs)
            except MarkupError:  # data that looks like broken markup: show it as it is
                return Text(text)

    return _SafeConsole


# Width of a console writing to a file or a pipe: rich would wrap and fold tables at 80 columns there, which
# breaks names and rows in two for grep, diff and scripts; lines are as long as their content instead.
UNWRAPPED_WIDTH = 100_000


def _width(stream, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with no wrapping when `stream` is not a terminal (a width the caller gives wins)."""
    isatty = getattr(stream, "isatty", None)
    if "width" in kwargs or (isatty is not None and isatty()):
        return kwargs
    return {**kwargs, "width": UNWRAPPED_WIDTH}


def console(**kwargs: Any) -> Console:
    stream = raw_stream(sys.stdout)
    options = _width(stream, {"highlight": False, "soft_wrap": False, **kwargs})
    return _console_class()(file=stream, **options)


def err_console() -> Console:
    stream = raw_stream(sys.stderr)
    return _console_class()(stderr=True, file=stream, **_width(stream, {"highlight": False}))


def print_json(payload: Any, *, pretty: bool = True) -> None:
    """Print JSON; `pretty=False` for big payloads (json's C encoder is used only without indentation)."""
    sys.stdout.write(jsonio.dumps(payload, indent=2 if pretty else None))
    sys.stdout.write("\n")


BIG_TABLE = 500  # rows above which tables are printed as plain aligned text (rich tables cost ~1 ms a row)


def print_plain_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    rows = [[plain(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [title, fmt.format(*headers), fmt.format(*("-" * w for w in widths[:-1]), "-" * len(headers[-1]))]
    out.extend(fmt.format(*row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")


KEPT_SHOWN = 8  # node names shown per reason kept FP32 (the rest: --verbose or the JSON)


def kept_fp32_lines(kept, shown: int = KEPT_SHOWN, *, verbose: bool = False) -> list[str]:
    """Nodes kept FP32 (KeptFp32: node, op_type, reason), one line per reason: "reason (N): a, b ... (+M)"
    (53 Shape-path nodes are one line, not 53); `verbose`: every node on its own line under its reason."""
    by_reason: dict[str, list] = {}
    for k in kept:
        by_reason.setdefault(k.reason, []).append(k)
    lines = []
    for reason, nodes in by_reason.items():
        if verbose:
            lines.append(f"{reason} ({len(nodes)}):")
            lines += [f"  {k.node} ({k.op_type})" for k in nodes]
            continue
        more = f" ... (+{len(nodes) - shown})" if len(nodes) > shown else ""
        lines.append(f"{reason} ({len(nodes)}): {', '.join(k.node for k in nodes[:shown])}{more}")
    return lines


ELLIPSIS = "…"


def elide(text: str, width: int) -> str:
    """`text` in at most `width` characters: cut at a word boundary with an ellipsis, or (one long word such as
    a path) in the middle, keeping both ends (`/very/long/…/build.log`)."""
    if len(text) <= width:
        return text
    room = width - len(ELLIPSIS)
    cut = text.rfind(" ", 0, room + 1)
    if cut >= room * 2 // 3:  # a word boundary near the end: the rest of the sentence goes
        return text[:cut].rstrip(" ,;:-(") + ELLIPSIS
    head = (room + 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (room - head) :]

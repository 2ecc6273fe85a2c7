"""Text from a model or a file is shown as plain text: never parsed as Rich markup, control characters escaped.

A node named `\\x1b[2J` must not clear the screen and `[/]` must not raise MarkupError: every string that came
from outside goes on screen through `printable()` (escapes C0/C1 controls and DEL as `\\xNN`), inside a
`rich.text.Text` (never a markup string)."""

from __future__ import annotations

import re

from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_KEEP_NEWLINES = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match) -> str:
    return f"\\x{ord(match[0]):02x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    pattern = _CONTROL_KEEP_NEWLINES if keep_newlines else _CONTROL
    return pattern.sub(_escape, text) if pattern.search(text) else text


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def plain_text(text: str, style: str = "", *, keep_newlines: bool = False) -> Text:
    return Text(printable(text, keep_newlines=keep_newlines), style=style)

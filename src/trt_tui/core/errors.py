"""The one error type users see.

Everything that is the user's input being wrong (a missing file, a corrupt model, a bad preset) raises
`UserError`; the CLI prints it as a single line and exits 2, the TUI shows it in a notification. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

from trt_tui.core.safe_text import escape_controls


class UserError(Exception):
    """A problem with the user's input, reported as one line: `<file>: <problem>`."""

    exit_code = 2

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        # never more than one line, and never a control character from a file name or a model
        text = escape_controls(" ".join(self.message.split()))
        return f"{escape_controls(self.path)}: {text}" if self.path else text


class MissingBackendError(UserError):
    """An optional backend (TensorRT, trtexec, ...) is not available on this machine."""

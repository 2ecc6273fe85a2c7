"""Native code's stderr (ONNX Runtime's `[W:onnxruntime:...]` lines, a C library's warning) goes to the
message log instead of over the screen.

ONNX Runtime runs in the app's process (parity, streaming) and writes to file descriptor 2 from C++, past
Python's sys.stderr; on a terminal that text lands on top of the TUI. While the app runs, fd 2 is a pipe
read by a thread that hands each burst of lines to a callback (the app posts it to the message log); the
terminal keeps its own descriptor, and `sys.__stderr__` (what Textual draws with) is pointed at it.
On exit fd 2 is restored and anything not yet handed over is written to the terminal, so nothing is lost.
"""

from __future__ import annotations

import io
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable

ANSI_CSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # colour and cursor sequences; other controls stay escaped
BURST_S = 0.05  # lines arriving this close together make one message
MAX_MESSAGE = 64 * 1024  # a runaway writer still gets its text logged, in pieces this big


class NativeStderr:
    def __init__(self, on_text: Callable[[str], bool]) -> None:
        """`on_text(text)` returns False when it could not take the text (the app is not running yet or
        any more); that text is written to the terminal after `stop()`."""
        self.on_text = on_text
        self._saved_fd: int | None = None
        self._saved_stderr = None
        self._thread: threading.Thread | None = None
        self._left: list[str] = []

    def start(self) -> NativeStderr:
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        self._saved_fd = os.dup(2)
        self._saved_stderr = sys.__stderr__
        # Textual draws on sys.__stderr__: keep it on the terminal, through a descriptor of its own
        sys.__stderr__ = io.TextIOWrapper(io.FileIO(self._saved_fd, "w", closefd=False), line_buffering=True,
                                          encoding=getattr(self._saved_stderr, "encoding", None) or "utf-8",
                                          errors="backslashreplace")  # fmt: skip
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._read, args=(read_fd,), name="native-stderr", daemon=True)
        self._thread.start()
        return self

    def _read(self, fd: int) -> None:
        pending = b""
        eof = False
        try:
            while not eof:
                chunk = os.read(fd, 65536)
                eof = not chunk
                pending += chunk
                # the rest of the burst (ONNX Runtime writes a warning in pieces): one message, not one per line
                while not eof and len(pending) < MAX_MESSAGE and select.select([fd], [], [], BURST_S)[0]:
                    more = os.read(fd, 65536)
                    eof = not more
                    pending += more
                text, newline, rest = pending.rpartition(b"\n")
                if newline or eof or len(pending) >= MAX_MESSAGE:
                    self._hand_over((pending if eof or not newline else text).decode("utf-8", "backslashreplace"))
                    pending = b"" if eof or not newline else rest
        finally:
            os.close(fd)

    def _hand_over(self, text: str) -> None:
        text = ANSI_CSI.sub("", text).strip("\n")  # ONNX Runtime colours its lines for a terminal
        if text and not self.on_text(text):
            self._left.append(text)

    def stop(self) -> None:
        if self._saved_fd is None:
            return
        os.dup2(self._saved_fd, 2)  # closes the pipe's last write end: the reader sees EOF
        if self._thread is not None:
            self._thread.join(timeout=2)
        sys.__stderr__.flush()
        sys.__stderr__ = self._saved_stderr
        os.close(self._saved_fd)
        self._saved_fd = None
        for text in self._left:  # what arrived while the app was not there to log it
            os.write(2, (text + "\n").encode("utf-8", "backslashreplace"))
        self._left.clear()

    def __enter__(self) -> NativeStderr:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

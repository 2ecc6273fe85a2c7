"""Every notification the app showed, kept with its full text (a toast disappears after a few seconds and
shows one line; the log keeps what it said, copyable). Bounded so a runaway producer cannot eat memory."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: float  # time.time()
    severity: str  # information | warning | error
    title: str
    text: str  # the full text (a traceback for unexpected errors)

    def clock(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.at))

    def as_text(self) -> str:
        head = f"[{self.clock()}] {self.severity}" + (f": {self.title}" if self.title else "")
        return f"{head}\n{self.text}"


class MessageLog:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._seq = 0
        self._listeners: list[Callable[[LogEntry], None]] = []
        # kept as entries come and go: the log screen's title asks on every append (a count over 10,000
        # entries per append stalled the UI)
        self._counts = {"error": 0, "warning": 0, "information": 0}

    def add(self, severity: str, title: str, text: str, *, at: float | None = None) -> LogEntry:
        self._seq += 1
        entry = LogEntry(self._seq, time.time() if at is None else at, severity, title, text)
        if len(self.entries) == self.entries.maxlen:
            self._counts[self.entries[0].severity] -= 1  # the oldest is about to drop out
        self.entries.append(entry)
        self._counts[severity] = self._counts.get(severity, 0) + 1
        for listener in list(self._listeners):
            listener(entry)
        return entry

    def listen(self, callback: Callable[[LogEntry], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def __len__(self) -> int:
        return len(self.entries)

    def as_text(self) -> str:
        return "\n\n".join(e.as_text() for e in self.entries) + "\n"

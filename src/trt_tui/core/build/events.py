"""Delivering build events to subscribers in batches, from one dispatcher thread.

A build can print 200,000 lines; a UI that handled them one by one would freeze (see the Textual notes:
batched writes every ~100 ms or 500 lines are 50x faster). So publishers only append to a buffer, and a
dispatcher thread hands each subscriber a list of events every `interval_s`, or sooner once `max_lines`
log lines are waiting. Progress events of one job are coalesced to the newest one. If subscribers fall
behind by more than `max_pending_lines`, older log lines are dropped from the *display* stream and
counted in `LogLines.skipped`; the build's log file always has every byte.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from trt_tui.core.build.types import BuildEvent, LogLines, Progress

Subscriber = Callable[[list[BuildEvent]], None]
_log = logging.getLogger(__name__)


class _Lines:
    """A growing run of log lines of one job (a list, so appending a burst is not quadratic)."""

    __slots__ = ("job_id", "lines", "skipped")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.lines: list[str] = []
        self.skipped = 0

    def freeze(self) -> LogLines:
        return LogLines(self.job_id, tuple(self.lines), self.skipped)


class EventHub:
    def __init__(self, *, interval_s: float = 0.1, max_lines: int = 500, max_pending_lines: int = 50_000) -> None:
        self.interval_s = interval_s
        self.max_lines = max_lines
        self.max_pending_lines = max_pending_lines
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[BuildEvent] = []
        self._pending_lines = 0
        self._subscribers: dict[int, Subscriber] = {}
        self._next_token = 0
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="trt_tui-build-events", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(events)` from the dispatcher thread for every batch; returns an unsubscribe function."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._subscribers[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)

        return unsubscribe

    def publish(self, event: BuildEvent) -> None:
        with self._lock:
            self._idle.clear()
            if isinstance(event, Progress):
                self._replace_progress(event)
            elif isinstance(event, LogLines):
                self._add_lines(event)
            else:
                self._pending.append(event)
                self._wake.notify()  # state changes go out promptly
                return
            if self._pending_lines >= self.max_lines:
                self._wake.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything published so far has been delivered (for tests and shutdown)."""
        with self._lock:
            self._wake.notify()
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    # ---- internals (called with the lock held) ----

    def _replace_progress(self, event: Progress) -> None:
        for i in range(len(self._pending) - 1, -1, -1):
            old = self._pending[i]
            if isinstance(old, Progress) and old.job_id == event.job_id:
                self._pending[i] = event
                return
            if not isinstance(old, (Progress, _Lines)):
                break  # never move progress across a state change
        self._pending.append(event)

    def _add_lines(self, event: LogLines) -> None:
        last = self._pending[-1] if self._pending else None
        if not (isinstance(last, _Lines) and last.job_id == event.job_id):
            last = _Lines(event.job_id)
            self._pending.append(last)
        last.lines.extend(event.lines)
        last.skipped += event.skipped
        self._pending_lines += len(event.lines)
        if self._pending_lines > self.max_pending_lines:
            self._drop_oldest_lines(self._pending_lines - self.max_pending_lines)

    def _drop_oldest_lines(self, excess: int) -> None:
        for ev in self._pending:
            if excess <= 0:
                break
            if isinstance(ev, _Lines) and ev.lines:
                cut = min(excess, len(ev.lines))
                del ev.lines[:cut]
                ev.skipped += cut
                self._pending_lines -= cut
                excess -= cut

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending and not self._closed:
                    self._idle.set()
                    self._wake.wait()
                if self._closed and not self._pending:
                    self._idle.set()
                    return
                if self._pending_lines < self.max_lines and not self._closed:
                    # Let a burst accumulate (a state change or a full batch of lines wakes this early).
                    self._wake.wait(self.interval_s)
                pending, self._pending, self._pending_lines = self._pending, [], 0
                batch = [ev.freeze() if isinstance(ev, _Lines) else ev for ev in pending]
                subscribers = list(self._subscribers.values())
            for callback in subscribers:
                try:
                    callback(batch)
                except Exception:  # a broken subscriber must not stop the others or the builds
                    _log.exception("build event subscriber failed")

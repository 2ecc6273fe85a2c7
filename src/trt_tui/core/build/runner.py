"""The one way trt_tui runs a build process: its own session, every byte logged, killed as a whole group.

`ProcessRun` starts the command in a new session (so it leads its own process group), copies its raw
output into the log file byte for byte, and hands decoded lines to a callback. Cancel and timeout send
SIGTERM to the whole group, then SIGKILL after a grace period. When the leader exits, whatever is left in
its group is killed too, before the leader is reaped (so the group id cannot have been reused): no build
leaves a process behind.

If trt_tui itself dies without a word (kill -9), nothing is left running: the child asks for
PR_SET_PDEATHSIG before it execs (the kernel kills the leader at once; Linux), and a tiny watchdog process
(`WATCHDOG`, stdlib only) kills the whole group as soon as its parent, trt_tui, is gone.
`BuildHistory.recover()` records the outcome at the next start.

A single thread does everything (select on the pipe with a short poll), so cancel is noticed within
`POLL_S` even when the child prints nothing, and a child that never prints a newline cannot block it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.05
CHUNK = 1 << 16
# Lines longer than this are cut for display (the log file keeps them whole).
MAX_LINE_CHARS = 16 * 1024
# After the leader exits, how long to wait for the pipe to reach EOF (a process that escaped the group
# could hold it open forever).
DRAIN_S = 2.0


PR_SET_PDEATHSIG = 1
# argv: PARENT_PID PGID. Polls; ends the group when the parent is gone (reparented), exits when the group is.
WATCHDOG = """
import os, signal, sys, time
parent, pgid = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
while True:
    time.sleep(0.1)
    try:
        os.killpg(pgid, 0)
    except OSError:
        sys.exit(0)
    if os.getppid() != parent:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        sys.exit(0)
"""


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent dies, or None off Linux. Everything is
    looked up here, before the fork: the child only calls prctl and getppid."""
    if not os.path.exists("/proc/self"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


@dataclass
class RunOutcome:
    returncode: int | None  # the exit status when the process exited normally
    signal: int | None  # the signal that killed it, if any
    timed_out: bool = False
    cancelled: bool = False
    start_error: str | None = None  # the command could not be started at all
    duration_s: float = 0.0
    lines: int = 0
    bytes: int = 0
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.cancelled or self.start_error)

    def describe(self) -> str:
        if self.start_error:
            return f"could not start: {self.start_error}"
        if self.cancelled:
            return "cancelled"
        if self.timed_out:
            return "timed out"
        if self.signal is not None:
            return f"killed by signal {signal_name(self.signal)}"
        return f"exit code {self.returncode}"


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


class LineSplitter:
    """Bytes in, decoded display lines out. Invalid UTF-8 becomes U+FFFD; huge lines are shortened."""

    def __init__(self, max_chars: int = MAX_LINE_CHARS) -> None:
        self.max_bytes = max_chars
        self._pending = bytearray()
        self._dropped = 0  # bytes of the current line beyond max_bytes

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._append(data[start:])
                return out
            self._append(data[start:nl])
            out.append(self._take())
            start = nl + 1

    def flush(self) -> list[str]:
        return [self._take()] if (self._pending or self._dropped) else []

    def _append(self, piece: bytes) -> None:
        room = self.max_bytes - len(self._pending)
        if len(piece) <= room:
            self._pending += piece
        else:
            self._pending += piece[: max(room, 0)]
            self._dropped += len(piece) - max(room, 0)

    def _take(self) -> str:
        text = bytes(self._pending).decode("utf-8", errors="replace").rstrip("\r")
        if self._dropped:
            text += f" ... [{self._dropped} more bytes of this line are in the log file]"
        self._pending.clear()
        self._dropped = 0
        return text


class ProcessRun:
    """Run `argv` once. `run()` blocks until the process and its group are gone; `cancel()` is thread-safe."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: str | os.PathLike[str],
        on_lines: Callable[[list[str]], None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float | None = None,
        kill_grace_s: float = 3.0,
        should_cancel: Callable[[], bool] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.on_lines = on_lines or (lambda lines: None)
        self.cwd = cwd
        self.env = env
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.should_cancel = should_cancel
        self.on_start = on_start
        self._cancel = threading.Event()
        self.pid: int | None = None

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> RunOutcome:
        started = time.monotonic()
        outcome = RunOutcome(returncode=None, signal=None)
        with open(self.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    start_new_session=True,  # leader of its own group: killpg reaches every descendant
                    bufsize=0,
                    preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 (only prctl runs in the child)
                )
            except OSError as exc:
                outcome.start_error = f"{self.argv[0]}: {exc.strerror or exc}"
                log.write(f"trt_tui: {outcome.describe()}\n".encode())
                return outcome
            self.pid = outcome.pid = proc.pid
            watchdog = _start_watchdog(proc.pid)
            try:
                if self.on_start:
                    self.on_start(proc.pid)
                self._pump(proc, log, outcome, started)
            finally:
                # Whatever happened above (even an exception in a callback), leave nothing running.
                self._kill_group(proc.pid, signal.SIGKILL)
                proc.stdout.close()
                status = proc.wait()
                if watchdog is not None:
                    watchdog.kill()
                    watchdog.wait()
        if status < 0:
            outcome.signal = -status
        else:
            outcome.returncode = status
        outcome.duration_s = time.monotonic() - started
        return outcome

    # ---- internals ----

    def _pump(self, proc: subprocess.Popen, log, outcome: RunOutcome, started: float) -> None:
        fd = proc.stdout.fileno()
        splitter = LineSplitter()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        deadline = None if self.timeout_s is None else started + self.timeout_s
        term_sent_at: float | None = None
        killed = False
        eof = False
        exited_at: float | None = None

        def deliver(lines: list[str]) -> None:
            if lines:
                outcome.lines += len(lines)
                self.on_lines(lines)

        try:
            while True:
                now = time.monotonic()
                if term_sent_at is None:
                    if self._cancel.is_set() or (self.should_cancel is not None and self.should_cancel()):
                        outcome.cancelled = True
                    elif deadline is not None and now >= deadline:
                        outcome.timed_out = True
                    if outcome.cancelled or outcome.timed_out:
                        term_sent_at = now
                        self._kill_group(proc.pid, signal.SIGTERM)
                elif not killed and now - term_sent_at >= self.kill_grace_s:
                    killed = True
                    self._kill_group(proc.pid, signal.SIGKILL)

                if not eof:
                    if sel.select(POLL_S):
                        data = os.read(fd, CHUNK)
                        if data:
                            log.write(data)
                            outcome.bytes += len(data)
                            deliver(splitter.feed(data))
                            continue
                        eof = True
                else:
                    self._cancel.wait(POLL_S)

                if exited_at is None and _leader_exited(proc.pid):
                    exited_at = time.monotonic()
                    # Kill leftovers now, while the leader is an unreaped zombie and its group id is safe.
                    self._kill_group(proc.pid, signal.SIGKILL)
                if exited_at is not None and (eof or time.monotonic() - exited_at > DRAIN_S):
                    break
        finally:
            sel.close()
            deliver(splitter.flush())
            log.flush()

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _start_watchdog(pgid: int) -> subprocess.Popen | None:
    if not os.path.exists("/proc/self"):
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-S", "-c", WATCHDOG, str(os.getpid()), str(pgid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
        )
    except OSError:
        return None  # the PDEATHSIG on the leader and recover() still apply


def _leader_exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it (WNOWAIT keeps the zombie, so the pid stays ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None and info.si_pid != 0

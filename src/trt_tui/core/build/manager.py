"""The job manager: a queue of builds, N running per device, cancel, timeouts, history, batched events.

One `JobManager` per trt_tui process (the TUI or a CLI command). Each build gets a directory
`<state>/builds/<id>/` holding the preset snapshot, request.json, the exact command (command.txt and
command.json), the full log (build.log, byte for byte), the artifacts and result.json. Builds run as child
processes through `ProcessRun`; the manager's threads only wait on them.

One build per device holds across processes: a device slot is an flock in `<state>/locks/` (device_lock.py),
held while the build runs; a build waiting for another process's slot stays queued and says so (a Progress
event "waiting for gpu0 ..."). A failure to write state (a full disk, a read-only or locked history) ends the
build as failed with one line and always releases its slot.

Thread safety: every public method may be called from any thread. Subscribers are called from one
dispatcher thread with lists of events (see events.py); a Textual app should hand each batch to its own
thread with `app.call_from_thread` or `post_message`.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import secrets
import shlex
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.build import device_lock
from trt_tui.core.build.backend import Backend
from trt_tui.core.build.events import EventHub, Subscriber
from trt_tui.core.build.history import BuildHistory
from trt_tui.core.build.procinfo import process_identity
from trt_tui.core.build.protocol import REQUEST_FILE, readable_line
from trt_tui.core.build.runner import ProcessRun
from trt_tui.core.build.types import BuildJob, BuildRequest, BuildResult, JobChanged, JobState, LogLines, Progress
from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write

LOG_FILE = "build.log"
RESULT_FILE = "result.json"
CANCEL_FILE = "cancel.request"  # another trt_tui process asks the owner to cancel by creating this file
TAIL_LINES = 200
LOCK_POLL_S = 0.25  # how often a build waiting for another process's device slot tries again


def default_backends() -> dict[str, Backend]:
    from trt_tui.core.build.trtexec_backend import TrtexecBackend
    from trt_tui.core.build.worker_backends import EmulateBackend, TensorRTBackend

    return {b.name: b for b in (TensorRTBackend(), TrtexecBackend(), EmulateBackend())}


@dataclass
class _Live:
    job: BuildJob
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    runner: ProcessRun | None = None
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancel_requested: bool = False
    slot: device_lock.DeviceSlot | None = None  # the device slot held while running
    waiting_for: str = ""  # why it is still queued (another process holds the device), as last published


class JobManager:
    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        slots_per_device: int = 1,
        backends: dict[str, Backend] | None = None,
        kill_grace_s: float = 3.0,
        event_interval_s: float = 0.1,
        event_max_lines: int = 500,
    ) -> None:
        if slots_per_device < 1:
            raise UserError("builds per device must be at least 1")
        self.state_dir = Path(state_dir)
        self.builds_dir = self.state_dir / "builds"
        self.locks_dir = self.state_dir / "locks"
        try:
            self.builds_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the state directory: {exc.strerror or exc}", self.builds_dir) from None
        self.slots_per_device = slots_per_device
        self.kill_grace_s = kill_grace_s
        self.backends = backends if backends is not None else default_backends()
        self.history = BuildHistory(self.state_dir / "history.sqlite")
        self._owner = (os.getpid(), process_identity(os.getpid()))
        # Builds left queued/running by a trt_tui that crashed: mark them interrupted, kill their processes.
        self.recovered: list[str] = self.history.recover()
        self.hub = EventHub(interval_s=event_interval_s, max_lines=event_max_lines)
        self._lock = threading.RLock()
        self._live: dict[str, _Live] = {}
        self._queue: list[str] = []
        self._running: Counter[str] = Counter()
        self._closed = False
        self._seq = itertools.count()
        self._wake = threading.Event()
        self._lock_poller: threading.Thread | None = None
        atexit.register(self.close)  # a normal exit never leaves a build running

    # ---- public API ----

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive `list[JobChanged | Progress | LogLines]` batches on the dispatcher thread; returns unsubscribe."""
        return self.hub.subscribe(callback)

    def submit(self, request: BuildRequest) -> BuildJob:
        if request.backend not in self.backends:
            raise UserError(f"unknown build backend {request.backend!r} (choose from {', '.join(self.backends)})")
        job_id = self._new_id()
        build_dir = self.builds_dir / job_id
        try:
            build_dir.mkdir(parents=True)
        except OSError as exc:
            raise UserError(f"cannot create the build folder: {exc.strerror or exc}", build_dir) from None
        job = BuildJob(id=job_id, request=request, build_dir=str(build_dir))
        suffix = Path(request.preset_path).suffix or ".toml"
        atomic_write(build_dir / f"preset{suffix}", request.preset_text)
        atomic_write(build_dir / REQUEST_FILE, jsonio.dumps(request.to_json(), indent=2))
        with self._lock:
            if self._closed:
                raise UserError("the build manager is shut down")
            self.history.add(job, *self._owner)
            self._live[job_id] = _Live(job)
            self._queue.append(job_id)
        self.hub.publish(JobChanged(_copy(job)))
        self._schedule()
        return _copy(job)

    def cancel(self, job_id: str) -> str:
        """Cancel a job. Returns 'cancelled' (it was queued here: it never started), 'cancelling' (its process
        group is being stopped), 'requested' (another live trt_tui runs it and was asked to stop), or
        'finished' (it had already ended). Unknown ids raise UserError."""
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                if live.job.state.terminal:
                    return "finished"
                if live.job.state == JobState.QUEUED:
                    self._queue.remove(job_id)
                    queued = True
                else:
                    queued = False
                    live.cancel_requested = True
                    if live.runner is not None:
                        live.runner.cancel()
        if live is not None:
            if queued:
                self._finish(live, BuildResult(state=JobState.CANCELLED, backend=live.job.request.backend,
                                               message="cancelled before it started; nothing was built"))
                return "cancelled"
            return "cancelling"
        job = self.history.get(job_id)
        if job is None:
            raise UserError(f"no build with id {job_id!r}")
        if job.state.terminal:
            return "finished"
        atomic_write(Path(job.build_dir) / CANCEL_FILE, "cancel\n", overwrite=True)
        return "requested"

    def jobs(self, limit: int = 50) -> list[BuildJob]:
        """Live jobs of this process first (newest first), then the history (newest first)."""
        with self._lock:
            live = [_copy(lv.job) for lv in self._live.values()]
        seen = {j.id for j in live}
        live.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        return live + [j for j in self.history.list(limit) if j.id not in seen][: max(0, limit - len(live))]

    def get(self, job_id: str) -> BuildJob | None:
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                return _copy(live.job)
        return self.history.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> BuildJob:
        with self._lock:
            live = self._live.get(job_id)
        if live is None:
            job = self.history.get(job_id)
            if job is None:
                raise UserError(f"no build with id {job_id!r}")
            return job
        live.done.wait(timeout)
        return _copy(live.job)

    def log_tail(self, job_id: str, lines: int = TAIL_LINES) -> list[str]:
        with self._lock:
            live = self._live.get(job_id)
            if live is not None and live.job.state == JobState.RUNNING:
                return list(live.tail)[-lines:]
        job = self.get(job_id)
        return [] if job is None else read_log_tail(Path(job.build_dir) / LOG_FILE, lines)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel everything queued or running here, wait for the process groups to be gone, stop events."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = [jid for jid, lv in self._live.items() if not lv.job.state.terminal]
        for job_id in pending:
            self.cancel(job_id)
        deadline = time.monotonic() + timeout
        for job_id in pending:
            self._live[job_id].done.wait(max(0.0, deadline - time.monotonic()))
        self._wake.set()
        self.hub.close()
        self.history.close()
        atexit.unregister(self.close)

    # ---- internals ----

    def _new_id(self) -> str:
        return time.strftime("%Y%m%d-%H%M%S") + f"-{next(self._seq) % 100:02d}{secrets.token_hex(2)}"

    def _schedule(self) -> None:
        waiting: list[tuple[str, str]] = []
        failed: list[tuple[_Live, str]] = []
        with self._lock:
            if self._closed:
                return
            for job_id in list(self._queue):
                live = self._live[job_id]
                device = live.job.request.device
                if self._running[device] >= self.slots_per_device:
                    continue
                try:
                    slot = device_lock.try_acquire(self.locks_dir, device, self.slots_per_device,
                                                   f"pid {os.getpid()}, build {job_id}")
                except UserError as exc:
                    self._queue.remove(job_id)
                    failed.append((live, exc.one_line()))
                    continue
                if slot is None:  # another trt_tui process on this state directory is building on it
                    held = "; ".join(device_lock.holders(self.locks_dir, device, self.slots_per_device))
                    why = f"waiting for {device}: another trt-tui process is building on it" + (f" ({held})" if held else "")
                    if why != live.waiting_for:
                        live.waiting_for = why
                        live.job.phase = why
                        waiting.append((job_id, why))
                    continue
                self._queue.remove(job_id)
                self._running[device] += 1
                live.slot = slot
                live.waiting_for = ""
                live.job.state = JobState.RUNNING
                live.job.started_at = time.time()
                live.thread = threading.Thread(target=self._run, args=(live,), name=f"build-{job_id}", daemon=True)
                live.thread.start()
            if waiting and self._lock_poller is None:
                self._lock_poller = threading.Thread(target=self._poll_locks, name="build-device-locks", daemon=True)
                self._lock_poller.start()
        for job_id, why in waiting:
            self.hub.publish(Progress(job_id, why, None))
        for live, message in failed:
            self._finish(live, BuildResult(state=JobState.FAILED, backend=live.job.request.backend, message=message))

    def _poll_locks(self) -> None:
        """While builds wait for another process's device slot, try again every LOCK_POLL_S (flock has no
        wake-up across processes)."""
        while not self._wake.wait(LOCK_POLL_S):
            with self._lock:
                if self._closed:
                    return
                blocked = any(self._live[j].waiting_for for j in self._queue)
            if blocked:
                self._schedule()

    def _run(self, live: _Live) -> None:
        job = live.job
        build_dir = Path(job.build_dir)
        try:
            result = self._execute(live, build_dir)
        except UserError as exc:  # a missing backend, a bad request, state that cannot be written
            result = BuildResult(state=JobState.FAILED, backend=job.request.backend, message=exc.one_line())
        except OSError as exc:  # the build log or folder could not be written (full disk, read-only)
            where = f"{exc.filename}: " if exc.filename else ""
            result = BuildResult(state=JobState.FAILED, backend=job.request.backend,
                                 message=f"cannot write the build state: {where}{exc.strerror or exc}")
        except Exception as exc:  # a bug here must still leave the job finished and the history right
            result = BuildResult(state=JobState.FAILED, backend=job.request.backend,
                                 message=f"internal error: {type(exc).__name__}: {exc}")
        self._finish(live, result)

    def _execute(self, live: _Live, build_dir: Path) -> BuildResult:
        job = live.job
        request = job.request
        if (build_dir / CANCEL_FILE).exists():
            return BuildResult(state=JobState.CANCELLED, backend=request.backend,
                               message="cancelled before it started; nothing was built")
        backend = self.backends[request.backend]
        plan = backend.plan(request, build_dir)
        atomic_write(build_dir / "command.json", jsonio.dumps({"argv": plan.argv, "cwd": plan.cwd}, indent=2), overwrite=True)
        atomic_write(build_dir / "command.txt", shlex.join(plan.argv) + "\n", overwrite=True)
        with self._lock:
            snapshot = _copy(job)
        self.hub.publish(JobChanged(snapshot))
        started = time.monotonic()
        watcher = plan.watcher

        def on_lines(lines: list[str]) -> None:
            at = time.monotonic() - started
            moved = None
            for line in lines:
                moved = watcher.feed(line, at) or moved
            # build.log keeps the worker's raw progress lines; people watching get them in words
            shown = tuple(readable_line(line) for line in lines)
            live.tail.extend(shown)
            self.hub.publish(LogLines(job.id, shown))
            if moved is not None:
                with self._lock:
                    job.phase, job.progress = moved[0], moved[1] if moved[1] is not None else job.progress
                self.hub.publish(Progress(job.id, moved[0], moved[1]))

        def on_start(pid: int) -> None:
            self.history.mark_running(job.id, job.started_at or time.time(), pid, process_identity(pid))

        cancel_file = build_dir / CANCEL_FILE
        runner = ProcessRun(
            plan.argv, log_path=build_dir / LOG_FILE, on_lines=on_lines, cwd=plan.cwd, env=plan.env,
            timeout_s=request.timeout_s, kill_grace_s=self.kill_grace_s,
            should_cancel=cancel_file.exists, on_start=on_start,
        )
        with self._lock:
            live.runner = runner
            if live.cancel_requested:
                runner.cancel()
        outcome = runner.run()
        result = watcher.result(outcome)
        result.notes = plan.notes + result.notes
        return result

    def _finish(self, live: _Live, result: BuildResult) -> None:
        """Record the outcome. Whatever fails here, the job ends, its slot is released and waiters wake."""
        job = live.job
        build_dir = Path(job.build_dir)
        if not result.message:
            result.message = result.state.value
        finished_at = time.time()
        problems = []
        try:
            atomic_write(build_dir / RESULT_FILE, jsonio.dumps(result.to_json(), indent=2), overwrite=True)
        except (UserError, OSError) as exc:
            problems.append(exc.one_line() if isinstance(exc, UserError) else str(exc))
        try:
            self.history.finish(job.id, result, finished_at)
        except UserError as exc:  # the row stays 'running' under this pid: the next start marks it interrupted
            problems.append(exc.one_line())
        if problems:  # a build whose outcome cannot be kept did not succeed as far as anyone can tell
            result.state = JobState.FAILED
            result.message = f"{result.message}; but the build state could not be written: {problems[0]}"
        with self._lock:
            was_running = job.state == JobState.RUNNING
            job.state, job.result, job.finished_at = result.state, result, finished_at
            if result.state == JobState.SUCCEEDED:
                job.progress = 1.0
            if was_running:
                self._running[job.request.device] -= 1
            slot, live.slot = live.slot, None
            snapshot = _copy(job)
        if slot is not None:
            slot.release()
        self.hub.publish(JobChanged(snapshot))
        live.done.set()
        self._schedule()


def _copy(job: BuildJob) -> BuildJob:
    return replace(job, request=replace(job.request), result=None if job.result is None else replace(job.result))


def read_log_tail(path: Path, lines: int, max_bytes: int = 256 * 1024) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    return [line[:2000] for line in text.splitlines()[-lines:]]

"""Build history in SQLite (stdlib, WAL): survives restarts, shared safely by the TUI and the CLI.

Each row records who owns the build (the trt_tui process running the manager) and the build's child
process, both with their start times, so that at the next start `recover()` can tell a build whose owner
crashed (mark it `interrupted`, kill its orphaned process group) from one another live trt_tui is running.

Every SQLite failure (a full disk, a read-only state directory, a history locked by another process for
more than LOCK_TIMEOUT_S, a damaged file or row) is a `HistoryError`: a one-line UserError naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from trt_tui.core import jsonio
from trt_tui.core.build.procinfo import is_same_process
from trt_tui.core.build.types import BuildJob, BuildRequest, BuildResult, JobState
from trt_tui.core.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    state TEXT NOT NULL,
    backend TEXT NOT NULL,
    preset_path TEXT NOT NULL,
    model_path TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    build_dir TEXT NOT NULL,
    owner_pid INTEGER,
    owner_start TEXT,
    child_pid INTEGER,
    child_start TEXT,
    message TEXT NOT NULL DEFAULT '',
    request_json TEXT NOT NULL,
    result_json TEXT
);
CREATE INDEX IF NOT EXISTS builds_created ON builds (created_at);
"""


LOCK_TIMEOUT_S = 10.0  # how long a write waits for another process holding the history


class HistoryError(UserError):
    """The build history could not be read or written (one line, naming the file)."""


class BuildHistory:
    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self._lock = threading.Lock()  # one connection shared by the manager's threads
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the state directory: {exc.strerror or exc}", self.path.parent) from None
        with self._errors("open"):
            self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S, check_same_thread=False, isolation_level=None)
            self._retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._retrying(lambda: self._db.executescript(SCHEMA))
        self._db.row_factory = sqlite3.Row

    @staticmethod
    def _retrying(statement: Callable[[], Any]) -> Any:
        """Run one statement, retrying while the history is locked, up to LOCK_TIMEOUT_S in all. SQLite's own
        busy timeout covers a plain wait, but some lock conflicts (a journal-mode switch, a stale WAL
        snapshot) come back at once as "database is locked", without waiting at all."""
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                return statement()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if not ("locked" in text or "busy" in text) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                text = f"{text}: another trt-tui process held it for more than {LOCK_TIMEOUT_S:g} s; try again"
            raise HistoryError(f"cannot {doing} the build history: {text}", self.path) from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    # ---- writes ----

    def add(self, job: BuildJob, owner_pid: int, owner_start: str) -> None:
        r = job.request
        with self._lock, self._errors("write"):
            self._retrying(lambda: self._db.execute(
                "INSERT INTO builds (id, created_at, state, backend, preset_path, model_path, label, build_dir,"
                " owner_pid, owner_start, request_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (job.id, job.created_at, job.state.value, r.backend, r.preset_path, r.model_path, r.label,
                 job.build_dir, owner_pid, owner_start, jsonio.dumps(r.to_json())),
            ))

    def mark_running(self, job_id: str, started_at: float, child_pid: int, child_start: str) -> None:
        self._update(job_id, state=JobState.RUNNING.value, started_at=started_at, child_pid=child_pid,
                     child_start=child_start)

    def finish(self, job_id: str, result: BuildResult, finished_at: float) -> None:
        self._update(job_id, state=result.state.value, finished_at=finished_at, message=result.message,
                     result_json=jsonio.dumps(result.to_json()))

    def _update(self, job_id: str, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self._lock, self._errors("write"):
            self._retrying(lambda: self._db.execute(f"UPDATE builds SET {sets} WHERE id = ?", (*cols.values(), job_id)))

    # ---- reads ----

    def get(self, job_id: str) -> BuildJob | None:
        with self._lock, self._errors("read"):
            row = self._db.execute("SELECT * FROM builds WHERE id = ?", (job_id,)).fetchone()
            if row is None:  # accept a unique prefix, as git does for commits
                rows = self._db.execute(
                    "SELECT * FROM builds WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (_like_prefix(job_id),)
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return None if row is None else _job(row, self.path)

    def list(self, limit: int = 50) -> list[BuildJob]:
        with self._lock, self._errors("read"):
            rows = self._db.execute("SELECT * FROM builds ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r, self.path) for r in rows]

    def row(self, job_id: str) -> dict[str, Any] | None:
        with self._lock, self._errors("read"):
            row = self._db.execute("SELECT * FROM builds WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else dict(row)

    # ---- crash recovery ----

    def recover(self) -> list[str]:
        """Mark builds whose owning trt_tui process is gone as interrupted; kill their leftover processes.

        Returns the ids marked. Builds owned by another live trt_tui process are left alone. When the history
        cannot be written (a full disk), the rows stay as they are for a later start: reading still works.
        """
        with self._lock, self._errors("read"):
            rows = self._db.execute(
                "SELECT id, owner_pid, owner_start, child_pid, child_start FROM builds WHERE state IN (?, ?)",
                (JobState.QUEUED.value, JobState.RUNNING.value),
            ).fetchall()
        marked = []
        for row in rows:
            if is_same_process(row["owner_pid"], row["owner_start"]):
                continue
            # Its child ran in its own session and outlives the crashed owner: end that group too.
            if is_same_process(row["child_pid"], row["child_start"]):
                try:
                    os.killpg(row["child_pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            message = "interrupted: the trt_tui process running this build exited before it finished"
            try:
                with self._lock:
                    self._db.execute(
                        "UPDATE builds SET state = ?, finished_at = ?, message = ? WHERE id = ? AND state IN (?, ?)",
                        (JobState.INTERRUPTED.value, time.time(), message, row["id"], JobState.QUEUED.value,
                         JobState.RUNNING.value),
                    )
            except sqlite3.Error:
                continue  # full or read-only: its process group is ended; the row is marked by a later start
            marked.append(row["id"])
        return marked


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _job(row: sqlite3.Row, path: Path) -> BuildJob:
    try:
        request = BuildRequest.from_json(json.loads(row["request_json"]))
        result = BuildResult.from_json(json.loads(row["result_json"])) if row["result_json"] else None
        state = JobState(row["state"])
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # a damaged row, or a newer trt-tui's state
        what = f"unknown state {row['state']!r}" if isinstance(exc, ValueError) and "JobState" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise HistoryError(f"build {row['id']!r} cannot be read ({what}); written by another trt-tui version?", path) from None
    if result is None and state.terminal:
        result = BuildResult(state=state, backend=row["backend"], message=row["message"])
    return BuildJob(
        id=row["id"], request=request, state=state, build_dir=row["build_dir"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], result=result,
    )

"""The data a build is made of: the request, the job's state, the result, and the events subscribers see.

Everything here is plain data with `to_json`/`from_json`, because it crosses process boundaries (the
worker child reads the request from the build directory) and restarts (the history keeps the JSON).
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import Any


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    # The trt_tui process that owned the build died while the build was queued or running.
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


@dataclass
class BuildRequest:
    """What to build: a snapshot of the preset plus everything resolved from it, so a build is reproducible
    even after the preset file changes."""

    preset_path: str
    preset_text: str  # the preset file as it was when the build was submitted (or the snapshot of the edits)
    model_path: str
    backend: str  # a concrete backend name (never "auto": `select_backend` resolves it first)
    settings: dict[str, Any] = field(default_factory=dict)  # resolved preset settings (precision, pins, ...)
    # The preset's exported trtexec command as argv; argv[0] is replaced by the trtexec actually found.
    trtexec_argv: list[str] | None = None
    timeout_s: float | None = None
    device: str = "gpu0"  # the concurrency slot key: builds on one GPU queue behind each other
    label: str = ""
    backend_reason: str = ""  # why this backend was picked (shown for `auto`)
    # built from a preset object with edits not saved to `preset_path` ("" when it never had a file): only
    # the snapshot (`preset_text`) says what was built
    unsaved_edits: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildRequest:
        known = {f for f in cls.__dataclass_fields__}  # tolerate keys added by newer versions
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class BuildResult:
    """How a build ended. `engine_built` is True only when an engine file really exists on disk."""

    state: JobState
    backend: str
    engine_built: bool = False
    engine_path: str | None = None
    message: str = ""  # one line for humans: what happened
    exit_code: int | None = None
    signal: int | None = None
    duration_s: float | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "at_s", ...}] in order
    performance: dict[str, Any] | None = None  # trtexec performance summary, when inference ran
    build_time_s: float | None = None
    engine_size_mib: float | None = None
    trt_version: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # role -> path relative to the build dir
    pin_check: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None  # trtexec 11.1+ accuracy checks against reference outputs
    notes: list[str] = field(default_factory=list)  # warnings worth showing (version mismatch, ...)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildResult:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["state"] = JobState(kwargs["state"])
        return cls(**kwargs)


@dataclass
class BuildJob:
    """A snapshot of one job as the manager and the history see it (copies are handed out, never shared)."""

    id: str
    request: BuildRequest
    state: JobState = JobState.QUEUED
    build_dir: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    phase: str = ""
    progress: float | None = None  # 0..1 when the backend can tell, else None
    result: BuildResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "backend": self.request.backend,
            "preset": self.request.preset_path,
            "model": self.request.model_path,
            "label": self.request.label,
            "build_dir": self.build_dir,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "phase": self.phase,
            "progress": self.progress,
            "result": None if self.result is None else self.result.to_json(),
        }


# ---- events delivered to subscribers (in batches, see events.py) ----


@dataclass(frozen=True)
class JobChanged:
    """A job was queued, started or finished; `job` is a snapshot."""

    job: BuildJob


@dataclass(frozen=True)
class Progress:
    job_id: str
    phase: str
    fraction: float | None  # None: the phase is known but not how far along it is


@dataclass(frozen=True)
class LogLines:
    job_id: str
    lines: tuple[str, ...]
    skipped: int = 0  # lines not delivered because a subscriber fell behind (all are in the log file)


BuildEvent = JobChanged | Progress | LogLines

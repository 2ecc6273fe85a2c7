"""The backend interface: given a build request and a build directory, run a child process that produces a
BuildResult, and turn its output into progress.

Every backend runs its build in a child process (trtexec itself, or `python -m trt_tui.core.build.worker`
for the Python-API and CPU-preview backends), so a crash, a hang or a leak in a build never reaches the
process that owns the UI. The split is:

- `Backend.availability()`: can it run here, and if not, why (one line);
- `Backend.plan(request, build_dir)`: write what the child needs into the build dir, return the argv and
  a `Watcher`;
- `Watcher.feed(line)`: progress from one output line; `Watcher.result(outcome)`: the BuildResult.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path

from trt_tui.core.build.runner import RunOutcome
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str  # one line: where it was found, or what is missing and how to get it


class Watcher(abc.ABC):
    @abc.abstractmethod
    def feed(self, line: str, at_s: float) -> tuple[str, float | None] | None:
        """One output line; returns (phase, fraction or None) when progress moved."""

    @abc.abstractmethod
    def result(self, outcome: RunOutcome) -> BuildResult:
        """The result once the process (and its group) is gone."""


@dataclass
class BuildPlan:
    argv: list[str]
    watcher: Watcher
    env: dict[str, str] | None = None
    cwd: str | None = None
    notes: list[str] = field(default_factory=list)


class Backend(abc.ABC):
    name: str = ""
    builds_engine: bool = True

    @abc.abstractmethod
    def availability(self) -> Availability: ...

    @abc.abstractmethod
    def plan(self, request: BuildRequest, build_dir: Path) -> BuildPlan: ...


def outcome_state(outcome: RunOutcome) -> tuple[JobState, str] | None:
    """The state for a run that did not end normally, or None when the process exited 0."""
    if outcome.start_error:
        return JobState.FAILED, outcome.describe()
    if outcome.cancelled:
        return JobState.CANCELLED, "cancelled; the build's process group was stopped"
    if outcome.timed_out:
        return JobState.TIMED_OUT, "timed out; the build's process group was stopped"
    if outcome.signal is not None:
        return JobState.FAILED, f"the build process was {outcome.describe()}"
    if outcome.returncode != 0:
        return JobState.FAILED, f"the build process failed with {outcome.describe()}"
    return None


def engine_file(path: Path) -> str | None:
    """The engine path when a non-empty engine file really exists there."""
    try:
        return str(path) if path.is_file() and os.path.getsize(path) > 0 else None
    except OSError:
        return None

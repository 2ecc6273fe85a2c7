"""The backends whose build runs Python code: TensorRT's Python API and the CPU preview (emulate).

Both run `python -m trt_tui.core.build.worker BUILD_DIR` as the child process; the worker reads
request.json from the build dir, reports progress as marked lines and leaves worker_result.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import trt_tui

from trt_tui.core.backends import tensorrt_status
from trt_tui.core.build.backend import Availability, Backend, BuildPlan, Watcher, engine_file, outcome_state
from trt_tui.core.build.protocol import WORKER_RESULT_FILE, parse_line
from trt_tui.core.build.runner import RunOutcome
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState


def worker_argv(build_dir: Path) -> list[str]:
    return [sys.executable, "-m", "trt_tui.core.build.worker", str(build_dir)]


def worker_env() -> dict[str, str]:
    """The child must import this same trt_tui, even when it was found through sys.path tweaks
    (a source checkout, pytest's `pythonpath`) rather than an installed package."""
    env = dict(os.environ)
    here = str(Path(trt_tui.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
    return env


class WorkerWatcher(Watcher):
    def __init__(self, backend: str, build_dir: Path) -> None:
        self.backend = backend
        self.build_dir = build_dir
        self.phases: list[dict] = []

    def feed(self, line: str, at_s: float) -> tuple[str, float | None] | None:
        msg = parse_line(line)
        if msg is None or "phase" not in msg:
            return None
        phase = str(msg["phase"])
        if not self.phases or self.phases[-1]["name"] != phase:
            self.phases.append({"name": phase, "at_s": round(at_s, 3)})
        fraction = msg.get("fraction")
        return phase, None if fraction is None else float(fraction)

    def result(self, outcome: RunOutcome) -> BuildResult:
        path = self.build_dir / WORKER_RESULT_FILE
        left_result = True
        try:
            result = BuildResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            left_result = False
            result = BuildResult(state=JobState.FAILED, backend=self.backend)
        result.exit_code, result.signal = outcome.returncode, outcome.signal
        result.duration_s = round(outcome.duration_s, 3)
        result.phases = result.phases or self.phases
        bad = outcome_state(outcome)
        if bad is not None:
            state, message = bad
            # A worker that failed cleanly explains itself better than its exit code does.
            explained = left_result and result.state == JobState.FAILED and state == JobState.FAILED
            if not explained:
                result.state = state
                result.message = message if left_result else f"{message}; the worker left no result"
        elif not left_result:
            result.message = "the worker exited without writing its result"
        # Never claim an engine that is not on disk.
        if result.engine_path:
            real = engine_file(self.build_dir / result.engine_path)
            result.engine_built = bool(real) and result.engine_built
            result.engine_path = real
        else:
            result.engine_built = False
        return result


class TensorRTBackend(Backend):
    name = "tensorrt"

    def availability(self) -> Availability:
        status = tensorrt_status()  # THE probe (core/backends.py): find_spec, never an import of TensorRT
        return Availability(status.available, status.detail)

    def plan(self, request: BuildRequest, build_dir: Path) -> BuildPlan:
        return BuildPlan(argv=worker_argv(build_dir), watcher=WorkerWatcher(self.name, build_dir), env=worker_env())


class EmulateBackend(Backend):
    name = "emulate"
    builds_engine = False

    def availability(self) -> Availability:
        if importlib.util.find_spec("trt_tui.core.precision") is None:
            return Availability(False, "the mixed-precision rewrite (trt_tui.core.precision) is not available")
        return Availability(True, "CPU preview: writes the mixed-precision and emulated ONNX; builds no engine")

    def plan(self, request: BuildRequest, build_dir: Path) -> BuildPlan:
        return BuildPlan(argv=worker_argv(build_dir), watcher=WorkerWatcher(self.name, build_dir), env=worker_env())

"""Background builds: backends (tensorrt, trtexec, emulate), the job manager, the history.

Public API (see manager.py for the thread-safety contract):
- `JobManager(state_dir, slots_per_device=1)`: `submit(BuildRequest) -> BuildJob`, `cancel(id) -> str`,
  `jobs(limit) -> list[BuildJob]`, `get(id)`, `wait(id, timeout)`, `log_tail(id, n)`,
  `subscribe(callback(list[event])) -> unsubscribe`, `close()`.
- `BuildRequest`, `BuildJob`, `BuildResult`, `JobState`; events `JobChanged`, `Progress`, `LogLines`.
- Backends `TensorRTBackend`, `TrtexecBackend`, `EmulateBackend`; `select_backend(choice, backends)`.
Nothing here imports TensorRT at import time; only the worker child does, and only for the tensorrt backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names are imported from their submodules on first use (PEP 562), so that importing a small submodule such
# as `constants` (the CLI does, to declare its flags) does not load the manager and every backend.
_SUBMODULE = {
    "BuildHistory": "history",
    "JobManager": "manager",
    "default_backends": "manager",
    "CHOICES": "constants",
    "select_backend": "selection",
    "TrtexecBackend": "trtexec_backend",
    **dict.fromkeys(("BuildJob", "BuildRequest", "BuildResult", "JobChanged", "JobState", "LogLines", "Progress"), "types"),
    "EmulateBackend": "worker_backends",
    "TensorRTBackend": "worker_backends",
}

if TYPE_CHECKING:
    from trt_tui.core.build.constants import CHOICES
    from trt_tui.core.build.history import BuildHistory
    from trt_tui.core.build.manager import JobManager, default_backends
    from trt_tui.core.build.selection import select_backend
    from trt_tui.core.build.trtexec_backend import TrtexecBackend
    from trt_tui.core.build.types import BuildJob, BuildRequest, BuildResult, JobChanged, JobState, LogLines, Progress
    from trt_tui.core.build.worker_backends import EmulateBackend, TensorRTBackend


def __getattr__(name: str):
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CHOICES",
    "BuildHistory",
    "BuildJob",
    "BuildRequest",
    "BuildResult",
    "EmulateBackend",
    "JobChanged",
    "JobManager",
    "JobState",
    "LogLines",
    "Progress",
    "TensorRTBackend",
    "TrtexecBackend",
    "default_backends",
    "select_backend",
]

"""Background builds: backends (tensorrt, trtexec, emulate), the job manager, the history.

Public API (see manager.py for the thread-safety contract):
- `JobManager(state_dir, slots_per_device=1)`: `submit(BuildRequest) -> BuildJob`, `cancel(id) -> str`,
  `jobs(limit) -> list[BuildJob]`, `get(id)`, `wait(id, timeout)`, `log_tail(id, n)`,
  `subscribe(callback(list[event])) -> unsubscribe`, `close()`.
- `BuildRequest`, `BuildJob`, `BuildResult`, `JobState`; events `JobChanged`, `Progress`, `LogLines`.
- Backends `TensorRTBackend`, `TrtexecBackend`, `EmulateBackend`; `select_backend(choice, backends)`.
Nothing here imports TensorRT at import time; only the worker child does, and only for the tensorrt backend.
"""

from trt_tui.core.build.history import BuildHistory
from trt_tui.core.build.manager import JobManager, default_backends
from trt_tui.core.build.selection import CHOICES, select_backend
from trt_tui.core.build.trtexec_backend import TrtexecBackend
from trt_tui.core.build.types import BuildJob, BuildRequest, BuildResult, JobChanged, JobState, LogLines, Progress
from trt_tui.core.build.worker_backends import EmulateBackend, TensorRTBackend

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

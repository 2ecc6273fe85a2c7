"""Which optional backends this machine has, and why not when it has not (for the status bar and choosers).

Cheap by design: `importlib.util.find_spec` (no import of TensorRT) and a PATH lookup.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    detail: str  # where it was found, or why it is not available


def tensorrt_status() -> BackendStatus:
    try:
        spec = importlib.util.find_spec("tensorrt")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return BackendStatus("TensorRT", False, "Python package `tensorrt` not installed (pip install tensorrt)")
    return BackendStatus("TensorRT", True, spec.origin or "tensorrt")


def trtexec_status() -> BackendStatus:
    path = shutil.which("trtexec")
    if path is None:
        return BackendStatus("trtexec", False, "`trtexec` not found on PATH")
    return BackendStatus("trtexec", True, path)


def detect() -> list[BackendStatus]:
    return [tensorrt_status(), trtexec_status()]

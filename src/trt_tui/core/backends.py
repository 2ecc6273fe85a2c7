"""THE availability probe: which optional backends this machine has, and why not when it has not.

One answer for the status bar (`detect()`), the Builds screen and the CLI (the build backends'
`availability()` call `tensorrt_status` / `trtexec_status`), so they cannot disagree.

- TensorRT's Python package: `importlib.util.find_spec` and the installed distribution's version. It is
  NEVER imported here: importing TensorRT loads CUDA, which the UI process must never do.
- trtexec: `$TRT_TUI_TRTEXEC` (a path or a command name) first, else PATH.
- ONNX Runtime: the execution providers it offers (CUDA means comparisons can run on the GPU).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass

TRTEXEC_ENV = "TRT_TUI_TRTEXEC"


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    detail: str  # one line: where it was found, or what is missing and how to get it
    path: str | None = None  # trtexec: the executable found


def _installed(module: str, distributions: tuple[str, ...]) -> tuple[bool, str | None]:
    try:
        found = sys.modules.get(module) is not None or importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return False, None
    for dist in distributions:
        try:
            return True, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return True, None


def tensorrt_status() -> BackendStatus:
    found, version = _installed("tensorrt", ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-cu11"))
    if not found:
        return BackendStatus("TensorRT", False, "the TensorRT Python package is not installed (pip install 'trt-tui[trt]')")
    return BackendStatus("TensorRT", True, f"TensorRT Python package {version or '(unknown version)'} is installed")


def trtexec_status() -> BackendStatus:
    configured = os.environ.get(TRTEXEC_ENV)
    if configured:
        path = shutil.which(configured) or (configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None)
        if path:
            return BackendStatus("trtexec", True, f"trtexec from ${TRTEXEC_ENV}: {path}", path)
        return BackendStatus("trtexec", False, f"${TRTEXEC_ENV} is set to {configured!r}, which is not an executable file")
    path = shutil.which("trtexec")
    if path:
        return BackendStatus("trtexec", True, f"trtexec found on PATH: {path}", path)
    return BackendStatus("trtexec", False, f"trtexec is not on PATH (install TensorRT, or set ${TRTEXEC_ENV} to the trtexec executable)")


def onnxruntime_providers() -> list[str]:
    """ONNX Runtime's execution providers ([] when it is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def onnxruntime_status() -> BackendStatus:
    providers = onnxruntime_providers()
    if not providers:
        return BackendStatus("ORT", False, "onnxruntime is not installed (pip install onnxruntime or onnxruntime-gpu)")
    gpu = "CUDAExecutionProvider" in providers
    short = ", ".join(p.removesuffix("ExecutionProvider") for p in providers)
    return BackendStatus("ORT", True, f"onnxruntime providers: {short}" + ("" if gpu else " (comparisons run on the CPU)"))


def detect(*, onnxruntime: bool = False) -> list[BackendStatus]:
    """TensorRT and trtexec (cheap: no import); with `onnxruntime`, also ORT's providers (imports onnxruntime)."""
    return [tensorrt_status(), trtexec_status(), *([onnxruntime_status()] if onnxruntime else [])]

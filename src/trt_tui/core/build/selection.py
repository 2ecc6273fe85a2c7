"""Choosing a backend: a named one must be available (else MissingBackendError, exit 2); `auto` takes the
best available one and says why.

Order for `auto`: `tensorrt` (the Python API: real engine plus the pin check with cooperative cancel),
then `trtexec` (real engine, pin check from its layer-info export), then `emulate` (CPU preview: no engine).
"""

from __future__ import annotations

from trt_tui.core.build.backend import Backend
from trt_tui.core.build.constants import AUTO_ORDER, CHOICES
from trt_tui.core.errors import MissingBackendError, UserError


def select_backend(choice: str, backends: dict[str, Backend]) -> tuple[str, str]:
    """(backend name, one-line reason)."""
    if choice != "auto":
        backend = backends.get(choice)
        if backend is None:
            raise UserError(f"unknown build backend {choice!r} (choose from {', '.join(CHOICES)})")
        avail = backend.availability()
        if not avail.ok:
            raise MissingBackendError(f"backend {choice} is not available: {avail.reason}")
        return choice, avail.reason
    skipped = []
    for name in AUTO_ORDER:
        backend = backends.get(name)
        if backend is None:
            continue
        avail = backend.availability()
        if avail.ok:
            why = f"auto picked {name}: {avail.reason}"
            if skipped:
                why += "; skipped " + "; ".join(skipped)
            return name, why
        skipped.append(f"{name} ({avail.reason})")
    raise MissingBackendError("no build backend is available: " + "; ".join(skipped))

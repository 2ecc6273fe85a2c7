"""Atomic, non-clobbering file writes: a crash never leaves half a file, a save never eats a user's file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trt_tui.core.errors import UserError


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` via a temporary file in the same directory and an atomic rename.

    With `overwrite=False` an existing file is never replaced: a UserError says so instead.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise UserError("already exists; choose another name or allow overwriting", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            # link() fails if the target appeared meanwhile, so a concurrent writer is not clobbered either.
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise UserError("already exists; choose another name or allow overwriting", target) from None
            finally:
                os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target

"""One build per device slot across every trt_tui process sharing a state directory.

A slot is an exclusive `flock` on `<state>/locks/<device>.<slot>.lock`. The kernel drops the lock when
its holder exits however it exits (kill -9 included), so a crashed process never leaves a device taken.
The holder writes its pid and build id into the file so that waiting builds can say whom they wait for.
flock locks belong to the open file, so two managers in one process exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from trt_tui.core.errors import UserError


class DeviceSlot:
    """A held slot; `release()` (idempotent) frees it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def _lock_path(locks_dir: Path, device: str, slot: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device) or "device"
    return locks_dir / f"{safe}.{slot}.lock"


def try_acquire(locks_dir: Path, device: str, slots: int, holder: str) -> DeviceSlot | None:
    """Take a free slot of `device` (non-blocking), or None when every slot is held by someone."""
    try:
        locks_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the device locks folder: {exc.strerror or exc}", locks_dir) from None
    for slot in range(slots):
        path = _lock_path(locks_dir, device, slot)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(f"cannot open a device lock: {exc.strerror or exc}", path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:  # who holds it, for the "waiting for" message of other processes (best effort: the lock is what counts)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder}\n".encode(), 0)
        except OSError:
            pass
        return DeviceSlot(fd, path)
    return None


def holders(locks_dir: Path, device: str, slots: int) -> list[str]:
    """What the holders of `device`'s slots wrote (for messages; may be stale or empty)."""
    out = []
    for slot in range(slots):
        try:
            text = _lock_path(locks_dir, device, slot).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if text:
            out.append(text[:100])
    return out

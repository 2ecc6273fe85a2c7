"""Safe file access: atomic, non-clobbering writes and reads that only ever open regular files.

A crash never leaves half a file, a save never eats a user's file, a FIFO or /dev/zero never hangs a read,
and a temporary file left by a killed writer is cleaned up by the next write to the same target.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

from trt_tui.core.errors import UserError

TMP_TAG = "trt_tui"
# `.NAME.trt_tui-PID-RANDOM.tmp` (this module's temp files); `.NAME.XXXXXXXX.tmp` (older versions' mkstemp)
STALE_OLD_FORMAT_S = 3600.0


def _errno_text(exc: OSError) -> str:
    return exc.strerror or str(exc)


def require_regular_file(path: str | os.PathLike[str], what: str = "file") -> os.stat_result:
    """The file's stat when `path` is a regular file (symlinks followed); else a one-line UserError.

    Refuses directories, FIFOs, sockets and devices (`/dev/zero` would be read forever, a FIFO blocks)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError("no such file", p) from None
    except OSError as exc:
        raise UserError(f"cannot read {what}: {_errno_text(exc)}", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"is a directory, not {'an' if what[:1].upper() in 'AEIOU' else 'a'} {what}", p)
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise UserError(f"is {kind}, not a regular {what}; refusing to read it", p)
    return st


def read_bytes_file(path: str | os.PathLike[str], what: str = "file", *, max_bytes: int | None = None) -> bytes:
    """The contents of a regular file, refusing anything else and anything bigger than `max_bytes`."""
    st = require_regular_file(path, what)
    if max_bytes is not None and st.st_size > max_bytes:
        raise UserError(f"{what} is {st.st_size} bytes; more than the {max_bytes} a {what} may have", path)
    # O_NONBLOCK: if the path is swapped for a FIFO between the stat and the open, the open does not block
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UserError(f"is not a regular {what}; refusing to read it", path)
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"cannot read {what}: {_errno_text(exc)}", path) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UserError(f"{what} is more than the {max_bytes} bytes a {what} may have", path)
    return data


def read_text_file(path: str | os.PathLike[str], what: str = "file", *, max_bytes: int | None = None) -> str:
    data = read_bytes_file(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        onnx_model = Path(path).suffix.lower() == ".onnx"  # `contract validate model.onnx`: say what went wrong
        raise UserError(f"cannot read {what}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                        + (f"; this is an ONNX model, not a {what}" if onnx_model else ""), path) from None  # fmt: skip


def _tmp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}.") + rf"(?:{TMP_TAG}-(\d+)-[0-9a-f]+|[A-Za-z0-9_]{{8}})\.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temp_files(target: Path) -> list[Path]:
    """Remove temporary files of our own naming for `target` whose writer is gone (killed mid-write).

    A file tagged with a live pid is another writer's, in progress: kept. Untagged ones (older versions)
    are removed once an hour old. Returns the files removed."""
    pattern = _tmp_pattern(target.name)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        is_dir = entry.is_dir(follow_symlinks=False)
        if m is None or not (is_dir or entry.is_file(follow_symlinks=False)):
            continue
        try:
            if m.group(1) is not None:
                stale = int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1)))
            else:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_OLD_FORMAT_S
            if stale:
                if is_dir:  # a staging folder (a model and its .data written together)
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def require_folder(target: Path) -> None:
    """The folder `target` is to be written into must exist: a typo in an output path creates nothing."""
    parent = target.parent
    if not parent.is_dir():
        raise UserError("the folder to write into does not exist (create it first)", parent if str(parent) else target)


def staging_dir(target: str | os.PathLike[str], *, make_parents: bool = False) -> Path:
    """A new hidden folder next to `target` (our temp naming) for files that appear together at commit;
    stale ones of killed writers are removed first. The caller removes it (or renames out of it)."""
    target = Path(target)
    if make_parents:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the folder: {_errno_text(exc)}", target.parent) from None
    require_folder(target)
    clean_stale_temp_files(target)
    path = target.parent / f".{target.name}.{TMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        path.mkdir()
    except OSError as exc:
        raise UserError(f"cannot write: {_errno_text(exc)}", target) from None
    return path


def atomic_write(
    path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = False, make_parents: bool = False
) -> Path:
    """Write `data` to `path` via a temporary file in the same directory and an atomic rename.

    With `overwrite=False` an existing file is never replaced: a UserError says so instead. The parent
    directory must exist unless `make_parents` (a typo in an output path should not create folders).
    Failures of the disk (read-only, full, permission) are one-line UserErrors naming the target.
    """
    target = Path(path)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise UserError("already exists; choose another name, or overwrite it (--force on the command line)", target)
    if target.exists() and not target.is_file():
        raise UserError("is not a regular file; refusing to replace it", target)
    parent = target.parent
    if make_parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the folder: {_errno_text(exc)}", parent) from None
    else:
        require_folder(target)
    clean_stale_temp_files(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = parent / f".{target.name}.{TMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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
                    raise UserError("already exists; choose another name, or overwrite it (--force on the command line)", target) from None
                finally:
                    os.unlink(tmp)
        except OSError as exc:
            hint = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
            raise UserError(f"cannot write: {_errno_text(exc)}{hint}", target) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target

"""Saving a preset back the way a person edits a file: comments, key order, blank lines and the spelling of
every value that did not change stay as they were (tomlkit), only changed keys are rewritten; and a file that
another program changed since it was read is never overwritten without being asked (ChangedOnDisk).

`save_preset` (toml_io) writes a fresh document; this module is for saving over, or next to, a file the user
opened: the TUI's Ctrl+S and Save as.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from tomlkit.items import AoT, InlineTable, Table

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write
from trt_tui.core.preset.model import Preset
from trt_tui.core.preset.toml_io import preset_from_dict, preset_to_dict, preset_to_toml, rebase_paths

INLINE_KEYS = frozenset({"dims", "memory_pools"})  # short tables written on one line, as preset_to_toml does


@dataclass(frozen=True)
class FileStamp:
    """Enough of a file's state to notice that something else wrote it: size, mtime and content hash."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of_bytes(cls, path: Path, data: bytes) -> FileStamp:
        st = path.stat()
        return cls(len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class PresetSource:
    """The text a preset was read from, and its file's stamp at that moment."""

    path: Path
    text: str
    stamp: FileStamp


class ChangedOnDisk(UserError):
    """The file changed since it was read: reload it, overwrite it, or save under another name."""


def read_source(path: str | os.PathLike[str]) -> PresetSource:
    source = Path(path).absolute()
    try:
        data = source.read_bytes()
        return PresetSource(source, data.decode("utf-8"), FileStamp.of_bytes(source, data))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read preset: {exc}", source) from None


def changed_on_disk(source: PresetSource) -> bool:
    """True when the file is gone or its bytes differ from what was read (a touch alone is not a change)."""
    try:
        data = source.path.read_bytes()
    except OSError:
        return True
    return hashlib.sha256(data).hexdigest() != source.stamp.sha256


def _new_item(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        table = tomlkit.inline_table() if key in INLINE_KEYS else tomlkit.table()
        for k, v in value.items():
            table[k] = _new_item(k, v)
        return table
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        aot = tomlkit.aot()
        for v in value:
            aot.append(_new_item("", v))
        return aot
    return value


def _merge(table: Any, new: dict, old: dict) -> None:
    """Make `table` (a tomlkit container read from a file meaning `old`) mean `new`, touching only the keys
    whose value changed: keys the file leaves to their defaults stay unwritten, values keep their spelling."""
    for key in [k for k in old if k not in new and k in table]:
        del table[key]
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        existing = table.get(key)
        if existing is None:
            table[key] = _new_item(key, value)
        elif isinstance(value, dict) and isinstance(before, dict) and isinstance(existing, (Table, InlineTable)):
            _merge(existing, value, before)
        elif isinstance(existing, AoT) and isinstance(before, list) and len(existing) == len(before) == len(value):
            for item, new_item, old_item in zip(existing, value, before):
                _merge(item, new_item, old_item)
        else:
            table[key] = _new_item(key, value)


def roundtrip_text(preset: Preset, source: PresetSource | None) -> str:
    """The preset as TOML: the source's text with only the changed keys rewritten, or a fresh document."""
    if source is None:
        return preset_to_toml(preset)
    try:
        doc = tomlkit.parse(source.text)
        old = preset_to_dict(preset_from_dict(tomllib.loads(source.text), source.path))
    except Exception:  # noqa: BLE001 - the file no longer parses (tomlkit's errors share no base): start afresh
        return preset_to_toml(preset)
    _merge(doc, preset_to_dict(preset), old)
    return tomlkit.dumps(doc)


def save_preset_keeping_layout(
    preset: Preset,
    path: str | os.PathLike[str],
    *,
    source: PresetSource | None,
    overwrite: bool = False,
    force: bool = False,
) -> PresetSource:
    """Write `preset` to `path`, keeping `source`'s comments and layout; returns the new source.

    Saving over the file the preset was read from needs no `overwrite`, but raises ChangedOnDisk when the file
    changed since (unless `force`). Any other existing file is replaced only with `overwrite`.
    """
    target = Path(path).absolute()
    same_file = source is not None and source.path == target
    if same_file and not force and changed_on_disk(source):
        raise ChangedOnDisk("changed on disk since it was opened (another program wrote it)", target)
    rebase_paths(preset, target.parent)
    text = roundtrip_text(preset, source)
    atomic_write(target, text, overwrite=overwrite or same_file)
    preset.path = target
    return PresetSource(target, text, FileStamp.of_bytes(target, text.encode("utf-8")))

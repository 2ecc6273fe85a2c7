"""User key remapping: a TOML file of `binding id = "keys"` pairs, applied with `App.set_keymap`.

The file lives at `$XDG_CONFIG_HOME/trt_tui/keymap.toml` (default `~/.config/trt_tui/keymap.toml`), or
wherever `TRT_TUI_KEYMAP` points. Entries may sit at the top level or under a `[keymap]` table:

    "model.pin_node" = "p"
    "app.mode.parity" = "f4,4"     # several keys, comma-separated
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from trt_tui.core.errors import UserError


def keymap_path() -> Path:
    override = os.environ.get("TRT_TUI_KEYMAP")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trt_tui" / "keymap.toml"


def load_keymap(path: Path | None = None, known_ids: set[str] | None = None) -> dict[str, str]:
    """Read the keymap; a missing file is an empty keymap, a broken one a UserError naming the file."""
    p = path or keymap_path()
    if not p.exists():
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read keymap: {exc}", p) from None
    section = data.get("keymap", {})
    if not isinstance(section, dict):
        raise UserError("[keymap] must be a table of `binding id = \"keys\"`", p)
    table = {k: v for k, v in data.items() if k != "keymap"} | section
    keymap: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{key!r}: keys must be a non-empty string such as \"p\" or \"f4,4\"", p)
        if known_ids is not None and key not in known_ids:
            close = sorted(k for k in known_ids if k.split(".")[-1] == key.split(".")[-1])
            hint = f"; did you mean {close[0]!r}?" if close else " (see the help screen, ?, for binding ids)"
            raise UserError(f"unknown binding id {key!r}{hint}", p)
        keymap[key] = value.strip()
    return keymap

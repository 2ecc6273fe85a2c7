"""Exports of a resolved preset: trtexec (10.x / 11.x), a bash build script, polygraphy, AutoCast, JSON."""

from __future__ import annotations

from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.errors import UserError
from trt_tui.core.preset.constants import FORMATS
from trt_tui.core.preset.exports.autocast import export_autocast
from trt_tui.core.preset.exports.common import Paths, shown_path
from trt_tui.core.preset.exports.polygraphy import export_polygraphy
from trt_tui.core.preset.exports.script import export_script
from trt_tui.core.preset.exports.trtexec import export_trtexec, trtexec_args
from trt_tui.core.preset.resolved import ResolvedPreset


def export(resolved: ResolvedPreset, fmt: str, *, base_dir: str | Path | None = None, accuracy=None) -> str:
    """The preset as `fmt` text. Paths are absolute, or relative to `base_dir` when given (for `script`: the
    directory the script will live in; it changes into it before running anything). `accuracy`: trtexec
    11.1+ reference data (exports.trtexec_accuracy.write_reference_data), trtexec format only."""
    paths = Paths(Path(base_dir) if base_dir is not None else None)
    if fmt == "trtexec":
        return export_trtexec(resolved, paths, accuracy)
    if fmt == "script":
        return export_script(resolved, paths)
    if fmt == "polygraphy":
        return export_polygraphy(resolved, paths)
    if fmt == "autocast":
        return export_autocast(resolved, paths)
    if fmt == "json":
        return jsonio.dumps(resolved.to_json(), indent=2) + "\n"
    raise UserError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")


def export_for_user(resolved: ResolvedPreset, fmt: str, target: str | Path | None = None, *, accuracy=None) -> str:
    """The export as `trt-tui preset export` and the TUI give it (one rule for both): paths relative to the
    current directory when inside it, absolute otherwise. A script written to `target` is relative to its own
    folder (it changes into it first); a script with no file yet (stdout, the preview, the clipboard) gets
    absolute paths, since where it will be saved is unknown."""
    if fmt == "script":
        base = Path(target).absolute().parent if target is not None else None
    else:
        base = Path.cwd()
    return export(resolved, fmt, base_dir=base, accuracy=accuracy)


__all__ = ["FORMATS", "export", "export_for_user", "shown_path", "trtexec_args"]

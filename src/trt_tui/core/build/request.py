"""From a preset to a BuildRequest: load (a file) or take (an object with unsaved edits), resolve, pick the
backend, snapshot everything.

The request carries the preset text as it was, the engine specification the worker reads (EngineSpec,
serialised once), and for trtexec the preset's exported argv. Resolution happens here, in the calling
process, because it is quick and its errors are the user's (one line, exit 2); the slow parts (rewrites,
the build) run in the child.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trt_tui.core.build.backend import Backend
from trt_tui.core.build.selection import select_backend
from trt_tui.core.build.types import BuildRequest
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError

if TYPE_CHECKING:
    from trt_tui.core.preset import Preset


def request_from_preset(
    preset_path: str | Path,
    backend: str,
    backends: dict[str, Backend],
    *,
    timeout_s: float | None = None,
) -> BuildRequest:
    """A build of a preset file, exactly as saved (the snapshot is the file's text, comments included)."""
    from trt_tui.core.preset import load_preset

    path = Path(preset_path)
    preset = load_preset(path)  # UserError naming the file when it is missing or malformed
    return _request(preset, path.read_text(encoding="utf-8"), backend, backends, timeout_s=timeout_s, edited=False)


def request_from_edited_preset(
    preset: Preset,
    backend: str,
    backends: dict[str, Backend],
    *,
    timeout_s: float | None = None,
) -> BuildRequest:
    """A build of a preset object as it is now (unsaved edits, or a preset never saved).

    `preset.path` is where it was loaded from (None if never saved): relative paths resolve against its
    directory. There is no file to copy, so the snapshot is written from the object, with absolute paths
    and the engine (and converted model) it resolves to, so that it rebuilds the same thing from wherever it
    is kept. The caller must not edit `preset` while this runs (pass a copy from the UI thread).
    """
    from trt_tui.core.preset.toml_io import snapshot_toml

    def text(resolved: Any) -> str:
        snap = copy.deepcopy(preset)
        # the default engine name comes from the preset file's name, which the snapshot would not have
        snap.builder.engine = str(resolved.engine_path)
        if resolved.converted_model_path is not None:
            snap.builder.converted_model = str(resolved.converted_model_path)
        origin = str(preset.path) if preset.path is not None else "a preset never saved"
        return f"# Snapshot of unsaved edits ({origin}); paths made absolute.\n" + snapshot_toml(snap)

    return _request(preset, text, backend, backends, timeout_s=timeout_s, edited=True)


def _request(
    preset: Preset,
    text: str | Callable[[Any], str],
    backend: str,
    backends: dict[str, Backend],
    *,
    timeout_s: float | None,
    edited: bool,
) -> BuildRequest:
    from trt_tui.core.preset import resolve_preset
    from trt_tui.core.preset.exports import trtexec_args

    if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):  # nan never times out
        raise UserError(f"--timeout must be positive, not {timeout_s:g}")
    name, reason = select_backend(backend, backends)
    resolved = resolve_preset(preset, for_export="trtexec" if name == "trtexec" else None)
    return BuildRequest(
        preset_path=str(preset.path.absolute()) if preset.path is not None else "",
        preset_text=text if isinstance(text, str) else text(resolved),
        model_path=str(resolved.model_path),
        backend=name,
        settings=EngineSpec.from_resolved(resolved).to_json(),  # the one engine specification
        trtexec_argv=trtexec_args(resolved) if name == "trtexec" else None,
        timeout_s=timeout_s,
        device="cpu" if name == "emulate" else "gpu0",  # the CPU preview does not wait for the GPU
        label=resolved.name,
        backend_reason=reason,
        unsaved_edits=edited,
    )

"""From a preset file to a BuildRequest: load, resolve, pick the backend, snapshot everything.

The request carries the preset text as it was, the resolved settings the worker needs (plain JSON), the
full resolved preset (for the TUI and for reproducing the build), and for trtexec the preset's exported
argv. Resolution happens here, in the calling process, because it is quick and its errors are the user's
(one line, exit 2); the slow parts (rewrites, the build) run in the child.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trt_tui.core.build.backend import Backend
from trt_tui.core.build.selection import select_backend
from trt_tui.core.build.types import BuildRequest
from trt_tui.core.errors import UserError


def settings_from_resolved(resolved: Any) -> dict[str, Any]:
    """ResolvedPreset -> the JSON settings read by TrtSettings (and kept in request.json)."""
    return {
        "precision": resolved.precision,
        "trt_major": resolved.trt_major,
        "pinned_nodes": list(resolved.pinned_nodes),
        "tf32": resolved.tf32,
        "optimization_level": resolved.optimization_level,
        "memory_pools_mib": dict(resolved.memory_pools),
        "timing_cache": str(resolved.timing_cache) if resolved.timing_cache else None,
        "keep_io_types": resolved.keep_io_types,
        "precision_constraints": resolved.precision_constraints,
        "force_low_precision": resolved.force_low_precision,
        "pin_output_types": resolved.pin_output_types,
        "uses_conversion": resolved.uses_conversion,
        "io_formats": {
            "inputs": {f.tensor: f.trtexec_text() for f in resolved.input_formats},
            "outputs": {f.tensor: f.trtexec_text() for f in resolved.output_formats},
        },
        "linear_io": bool(resolved.input_formats or resolved.output_formats),
        "profiles": [
            {name: {"min": list(t[0]), "opt": list(t[1]), "max": list(t[2])} for name, t in profile.items()}
            for profile in resolved.profiles
        ],
        "resolved": resolved.to_json(),
    }


def request_from_preset(
    preset_path: str | Path,
    backend: str,
    backends: dict[str, Backend],
    *,
    timeout_s: float | None = None,
) -> BuildRequest:
    from trt_tui.core.preset import load_preset, resolve_preset
    from trt_tui.core.preset.exports import trtexec_args

    if timeout_s is not None and timeout_s <= 0:
        raise UserError(f"--timeout must be positive, not {timeout_s:g}")
    path = Path(preset_path)
    preset = load_preset(path)  # UserError naming the file when it is missing or malformed
    text = path.read_text(encoding="utf-8")
    name, reason = select_backend(backend, backends)
    resolved = resolve_preset(preset, for_export="trtexec" if name == "trtexec" else None)
    return BuildRequest(
        preset_path=str(path.absolute()),
        preset_text=text,
        model_path=str(resolved.model_path),
        backend=name,
        settings=settings_from_resolved(resolved),
        trtexec_argv=trtexec_args(resolved) if name == "trtexec" else None,
        timeout_s=timeout_s,
        device="cpu" if name == "emulate" else "gpu0",  # the CPU preview does not wait for the GPU
        label=resolved.name,
        backend_reason=reason,
    )

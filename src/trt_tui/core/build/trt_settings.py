"""The build settings the Python-API and CPU-preview backends read from `BuildRequest.settings`.

`settings` is plain JSON (it travels to the worker child in request.json); this turns it into typed values
and rejects nonsense with a one-line UserError naming the preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trt_tui.core.build.types import BuildRequest
from trt_tui.core.errors import UserError

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class TrtSettings:
    precision: str = "fp16"
    trt_major: int | None = None
    pinned_nodes: list[str] = field(default_factory=list)
    # [{input name: {"min": [...], "opt": [...], "max": [...]}}], one dict per optimization profile
    profiles: list[dict[str, dict[str, list[int]]]] = field(default_factory=list)
    optimization_level: int | None = None
    tf32: bool = True
    timing_cache: str | None = None
    memory_pools_mib: dict[str, int] = field(default_factory=dict)  # {"workspace": 4096}
    linear_io: bool = True
    keep_io_types: bool = True
    precision_constraints: str | None = None  # obey | prefer | none (10.x)
    force_low_precision: bool = False  # 10.x `*:fp16`
    pin_output_types: bool = True  # 10.x --layerOutputTypes for the pins
    io_dtypes: dict[str, str] = field(default_factory=dict)  # binding -> fp32/fp16/... (10.x IO formats)

    @classmethod
    def from_request(cls, request: BuildRequest) -> TrtSettings:
        return cls.from_json(request.settings, source=request.preset_path)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | None = None) -> TrtSettings:
        def bad(what: str) -> UserError:
            return UserError(f"build settings: {what}", source)

        out = cls()
        precision = str(data.get("precision", "fp16")).lower()
        if precision not in PRECISIONS:
            raise bad(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        out.precision = precision
        if data.get("trt_major") is not None:
            out.trt_major = _int(data["trt_major"], "trt_major", bad)
        out.pinned_nodes = [str(n) for n in data.get("pinned_nodes") or []]
        for i, profile in enumerate(data.get("profiles") or []):
            if not isinstance(profile, dict):
                raise bad(f"profile {i} is not a table of inputs")
            clean = {}
            for name, shapes in profile.items():
                try:
                    clean[name] = {k: [int(d) for d in shapes[k]] for k in ("min", "opt", "max")}
                except (KeyError, TypeError, ValueError):
                    raise bad(f"profile {i} input {name!r} needs integer min/opt/max shapes") from None
            out.profiles.append(clean)
        if data.get("optimization_level") is not None:
            out.optimization_level = _int(data["optimization_level"], "optimization_level", bad)
            if not 0 <= out.optimization_level <= 5:
                raise bad("optimization_level must be between 0 and 5")
        out.tf32 = bool(data.get("tf32", True))
        out.timing_cache = data.get("timing_cache") or None
        pools = data.get("memory_pools_mib") or {}
        out.memory_pools_mib = {str(k): _int(v, f"memory pool {k}", bad) for k, v in pools.items()}
        out.linear_io = bool(data.get("linear_io", True))
        out.keep_io_types = bool(data.get("keep_io_types", True))
        constraints = data.get("precision_constraints")
        if constraints not in (None, "obey", "prefer", "none"):
            raise bad(f"precision_constraints must be obey, prefer or none, not {constraints!r}")
        out.precision_constraints = constraints
        out.force_low_precision = bool(data.get("force_low_precision", False))
        out.pin_output_types = bool(data.get("pin_output_types", True))
        formats = data.get("io_formats") or {}
        for group in ("inputs", "outputs"):
            for tensor, text in (formats.get(group) or {}).items():
                dtype, sep, _layout = str(text).rpartition(":")
                if sep and dtype:
                    out.io_dtypes[str(tensor)] = dtype
        return out


def _int(value: Any, what: str, bad) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"{what} must be an integer, not {value!r}") from None

"""Presets: the unit users save, share and script (schema, TOML files, validation, resolution, exports).

    preset = load_preset("presets/demo_fp16.toml")
    problems = validate_preset(preset, index)          # every problem, with its key path
    resolved = resolve_preset(preset, index)            # rules -> node names, profiles, IO formats
    print(export(resolved, "trtexec"))
    changes = diff_presets(preset, other)               # [PresetChange(key_path, old, new)]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Names are imported from their submodules on first use (PEP 562), so that importing a small submodule such
# as `constants` (the CLI does, to declare its flags) does not load the schema, resolution and exporters.
_SOURCE = {
    "PinRules": ("trt_tui.core.pins", "PinRules"),
    "PinRule": ("trt_tui.core.pins", "PinRules"),  # one rule set per preset; the name the design notes use
    "resolve_preset": ("trt_tui.core.preset.analyse", "resolve_preset"),
    "validate_preset": ("trt_tui.core.preset.analyse", "validate_preset"),
    **{n: ("trt_tui.core.preset.diff", n) for n in ("PinnedNodesDiff", "PresetChange", "diff_pinned_nodes", "diff_presets")},
    "FORMATS": ("trt_tui.core.preset.constants", "FORMATS"),
    "export": ("trt_tui.core.preset.exports", "export"),
    **{n: ("trt_tui.core.preset.model", n) for n in ("BuilderSettings", "ComparisonDefaults", "IOFormat", "IOSettings",
                                                      "OutputTolerance", "PrecisionSettings", "Preset", "Profile")},
    "Problem": ("trt_tui.core.preset.problems", "Problem"),
    "ResolvedPreset": ("trt_tui.core.preset.resolved", "ResolvedPreset"),
    **{n: ("trt_tui.core.preset.toml_io", n) for n in ("load_preset", "preset_to_dict", "save_preset")},
}  # fmt: skip

if TYPE_CHECKING:
    from trt_tui.core.pins import PinRules
    from trt_tui.core.pins import PinRules as PinRule
    from trt_tui.core.preset.analyse import resolve_preset, validate_preset
    from trt_tui.core.preset.constants import FORMATS
    from trt_tui.core.preset.diff import PinnedNodesDiff, PresetChange, diff_pinned_nodes, diff_presets
    from trt_tui.core.preset.exports import export
    from trt_tui.core.preset.model import (
        BuilderSettings,
        ComparisonDefaults,
        IOFormat,
        IOSettings,
        OutputTolerance,
        PrecisionSettings,
        Preset,
        Profile,
    )
    from trt_tui.core.preset.problems import Problem
    from trt_tui.core.preset.resolved import ResolvedPreset
    from trt_tui.core.preset.toml_io import load_preset, preset_to_dict, save_preset


def __getattr__(name: str):
    if name not in _SOURCE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _SOURCE[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "FORMATS",
    "BuilderSettings",
    "ComparisonDefaults",
    "IOFormat",
    "IOSettings",
    "OutputTolerance",
    "PinRule",
    "PinRules",
    "PinnedNodesDiff",
    "PrecisionSettings",
    "Preset",
    "PresetChange",
    "Problem",
    "Profile",
    "ResolvedPreset",
    "diff_pinned_nodes",
    "diff_presets",
    "export",
    "load_preset",
    "preset_to_dict",
    "resolve_preset",
    "save_preset",
    "validate_preset",
]

"""Presets: the unit users save, share and script (schema, TOML files, validation, resolution, exports).

    preset = load_preset("presets/demo_fp16.toml")
    problems = validate_preset(preset, index)          # every problem, with its key path
    resolved = resolve_preset(preset, index)            # rules -> node names, profiles, IO formats
    print(export(resolved, "trtexec"))
    changes = diff_presets(preset, other)               # [PresetChange(key_path, old, new)]
"""

from trt_tui.core.pins import PinRules
from trt_tui.core.preset.analyse import resolve_preset, validate_preset
from trt_tui.core.preset.diff import PinnedNodesDiff, PresetChange, diff_pinned_nodes, diff_presets
from trt_tui.core.preset.exports import FORMATS, export
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

PinRule = PinRules  # one rule set per preset; the name the design notes use

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

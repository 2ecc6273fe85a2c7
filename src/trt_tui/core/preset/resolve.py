"""`resolve_preset`: a preset with its rules expanded against the model (see analyse.py)."""

from trt_tui.core.preset.analyse import resolve_preset
from trt_tui.core.preset.resolved import ResolvedPreset

__all__ = ["ResolvedPreset", "resolve_preset"]

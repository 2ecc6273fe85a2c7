"""`validate_preset`: every problem of a preset against its model (see analyse.py for the checks)."""

from trt_tui.core.preset.analyse import EXPORT_FORMATS, REMOVED_IN_11, validate_preset

__all__ = ["EXPORT_FORMATS", "REMOVED_IN_11", "validate_preset"]

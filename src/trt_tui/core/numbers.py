"""Checks on numbers that come from users (flags, presets, contracts, TUI fields), in one place.

Non-finite numbers are refused everywhere: a NaN tolerance passes every comparison (NaN > x is False),
a NaN timeout never fires, an infinite range cannot be sampled.
"""

from __future__ import annotations

import math


def require_finite(value: float, what: str, *, minimum: float | None = None) -> float:
    """`value` as a float when it is finite (and >= minimum), else ValueError naming `what`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{what} must be >= {minimum:g}, not {value!r}")
    return number

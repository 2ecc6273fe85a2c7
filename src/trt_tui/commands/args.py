"""Argument types shared by every command (kept free of heavy imports: every `trt-tui` start loads this).

`finite_float` is the type of every float flag: argparse's `float` accepts 'nan' and 'inf', and a NaN
tolerance makes every comparison pass (NaN > x is False), a NaN timeout never fires. The check itself is
`core.numbers.require_finite`, which preset, contract and TUI fields reuse.
"""

from __future__ import annotations

import argparse


def finite_float(text: str) -> float:
    """argparse type: a finite float ('nan', 'inf' and garbage are refused with the usual usage error)."""
    from trt_tui.core.numbers import require_finite  # on use: `trt-tui --help` imports no core module

    try:
        return require_finite(float(text), "value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}") from None


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (tolerances, timeouts, sizes)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}")
    return value


def unit_float(text: str) -> float:
    """argparse type: a finite float in [0, 1] (quantiles)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], not {text!r}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a random seed, 0 to 2**32 - 1 (what numpy and Polygraphy accept; -1 used to crash)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {2**32 - 1}, not {text}")
    return value

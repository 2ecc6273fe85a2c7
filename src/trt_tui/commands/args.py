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


def int_at_least(minimum: int):
    """argparse type: an integer >= minimum (`--limit -3` is refused, not a silent empty list)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, not {text}")
        return value

    return parse


# ---- argument groups, declared once (as Polygraphy's tools do) and used by compare, stream, convert, preset ----
def add_pin_args(parser: argparse.ArgumentParser, *, exclude: bool = False) -> None:
    """--pin-op / --pin-match / --pin (and --pin-exclude): FP32 pin rules, turned into node names by
    core.pins.pin_nodes (`pin_rules(args)`)."""
    g = parser.add_argument_group("FP32 pins")
    g.add_argument("--pin-op", action="append", default=[], metavar="TYPE", help="keep every node of this op type in FP32 (repeatable)")
    g.add_argument("--pin-match", action="append", default=[], metavar="REGEX", help="keep nodes whose name matches REGEX in FP32 (searched; repeatable)")
    g.add_argument("--pin", action="append", default=[], metavar="NODE", help="keep this exact node name in FP32 (repeatable)")
    if exclude:
        g.add_argument("--pin-exclude", action="append", default=[], metavar="NAME_OR_REGEX", help="un-pin nodes matched by the rules above (repeatable)")


def pin_rules(args: argparse.Namespace):
    """The PinRules the pin group's flags describe."""
    from trt_tui.core.pins import PinRules

    return PinRules(op_types=tuple(args.pin_op), patterns=tuple(args.pin_match), names=tuple(args.pin),
                    exclude=tuple(getattr(args, "pin_exclude", ()) or ()))  # fmt: skip


def has_pin_flags(args: argparse.Namespace) -> bool:
    return bool(args.pin or args.pin_op or args.pin_match or getattr(args, "pin_exclude", None))


def add_input_args(parser: argparse.ArgumentParser, *, profile: bool = False) -> None:
    """Input shapes (--shape, --dim) and, for a run, input data (--inputs, --seed, --iterations, --range).
    `profile`: shapes only, with MIN/OPT/MAX triples (preset new)."""
    g = parser.add_argument_group("inputs and shapes")
    if profile:
        g.add_argument("--dim", action="append", default=[], metavar="NAME=N|MIN,OPT,MAX",
                       help="profile value of a dynamic dim, e.g. T=16,64,256; an unnamed (?) axis is INPUT:AXIS, e.g. x:2=64")
        g.add_argument("--shape", action="append", default=[], metavar="INPUT:SHAPE|MIN/OPT/MAX",
                       help="profile shapes of one input, e.g. x:1x80x100/4x80x400/8x80x800")
        return
    g.add_argument("--inputs", metavar="FILE", help="input data: .npz or Polygraphy JSON (--save-inputs)")
    g.add_argument("--seed", type=seed_int, default=None, metavar="N", help="random input seed (default 1, as Polygraphy)")
    g.add_argument("--iterations", type=int, default=1, metavar="N", help="random input iterations (default 1)")
    g.add_argument("--shape", action="append", default=[], metavar="INPUT:SHAPE", help="input shape, e.g. x:1x64x256")
    g.add_argument("--dim", action="append", default=[], metavar="NAME=N",
                   help="value of a dynamic dim, e.g. T=64; an unnamed (?) axis is INPUT:AXIS, e.g. x:1=64")
    g.add_argument("--range", action="append", default=[], metavar="[INPUT:]LO,HI", help="random value range (default 0,1)")


def add_tolerance_args(parser: argparse.ArgumentParser, *, quantile: bool = True) -> None:
    """--atol / --rtol / --check-error-stat (/ --error-quantile): the comparison's default tolerance."""
    from trt_tui.core.parity.constants import ERROR_STATS  # dependency-free constants

    g = parser.add_argument_group("tolerances")
    g.add_argument("--atol", type=non_negative_float, default=None, help="absolute tolerance (default per precision: fp16/bf16 1e-4; README, Tolerances)")
    g.add_argument("--rtol", type=non_negative_float, default=None, help="relative tolerance (default per precision: fp16 5e-3, bf16 4e-2)")
    g.add_argument("--check-error-stat", choices=ERROR_STATS, default=None, help="statistic checked (default median for fp16/bf16)")
    if quantile:
        g.add_argument("--error-quantile", type=unit_float, default=None, help="quantile for --check-error-stat quantile")
    add_infinities_arg(g)


def add_infinities_arg(group) -> None:
    """--infinities-compare-equal (Polygraphy's flag): compare's and search's, and a new preset's."""
    group.add_argument("--infinities-compare-equal", action="store_true", default=None,
                       help="the same +-inf on both sides is no difference (masked logits, a log of 0); without "
                            "it: a --preset's [comparison] infinities_compare_equal, else off (inf - inf fails, as "
                            "in Polygraphy)")  # fmt: skip


def add_output_args(parser: argparse.ArgumentParser, *, csv: bool = False) -> None:
    """--json OUT ('-' for stdout), optionally --csv OUT, and --force (no writer overwrites without it)."""
    g = parser.add_argument_group("outputs")
    g.add_argument("--json", metavar="OUT", help="write the full result as JSON ('-' for stdout)")
    if csv:
        g.add_argument("--csv", metavar="OUT", help="write the per-tensor table as CSV")
    g.add_argument("--force", action="store_true", help="overwrite output files that exist")


def add_preset_arg(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--preset", metavar="FILE", help=help)

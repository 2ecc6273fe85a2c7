"""`trt-tui compare MODEL`: layer-wise drift of a candidate (fp16/bf16 emulation, an engine, ...) vs a reference.

Prints the worst tensors, the first divergence and a verdict. Exit 0: everything within tolerance;
1: something is not; 2: bad input or a missing backend.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from trt_tui.core import jsonio
from trt_tui.commands.args import (add_input_args, add_output_args, add_pin_args, add_tolerance_args, int_at_least,
                                   unit_float)
from trt_tui.commands.output import console, err_console, kept_fp32_lines
from trt_tui.core.errors import UserError
from trt_tui.core.parity.constants import AUTO_MAX_MEMORY_SHARE, DEFAULT_MAX_MEMORY, MIN_AUTO_MAX_MEMORY, RANK_KEYS, TOP_K

if TYPE_CHECKING:
    from trt_tui.core.parity.results import CompareResult

# Every `trt-tui` start imports this module to declare its flags: the comparison engine (numpy, ONNX, ONNX
# Runtime) and rich's tables are imported inside the functions that use them, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="layer-wise drift of a candidate against an FP32 reference",
        description="Compare every float tensor two runs expose under the same name (never by position), in "
        "batches under a memory budget, and report the worst tensors, the first divergence and a verdict. "
        "Exit 0: all within tolerance; 1: not; 2: bad input or missing backend.",
    )
    p.add_argument("model", nargs="?", help="ONNX model (FP32); default: the --preset's model")
    p.add_argument("--preset", metavar="FILE", help="take precision, pins, tolerances, input shapes (first profile's "
                   "opt), seed and input data from a preset; flags given here override it")
    p.add_argument("--candidate", default="emulate", metavar="SPEC",
                   help="emulate (CPU emulation of --precision, default), mixed (ONNX Runtime on the mixed-precision "
                   "rewrite), cuda (the mixed-precision rewrite on ONNX Runtime's CUDA EP: real GPU fp16/bf16 kernels, "
                   "against the FP32 model on the CUDA EP with TF32 off; needs onnxruntime-gpu), onnx:PATH, engine:PATH (TensorRT), trt[:PRESET] (a TensorRT engine built from the preset, "
                   "default --preset, through Polygraphy; every tensor marked unless --outputs-only) or "
                   "outputs:PATH[#runner] (.npz or Polygraphy JSON)")
    p.add_argument("--outputs-only", action="store_true",
                   help="trt: compare only the model's final outputs, on the unmarked engine (marking every tensor "
                   "blocks fusions and can force FP32, so the layer-wise engine is not the one you ship)")
    p.add_argument("--reference", default="onnxruntime", metavar="SPEC",
                   help="onnxruntime (FP32, default) or outputs:PATH[#runner] (e.g. saved from PyTorch)")
    p.add_argument("--precision", choices=("fp16", "bf16"), default=None, help="low precision of emulate/mixed (default fp16)")
    add_pin_args(p)
    add_input_args(p)
    add_tolerance_args(p)
    add_output_args(p, csv=True)
    p.add_argument("--no-fuse-bias", action="store_true", help="emulation: round MatMul outputs before a bias Add too")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help=f"tensor data (and the weights that make it) held at once, both sides (default: 1/{AUTO_MAX_MEMORY_SHARE} "
                        f"of the model's, between {MIN_AUTO_MAX_MEMORY >> 20}M and {DEFAULT_MAX_MEMORY >> 20}M)")
    p.add_argument("--quantile", action="append", type=unit_float, default=[], metavar="Q", help="extra |diff| quantile to report")
    p.add_argument("--worst", type=int, default=TOP_K, metavar="K",
                   help=f"worst elements (index, both values) kept per tensor in --json (default {TOP_K})")
    p.add_argument("--match", metavar="REGEX", help="compare only tensors whose name matches")
    p.add_argument("--model-explorer", metavar="OUT",
                   help="write per-tensor rel_rms as node data for Google's Model Explorer (drift on the graph)")
    p.add_argument("--top", type=int_at_least(1), default=20, metavar="N", help="rows in the printed table (default 20)")
    p.add_argument("--sort", choices=RANK_KEYS, default="rel_rms", help="ranking of the printed table")
    p.set_defaults(func=run)


def _input_flags(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    """(shapes, dims, ranges) from --shape/--dim/--range (shapes and dims: the OPT value of a triple)."""
    from trt_tui.core.numbers import require_finite
    from trt_tui.core.parity.inputs import parse_dim_flag, parse_shape_flag

    shapes = {name: triple[1] for name, triple in map(parse_shape_flag, args.shape)}
    dims = {name: triple[1] for name, triple in map(parse_dim_flag, args.dim)}
    ranges = {}
    for item in args.range:
        name, _, bounds = item.rpartition(":")
        try:
            lo, hi = (require_finite(v, "bound") for v in bounds.split(","))
        except ValueError:
            raise UserError(f"--range {item!r}: expected [INPUT:]LO,HI with finite numbers, e.g. x:-1,1") from None
        if lo > hi:
            raise UserError(f"--range {item!r}: LO must not exceed HI")
        ranges[name] = (lo, hi)
    return shapes, dims, ranges


def input_spec_from_args(args: argparse.Namespace):
    """The InputSpec of the inputs group's flags (for commands that share compare's flags: search, calibrate)."""
    from trt_tui.core.parity.constants import DEFAULT_SEED
    from trt_tui.core.parity.inputs import InputSpec

    if args.iterations < 1:
        raise UserError("--iterations must be at least 1")
    shapes, dims, ranges = _input_flags(args)
    seed = DEFAULT_SEED if args.seed is None else args.seed
    return InputSpec(seed=seed, iterations=args.iterations, shapes=shapes, dims=dims, ranges=ranges)


def pins_from_args(args: argparse.Namespace) -> list[str]:
    """Pinned node names from the pin group's flags; warnings (a rule that matched nothing) go to stderr."""
    from trt_tui.commands.args import has_pin_flags, pin_rules
    from trt_tui.core.graph import load_graph
    from trt_tui.core.pins import pin_nodes

    if not has_pin_flags(args):
        return []
    nodes, warnings = pin_nodes(load_graph(args.model), pin_rules(args), args.model)
    for w in warnings:
        print(f"trt-tui: warning: {w}", file=sys.stderr)
    return nodes


_input_spec = input_spec_from_args  # the names search and calibrate import
_pins = pins_from_args


def request_from_args(args: argparse.Namespace):
    """The ComparisonRequest these flags describe (core.parity.request: the same one the TUI builds)."""
    from trt_tui.commands.args import has_pin_flags, pin_rules
    from trt_tui.core.parity.engine import parse_size
    from trt_tui.core.parity.request import build_request

    shapes, dims, ranges = _input_flags(args)
    return build_request(
        args.model, preset=args.preset, candidate=args.candidate, reference=args.reference, precision=args.precision,
        pins=pin_rules(args) if has_pin_flags(args) else None, fuse_bias=not args.no_fuse_bias,
        outputs_only=args.outputs_only, inputs=args.inputs, seed=args.seed, iterations=args.iterations,
        shapes=shapes, dims=dims, ranges=ranges, atol=args.atol, rtol=args.rtol, stat=args.check_error_stat,
        quantile=args.error_quantile, infinities_equal=args.infinities_compare_equal, max_memory=parse_size(args.max_memory) if args.max_memory else None,
        quantiles=tuple(sorted({0.99, *args.quantile})), match=args.match, top_k=args.worst,
        map_weights=True,  # this process's index serves this comparison only
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    _check_targets(args, request)  # before minutes of inference, not after
    comparison = request.prepare()
    progress = err_console() if sys.stderr.isatty() else None
    for update in comparison.run():
        if progress is not None:
            progress.print(f"batch {update.batch + 1}/{update.batches}: {update.done}/{update.total} tensors", end="\r")
    result = comparison.result()
    if args.json:
        if args.json == "-":
            sys.stdout.write(jsonio.dumps(result.to_json()) + "\n")
        else:
            result.write_json(args.json, overwrite=args.force)
    if args.csv:
        result.write_csv(args.csv, overwrite=args.force)
    if args.model_explorer:
        from trt_tui.core.parity.model_explorer import write_node_data

        write_node_data(result, args.model_explorer, overwrite=args.force)
    if args.json != "-":
        _print(result, args.top, args.sort, request.index)
    if result.nothing_low is not None:  # the same precision on both sides checks nothing: neither a pass nor a fail
        print(f"trt-tui: error: {_nothing_low(result, request.index)}; this comparison checks nothing", file=sys.stderr)
        return 2
    return 0 if result.passed else 1


_LOW_DTYPES = {"float16": "fp16", "bfloat16": "bf16"}


def model_low_precision(index) -> str | None:
    """"fp16"/"bf16" when most float tensors of the model already hold that type (a converted model), else None."""
    from collections import Counter

    counts = Counter(t.dtype for t in (index.tensors[n] for n in index.tensors)
                     if t.dtype in ("float32", "float64", *_LOW_DTYPES))  # fmt: skip
    low = max(_LOW_DTYPES, key=lambda d: counts[d])
    return _LOW_DTYPES[low] if counts[low] > counts["float32"] + counts["float64"] else None


def _nothing_low(result: CompareResult, index) -> str:
    """Why the candidate ran nothing in low precision, in the words of what ran: a model that was already
    low precision (both sides ran the same fp16 model), else the rewrite's or the values' own account."""
    already = model_low_precision(index)
    if already is not None:
        return (f"the model is already {already}: the {result.precision or already} candidate ran it as it is, "
                f"{already} against {already} (compare the FP32 model it was converted from)")  # fmt: skip
    return f"FP32 against FP32, {result.nothing_low}"


def _print_kept_fp32(out, result: CompareResult) -> None:
    """The candidate's nodes kept FP32, grouped by reason (all of them are in --json)."""
    kept = result.kept_fp32
    if result.low_precision is not None:
        lp = result.low_precision
        out.print(f"low precision: {lp.low_nodes} node(s) compute in {lp.low}, {lp.low_tensors} tensor(s) hold {lp.low} "
                  f"values; {len(kept)} node(s) kept FP32")  # fmt: skip
    for line in kept_fp32_lines(kept):
        out.print(f"  kept FP32, {line}", markup=False)


def _check_targets(args: argparse.Namespace, request) -> None:
    """--json/--csv never overwrite a file without --force, and never one this comparison reads (the model,
    the preset, the candidate's or reference's file, the inputs), --force or not."""
    import os
    from pathlib import Path

    targets = [t for t in (args.json, args.csv, args.model_explorer) if t and t != "-"]
    absolute = [Path(t).absolute() for t in targets]
    if len(set(absolute)) < len(absolute):
        raise UserError("--json, --csv and --model-explorer name the same file", targets[0])
    sources = [request.model, args.preset, request.inputs if isinstance(request.inputs, Path) else None]  # a data file
    for spec in (args.candidate, args.reference):
        kind, sep, path = spec.partition(":")
        if sep and kind in ("onnx", "engine", "outputs", "trt"):
            sources.append(path.partition("#")[0])
    for target in targets:
        p = Path(target)
        if not p.exists():
            continue
        for source in filter(None, sources):
            try:
                same = os.path.samefile(p, source)
            except OSError:
                same = False
            if same:
                raise UserError("is an input of this comparison; write the results elsewhere", p)
        if not args.force:
            raise UserError("already exists; choose another name or pass --force", p)


def _fmt(v: float) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.3g}"


def _print(result: CompareResult, top: int, sort: str, index) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()  # piped: never folds a tensor name (see output.console)
    t = Table(title=f"{result.candidate} vs {result.reference}: worst {min(top, len(result.tensors))} of "
              f"{len(result.tensors)} tensors by {sort}", title_justify="left")  # fmt: skip
    for col in ("#", "tensor", "op", "max|d|", "p99|d|", "rel_rms", "cosine", "inf/nan r/c", "headroom", ""):
        if col == "tensor":
            t.add_column(col, overflow="fold", min_width=24, ratio=1)
        else:  # numbers never wrap: a folded 0.00081 reads as two numbers
            t.add_column(col, no_wrap=True, justify="left" if col in ("op", "") else "right")
    for d in result.ranked(sort, top):
        nonfinite = f"{d.nonfinite_ref}/{d.nonfinite_cand}"
        t.add_row(str(d.topo_index), escape(d.name), escape(d.op_type or "?"), _fmt(d.max_abs), _fmt(d.p99_abs), _fmt(d.rel_rms),
                  _fmt(d.cosine), nonfinite, _fmt(d.headroom), "ok" if d.passed else "[red]FAIL[/]")  # fmt: skip
    out.print(t)
    for w in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    for e in result.errors:
        out.print(f"[red]error:[/] {escape(e)}")
    for key, label in (("reference_only", "only the reference has"), ("candidate_only", "only the candidate has")):
        names = result.unpaired.get(key, [])
        if names:
            out.print(f"{label} {len(names)} tensor(s) (not compared): {escape(', '.join(names[:5]))}{' ...' if len(names) > 5 else ''}")
    weights = f" ({result.constants_skipped} computed from weights alone not compared)" if result.constants_skipped else ""
    out.print(f"compared {len(result.tensors)} tensors{weights} in {result.batches} batch(es), {result.iterations} iteration(s), "
              f"{result.elapsed_s:.2f} s: {len(result.failed)} outside tolerance")  # fmt: skip
    for label, d in (("first divergence", result.first_divergence), ("first non-finite", result.first_nonfinite)):
        if d is None:
            out.print(f"{label}: none")
        else:
            growth = f" ({_fmt(d.growth)}x its inputs')" if d.growth is not None else ""
            out.print(f"{label}: #{d.topo_index} {escape(d.name)} ({d.op_type} node {escape(str(d.node))}) rel_rms={_fmt(d.rel_rms)}"
                      f"{growth} max|d|={_fmt(d.max_abs)} inf/nan cand={d.nonfinite_cand}")  # fmt: skip
    if result.shape_divergence is not None:
        out.print(f"first shape divergence: {escape(result.shape_divergence.one_line())}")
    _print_kept_fp32(out, result)
    for t in result.targets:  # a preset's output targets decide the verdict (the tolerances above inform)
        measured = "not compared" if t["measured"] is None else _fmt(t["measured"])
        out.print(f"target {escape(t['target'])} on {escape(t['output'] or 'the graph outputs')}: {measured} "
                  + ("[green]met[/]" if t["passed"] else "[red]not met[/]"))  # fmt: skip
    by = " (the preset's output targets decide it; per-tensor tolerances above are for information)" if result.targets else ""
    if result.nothing_low is not None:
        out.print(f"verdict: [red]NOTHING CHECKED[/]: {escape(_nothing_low(result, index))}")
    else:
        out.print(("verdict: [green]PASS[/]" if result.passed else "verdict: [red]FAIL[/]") + by)

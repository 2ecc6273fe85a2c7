"""`trt-tui stream MODEL --contract FILE`: streaming parity, state fed back chunk after chunk.

Exit 0: the run meets the contract; 1: it does not (tolerance, invariant, pass rate or error growth);
2: bad input or a missing backend.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from trt_tui.core import jsonio
from trt_tui.commands.output import console, err_console, print_plain_table
from trt_tui.core.errors import UserError
from trt_tui.core.streaming.constants import MODES

if TYPE_CHECKING:
    from trt_tui.core.streaming.engine import ChunkResult, StreamReport
    from trt_tui.core.streaming.session import StreamSetup

# Every `trt-tui` start imports this module to declare its flags: the streaming engine (numpy, ONNX, ONNX
# Runtime) is imported inside the functions that use it, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="streaming parity: run chunk after chunk with the state fed back, check the contract",
        description="Run MODEL chunk after chunk as its contract says, on an FP32 reference and a candidate, "
        "feeding each side's state back (closed loop) or the reference's to both (functional). Per chunk and "
        "output: drift metrics on the valid region, invariants, pass/fail; over the run: pass rate, first "
        "failing chunk, error trend (least-squares slope and its significance), a plot. "
        "Exit 0: meets the contract; 1: does not; 2: bad input or missing backend.",
    )
    p.add_argument("model", help="ONNX model (FP32)")
    p.add_argument("--contract", required=True, metavar="FILE", help="streaming contract (see `trt-tui contract --help`)")
    p.add_argument("--preset", metavar="FILE", help="preset TOML: its precision and pinned nodes define the candidate")
    p.add_argument("--candidate", default="emulate", metavar="SPEC",
                   help="emulate (CPU emulation of --precision, default), mixed (the mixed-precision rewrite on "
                   "ONNX Runtime), onnx:PATH or engine:PATH (TensorRT)")  # fmt: skip
    p.add_argument("--precision", choices=("fp16", "bf16"), default=None, help="low precision of emulate/mixed (default: the preset's, else fp16)")
    p.add_argument("--pin", action="append", default=[], metavar="NODE", help="keep this node in FP32 (exact name)")
    p.add_argument("--pin-op", action="append", default=[], metavar="OP", help="keep every node of this op type in FP32")
    p.add_argument("--pin-match", action="append", default=[], metavar="REGEX", help="keep nodes whose name matches in FP32")
    p.add_argument("--no-fuse-bias", action="store_true", help="emulation: round MatMul outputs before a bias Add too")
    p.add_argument("--mode", choices=MODES, default="closed-loop",
                   help="closed-loop: each side feeds back its own state (default); functional: the reference's state to both")  # fmt: skip
    p.add_argument("--chunks", type=int, default=None, metavar="N", help="chunks to run (default: the contract's schedule)")
    p.add_argument("--inputs", metavar="FILE", help="stream inputs: .npz (arrays stacked per chunk, or NAME:i) or Polygraphy inputs JSON")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="refuse to start when the run's estimated memory exceeds SIZE (e.g. 2G); the machine's "
                   "available memory is always a limit")  # fmt: skip
    p.add_argument("--json", metavar="OUT", help="write the report as JSON ('-' for stdout)")
    p.add_argument("--png", metavar="OUT", help="write the error-against-chunk plot as a PNG")
    p.add_argument("--force", action="store_true", help="overwrite --json/--png files that exist")
    p.add_argument("--plot-output", metavar="NAME", help="output whose error is plotted (default: the first trend output)")
    p.set_defaults(func=run)


def _pins(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(pinned node names, warnings) from the --pin* flags (core.pins.pin_nodes: one behaviour everywhere)."""
    if not (args.pin or args.pin_op or args.pin_match):
        return [], []
    from trt_tui.core.graph import load_graph
    from trt_tui.core.pins import PinRules, pin_nodes

    rules = PinRules(op_types=tuple(args.pin_op), patterns=tuple(args.pin_match), names=tuple(args.pin))
    return pin_nodes(load_graph(args.model), rules, args.model)


def run(args: argparse.Namespace) -> int:
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.streaming.session import setup_stream, stream

    for target in (args.json, args.png):  # refuse before running, not after minutes of chunks
        if target and target != "-" and not args.force:
            from pathlib import Path

            if Path(target).exists():
                raise UserError("already exists; choose another name or pass --force", target)
    pins, pin_warnings = _pins(args)
    setup = setup_stream(
        args.model, args.contract, candidate=args.candidate, precision=args.precision, pins=pins,
        preset=args.preset, inputs_file=args.inputs, fuse_bias=not args.no_fuse_bias, max_memory=_max_memory(args),
    )  # fmt: skip
    setup.warnings[:0] = pin_warnings
    plot_output = _plot_output(setup, args.plot_output)
    quiet = args.json == "-"
    out = console()
    if not quiet:
        for w in setup.warnings:
            print(f"warning: {w}")
    progress = err_console() if sys.stderr.isatty() and not quiet else None
    n = setup.contract.schedule.chunks if args.chunks is None else args.chunks
    if args.chunks is None and setup.inputs.available_chunks is not None:
        n = min(n, setup.inputs.available_chunks)

    def on_chunk(r: ChunkResult) -> None:
        if progress is not None:
            e = r.errors.get(plot_output, float("nan"))
            mark = "ok" if r.passed else "FAIL"
            progress.print(f"chunk {r.index + 1}/{n}  {plot_output} {setup.contract.trend.metric} {e:.3g}  {mark}   ", end="\r")

    report = stream(setup, mode=args.mode, chunks=args.chunks, on_chunk=on_chunk)
    if progress is not None:
        progress.print(" " * 70, end="\r")
    payload = _json(setup, report)
    if args.json == "-":
        sys.stdout.write(jsonio.dumps(payload) + "\n")
    elif args.json:
        atomic_write(args.json, jsonio.dumps(payload, indent=1) + "\n", overwrite=args.force)
    if args.png:
        from trt_tui.core.streaming.png import write_png

        fit = report.trends.get(plot_output)
        series = report.series(plot_output)
        write_png(
            args.png, series, failed=[not r.drifts[plot_output].passed for r in report.results],
            limit=_limit(setup, plot_output), slope=fit.slope if fit else None, intercept=fit.intercept if fit else None,
            overwrite=args.force,
        )  # fmt: skip
    if not quiet:
        _print(setup, report, plot_output, args)
    return 0 if report.passed else 1


def _max_memory(args: argparse.Namespace) -> int | None:
    if not args.max_memory:
        return None
    from trt_tui.core.parity.engine import parse_size

    return parse_size(args.max_memory)


def _plot_output(setup: StreamSetup, wanted: str | None) -> str:
    c = setup.contract
    floats = [n for n, s in c.outputs.items() if s.dtype.startswith(("float", "bfloat"))]
    if wanted is not None:
        if wanted not in floats:
            raise UserError(f"--plot-output {wanted!r} is not a float output of the contract ({', '.join(floats)})", c.path)
        return wanted
    trend = c.trend_outputs()
    if trend:
        return trend[0]
    if floats:
        return floats[0]
    raise UserError("the contract has no float output to plot", c.path)


def _limit(setup: StreamSetup, output: str) -> float | None:
    """The tolerance line to draw: the atol when the plotted metric is the statistic the tolerance checks."""
    tol = setup.contract.tolerance_for(output)
    metric = setup.contract.trend.metric
    same = (tol.stat, metric) in (("max", "max_abs"), ("mean", "mean_abs"), ("median", "median_abs"))
    same = same or (tol.stat == "quantile" and abs(tol.quantile - 0.99) < 1e-12 and metric == "p99_abs")
    return tol.atol if same else None


def _json(setup: StreamSetup, report: StreamReport) -> dict:
    return {
        "model": str(setup.model),
        "contract": str(setup.contract.path) if setup.contract.path else None,
        "candidate": setup.candidate.label,
        "pinned_nodes": list(setup.candidate.pins),
        "preset": setup.preset_name,
        "reference": "onnxruntime fp32",
        **report.to_json(),
    }


def _fmt(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def _print(setup: StreamSetup, report: StreamReport, plot_output: str, args: argparse.Namespace) -> None:
    from rich.markup import escape

    from trt_tui.core.streaming.plot import chart

    out = console()
    c = setup.contract
    frames = f" of {'/'.join(map(str, c.schedule.frames))} frames" if c.schedule.frames else ""
    pins = f" ({len(setup.candidate.pins)} pinned)" if setup.candidate.pins else ""
    print(
        f"{setup.model.name}: {setup.candidate.label}{pins} vs onnxruntime fp32, "
        f"{report.mode}, {report.chunks_run} chunks{frames} in {report.seconds:.2f} s",
        flush=True,
    )
    metric = report.metric
    rows = []
    trend_lines = []
    for name, s in report.outputs.items():
        data = s.to_json(metric)
        p95 = data.get(f"{metric}_p95")
        trend = report.trends.get(name)
        verdict = "-"
        if trend is not None:
            judged = name in report.trend_outputs
            verdict = trend.verdict + ("" if judged else "*")
            trend_lines.append(f"  {name}{'' if judged else '*'}: {trend.short()}")
        rows.append([
            name + (" (masked)" if name in c.masks else ""),
            f"{s.failed}/{s.chunks}",
            "-" if s.first_failure is None else str(s.first_failure),
            _fmt(s.worst_max_abs),
            "-" if p95 is None else (p95 if isinstance(p95, str) else _fmt(p95)),
            verdict,
        ])  # fmt: skip
    sys.stdout.flush()
    print_plain_table(f"per output, over {report.chunks_run} chunks:", ["output", "failed", "first fail", "worst max_abs", f"{metric} p95", "trend"], rows)
    if trend_lines:
        print(f"trend of {metric} (least-squares slope, t-test; * = shown, not judged):")
        for line in trend_lines:
            print(line)
    inv = report.invariant_failures
    if not c.invariants:
        print("invariants: none in the contract")
    elif inv:
        print(f"invariants: {len(inv)} violation(s)")
        for i, f in inv[:10]:
            print(f"  chunk {i}: {f.side}: {f.check}: {f.detail}")
        if len(inv) > 10:
            print(f"  ... {len(inv) - 10} more (see --json)")
    else:
        print(f"invariants: all {len(c.invariants)} held on both sides at every chunk")
    for note in report.unchecked:
        if note not in setup.unchecked:  # those were printed before the run
            print(f"warning: {note}")
    sys.stdout.flush()
    series = report.series(plot_output)
    failed = [not r.drifts[plot_output].passed for r in report.results]
    for line in chart(series, failed=failed, limit=_limit(setup, plot_output), markup=True,
                      title=f"{plot_output}: {metric} against chunk"):  # fmt: skip
        out.print(line, highlight=False)
    if report.passed:
        out.print(f"[green]PASS[/]: {sum(r.passed for r in report.results)}/{report.chunks_run} chunks "
                  f"({report.pass_rate:.1%}, at least {report.min_pass_rate:.1%} required), no error growth",
                  soft_wrap=True)  # fmt: skip
    else:
        out.print("[red]FAIL[/]: " + escape("; ".join(report.reasons)), soft_wrap=True)

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
from trt_tui.commands.args import add_pin_args, pin_rules
from trt_tui.commands.output import console, err_console, print_plain_table, safe
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
    p.add_argument("--candidate", action="append", default=None, metavar="SPEC",
                   help="repeatable, all in one run: emulate[:fp16|bf16] (CPU emulation, default), mixed[:fp16|bf16] "
                   "(the mixed-precision rewrite on ONNX Runtime), cuda (the mixed rewrite on ONNX Runtime's CUDA EP), ort "
                   "(ONNX Runtime FP32: the baseline), onnx:PATH, "
                   "engine:PATH (TensorRT)")  # fmt: skip
    p.add_argument("--reference", default="onnxruntime", metavar="REF",
                   help="onnxruntime (FP32 on the model, default) or recorded:PATH (a recording from trt_tui.recorder "
                   "or --record: a folder of .npz with manifest.json, or JSON Lines); against a recording ONNX "
                   "Runtime FP32 always runs too, as the baseline")  # fmt: skip
    p.add_argument("--record", metavar="DIR", help="record the ONNX Runtime FP32 reference run there (a folder, or .jsonl)")
    p.add_argument("--precision", choices=("fp16", "bf16"), default=None, help="low precision of emulate/mixed (default: the preset's, else fp16)")
    add_pin_args(p)
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
    p.add_argument("--force", action="store_true", help="overwrite --json/--png/--record targets that exist")
    p.add_argument("--plot-output", metavar="NAME", help="output whose error is plotted (default: the first trend output)")
    p.set_defaults(func=run)


def _pins(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(pinned node names, warnings) from the --pin* flags (core.pins.pin_nodes: one behaviour everywhere)."""
    if not (args.pin or args.pin_op or args.pin_match):
        return [], []
    from trt_tui.core.graph import load_graph
    from trt_tui.core.pins import pin_nodes

    return pin_nodes(load_graph(args.model), pin_rules(args), args.model)


def run(args: argparse.Namespace) -> int:
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.streaming.session import default_chunks, setup_stream, stream_all

    for target in (args.json, args.png):  # refuse before running, not after minutes of chunks
        if target and target != "-" and not args.force:
            from pathlib import Path

            if Path(target).exists():
                raise UserError("already exists; choose another name or pass --force", target)
    pins, pin_warnings = _pins(args)
    setup = setup_stream(
        args.model, args.contract, candidates=args.candidate or ["emulate"], precision=args.precision,
        pins=pins, preset=args.preset, inputs_file=args.inputs, fuse_bias=not args.no_fuse_bias,
        max_memory=_max_memory(args), reference=args.reference, record=args.record, record_overwrite=args.force,
    )  # fmt: skip
    setup.warnings[:0] = pin_warnings
    plot_output = _plot_output(setup, args.plot_output)
    quiet = args.json == "-"
    if not quiet:
        for w in setup.warnings:
            print(f"warning: {w}")
    progress = err_console() if sys.stderr.isatty() and not quiet else None
    n = args.chunks or default_chunks(setup)
    first = setup.candidates[0].label

    def on_chunk(results: dict[str, ChunkResult]) -> None:
        if progress is not None:
            r = results[first]
            e = r.errors.get(plot_output, float("nan"))
            mark = "ok" if all(x.passed for x in results.values()) else "FAIL"
            progress.print(f"chunk {r.index + 1}/{n}  {plot_output} {setup.contract.trend.metric} {e:.3g}  {mark}   ", end="\r")

    reports = stream_all(setup, mode=args.mode, chunks=args.chunks, on_chunk=on_chunk)
    if progress is not None:
        progress.print(" " * 70, end="\r")
    answers = _answers(setup, reports)
    payload = _json(setup, reports, answers)
    if args.json == "-":
        sys.stdout.write(jsonio.dumps(payload) + "\n")
    elif args.json:
        atomic_write(args.json, jsonio.dumps(payload, indent=1) + "\n", overwrite=args.force)
    if args.png:
        from trt_tui.core.streaming.png import write_png

        report = reports[first]
        fit = report.trends.get(plot_output)
        metric = setup.contract.trend.metric
        limit, limit_label = _limit_label(setup, plot_output)
        write_png(
            args.png, report.series(plot_output), failed=[not r.drifts[plot_output].passed for r in report.results],
            limit=limit, slope=fit.slope if fit else None, intercept=fit.intercept if fit else None,
            title=f"{plot_output}: {metric} per chunk, {first} vs {setup.reference_label}, {report.mode}",
            x_label="chunk index", y_label=f"{metric} of {plot_output}", limit_label=limit_label,
            overwrite=args.force,
        )  # fmt: skip
    if not quiet:
        _print(setup, reports, answers, plot_output)
    return 0 if all(r.passed for r in reports.values()) else 1


def _answers(setup: StreamSetup, reports: dict[str, StreamReport]) -> list:
    """Each candidate against ONNX Runtime FP32 when it ran as a candidate (always, against a recording)."""
    from trt_tui.core.streaming.baseline import versus_baseline
    from trt_tui.core.streaming.session import ORT_LABEL

    if ORT_LABEL not in reports or len(reports) < 2:
        return []
    c = setup.contract
    return versus_baseline(reports, ORT_LABEL, c.trend_outputs(), c.trend.metric)


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


def _limit_label(setup: StreamSetup, output: str) -> tuple[float | None, str]:
    """The PNG's tolerance line and its label: the atol, saying which statistic it bounds when that is not
    the plotted metric (p95 of |d| under a max_abs curve: the curve may cross it on a passing chunk)."""
    tol = setup.contract.tolerance_for(output)
    same = _limit(setup, output)
    if same is not None:
        return same, "tolerance (atol)"
    if not tol.atol or not math.isfinite(tol.atol):
        return None, ""
    stat = f"p{tol.quantile * 100:g}" if tol.stat == "quantile" else tol.stat
    return tol.atol, f"atol (on {stat} |d|)"


def _json(setup: StreamSetup, reports: dict[str, StreamReport], answers: list) -> dict:
    first = setup.candidates[0]
    data = {
        "model": str(setup.model),
        "contract": str(setup.contract.path) if setup.contract.path else None,
        "candidate": first.label,
        "pinned_nodes": list(first.pins),
        "preset": setup.preset_name,
        "reference": setup.reference_label,
        "recorded_to": str(setup.record_to) if setup.record_to else None,
        **reports[first.label].to_json(),
    }
    if len(reports) > 1:
        data["candidates"] = [
            {"label": c.label, "pinned_nodes": list(c.pins), "low_precision": c.low_precision, **reports[c.label].to_json(chunks=False)}
            for c in setup.candidates
        ]  # fmt: skip
        data["versus_onnxruntime_fp32"] = [a.to_json() for a in answers]
    return data


def _fmt(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def _print(setup: StreamSetup, reports: dict[str, StreamReport], answers: list, plot_output: str) -> None:
    from rich.markup import escape

    from trt_tui.core.streaming.plot import chart
    from trt_tui.core.streaming.signoff import table_lines

    out = console()
    c = setup.contract
    first = reports[setup.candidates[0].label]
    frames = f" of {'/'.join(map(str, c.schedule.frames))} frames" if c.schedule.frames and setup.recording is None else ""
    names = ", ".join(f"{x.label}" + (f" ({len(x.pins)} pinned)" if x.pins else "") for x in setup.candidates)
    print(f"{setup.model.name}: {names} vs {setup.reference_label}, {first.mode}, {first.chunks_run} chunks{frames} "
          f"in {first.seconds:.2f} s", flush=True)  # fmt: skip
    metric = first.metric
    multi = len(reports) > 1
    rows = []
    for label, report in reports.items():
        for name, s in report.outputs.items():
            data = s.to_json(metric)
            p95 = data.get(f"{metric}_p95")
            trend = report.trends.get(name)
            slope, pval, verdict = "-", "-", "-"
            if trend is not None and trend.n >= 3:
                judged = name in report.trend_outputs
                verdict = trend.verdict + ("" if judged else "*")
                slope, pval = f"{trend.slope:+.2g}", f"{trend.p_value:.2g}"
            row = [
                name + (" (masked)" if name in c.masks else ""),
                f"{(s.chunks - s.failed) / s.chunks:.0%}" if s.chunks else "-",
                "-" if s.first_failure is None else str(s.first_failure),
                "-" if p95 is None else (p95 if isinstance(p95, str) else _fmt(p95)),
                _fmt(s.worst_max_abs),
                slope, pval, verdict,
            ]  # fmt: skip
            rows.append(([label] if multi else []) + row)
    head = ["output", "pass rate", "first fail", f"{metric} p95", "worst max_abs", "slope/chunk", "p-value", "trend"]
    sys.stdout.flush()
    print_plain_table(f"per {'candidate and ' if multi else ''}output, over {first.chunks_run} chunks "
                      "(trend: least-squares slope, t-test; * = shown, not judged):",
                      (["candidate"] if multi else []) + head, rows)  # fmt: skip
    if answers:
        print("against ONNX Runtime FP32 (the seeds' first question):")
        for a in answers:
            print(f"  {a.sentence()}")
    elif multi is False and setup.recording is None:
        pass  # the reference IS ONNX Runtime FP32: every error above is the distance from it
    inv = first.invariant_failures
    if not c.invariants:
        print("invariants: none in the contract")
    for label, report in reports.items():
        inv = report.invariant_failures
        who = f" ({label})" if multi else ""
        if not c.invariants:
            break
        if inv:
            print(f"invariants{who}: {len(inv)} violation(s)")
            for i, f in inv[:10]:
                print(f"  chunk {i}: {f.side}: {f.check}: {f.detail}")
            if len(inv) > 10:
                print(f"  ... {len(inv) - 10} more (see --json)")
        else:
            print(f"invariants{who}: all {len(c.invariants)} held on both sides at every chunk")
    printed = set(setup.unchecked)
    for report in reports.values():
        for note in report.unchecked:
            if note not in printed:  # the static ones were printed before the run
                printed.add(note)
                print(f"warning: {note}")
    if c.criteria or multi:
        for label, report in reports.items():
            print(f"sign-off{f' ({label})' if multi else ''}:")
            for line in table_lines(report.signoff):
                print(f"  {line}")
    sys.stdout.flush()
    for label, report in reports.items():
        failed = [not r.drifts[plot_output].passed for r in report.results]
        title = f"{safe(plot_output)}: {metric} against chunk" + (f", {safe(label)}" if multi else "")  # markup
        for line in chart(report.series(plot_output), failed=failed, limit=_limit(setup, plot_output), markup=True, title=title):
            out.print(line, highlight=False)
    for label, report in reports.items():
        who = f"{escape(label)}: " if multi else ""
        if report.passed:
            out.print(f"{who}[green]PASS[/]: {sum(r.passed for r in report.results)}/{report.chunks_run} chunks "
                      f"({report.pass_rate:.1%}, at least {report.min_pass_rate:.1%} required), no error growth",
                      soft_wrap=True)  # fmt: skip
        else:
            out.print(f"{who}[red]FAIL[/]: " + escape("; ".join(report.reasons)), soft_wrap=True)

"""`trt-tui search MODEL`: find the smallest set of FP32 pins that keeps the outputs within the target.

Exit 0: a passing set was found (Ctrl-C keeps the best one so far); 1: none within the budget, or the
target is out of reach (the FP32 model misses it itself, or even pinning everything does); 2: bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trt_tui.commands.args import add_infinities_arg
from trt_tui.commands.output import console, err_console
from trt_tui.core.errors import UserError
from trt_tui.core.parity.constants import DEFAULT_SEED

if TYPE_CHECKING:
    from trt_tui.core.search.result import SearchResult

# Every `trt-tui` start imports this module to declare its flags: the search (numpy, ONNX, ONNX Runtime) is
# imported inside the functions that use it, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="find the FP32 pins that keep the outputs within a target (CPU emulation)",
        description="Search the smallest set of nodes to keep in FP32 so that the fp16/bf16 CPU emulation meets "
        "the target on every sample: one FP32 reference run, a sensitivity pass (counted as one evaluation) whose "
        "error model predicts a set, then a few evaluations verifying and pruning it (each one emulated inference "
        "per sample). Exit 0: a passing set was found; 1: none "
        "within the budget or the target is out of reach; 2: bad input.",
    )
    p.add_argument("model", nargs="?", help="ONNX model (FP32); default: the --preset's model")
    p.add_argument("--preset", metavar="FILE", help="take precision, tolerances (when no --target), input shapes, seed and "
                   "input data from a preset (its own pins are not used); -o then writes a copy with the pins found")
    p.add_argument("--precision", choices=("fp16", "bf16"), default=None, help="low precision (default: the preset's, else fp16)")
    p.add_argument("--target", action="append", default=[], metavar="[OUTPUT:]METRIC<=VALUE",
                   help="e.g. logits:rel_rms<=1e-3, max_abs<=0.01 (every output), cosine>=0.9999; metrics rel_rms, "
                   "max_abs, p99_abs, cosine; repeatable (default: the preset's tolerances)")  # fmt: skip
    p.add_argument("--inputs", action="append", default=[], metavar="FILE|DIR",
                   help="samples: .npz, Polygraphy JSON (each iteration a sample) or a folder of them; repeatable. "
                   "With several samples the last quarter is held out and re-checked")  # fmt: skip
    p.add_argument("--samples", type=int, default=1, metavar="N", help="random samples when no --inputs (default 1)")
    p.add_argument("--seed", type=int, default=None, help=f"random input seed (default {DEFAULT_SEED}, as Polygraphy)")
    p.add_argument("--shape", action="append", default=[], metavar="INPUT:SHAPE", help="input shape, e.g. x:1x64x256")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="value of a symbolic dim, e.g. T=64")
    p.add_argument("--range", action="append", default=[], metavar="[INPUT:]LO,HI", help="random value range (default 0,1)")
    add_infinities_arg(p)
    p.add_argument("--contract", metavar="FILE", help="stateful model: the contract's closed-loop check is the criterion")
    p.add_argument("--chunks", type=int, default=None, metavar="N", help="chunks per closed-loop run (default: the contract's)")
    p.add_argument("--stream-inputs", metavar="FILE", help="stream inputs for --contract (as `trt-tui stream --inputs`)")
    p.add_argument("--budget", type=int, default=None, metavar="N", help="at most N evaluations (default: no limit)")
    p.add_argument("--minimal", action="store_true",
                   help="then try dropping each pin left, one at a time, keeping every drop that still passes: a "
                        "1-minimal set, often smaller, one more evaluation per pin")  # fmt: skip
    p.add_argument("--no-fuse-bias", action="store_true", help="emulation: round MatMul outputs before a bias Add too")
    p.add_argument("--json", metavar="OUT", help="write the result (schema trt_tui.search/1) as JSON ('-' for stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json or -o file (atomically)")
    p.add_argument("-o", "--output", metavar="PRESET",
                   help="write a preset with the pins found: its own name, and artefacts named after PRESET "
                   "(an existing file only with --force)")  # fmt: skip
    p.add_argument("--trt", type=int, choices=[10, 11], default=None,
                   help="TensorRT route of the -o preset, as `preset new --trt`: 10 (--layerPrecisions flags) or 11 "
                   "(strongly typed: the pins go into a mixed-precision ONNX); default: the --preset's, else 10")  # fmt: skip
    p.set_defaults(func=run)


def request_from_args(args: argparse.Namespace):
    """The ComparisonRequest of these flags (core.parity.request, as `compare` builds it): the model, the
    precision, the seed, the shapes (else the preset's first-profile OPT shapes) and the preset's input data
    and tolerances. `--samples` random samples are the request's iterations; --inputs files are passed on
    as the search's samples (several files or folders: not one request input)."""
    from trt_tui.commands.compare import _input_flags
    from trt_tui.core.parity.request import build_request

    shapes, dims, ranges = _input_flags(args)
    return build_request(args.model, preset=args.preset, precision=args.precision, fuse_bias=not args.no_fuse_bias,
                         seed=args.seed, iterations=args.samples, shapes=shapes, dims=dims, ranges=ranges,
                         infinities_equal=args.infinities_compare_equal)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from trt_tui.core.search.session import search_policy, search_request

    if args.json and args.json != "-" and Path(args.json).exists() and not args.force:
        raise UserError("already exists; pass --force to overwrite", args.json)
    if args.json and args.json != "-":
        from trt_tui.core.fileio import require_folder

        require_folder(Path(args.json))  # now, not after a search that may take minutes (its result then lost)
    if args.output and Path(args.output).exists() and not args.force:
        raise UserError("already exists; pass --force to overwrite", args.output)
    if args.trt is not None and not args.output:
        raise UserError("--trt chooses the route of the -o preset: give -o PRESET too")
    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    if args.contract and args.samples != 1:
        raise UserError("--samples applies without --contract; a --contract search runs one closed loop (--chunks sets its length)")
    request = request_from_args(args)
    preset = request.resolved.preset if request.resolved is not None else None  # -o writes a copy of it
    # --target, else the preset's output targets (a preset `search -o` wrote), else its tolerances
    targets = list(args.target) or ([] if args.contract else list(request.options.targets))
    if not targets and search_policy(request) is None and not args.contract:
        raise UserError("no target: give --target [OUTPUT:]METRIC<=VALUE (e.g. rel_rms<=1e-3) or a --preset with tolerances")
    job = search_request(request, targets=targets, samples=args.inputs, contract=args.contract, chunks=args.chunks,
                         stream_inputs=args.stream_inputs, budget=args.budget)  # fmt: skip
    for w in job.warnings:
        print(f"trt-tui: warning: {w}", file=sys.stderr)
    cancel = threading.Event()

    def on_sigint(signum, frame):  # first Ctrl-C: stop after this evaluation, keep the best set; second: abort
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\ntrt-tui: stopping after this evaluation (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    quiet = args.json == "-"
    try:
        with _ProgressBar(args.budget, enabled=sys.stderr.isatty() and not quiet) as bar:
            result = job.run(cancel=cancel, on_progress=bar.update, minimal=args.minimal)
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.output and result.passed:
        from trt_tui.core.search.preset_out import write_preset

        sample = job.evaluator.first_sample()  # its shapes become the profile of a new preset's dynamic inputs
        written, note = write_preset(result, args.output, base=preset, model=str(request.model), precision=request.precision,
                                     sample=sample, targets=[] if args.contract else targets, trt=args.trt,
                                     data=_search_data(args, request), overwrite=args.force,
                                     infinities_equal=request.options.tolerances.default.infinities_equal)  # fmt: skip
        print(f"wrote {written}", file=sys.stderr if quiet else sys.stdout)
        if note:
            print(f"trt-tui: note: {note}", file=sys.stderr)
    if args.json:
        if args.json == "-":
            from trt_tui.core import jsonio

            sys.stdout.write(jsonio.dumps(result.to_json()) + "\n")
        else:
            result.write_json(args.json, overwrite=args.force)  # a file that appeared meanwhile: kept
    if not quiet:
        _print(result)
    return result.exit_code


def _search_data(args: argparse.Namespace, request):
    """What the search ran on, for the -o preset: --inputs, else the preset's input file, else random samples."""
    from trt_tui.core.parity.inputs import InputSpec
    from trt_tui.core.search.preset_out import SearchData

    if args.contract:
        return SearchData(closed_loop=args.contract)
    if args.inputs:
        return SearchData(inputs=tuple(args.inputs))
    if not isinstance(request.inputs, InputSpec):
        return SearchData(inputs=(str(request.inputs),))
    return SearchData(samples=request.inputs.iterations, seed=request.inputs.seed, ranges=bool(args.range))


class _ProgressBar:
    """A rich progress bar on stderr: evaluations (of the budget), the phase, the best set so far."""

    def __init__(self, budget: int | None, enabled: bool) -> None:
        self.budget = budget
        self.enabled = enabled
        self.progress = None
        self.task = None

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("search"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                                     TimeElapsedColumn(), console=err_console(), transient=True)  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task("starting", total=self.budget)
        return self

    def update(self, p) -> None:
        if self.progress is None or p.last is None or p.last.cached:
            return
        best = "none yet" if p.best is None else f"{len(p.best)} pins"
        last = f"{len(p.last.pins)} pins {'pass' if p.last.passed else 'fail'}"
        self.progress.update(self.task, completed=p.evaluations, description=f"{p.phase}: {last} | best {best}")

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def _fmt(v, metric: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if metric == "cosine" and 0 < 1 - v:  # .3g shows 0.99998 as 1, next to a cosine>=0.99999 that it fails
        digits = next((p for p in range(3, 17) if float(f"{v:.{p}g}") != 1.0), 17)
        return f"{v:.{min(digits + 1, 17)}g}"
    return f"{v:.3g}"


def _targets(criterion: list[str]) -> list:
    """The criterion lines that are targets, parsed (a stream's contract criterion is a sentence instead)."""
    from trt_tui.core.tolerance import parse_target

    out = []
    for text in criterion:
        try:
            out.append(parse_target(text))
        except UserError:
            continue
    return out


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _print(result: SearchResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not out.is_terminal:  # piped: rich would assume 80 columns and fold the table
        from rich.console import Console

        out = Console(highlight=False, soft_wrap=False, width=max(out.width, 140))
    colour = "green" if result.passed else "red"
    out.print(f"[{colour}]{escape(result.message)}[/] ({result.status}) on {escape(result.model)}, {result.precision}")
    out.print(f"target: {escape('; '.join(result.criterion))}")
    if result.status == "no-pins-needed":
        out.print("pins: none needed")
    elif result.passed:
        carried = f" + {len(result.carriers)} data-movement nodes carrying their FP32 values" if result.carriers else ""
        out.print(f"pins: {len(result.pins) - len(result.carriers)} of {result.candidates} candidate nodes{carried} "
                  f"({result.float_nodes} low-precision nodes): {escape(result.rules.text())}")  # fmt: skip
        for name in result.rules.names[:20]:
            out.print(f"  {escape(name)}")
        if len(result.rules.names) > 20:
            out.print(f"  ... and {len(result.rules.names) - 20} more (see --json)")
        kept = len(result.pins) - len(result.carriers)
        if result.candidates and kept > result.candidates // 2:  # an engine that is mostly FP32: say so
            out.print(f"[yellow]note:[/] {kept} of {result.candidates} candidate nodes stay FP32: this engine would "
                      "run mostly in FP32. A looser --target, or --minimal for the smallest set, may be what you want")  # fmt: skip
    for reason in result.reasons:
        head, _, rest = reason.partition(": ")
        out.print(f"[yellow]fragile:[/] {escape(rest)}" if head == "fragile" else f"  {escape(reason)}")
    t = Table()  # its title on a line of its own: a table narrower than its title would wrap it
    # not searched (the FP32 model misses the target): its second run's errors, the only ones measured
    fp32_only = result.status == "fp32-fails"
    for col in ("output", "metric", *(("FP32 vs FP32",) if fp32_only else ("without", "with")), "target"):
        t.add_column(col, no_wrap=col != "output")
    targets = _targets(result.criterion)
    for name, row in result.outputs.items():
        without, with_ = row.get("without", {}), row.get("with", {})
        if fp32_only:
            without = with_ = row.get("fp32_vs_fp32", {})
        measured = with_ or without  # the pins' errors, else (nothing found) the unpinned ones
        keys = [k for k in measured if k not in ("nonfinite",)]
        shown = name
        for k in keys[:4]:
            # only the targeted metrics are judged: the others are shown for information
            mine = [g for g in targets if g.metric == k and g.output in (None, name)]
            verdict = ", ".join(f"{g.bound} " + ("[green]met[/]" if g.met_by(_num(measured.get(k))) else "[red]FAIL[/]")
                                for g in mine)  # fmt: skip
            values = (_fmt(measured.get(k), k),) if fp32_only else (_fmt(without.get(k), k), _fmt(with_.get(k), k))
            t.add_row(escape(shown), k, *values, verdict)
            shown = ""
    if result.outputs and t.row_count:
        out.print("outputs: the FP32 model against a second FP32 run" if fp32_only
                  else "outputs: error without pins / with the pins found")  # fmt: skip
        out.print(t)
    if result.held_out:
        h = result.held_out
        out.print(f"held-out samples: {h['samples']}, {'passed' if h['passed'] else 'failed'}"
                  f"{' (folded into the search, which ran again)' if h.get('folded_in') else ''}")  # fmt: skip
    plural = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"  # noqa: E731
    out.print(f"{plural(result.evaluations, 'evaluation')} ({plural(result.inferences, 'inference')}) in {result.elapsed_s:.2f} s"
              + (f", budget {result.budget}" if result.budget else ""))  # fmt: skip

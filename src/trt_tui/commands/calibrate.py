"""`trt-tui calibrate MODEL`: how the CPU preview's drift compares with real GPU kernels' on this model.

Needs onnxruntime-gpu and a GPU: it runs the CPU emulation and the `cuda` candidate on the same inputs and
prints, per op type and per graph output, the ratio preview rel_rms / GPU rel_rms (median, p10, p90).
"""

from __future__ import annotations

import argparse
import sys

from trt_tui.commands.args import int_at_least, seed_int
from trt_tui.commands.output import console
from trt_tui.core import jsonio
from trt_tui.core.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="how far to trust the CPU preview on a model: its drift vs the CUDA EP's (needs onnxruntime-gpu)",
        description="Run the CPU fp16/bf16 emulation and the mixed-precision ONNX on ONNX Runtime's CUDA EP (real "
        "GPU kernels, FP32 reference on the CUDA EP with TF32 off) on the same inputs, and print the ratio of the "
        "preview's per-tensor rel_rms to the GPU's, per op type and per output. 1.0 means the preview is exact; "
        "below 1 it underestimates.",
    )
    p.add_argument("model", help="ONNX model (FP32)")
    p.add_argument("--precision", choices=("fp16", "bf16"), default="fp16", help="low precision (default fp16)")
    p.add_argument("--pin", action="append", default=[], metavar="NODE", help="keep this node in FP32 (exact name)")
    p.add_argument("--pin-op", action="append", default=[], metavar="OP", help="keep every node of this op type in FP32")
    p.add_argument("--pin-match", action="append", default=[], metavar="REGEX", help="keep nodes whose name matches in FP32")
    p.add_argument("--inputs", metavar="FILE", help="input data: .npz or Polygraphy JSON")
    p.add_argument("--seed", type=seed_int, default=1, metavar="N", help="random input seed (default 1)")
    p.add_argument("--iterations", type=int_at_least(1), default=1, metavar="N", help="random input iterations (default 1)")
    p.add_argument("--shape", action="append", default=[], metavar="INPUT:SHAPE", help="input shape, e.g. x:1x64x256")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="value of a symbolic dim, e.g. T=64")
    p.add_argument("--range", action="append", default=[], metavar="[INPUT:]LO,HI", help="random value range (default 0,1)")
    p.add_argument("--max-memory", default=None, metavar="SIZE", help="tensor data held at once, both sides")
    p.add_argument("--json", metavar="OUT", help="write the calibration as JSON ('-' for stdout)")
    p.add_argument("--force", action="store_true", help="overwrite the --json file if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trt_tui.commands.compare import _input_spec, _pins
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.parity.calibrate import calibrate
    from trt_tui.core.parity.engine import CompareOptions, parse_size

    options = CompareOptions(max_memory=parse_size(args.max_memory)) if args.max_memory else CompareOptions()
    result = calibrate(args.model, precision=args.precision, pins=_pins(args),
                       inputs=args.inputs if args.inputs else _input_spec(args), options=options)  # fmt: skip
    payload = result.to_json()
    if args.json == "-":
        sys.stdout.write(jsonio.dumps(payload) + "\n")
        return 0
    if args.json:
        atomic_write(args.json, jsonio.dumps(payload, indent=1) + "\n", overwrite=args.force)
    _print(payload)
    return 0


def _print(payload: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    overall = payload["overall"]
    if overall is None:
        raise UserError("no tensor drifted measurably on the GPU: nothing to calibrate against", payload["model"])
    t = Table(title=f"preview / GPU rel_rms per op type ({payload['precision']}; 1.0 = exact, < 1 = preview reads low)")
    for col in ("op type", "tensors", "median", "p10", "p90", "in [0.8,1.25]"):
        t.add_column(col, justify="left" if col == "op type" else "right")
    for op, s in payload["op_types"].items():
        t.add_row(escape(op), str(s["count"]), f"{s['median']:.3f}", f"{s['p10']:.3f}", f"{s['p90']:.3f}",
                  f"{s['within_0.8_1.25']:.0%}")  # fmt: skip
    t.add_row("all", str(overall["count"]), f"{overall['median']:.3f}", f"{overall['p10']:.3f}", f"{overall['p90']:.3f}",
              f"{overall['within_0.8_1.25']:.0%}", style="bold")  # fmt: skip
    out.print(t)
    o = Table(title="graph outputs")
    for col in ("output", "preview rel_rms", "GPU rel_rms", "ratio"):
        o.add_column(col, justify="left" if col == "output" else "right")
    for name, row in payload["outputs"].items():
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        o.add_row(escape(name), f"{row['preview_rel_rms']:.3g}", f"{row['gpu_rel_rms']:.3g}", ratio)
    out.print(o)
    if payload["skipped"]:
        out.print(f"{payload['skipped']} tensor(s) left out: no measurable GPU drift (ran in FP32 there, or exact)")
    for w in payload["warnings"]:
        out.print(f"warning: {escape(w)}", markup=True)

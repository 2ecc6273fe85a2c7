"""`trt-tui contract init|validate`: write a streaming contract from a model, check one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.commands.output import print_json

# Every `trt-tui` start imports this module to declare its flags: the model index (ONNX) and the contract
# code are imported inside the functions that use them, so that the CLI starts fast.

SCHEMA_HELP = """\
A contract (JSON, "format": "trt-tui-contract", "version": 1) says how a stateful model runs chunk after
chunk. Sections (all but inputs/outputs optional; keys starting with "_" are comments):
  dims        {"B": 1}: values of named dims
  inputs      {NAME: {"dtype", "shape": [dims], "feed": FEED}}   FEED kinds: random (low, high),
              normal (mean, std), frames (the chunk's frame count, for length inputs), constant (value)
  outputs     {NAME: {"dtype", "shape"}}
  profiles    [{"name", "shapes": {INPUT: {"min", "opt", "max"}}}]
  state       [{"output", "input", "init": {"kind": zeros|constant|file, "value"|"path"}}]
  schedule    {"chunks": 50, "frames": [592, 584] (last repeats), "time_axes": {INPUT: axis}, "seed": 0}
  tolerances  {"default": TOL, "outputs": {NAME: TOL}}   TOL: {"atol", "rtol", "stat": max|mean|median|
              elemwise|p95|p99|quantile, "quantile"}
  masks       {OUTPUT: {"axis", "length": {"output": NAME} | {"value": N}, "keep": first|last, "batch_axis"}}
  invariants  [{"output", "check": equals (value) | monotonic | range (min, max)}]
  trend       {"metric": max_abs|mean_abs|median_abs|p99_abs|rel_rms, "outputs", "alpha", "min_growth",
              "fail_on_growth"}
  acceptance  {"min_pass_rate": 1.0}
Entries written by `contract init` carry "guessed": "why" until reviewed. Full reference: contracts/README.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "contract",
        help="write or check a streaming contract (state pairs, chunk schedule, invariants, tolerances)",
        description="Streaming contracts: how a stateful model is fed chunk after chunk, and what must hold.",
        epilog=SCHEMA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    csub = p.add_subparsers(dest="contract_command", metavar="ACTION", required=True)
    init = csub.add_parser(
        "init",
        help="write a contract guessed from a model (state pairs from names and shapes, marked as guessed)",
        description="Write a first contract for MODEL: inputs/outputs copied, state pairs guessed from names "
        "(X_next, X_out, next_X -> X) and shapes, feeds and the time axis guessed. Guesses carry \"guessed\".",
        epilog=SCHEMA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("model", help="ONNX model file")
    init.add_argument("-o", "--output", required=True, metavar="FILE", help="contract file to write (JSON)")
    init.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    init.set_defaults(func=run_init)
    val = csub.add_parser(
        "validate",
        help="check a contract (and, with --model, that it fits the model)",
        description="Check a contract: every problem is listed as FILE: key.path: message (exit 2 if any).",
        epilog=SCHEMA_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    val.add_argument("contract", help="contract file (JSON)")
    val.add_argument("--model", help="ONNX model the contract is for: check names, dtypes and shapes against it")
    val.add_argument("--json", action="store_true", help="print one JSON object {valid, problems, warnings}")
    val.set_defaults(func=run_validate)


def run_init(args: argparse.Namespace) -> int:
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.graph import load_graph
    from trt_tui.core.streaming.contract_model import contract_from_model

    index = load_graph(args.model)
    doc = contract_from_model(index, Path(args.model).name)
    path = atomic_write(args.output, jsonio.dumps(doc, indent=2) + "\n", overwrite=args.force)
    print(f"wrote {path}: {len(doc['inputs'])} inputs, {len(doc['outputs'])} outputs, {len(doc['state'])} state pair(s)")
    for s in doc["state"]:
        print(f"  state {s['output']} -> {s['input']}  (guessed: {s['guessed']})")
    for name, m in doc["masks"].items():
        print(f"  mask {name}: axis {m['axis']}, the {m['keep']} {m['length']['output']} entries  (guessed: {m['guessed']})")
    for note in doc["_review"]:
        print(f"  review: {note}")
    print(f"then: trt-tui contract validate {path} --model {args.model}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from trt_tui.core.graph import load_graph
    from trt_tui.core.streaming.contract import ContractError, load_contract
    from trt_tui.core.streaming.contract_model import check_against_model

    problems: list[str] = []
    warnings: list[str] = []
    contract = None
    try:
        contract = load_contract(args.contract)
        warnings += contract.warnings
    except ContractError as exc:
        problems += exc.problems
    if args.model:
        index = load_graph(args.model)
        if contract is not None:
            p, w = check_against_model(contract, index)
            problems += p
            warnings += w
    if args.json:
        print_json({"contract": args.contract, "valid": not problems, "problems": problems, "warnings": warnings})
        return 2 if problems else 0
    for w in warnings:
        print(f"{args.contract}: warning: {w}", file=sys.stderr)
    if problems:
        for p in problems:
            print(f"{args.contract}: {p}", file=sys.stderr)
        print(f"{args.contract}: {len(problems)} problem(s); not a valid contract", file=sys.stderr)
        return 2
    c = contract
    extra = f" against {args.model}" if args.model else ""
    print(
        f"{args.contract}: valid{extra}: {len(c.inputs)} inputs, {len(c.outputs)} outputs, {len(c.state)} state "
        f"pair(s), {len(c.invariants)} invariant(s), {len(c.masks)} mask(s), {c.schedule.chunks} chunks"
        + (f" of {list(c.schedule.frames)} frames" if c.schedule.frames else "")
    )
    return 0

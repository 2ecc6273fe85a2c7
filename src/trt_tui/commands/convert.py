"""`trt-tui convert MODEL`: write the mixed-precision ONNX (TensorRT 11 route) or the CPU drift emulation."""

from __future__ import annotations

import argparse
from pathlib import Path

from trt_tui.commands.args import add_pin_args, non_negative_float, pin_rules
from trt_tui.commands.output import KEPT_SHOWN, kept_fp32_lines, print_json
from trt_tui.core.errors import UserError

# Every `trt-tui` start imports this module to declare its flags: the model index (ONNX) and the rewrites are
# imported inside the functions that use them, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="write a mixed-precision FP16/BF16 ONNX with pinned FP32 nodes, or its CPU drift emulation",
        description="Rewrite an FP32 ONNX model so that every non-pinned float node computes in fp16/bf16 and "
        "pinned nodes in FP32, with Cast nodes at the boundaries (what TensorRT 11 builds from). With "
        "--emulate, write instead an FP32 model that rounds every low-precision tensor through fp16/bf16 "
        "under its original name, to preview drift on ONNX Runtime CPU.",
    )
    p.add_argument("model", nargs="?", help="ONNX model file (default with --preset: the preset's model)")
    p.add_argument("--preset", metavar="FILE", help="take precision, pins and keep_io_types from a preset TOML")
    p.add_argument("--precision", choices=["fp16", "bf16"], help="the low precision")
    add_pin_args(p, exclude=True)
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where to write the rewritten model")
    p.add_argument("--emulate", action="store_true", help="write the FP32 storage-rounding emulation instead")
    p.add_argument(
        "--keep-io-types",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep float graph inputs/outputs FP32 (default: the preset's keep_io_types, else off, as AutoCast)",
    )
    p.add_argument("--init-max", type=non_negative_float, default=65504.0, metavar="X", help="constants beyond |X| keep their consumers FP32 (default 65504)")
    p.add_argument("--no-fuse-bias", action="store_true", help="--emulate: also round MatMul outputs before their bias Add")
    p.add_argument(
        "--round-recurrent-state",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--emulate: round the running state of GRU/LSTM/RNN nodes at every step, as fp16/bf16 kernels keep it "
        "(default; --no-round-recurrent-state rounds their outputs only)",
    )
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="validate what is written (onnx.checker, full, and an ONNX Runtime load) before it takes OUT.onnx's "
        "name; an invalid result is exit 2 and leaves no file (default on; --no-check skips it for huge models)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT.onnx if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="list every node kept FP32 (default: a few per reason)")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    """(model path, low, pinned node names, keep_io_types, warnings) from the preset or the flags."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.pins import pin_nodes

    pin_flags = args.pin_op or args.pin_match or args.pin or args.pin_exclude
    if args.preset:
        if args.precision or pin_flags:
            raise UserError("--preset takes precision and pins from the preset; drop --precision/--pin* or --preset")
        from trt_tui.core.preset import load_preset, resolve_preset

        preset = load_preset(args.preset)
        model = Path(args.model) if args.model else preset.model_path
        index = load_graph(model)
        resolved = resolve_preset(preset, index)
        if resolved.precision not in ("fp16", "bf16"):
            raise UserError(f"preset precision is {resolved.precision}: there is nothing to convert", args.preset)
        keep_io = resolved.keep_io_types if args.keep_io_types is None else args.keep_io_types
        warnings = [w.one_line() for w in resolved.warnings]
        return model, resolved.precision, list(resolved.pinned_nodes), keep_io, warnings
    if not args.model or not args.precision:
        raise UserError("convert needs MODEL and --precision fp16|bf16 (or --preset FILE)")
    rules = pin_rules(args)
    pins, warnings = pin_nodes(load_graph(args.model), rules, args.model)  # an absent op type only warns
    return Path(args.model), args.precision, pins, bool(args.keep_io_types), warnings


def run(args: argparse.Namespace) -> int:
    from trt_tui.core.precision import emulate, to_mixed_precision
    from trt_tui.core.precision.writing import StagedModel, validate_written, write_model

    out = Path(args.output)
    if out.exists() and not out.is_file():  # a folder given as OUT.onnx: said now, not after the rewrite
        raise UserError("is not a regular file; refusing to replace it (give the .onnx file to write)", out)
    if (out.exists() or out.with_name(out.name + ".data").exists()) and not args.force:
        raise UserError("already exists; pass --force to overwrite", out if out.exists() else out.with_name(out.name + ".data"))
    model, low, pins, keep_io, warnings = _settings(args)
    if args.emulate:
        result = emulate(
            model, low, pins, fuse_bias=not args.no_fuse_bias, keep_io_types=keep_io, init_max=args.init_max,
            round_recurrent_state=args.round_recurrent_state,
        )
    else:
        result = to_mixed_precision(model, low, pins, keep_io_types=keep_io, init_max=args.init_max)
    # written next to OUT.onnx under a temporary name, validated, then renamed: never an invalid OUT.onnx
    with StagedModel(out, overwrite=args.force) as staged:
        write_model(result.model, staged.path, result.weights)
        note = validate_written(staged.path, out, source=model) if args.check else None
        staged.commit()
    warnings += result.shape_fixes
    if note:
        warnings.append(note)
    summary = result.low_precision
    if summary.ran_nothing_low:
        warnings.append(summary.one_line())

    payload = {"model": str(model), "output": str(out), "mode": "emulate" if args.emulate else "mixed", "keep_io_types": keep_io}
    payload |= result.to_json()
    payload["checked"] = bool(args.check)
    payload["warnings"] = warnings
    if args.json:
        print_json(payload)
        return 0
    lines = []
    if args.emulate:
        lines.append(
            f"wrote {out}: {low} drift emulation (FP32 graph), {len(result.rounded_tensors)} tensors rounded through "
            f"{len(result.cast_pairs)} Cast pairs, {len(pins)} node(s) pinned FP32, {len(result.fused_matmuls)} MatMul+bias fused"
        )
    else:
        lines.append(
            f"wrote {out}: {low} mixed precision, {result.low_nodes} node(s) in {low}, {len(pins)} pinned FP32, "
            f"{len(result.casts_inserted)} Cast(s) inserted, IO types {'kept' if keep_io else 'converted'}"
        )
    if args.emulate and (result.recurrent_per_step or result.recurrent_outputs_only):
        lines.append(f"  recurrent state rounded at every step: {len(result.recurrent_per_step)} node(s)")
        lines += [f"    outputs only: {r.node} ({r.op_type}): {r.reason}" for r in result.recurrent_outputs_only]
    if summary.opset:
        lines.append(f"  opset upgraded {summary.opset[0]} -> {summary.opset[1]} ({low} needs it)")
    kept = [k for k in summary.kept_fp32 if k.node not in set(pins)]  # pins are counted above
    lines.append(f"  kept FP32: {len(kept)} node(s)" + (":" if kept else ""))
    lines += [f"    {line}" for line in kept_fp32_lines(kept, verbose=args.verbose)]
    if not args.verbose and any(sum(k.reason == r for k in kept) > KEPT_SHOWN for r in {k.reason for k in kept}):
        lines.append("    (--verbose lists every node, --json too)")
    lines.append("  validated: onnx.checker + ONNX Runtime load" if args.check else "  not validated (--no-check)")
    from trt_tui.core.weights import nbytes
    from trt_tui.core.precision.writing import VALIDATE_OPTIMISED_MAX_BYTES

    if args.check and sum(nbytes(t) for t in result.model.graph.initializer) > VALIDATE_OPTIMISED_MAX_BYTES:
        lines[-1] += f" (optimisations off: weights above {VALIDATE_OPTIMISED_MAX_BYTES >> 20} MB)"
    lines += [f"warning: {w}" for w in warnings]
    print("\n".join(lines))  # plain print: these lines are grep'ed, and rich would wrap long node names
    return 0

"""`trt-tui preset new|validate|show|diff|export`: create, check, inspect, compare and export presets.

Bad input (a missing or malformed file) is a one-line error with exit code 2. Validation findings are not
bad input: `validate` lists them all and exits 1 when any is an error; `diff` exits 1 when presets differ.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trt_tui.commands.args import add_input_args, add_pin_args, add_tolerance_args, pin_rules
from trt_tui.commands.output import print_json
from trt_tui.core.errors import UserError
from trt_tui.core.preset.constants import FORMATS

if TYPE_CHECKING:
    from trt_tui.core.preset import Problem

# Every `trt-tui` start imports this module to declare its flags: the preset schema, resolution, exporters and
# the model index (ONNX) are imported inside the functions that use them, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preset",
        help="create, validate, show, compare and export build presets (TOML)",
        description="Presets hold a whole build: precision, FP32 pins, IO formats, profiles, builder settings "
        "and comparison tolerances. Export them as trtexec (TensorRT 10 or 11), a build script, polygraphy, "
        "AutoCast or JSON.",
    )
    p.set_defaults(func=lambda _args: p.print_help() or 2)
    ps = p.add_subparsers(dest="preset_command", metavar="SUBCOMMAND")

    new = ps.add_parser("new", help="write a new preset for a model", description="Write a new preset for MODEL.")
    new.add_argument("model", help="ONNX model")
    new.add_argument("-o", "--output", required=True, metavar="FILE", help="preset file to write (never overwritten without --force)")
    new.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16")
    add_pin_args(new)
    add_input_args(new, profile=True)
    add_tolerance_args(new, quantile=False)
    new.add_argument("--trt", type=int, choices=[10, 11], default=10, help="target TensorRT major version")
    new.add_argument("--batch", type=int, default=1, metavar="N", help="OPT/MAX batch of the derived profile (MIN is 1)")
    new.add_argument("--force-low-precision", action="store_true", help="TensorRT 10: force every other layer to the low precision (*:fp16)")
    new.add_argument("--name", help="preset name (default: the file name)")
    new.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    new.set_defaults(func=run_new)

    val = ps.add_parser("validate", help="check a preset against its model", description="List every problem of a preset.")
    val.add_argument("preset", help="preset TOML file")
    val.add_argument("--for", dest="for_export", choices=FORMATS, default="trtexec",
                     help="also check what this export format needs (default trtexec, the preset's own command line; "
                     "json checks only what a Python API build needs)")
    val.add_argument("--json", action="store_true", help="print one JSON object")
    val.set_defaults(func=run_validate)

    show = ps.add_parser("show", help="show a preset resolved against its model", description="Show the resolved preset.")
    show.add_argument("preset", help="preset TOML file")
    show.add_argument("--json", action="store_true", help="print the resolved preset as JSON")
    show.set_defaults(func=run_show)

    diff = ps.add_parser("diff", help="compare two presets", description="Compare two presets setting by setting, and their pinned nodes.")
    diff.add_argument("a", help="first preset")
    diff.add_argument("b", help="second preset")
    diff.add_argument("--json", action="store_true", help="print one JSON object")
    diff.set_defaults(func=run_diff)

    exp = ps.add_parser("export", help="export a preset as a command line or script", description="Export a preset.")
    exp.add_argument("preset", help="preset TOML file")
    exp.add_argument("--format", "-f", required=True, choices=FORMATS)
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout (a script's paths are then relative to it)")
    exp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    exp.add_argument("--reference-data", action="store_true",
                     help="trtexec, TensorRT 11.1+ presets: write the inputs and the FP32 reference outputs (ONNX Runtime) "
                          "as raw files next to FILE and add --loadInputs/--loadRefOutputs/--accuracyAlgorithm/"
                          "--accuracyThreshold from the preset's tolerance, so trtexec checks accuracy itself")  # fmt: skip
    exp.set_defaults(func=run_export)


def _warn(problems: list[Problem], source: str) -> None:
    for p in problems:
        print(f"trt-tui: {source}: {p.one_line()}", file=sys.stderr)


# ---- new ----------------------------------------------------------------------------------------------------
def run_new(args: argparse.Namespace) -> int:
    from trt_tui.core.graph import load_graph
    from trt_tui.core.preset import PrecisionSettings, Preset, save_preset, validate_preset
    from trt_tui.core.preset.model import ComparisonDefaults
    from trt_tui.core.preset.analyse import raise_for_errors

    model = Path(args.model).absolute()
    target = Path(args.output).absolute()
    if target.exists() and not args.force:
        raise UserError("already exists; choose another name or pass --force", target)
    index = load_graph(model)
    from trt_tui.core.preset.toml_io import MAX_DIM

    if not 1 <= args.batch <= MAX_DIM:  # the file would be written, then refused by every reader
        raise UserError(f"--batch must be 1 to {MAX_DIM}, not {args.batch}")
    if args.trt != 10 and args.force_low_precision:
        raise UserError("--force-low-precision is a TensorRT 10 option (TensorRT 11 is strongly typed)")
    precision = PrecisionSettings.for_route(args.precision, args.trt, force_low_precision=args.force_low_precision)
    # relative to the preset file when both live under one top-level directory, so the pair can move together
    shared = os.path.commonpath([model, target.parent])
    model_text = model.as_posix() if Path(shared) == Path(shared).parent else Path(os.path.relpath(model, target.parent)).as_posix()
    preset = Preset(
        comparison=ComparisonDefaults(default=_new_tolerance(args), infinities_compare_equal=bool(args.infinities_compare_equal)),
        model=model_text,
        name=args.name or target.stem,
        trt=args.trt,
        precision=precision,
        pins=pin_rules(args),
        profiles=[_new_profile(args, index)] if any(t.dynamic_axes for t in index.inputs) or args.dim or args.shape else [],
        path=target,
    )
    problems = validate_preset(preset, index)
    # pins come straight from this command line: refuse to write a preset with typos in them
    raise_for_errors(preset, [p for p in problems if p.key_path.startswith("pins") or p.key_path == "model"])
    save_preset(preset, target, overwrite=args.force)
    print(f"wrote {target}")
    if problems:
        _warn(problems, str(target))
        if any(p.is_error for p in problems):
            print(f"trt-tui: edit {target} and run `trt-tui preset validate {args.output}`", file=sys.stderr)
            return 1
    return 0


def _new_tolerance(args: argparse.Namespace):
    """[comparison.default] of a new preset: the precision's default (README, Tolerances), flags override."""
    from trt_tui.core.parity.metrics import Tolerance, default_tolerance

    base = default_tolerance(args.precision)
    try:
        return Tolerance(atol=base.atol if args.atol is None else args.atol, rtol=base.rtol if args.rtol is None else args.rtol,
                         stat=args.check_error_stat or base.stat)  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _new_profile(args: argparse.Namespace, index):
    """The derived profile of a new preset: --batch for the batch dim, --dim values for named dims, --shape for
    whole inputs; an unnamed (?) axis given as --dim INPUT:AXIS=... becomes explicit shapes of that input
    (a preset names dims, and that one has no name)."""
    from trt_tui.core.parity.inputs import parse_dim_flag, parse_shape_flag
    from trt_tui.core.preset import Profile
    from trt_tui.core.preset.shapes import detect_batch_dim

    dims = dict(map(parse_dim_flag, args.dim))
    shapes = {name: {"min": t[0], "opt": t[1], "max": t[2]} for name, t in map(parse_shape_flag, args.shape)}
    by_name = {t.name: t for t in index.inputs}
    axis_keys = [k for k in dims if ":" in k]
    for key in axis_keys:
        name, _, axis_text = key.rpartition(":")
        t = by_name.get(name)
        if t is None or t.shape is None or not axis_text.isdigit() or int(axis_text) >= len(t.shape):
            raise UserError(f"--dim {key}: no input {name!r} with an axis {axis_text}", index.path)
        if isinstance(t.shape[int(axis_text)], (int, str)):
            raise UserError(f"--dim {key}: axis {axis_text} of {name!r} is {t.shape[int(axis_text)]!r}, not an unnamed dynamic axis", index.path)
    batch_dim = detect_batch_dim(index.inputs)
    for name in {k.rpartition(":")[0] for k in axis_keys} - set(shapes):
        t = by_name[name]
        triple: list[list[int]] = [[], [], []]
        for axis, d in enumerate(t.shape):
            if isinstance(d, int):
                values = (d, d, d)
            elif isinstance(d, str) and d in dims:
                values = dims[d]
            elif isinstance(d, str) and d == batch_dim:
                values = (1, args.batch, args.batch)
            elif f"{name}:{axis}" in dims:
                values = dims[f"{name}:{axis}"]
            else:
                raise UserError(f"input {name!r}: give axis {axis} ({d or '?'}) a value too (--dim {d or f'{name}:{axis}'}=...)", index.path)
            for i in range(3):
                triple[i].append(values[i])
        shapes[name] = {"min": tuple(triple[0]), "opt": tuple(triple[1]), "max": tuple(triple[2])}
    named = {k: v for k, v in dims.items() if ":" not in k}
    return Profile(name="default", batch=args.batch, dims=named, shapes=shapes)


# ---- validate -------------------------------------------------------------------------------------------------
def run_validate(args: argparse.Namespace) -> int:
    from trt_tui.core.preset import load_preset, validate_preset

    preset = load_preset(args.preset)
    problems = validate_preset(preset, for_export=args.for_export)
    n_err = sum(p.is_error for p in problems)
    if args.json:
        print_json({"preset": str(preset.path), "ok": n_err == 0, "problems": [p.to_json() for p in problems]})
        return 1 if n_err else 0
    for p in problems:
        print(f"{args.preset}: {p.one_line()}")
    n_warn = len(problems) - n_err
    print(f"{args.preset}: {'ok' if not n_err else 'invalid'} ({n_err} error(s), {n_warn} warning(s))")
    return 1 if n_err else 0


# ---- show -------------------------------------------------------------------------------------------------------
def run_show(args: argparse.Namespace) -> int:
    from trt_tui.core.preset import load_preset, resolve_preset
    from trt_tui.core.preset.exports import shown_path

    preset = load_preset(args.preset)
    r = resolve_preset(preset)
    here = Path.cwd()  # paths as the exports write them: relative when inside the current directory
    if args.json:
        print_json(r.to_json())
        return 0
    print(r.name + (f": {preset.description}" if preset.description else ""))
    rows = [
        ("model", shown_path(r.model_path, here)),
        ("TensorRT", f"{r.trt_major}.x"),
        ("precision", r.precision + ("" if r.tf32 else ", no TF32") + (", strongly typed" if r.strongly_typed and r.trt_major < 11 else "")),
    ]
    if r.trt_major < 11 and r.low_precision:
        rows.append(("constraints", f"{r.precision_constraints or 'none'}; other layers {'forced to ' + r.precision if r.force_low_precision else 'free'}; output types {'pinned' if r.pin_output_types else 'free'}"))
    if r.uses_conversion:
        rows.append(("converted model", shown_path(r.converted_model_path, here)))
    rows.append(("pinned to FP32", f"{len(r.pinned_nodes)} node(s)"))
    rows.append(("inputs", ", ".join(f.trtexec_text() for f in r.input_formats) or "TensorRT's choice"))
    rows.append(("outputs", ", ".join(f.trtexec_text() for f in r.output_formats) or "TensorRT's choice"))
    for name, prof in zip(r.profile_names, r.profiles):
        shapes = "; ".join(f"{t} {'x'.join(map(str, s[0]))} / {'x'.join(map(str, s[1]))} / {'x'.join(map(str, s[2]))}" for t, s in prof.items())
        rows.append((f"profile {name}", shapes))
    rows.append(("optimization level", "default" if r.optimization_level is None else str(r.optimization_level)))
    rows.append(("engine", shown_path(r.engine_path, here)))
    d = r.tolerances.default
    rows.append(("tolerance", f"atol {d.atol:g}, rtol {d.rtol:g}, {d.stat}" + "".join(f"; /{p}/: atol {t.atol:g}, rtol {t.rtol:g}, {t.stat}" for p, t in r.tolerances.rules)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    for name in r.pinned_nodes:
        print(f"    {name}")
    _warn(r.warnings, args.preset)
    return 0


# ---- diff --------------------------------------------------------------------------------------------------------
def run_diff(args: argparse.Namespace) -> int:
    from trt_tui.core.preset import diff_pinned_nodes, diff_presets, load_preset

    a, b = load_preset(args.a), load_preset(args.b)
    changes = diff_presets(a, b)
    pins = diff_pinned_nodes(a, b)
    different = bool(changes or pins)
    if args.json:
        print_json({
            "a": str(a.path), "b": str(b.path), "same": not different,
            "changes": [c.to_json() for c in changes], "pinned_nodes": pins.to_json() if pins is not None else None,
        })  # fmt: skip
        return 1 if different else 0
    for c in changes:
        print(c.one_line(args.a, args.b))
    if pins is not None:
        for n in pins.only_a:
            print(f"- pinned only in {args.a}: {n}")
        for n in pins.only_b:
            print(f"+ pinned only in {args.b}: {n}")
    else:
        print("(pinned nodes not compared: a preset does not resolve; run `trt-tui preset validate`)")
    if not different:
        print("presets are the same")
    return 1 if different else 0


# ---- export ------------------------------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.preset import load_preset, resolve_preset
    from trt_tui.core.preset.exports import export_for_user

    preset = load_preset(args.preset)
    resolved = resolve_preset(preset, for_export=args.format)
    _warn(resolved.warnings, args.preset)
    if args.output is None:
        if args.reference_data:
            raise UserError("--reference-data writes files next to the export: give -o FILE")
        sys.stdout.write(export_for_user(resolved, args.format))
        return 0
    target = Path(args.output).absolute()
    accuracy = None
    if args.reference_data:
        from trt_tui.core.preset.exports.trtexec_accuracy import write_reference_data

        if args.format != "trtexec":
            raise UserError("--reference-data applies to --format trtexec")
        if target.exists() and not args.force:
            raise UserError("exists; pass --force to overwrite", target)
        accuracy = write_reference_data(resolved, target.parent, target.stem, overwrite=args.force)
        print(f"wrote {len(accuracy.inputs)} input and {len(accuracy.references)} reference file(s) next to {target.name}",
              file=sys.stderr)  # fmt: skip
    atomic_write(target, export_for_user(resolved, args.format, target, accuracy=accuracy), overwrite=args.force)
    if args.format == "script":
        target.chmod(target.stat().st_mode | 0o111)
    print(f"wrote {target}", file=sys.stderr)
    return 0

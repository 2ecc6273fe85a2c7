"""Check a preset against its model and resolve it in one pass: every problem is collected, none stops early.

`validate_preset` returns the problems; `resolve_preset` raises on the first error-level one (naming how
many more there are) and otherwise returns the `ResolvedPreset`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from trt_tui.core.errors import UserError
from trt_tui.core.graph import TRTEXEC_UNSAFE, GraphIndex, load_graph
from trt_tui.core.pins import resolve_pins
from trt_tui.core.preset.model import (
    CONSTRAINTS,
    MEMORY_POOLS,
    PRECISIONS,
    PROFILING_VERBOSITIES,
    TRT_MAJORS,
    Preset,
    Profile,
)
from trt_tui.core.preset.problems import Problem, errors
from trt_tui.core.preset.resolved import ResolvedPreset
from trt_tui.core.preset.shapes import derive_io_formats, derive_profile

EXPORT_FORMATS = ("trtexec", "script", "polygraphy", "autocast", "json")
# trtexec flags TensorRT 11 rejects ("Unknown option"); see the research note on 10.x vs 11.x
REMOVED_IN_11 = ("--fp16", "--bf16", "--int8", "--fp8", "--best", "--precisionConstraints", "--layerPrecisions", "--layerOutputTypes")


class _Collector:
    def __init__(self) -> None:
        self.items: list[Problem] = []
        self._seen: set[Problem] = set()  # a set, not `in self.items`: 20k pins must not cost 20k^2

    def __call__(self, key: str, severity: str, message: str) -> None:
        p = Problem(key, severity, message)
        if p not in self._seen:  # the same unresolved dim is met once per input that uses it
            self._seen.add(p)
            self.items.append(p)


def _check_settings(preset: Preset, report: _Collector) -> None:
    """Checks that need no model."""
    pr = preset.precision
    for key in preset.unknown_keys:
        report(key, "warning", "unknown key (ignored); check the spelling")
    if preset.trt not in TRT_MAJORS:
        report("trt", "error", f"target TensorRT major must be 10 or 11, not {preset.trt}")
    if pr.mode not in PRECISIONS:
        report("precision.mode", "error", f"must be one of {', '.join(PRECISIONS)}, not {pr.mode!r}")
    if pr.constraints is not None and pr.constraints not in CONSTRAINTS:
        report("precision.constraints", "error", f"must be one of {', '.join(CONSTRAINTS)}, not {pr.constraints!r}")
    if preset.trt >= 11:
        ten_only = {
            "precision.strongly_typed": pr.strongly_typed,
            "precision.constraints": pr.constraints,
            "precision.force_low_precision": pr.force_low_precision,
            "precision.pin_output_types": pr.pin_output_types,
        }
        for key, value in ten_only.items():
            if value is not None:
                report(
                    key,
                    "error",
                    "TensorRT 10.x-only option; TensorRT 11 networks are strongly typed and take precisions from "
                    "the ONNX graph (the pins go into a converted model): remove it",
                )
        for i, arg in enumerate(preset.builder.extra_args):
            if arg.split("=", 1)[0] in REMOVED_IN_11:
                report(f"builder.extra_args[{i}]", "error", f"{arg.split('=', 1)[0]} was removed in TensorRT 11")
    elif pr.strongly_typed and pr.mode in ("fp16", "bf16"):
        report(
            "precision.strongly_typed",
            "error",
            f"a strongly typed network takes its precision from the ONNX graph; it cannot be combined with --{pr.mode} "
            "(use mode = \"fp32\" on a converted model, or turn strongly_typed off)",
        )
    b = preset.builder
    if b.optimization_level is not None and not 0 <= b.optimization_level <= 5:
        report("builder.optimization_level", "error", f"must be 0-5, not {b.optimization_level}")
    for pool, mib in b.memory_pools.items():
        if pool not in MEMORY_POOLS:
            report(f"builder.memory_pools.{pool}", "error", f"unknown pool (one of {', '.join(MEMORY_POOLS)})")
        if mib <= 0:
            report(f"builder.memory_pools.{pool}", "error", f"size must be positive MiB, not {mib}")
    if b.profiling_verbosity is not None and b.profiling_verbosity not in PROFILING_VERBOSITIES:
        report("builder.profiling_verbosity", "error", f"must be one of {', '.join(PROFILING_VERBOSITIES)}")
    for i, arg in enumerate(b.extra_args):
        if preset.trt < 11 or arg.split("=", 1)[0] not in REMOVED_IN_11:
            report(f"builder.extra_args[{i}]", "warning", f"{arg!r} is passed to trtexec unchecked")
    c = preset.comparison
    for i, rule in enumerate(c.outputs):
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            report(f"comparison.outputs[{i}].pattern", "error", f"bad regular expression {rule.pattern!r}: {exc}")
    for key, tol in [("comparison.default", c.default)] + [(f"comparison.outputs[{i}]", o.tolerance) for i, o in enumerate(c.outputs)]:
        if not all(math.isfinite(v) for v in (tol.atol, tol.rtol, tol.quantile)):
            report(key, "error", "atol, rtol and quantile must be finite numbers (a NaN tolerance passes everything)")
        elif tol.atol < 0 or tol.rtol < 0:
            report(key, "error", "atol and rtol must not be negative")
    if c.infinities_compare_equal and (preset.trt, preset.trt_minor or 0) >= (11, 1):
        report("comparison.infinities_compare_equal", "warning",
               "trtexec 11.1's accuracy check (--loadRefOutputs) has no such switch: compare and search count the "
               "same infinities equal, trtexec judges them itself")  # fmt: skip
    if c.seed is not None and not 0 <= c.seed < 2**32:
        report("comparison.seed", "error", f"must be 0 to {2**32 - 1}, not {c.seed}")
    if c.input_data != "random" and not preset.resolve_path(c.input_data).exists():
        report("comparison.input_data", "warning", f"{c.input_data!r} does not exist (yet); comparisons need it")
    names = [p.name for p in preset.profiles]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        report("profiles", "error", f"two profiles are named {dup!r}")


def _check_pins(preset: Preset, index: GraphIndex, for_export: str | None, report: _Collector) -> list[str]:
    rules = preset.pins
    for key, patterns in (("pins.match", rules.patterns), ("pins.exclude", rules.exclude)):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                report(key, "error", f"bad regular expression {pattern!r}: {exc}")
                return []
    res = resolve_pins(index, rules)
    for unknown in res.unknown_names:
        report("pins.names", "error", unknown.message())
    for rule, message in res.rule_messages():  # the same words compare, convert and stream print
        report({"op": "pins.op_types", "match": "pins.match"}.get(rule.partition(":")[0], "pins"), "warning", message)
    for name in res.non_float:
        report("pins", "warning", f"{name!r} has no float output; pinning it to FP32 does nothing")
    if res.nodes and preset.precision.mode == "fp32":
        report("pins", "warning", "precision is fp32: the pins have no effect")
    if preset.trt < 11 and preset.precision.mode != "fp32":
        # an error for the trtexec command line and script; the Python API build takes any name (a warning)
        severity = "error" if for_export in ("trtexec", "script") else "warning"
        for name in res.nodes:
            if TRTEXEC_UNSAFE.search(name):
                report(
                    "pins",
                    severity,
                    f"node name {name!r} contains ',' or ':' and cannot be written on a trtexec command line; "
                    "exclude it, or build with the Python API (trt-tui build --backend tensorrt)",
                )
    return res.nodes


def _profiles(preset: Preset, index: GraphIndex, report: _Collector) -> tuple[list[str], list[dict]]:
    dynamic = [t for t in index.inputs if t.dynamic_axes]
    profiles = preset.profiles or ([Profile()] if dynamic else [])
    if not dynamic:
        if preset.profiles and any(p.dims or p.shapes or p.batch != 1 for p in preset.profiles):
            report("profiles", "warning", "the model has no dynamic inputs; the profiles are ignored")
        return [], []
    names, shapes = [], []
    for i, prof in enumerate(profiles):
        names.append(prof.name)
        shapes.append(derive_profile(prof, f"profiles[{i}]", index.inputs, report))
    return names, shapes


def _default_engine(preset: Preset) -> Path:
    if preset.path is not None:
        return preset.path.with_suffix(".plan")
    return preset.model_path.with_name(f"{preset.model_path.stem}_{preset.precision.mode}.plan")


def _check_targets(preset: Preset, index: GraphIndex, report: _Collector) -> None:
    """`[comparison] targets` name outputs the model has (their syntax is checked when the file is read)."""
    from trt_tui.core.tolerance import parse_target

    outputs = {t.name for t in index.outputs}
    for text in preset.comparison.targets:
        try:
            target = parse_target(text, what="target")
        except UserError as exc:  # a Preset built in code, not read from a file
            report("comparison.targets", "error", exc.message)
            continue
        if target.output is not None and target.output not in outputs:
            report("comparison.targets", "error", f"{text!r} names no graph output; outputs are {', '.join(sorted(outputs))}")


def analyse(
    preset: Preset, index: GraphIndex | None = None, *, for_export: str | None = None
) -> tuple[ResolvedPreset | None, list[Problem]]:
    if for_export is not None and for_export not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {for_export!r} (one of {', '.join(EXPORT_FORMATS)})")
    report = _Collector()
    _check_settings(preset, report)
    if index is None:
        try:
            index = load_graph(preset.model_path)
        except UserError as exc:
            report("model", "error", exc.one_line())
            return None, report.items
    pinned = _check_pins(preset, index, for_export, report)
    profile_names, profiles = _profiles(preset, index, report)
    trt = preset.trt if preset.trt in TRT_MAJORS else 10
    input_formats, output_formats = derive_io_formats(preset.io, index.inputs, index.outputs, trt, report)
    _check_targets(preset, index, report)
    problems = report.items
    if errors(problems):
        return None, problems

    pr, b, c = preset.precision, preset.builder, preset.comparison
    low = pr.mode in ("fp16", "bf16")
    ten = preset.trt < 11
    engine = preset.resolve_path(b.engine) if b.engine else _default_engine(preset)
    converted = None
    if not ten and low:
        converted = preset.resolve_path(b.converted_model) if b.converted_model else engine.with_name(f"{engine.stem}.mixed.onnx")
    constraints = pr.constraints
    if constraints is None and ten and low and pinned:
        constraints = "obey"  # without constraints the pins are only hints TensorRT may ignore
    resolved = ResolvedPreset(
        preset=preset,
        name=preset.display_name,
        model_path=preset.model_path,
        precision=pr.mode,
        trt_major=preset.trt,
        trt_minor=preset.trt_minor,
        tf32=pr.tf32,
        strongly_typed=bool(pr.strongly_typed) if ten else True,
        precision_constraints=constraints if ten and low else None,
        force_low_precision=bool(pr.force_low_precision) and ten and low,
        pin_output_types=(pr.pin_output_types is not False) and ten and low,
        keep_io_types=pr.keep_io_types,
        pin_rules=preset.pins,
        pinned_nodes=pinned,
        input_formats=input_formats,
        output_formats=output_formats,
        profile_names=profile_names,
        profiles=profiles,
        optimization_level=b.optimization_level,
        memory_pools=dict(b.memory_pools),
        timing_cache=preset.resolve_path(b.timing_cache) if b.timing_cache else None,
        profiling_verbosity=b.profiling_verbosity,
        engine_path=engine,
        converted_model_path=converted,
        extra_args=list(b.extra_args),
        tolerances=preset.tolerance_policy(),
        input_data=c.input_data if c.input_data == "random" else preset.resolve_path(c.input_data),
        seed=c.seed,
        warnings=list(problems),
        targets=tuple(c.targets),
        input_names=[t.name for t in index.inputs],
        output_names=[t.name for t in index.outputs],
    )
    return resolved, problems


def validate_preset(preset: Preset, index: GraphIndex | None = None, *, for_export: str | None = None) -> list[Problem]:
    """All problems of `preset` against its model (loaded from `preset.model_path` when `index` is None)."""
    return analyse(preset, index, for_export=for_export)[1]


def raise_for_errors(preset: Preset, problems: list[Problem]) -> None:
    errs = errors(problems)
    if errs:
        more = f" (and {len(errs) - 1} more; run `trt-tui preset validate`)" if len(errs) > 1 else ""
        raise UserError(errs[0].one_line() + more, preset.path or preset.model)


def resolve_preset(preset: Preset, index: GraphIndex | None = None, *, for_export: str | None = None) -> ResolvedPreset:
    """Resolve `preset` against its model; a UserError names the first error if the preset has any."""
    resolved, problems = analyse(preset, index, for_export=for_export)
    raise_for_errors(preset, problems)
    assert resolved is not None
    return resolved

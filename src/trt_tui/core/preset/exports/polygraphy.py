"""The equivalent `polygraphy run` layer-wise comparison (TensorRT vs ONNX-Runtime, every tensor marked).

TensorRT runs first and ONNX-Runtime second because Polygraphy divides relative differences by the second
runner's output (the reference). On TensorRT 11 the precision lives in the converted ONNX, so the FP32
reference is saved from the original model first and the converted model is compared against it.
Tolerance rules are regexes in a preset but exact names on Polygraphy's command line: they are expanded
against the model's outputs; intermediate tensors get the default tolerance.
"""

from __future__ import annotations

import re

from trt_tui.core.preset.exports.common import Paths, command, convert_args, shape_text
from trt_tui.core.preset.resolved import ResolvedPreset

_POLY_TYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _fmt(value: float) -> str:
    return repr(float(value)) if value not in (0, 1) else str(int(value))


def _profile_args(r: ResolvedPreset) -> list[str]:
    args: list[str] = []
    for profile in r.profiles:
        for flag, i in (("--trt-min-shapes", 0), ("--trt-opt-shapes", 1), ("--trt-max-shapes", 2)):
            args.append(flag)
            args += [f"{name}:[{shape_text(triple[i], ',')}]" for name, triple in profile.items()]
    return args


def _builder_args(r: ResolvedPreset, paths: Paths) -> list[str]:
    args: list[str] = []
    if r.tf32:  # Polygraphy turns TF32 off unless asked; trtexec leaves it on
        args.append("--tf32")
    if r.trt_major < 11:
        if r.strongly_typed:
            args.append("--strongly-typed")
        if r.low_precision:
            args.append(f"--{r.precision}")
            if r.precision_constraints:
                args += ["--precision-constraints", r.precision_constraints]
            if r.pinned_nodes:
                args.append("--layer-precisions")
                args += [f"{n}:float32" for n in r.pinned_nodes]
    if r.optimization_level is not None:
        args += ["--builder-optimization-level", str(r.optimization_level)]
    if r.memory_pools:
        args.append("--pool-limit")
        args += [f"{pool}:{mib}M" for pool, mib in r.memory_pools.items()]
    if r.timing_cache is not None:
        args += ["--load-timing-cache", paths(r.timing_cache)]
    if r.profiling_verbosity:
        args += ["--profiling-verbosity", r.profiling_verbosity]
    return args


def _tolerance_args(r: ResolvedPreset) -> list[str]:
    policy = r.tolerances
    per_output = {name: policy.for_tensor(name) for name in r.output_names}
    specific = {n: t for n, t in per_output.items() if any(re.search(p, n) for p, _ in policy.rules)}
    d = policy.default
    atol = ["--atol", _fmt(d.atol)] + [f"{n}:{_fmt(t.atol)}" for n, t in specific.items()]
    rtol = ["--rtol", _fmt(d.rtol)] + [f"{n}:{_fmt(t.rtol)}" for n, t in specific.items()]
    stat = ["--check-error-stat", d.stat] + [f"{n}:{t.stat}" for n, t in specific.items()]
    args = atol + rtol + stat
    if d.infinities_equal:  # one switch for every output, in Polygraphy as in the preset
        args.append("--infinities-compare-equal")
    if d.stat == "quantile" or any(t.stat == "quantile" for t in specific.values()):
        args += ["--error-quantile", _fmt(d.quantile)] + [f"{n}:{_fmt(t.quantile)}" for n, t in specific.items()]
    return args


def _input_args(r: ResolvedPreset, paths: Paths) -> list[str]:
    if r.input_data != "random":
        return ["--load-inputs", paths(r.input_data)]
    return ["--seed", str(r.seed)] if r.seed is not None else []


def export_polygraphy(r: ResolvedPreset, paths: Paths) -> str:
    lines = []
    if r.trt_major < 11 and r.low_precision and r.force_low_precision:
        lines.append(
            f"# note: Polygraphy has no '*:{r.precision}' layer default and no per-layer output types; "
            "the other layers are left to TensorRT"
        )
    if not r.uses_conversion:
        args = ["polygraphy", "run", paths(r.model_path), "--trt", "--onnxrt"]
        args += _profile_args(r) + _builder_args(r, paths)
        args += ["--trt-outputs", "*", "--onnx-outputs", "*"]
        args += _input_args(r, paths) + _tolerance_args(r)
        lines.append(command(args, head=3))
        return "\n".join(lines) + "\n"
    reference = r.engine_path.with_name(f"{r.engine_path.stem}.reference.json")
    inputs = r.engine_path.with_name(f"{r.engine_path.stem}.inputs.json")
    lines.append(command(convert_args(r, paths), multiline=False))
    ref = ["polygraphy", "run", paths(r.model_path), "--onnxrt", "--onnx-outputs", "*"]
    ref += _input_args(r, paths)
    if r.input_data == "random":
        ref += ["--save-inputs", paths(inputs)]
    ref += ["--save-outputs", paths(reference)]
    lines.append(command(ref, head=3))
    run = ["polygraphy", "run", paths(r.build_model_path), "--trt"]
    run += _profile_args(r) + _builder_args(r, paths) + ["--trt-outputs", "*"]
    run += ["--load-inputs", paths(inputs if r.input_data == "random" else r.input_data)]
    run += ["--load-outputs", paths(reference)] + _tolerance_args(r)
    lines.append(command(run, head=3))
    return "\n".join(lines) + "\n"

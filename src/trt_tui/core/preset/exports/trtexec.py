"""The trtexec command line, TensorRT 10.x (precision flags) or 11.x (strongly typed, pins in the ONNX).

10.x reproduces the seeds' "good" build: `--fp16 --precisionConstraints=obey
--layerPrecisions=*:fp16,<pins>:fp32 --layerOutputTypes=<pins>:fp32`, `type:chw` IO formats per binding,
MIN batch 1 / OPT-MAX batch N shapes, `--builderOptimizationLevel`. 11.x drops every removed flag, builds
from the mixed-precision ONNX written by `trt-tui convert`, and gives IO formats as layouts only.
"""

from __future__ import annotations

from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError
from trt_tui.core.graph import TRTEXEC_UNSAFE
from trt_tui.core.preset.exports.common import Paths, command, convert_args, shape_text
from trt_tui.core.preset.resolved import ResolvedPreset


def _shapes(profile: dict) -> list[str]:
    return [",".join(f"{name}:{shape_text(triple[i])}" for name, triple in profile.items()) for i in range(3)]


def trtexec_args(r: ResolvedPreset, paths: Paths | None = None, tool: str = "trtexec", accuracy=None) -> list[str]:
    """The trtexec argv (unquoted; for subprocess). Paths absolute unless `paths` renders them otherwise.
    `accuracy` (trtexec_accuracy.AccuracyData, 11.1+): the reference data and check flags."""
    paths = paths or Paths(None)
    ten = r.trt_major < 11
    if ten and r.low_precision:
        unsafe = [n for n in r.pinned_nodes if TRTEXEC_UNSAFE.search(n)]
        if unsafe:
            raise UserError(
                f"node name {unsafe[0]!r} contains ',' or ':' and cannot be written on a trtexec command line "
                f"({len(unsafe)} such pinned nodes); exclude them or build with the Python API",
                r.source_path,
            )
    args = [tool, f"--onnx={paths(r.build_model_path)}", f"--saveEngine={paths(r.engine_path)}"]
    for profile in r.profiles:
        lo, opt, hi = _shapes(profile)
        args += [f"--minShapes={lo}", f"--optShapes={opt}", f"--maxShapes={hi}"]
    if r.input_formats:
        args.append("--inputIOFormats=" + ",".join(f.trtexec_text() for f in r.input_formats))
    if r.output_formats:
        args.append("--outputIOFormats=" + ",".join(f.trtexec_text() for f in r.output_formats))
    if ten and r.strongly_typed:
        args.append("--stronglyTyped")
    spec = EngineSpec.from_resolved(r)  # the precision policy (`*:fp16`, pins, output types) is decided there
    if spec.precision_flag:
        args.append(f"--{spec.precision_flag}")
        if spec.precision_constraints:
            args.append(f"--precisionConstraints={spec.precision_constraints}")
        if spec.layer_precisions:
            args.append("--layerPrecisions=" + ",".join(f"{n}:{p}" for n, p in spec.layer_precisions))
        if spec.layer_output_types:
            args.append("--layerOutputTypes=" + ",".join(f"{n}:{p}" for n, p in spec.layer_output_types))
    if not r.tf32:
        args.append("--noTF32")
    if r.optimization_level is not None:
        args.append(f"--builderOptimizationLevel={r.optimization_level}")
    if r.memory_pools:
        args.append("--memPoolSize=" + ",".join(f"{pool}:{mib}M" for pool, mib in r.memory_pools.items()))
    if r.timing_cache is not None:
        args.append(f"--timingCacheFile={paths(r.timing_cache)}")
    if r.profiling_verbosity:
        args.append(f"--profilingVerbosity={r.profiling_verbosity}")
    args += r.extra_args
    if accuracy is not None:
        args += accuracy.args(paths)
    return args


def export_trtexec(r: ResolvedPreset, paths: Paths, accuracy=None) -> str:
    lines = []
    if r.uses_conversion:
        lines.append(command(convert_args(r, paths), multiline=False))
    if accuracy is not None:
        lines += [f"# {note}" for note in accuracy.check.notes]
    lines.append(command(trtexec_args(r, paths, accuracy=accuracy)))
    return "\n".join(lines) + "\n"

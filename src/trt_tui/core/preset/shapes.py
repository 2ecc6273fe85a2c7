"""Optimization profiles and IO formats derived from the ONNX inputs/outputs, as the seeds' build script does.

Profiles: fixed dims stay as they are; the batch dim gets MIN 1 and OPT/MAX `batch`; other named dims take
the values the preset gives; inputs the preset spells out in `shapes` are checked against the model (rank,
static dims, min <= opt <= max). IO formats: `<type>:chw` per binding from the ONNX dtypes on TensorRT 10,
layout only on TensorRT 11 (where the dtype comes from the graph), with per-tensor overrides.
"""

from __future__ import annotations

from collections.abc import Callable

from trt_tui.core.graph import TensorInfo
from trt_tui.core.pins import suggest
from trt_tui.core.preset.model import IOFormat, IOSettings, Profile, ShapeTriple
from trt_tui.core.preset.problems import Problem

# ONNX dtype name -> trtexec IO type name (samples/common/sampleOptions.cpp)
TRTEXEC_TYPES = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "int32": "int32",
    "int64": "int64",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "float8e4m3fn": "fp8",
}
IO_TYPES = frozenset(TRTEXEC_TYPES.values()) | {"int4", "fp4"}
IO_LAYOUTS = frozenset(
    {"chw", "chw2", "chw4", "hwc8", "chw16", "chw32", "dhwc8", "cdhw32", "hwc", "dla_linear", "dla_hwc4", "hwc16", "dhwc"}
)

Report = Callable[[str, str, str], None]  # (key_path, severity, message)


def detect_batch_dim(inputs: list[TensorInfo]) -> str | None:
    """The symbolic dim every dynamic input shares (the seeds' models: `B`); None if there is no single one."""
    named = [{d for d in (t.shape or ()) if isinstance(d, str)} for t in inputs if t.dynamic_axes]
    if not named:
        return None
    common = set.intersection(*named)
    return next(iter(common)) if len(common) == 1 else None


def _check_triple(key: str, triple: ShapeTriple, report: Report) -> bool:
    lo, opt, hi = triple
    ok = True
    if any(d < 0 for s in triple for d in s):
        report(key, "error", f"negative dimension in {list(lo)} / {list(opt)} / {list(hi)}")
        ok = False
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        report(key, "error", f"needs min <= opt <= max on every axis; got min {list(lo)}, opt {list(opt)}, max {list(hi)}")
        ok = False
    return ok


def derive_profile(
    profile: Profile, key: str, inputs: list[TensorInfo], report: Report
) -> dict[str, ShapeTriple]:
    """The (min, opt, max) shapes of every dynamic input for one profile; problems go to `report`."""
    by_name = {t.name: t for t in inputs}
    named_dims = sorted({d for t in inputs for d in (t.shape or ()) if isinstance(d, str)})
    batch_dim = profile.batch_dim or detect_batch_dim(inputs)
    if profile.batch < 1:
        report(f"{key}.batch", "error", f"must be at least 1, not {profile.batch}")
    if profile.batch_dim and profile.batch_dim not in named_dims:
        hint = suggest(profile.batch_dim, named_dims)
        report(
            f"{key}.batch_dim",
            "error",
            f"the model has no dim named {profile.batch_dim!r}"
            + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else f" (named dims: {', '.join(named_dims) or 'none'})"),
        )
    for dim, triple in profile.dims.items():
        if dim not in named_dims:
            hint = suggest(dim, named_dims)
            report(
                f"{key}.dims.{dim}",
                "error",
                f"the model has no dim named {dim!r}"
                + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else f" (named dims: {', '.join(named_dims) or 'none'})"),
            )
        lo, opt, hi = triple
        if not (0 <= lo <= opt <= hi):
            report(f"{key}.dims.{dim}", "error", f"needs 0 <= min <= opt <= max; got [{lo}, {opt}, {hi}]")
    for tensor in profile.shapes:
        if tensor not in by_name:
            hint = suggest(tensor, list(by_name))
            report(
                f"{key}.shapes.{tensor}",
                "error",
                f"the model has no input named {tensor!r}" + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""),
            )

    out: dict[str, ShapeTriple] = {}
    for t in inputs:
        explicit = profile.shapes.get(t.name)
        if explicit is not None:
            triple = (explicit["min"], explicit["opt"], explicit["max"])
            tkey = f"{key}.shapes.{t.name}"
            if len({len(s) for s in triple}) != 1:
                report(tkey, "error", "min, opt and max must have the same rank")
                continue
            if t.shape is not None and len(triple[0]) != len(t.shape):
                report(tkey, "error", f"rank mismatch: input {t.name!r} has rank {len(t.shape)} ({t.shape_text()}), the profile gives {len(triple[0])}")
                continue
            for axis, dim in enumerate(t.shape or ()):
                if isinstance(dim, int) and any(s[axis] != dim for s in triple):
                    report(tkey, "error", f"axis {axis} of {t.name!r} is fixed at {dim} in the model; the profile gives {[s[axis] for s in triple]}")
            if _check_triple(tkey, triple, report) and t.dynamic_axes:
                out[t.name] = triple
            continue
        if not t.dynamic_axes:
            continue  # a static input needs no profile entry
        if t.shape is None:
            report(f"{key}.shapes.{t.name}", "error", f"the rank of input {t.name!r} is unknown; give its min/opt/max shapes")
            continue
        lo, opt, hi = [], [], []
        ok = True
        for axis, dim in enumerate(t.shape):
            if isinstance(dim, int):
                values = (dim, dim, dim)
            elif isinstance(dim, str) and dim in profile.dims:
                values = profile.dims[dim]
            elif isinstance(dim, str) and dim == batch_dim:
                values = (1, profile.batch, profile.batch)
            else:
                ok = False
                if isinstance(dim, str):
                    report(
                        f"{key}.dims.{dim}",
                        "error",
                        f"dynamic dim {dim!r} (axis {axis} of {t.name!r}) has no value; set it to [min, opt, max]"
                        + ("" if batch_dim else " or name the batch dim with batch_dim"),
                    )
                else:
                    report(f"{key}.shapes.{t.name}", "error", f"axis {axis} of {t.name!r} is dynamic and unnamed; give its min/opt/max shapes")
                continue
            lo.append(values[0])
            opt.append(values[1])
            hi.append(values[2])
        if ok:
            out[t.name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


def _override_formats(
    kind: str, tensors: list[TensorInfo], overrides: dict[str, str], trt: int, report: Report
) -> dict[str, IOFormat]:
    names = [t.name for t in tensors]
    parsed: dict[str, IOFormat] = {}
    for tensor, text in overrides.items():
        key = f"io.{kind}.{tensor}"
        if tensor not in names:
            hint = suggest(tensor, names)
            report(key, "error", f"the model has no {kind[:-1]} named {tensor!r}" + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
            continue
        fmt = IOFormat.parse(tensor, text)
        if fmt.layout not in IO_LAYOUTS:
            report(key, "error", f"unknown layout {fmt.layout!r} (linear is 'chw')")
            continue
        if trt >= 11 and fmt.dtype is not None:
            report(key, "error", f"TensorRT 11 IO formats are layout only (the dtype comes from the graph): write {fmt.layout!r}")
            continue
        if trt < 11:
            if fmt.dtype is None:
                report(key, "error", f"TensorRT 10 IO formats are type:layout, e.g. 'fp16:{fmt.layout}'")
                continue
            if fmt.dtype not in IO_TYPES:
                report(key, "error", f"unknown IO type {fmt.dtype!r} (one of {', '.join(sorted(IO_TYPES))})")
                continue
        parsed[tensor] = fmt
    return parsed


def derive_io_formats(
    io: IOSettings, inputs: list[TensorInfo], outputs: list[TensorInfo], trt: int, report: Report
) -> tuple[list[IOFormat], list[IOFormat]]:
    """IO formats in binding order (trtexec's lists are positional): auto-derived, then overridden."""
    if io.formats not in ("auto", "none"):
        report("io.formats", "error", f"must be 'auto' or 'none', not {io.formats!r}")
        return [], []
    result = []
    for kind, tensors, overrides in (("inputs", inputs, io.inputs), ("outputs", outputs, io.outputs)):
        parsed = _override_formats(kind, tensors, overrides, trt, report)
        if io.formats == "none":
            if overrides:
                # trtexec takes a format for every binding or none at all
                report(f"io.{kind}", "error", "per-tensor formats need io.formats = \"auto\" (trtexec wants a format for every binding)")
            result.append([])
            continue
        formats = []
        for t in tensors:
            if t.name in parsed:
                formats.append(parsed[t.name])
                continue
            if trt >= 11:
                formats.append(IOFormat(t.name, None, "chw"))
                continue
            dtype = TRTEXEC_TYPES.get(t.dtype or "")
            if dtype is None:
                report(
                    f"io.{kind}.{t.name}",
                    "error",
                    f"{kind[:-1]} {t.name!r} has dtype {t.dtype or 'unknown'}, which has no TensorRT IO type; set its format, e.g. 'fp32:chw'",
                )
                continue
            formats.append(IOFormat(t.name, dtype, "chw"))
        result.append(formats)
    return result[0], result[1]

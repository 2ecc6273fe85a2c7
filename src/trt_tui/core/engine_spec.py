"""THE description of one TensorRT engine build: what every builder (the Python-API build worker, the
comparison's `trt` candidate, the trtexec export) reads, derived once from a resolved preset.

    spec = EngineSpec.from_resolved(resolved)          # in the calling process: the preset's errors are the user's
    request.settings = spec.to_json()                  # serialised once, into request.json
    spec = EngineSpec.from_json(request.settings)      # in the child: read back, not re-validated

The precision policy of TensorRT 10.x weak typing (`*:fp16` default, FP32 pins, pinned output types,
precision constraints) is decided here, once, as `layer_precisions` / `layer_output_types`, in trtexec's
own terms; the trtexec export writes them as flags and the Python builder applies them to the network.
TensorRT 11.x has none of them (strongly typed): precision lives in the mixed-precision ONNX.

Plain values only (no TensorRT, no ONNX): importing this costs nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trt_tui.core.errors import UserError

LOW_PRECISIONS = ("fp16", "bf16")
# binding -> (min, opt, max) shapes, one dict per optimization profile
ProfileShapes = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


@dataclass(frozen=True)
class EngineSpec:
    name: str  # the preset's display name
    model_path: str  # the original ONNX model
    precision: str  # fp32 | fp16 | bf16
    trt_major: int  # 10 | 11
    trt_minor: int | None = None  # None: any minor of that major (matters for trtexec 11.1+ accuracy flags)
    strongly_typed: bool = False  # 10.x opt-in; always True on 11.x
    precision_constraints: str | None = None  # obey | prefer | none (10.x with fp16/bf16 only)
    force_low_precision: bool = False  # 10.x `*:fp16`: every float layer not pinned runs in the low precision
    pin_output_types: bool = False  # 10.x: the pins' float outputs typed FP32 too (--layerOutputTypes)
    keep_io_types: bool = True  # 11.x mixed-precision ONNX: the model's IO dtypes kept
    pinned_nodes: tuple[str, ...] = ()  # exact ONNX node names kept in FP32, topological order
    input_formats: dict[str, str] = field(default_factory=dict)  # binding -> trtexec text ("fp16:chw" / "chw")
    output_formats: dict[str, str] = field(default_factory=dict)
    profiles: tuple[ProfileShapes, ...] = ()
    tf32: bool = True
    optimization_level: int | None = None
    memory_pools_mib: dict[str, int] = field(default_factory=dict)
    timing_cache: str | None = None  # read before the build, merged and written back after it
    profiling_verbosity: str = "detailed"  # the pin check needs per-layer detail
    engine_path: str | None = None  # where the preset ships the engine
    # the comparison's layer-wise mode: every tensor marked as an engine output (NOT the engine you ship)
    mark_all_outputs: bool = False

    # ---- derived, in one place -------------------------------------------------------------------------
    @property
    def low_precision(self) -> bool:
        return self.precision in LOW_PRECISIONS

    @property
    def weakly_typed(self) -> bool:
        """10.x with fp16/bf16 and no --stronglyTyped: precision comes from flags and per-layer settings."""
        return self.trt_major < 11 and self.low_precision and not self.strongly_typed

    @property
    def network_strongly_typed(self) -> bool:
        return self.trt_major >= 11 or self.strongly_typed

    @property
    def builds_from_mixed_onnx(self) -> bool:
        """11.x with fp16/bf16: the engine is parsed from the mixed-precision rewrite (Casts around the pins)."""
        return self.trt_major >= 11 and self.low_precision

    @property
    def precision_flag(self) -> str | None:
        """fp16 | bf16 for trtexec's --fp16/--bf16 and BuilderFlag.FP16/BF16 (10.x), else None."""
        return self.precision if self.trt_major < 11 and self.low_precision else None

    @property
    def constraints(self) -> str | None:
        """obey | prefer when the flag is set (10.x weak typing), else None."""
        if self.precision_flag and self.precision_constraints in ("obey", "prefer"):
            return self.precision_constraints
        return None

    @property
    def layer_precisions(self) -> list[tuple[str, str]]:
        """trtexec's --layerPrecisions entries, in its terms: [("*", "fp16"), (pin, "fp32"), ...] (10.x)."""
        if not self.precision_flag:
            return []
        default = [("*", self.precision)] if self.force_low_precision else []
        return default + [(node, "fp32") for node in self.pinned_nodes]

    @property
    def layer_output_types(self) -> list[tuple[str, str]]:
        """trtexec's --layerOutputTypes entries: [(pin, "fp32"), ...] (10.x, pin_output_types)."""
        if not (self.precision_flag and self.pin_output_types):
            return []
        return [(node, "fp32") for node in self.pinned_nodes]

    @property
    def io_dtypes(self) -> dict[str, str]:
        """binding -> requested dtype (10.x IO formats `type:layout`; 11.x takes IO dtypes from the graph)."""
        if self.trt_major >= 11:
            return {}
        out = {}
        for tensor, text in {**self.input_formats, **self.output_formats}.items():
            dtype, sep, _layout = text.rpartition(":")
            if sep and dtype:
                out[tensor] = dtype
        return out

    @property
    def linear_io(self) -> bool:
        """Formats were derived or given: every binding is restricted to the linear layout (`chw`)."""
        return bool(self.input_formats or self.output_formats)

    # ---- one derivation, one serialisation -----------------------------------------------------------
    @classmethod
    def from_resolved(cls, r: Any, *, mark_all_outputs: bool = False) -> EngineSpec:
        """From a ResolvedPreset (already validated by `resolve_preset`)."""
        return cls(
            name=r.name, model_path=str(r.model_path), precision=r.precision, trt_major=int(r.trt_major),
            trt_minor=getattr(r, "trt_minor", None),
            strongly_typed=bool(r.strongly_typed), precision_constraints=r.precision_constraints,
            force_low_precision=bool(r.force_low_precision), pin_output_types=bool(r.pin_output_types),
            keep_io_types=bool(r.keep_io_types), pinned_nodes=tuple(r.pinned_nodes),
            input_formats={f.tensor: f.trtexec_text() for f in r.input_formats},
            output_formats={f.tensor: f.trtexec_text() for f in r.output_formats},
            profiles=tuple({name: tuple(tuple(int(d) for d in s) for s in triple) for name, triple in p.items()}
                           for p in r.profiles),
            tf32=bool(r.tf32), optimization_level=r.optimization_level, memory_pools_mib=dict(r.memory_pools),
            timing_cache=str(r.timing_cache) if r.timing_cache else None,
            engine_path=str(r.engine_path) if getattr(r, "engine_path", None) else None,
            mark_all_outputs=mark_all_outputs,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pinned_nodes"] = list(self.pinned_nodes)
        data["profiles"] = [{n: {"min": list(t[0]), "opt": list(t[1]), "max": list(t[2])} for n, t in p.items()}
                            for p in self.profiles]  # fmt: skip
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | Path | None = None) -> EngineSpec:
        """What `to_json` wrote (request.json). A file from an incompatible version is one clear line."""
        try:
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            known["pinned_nodes"] = tuple(known.get("pinned_nodes") or ())
            known["profiles"] = tuple(
                {n: (tuple(s["min"]), tuple(s["opt"]), tuple(s["max"])) for n, s in p.items()}
                for p in known.get("profiles") or ()
            )
            return cls(**known)
        except (TypeError, KeyError, AttributeError) as exc:
            raise UserError(f"the build request's engine specification is not readable ({exc}); "
                            "resubmit the build with this version of trt-tui", source) from None  # fmt: skip

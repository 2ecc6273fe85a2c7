"""A preset with everything decided: rules expanded to node names, shapes and formats derived, paths absolute.

This is what builds, exports, the TUI and the comparison engine consume; `to_json()` is the `json` export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trt_tui.core.tolerance import TolerancePolicy
from trt_tui.core.pins import PinRules
from trt_tui.core.preset.model import IOFormat, Preset, ShapeTriple
from trt_tui.core.preset.problems import Problem

LOW_PRECISION_NAMES = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass
class ResolvedPreset:
    preset: Preset
    name: str
    model_path: Path
    precision: str  # fp32 | fp16 | bf16
    trt_major: int  # 10 | 11
    tf32: bool
    strongly_typed: bool  # 10.x; always True in spirit on 11.x (not emitted there)
    precision_constraints: str | None  # obey | prefer | none; None = not emitted (no pins, fp32 or 11.x)
    force_low_precision: bool  # the `*:fp16` default for all non-pinned layers (10.x)
    pin_output_types: bool  # --layerOutputTypes for the pins (10.x)
    keep_io_types: bool  # 11.x conversion / AutoCast
    pin_rules: PinRules
    pinned_nodes: list[str]  # exact node names, topological order
    input_formats: list[IOFormat]  # binding order; empty = let TensorRT choose
    output_formats: list[IOFormat]
    profile_names: list[str]
    profiles: list[dict[str, ShapeTriple]]  # per profile: dynamic input -> (min, opt, max); static inputs omitted
    optimization_level: int | None
    memory_pools: dict[str, int]  # MiB
    timing_cache: Path | None
    profiling_verbosity: str | None
    engine_path: Path
    converted_model_path: Path | None  # 11.x with fp16/bf16: the mixed-precision ONNX trtexec builds from
    extra_args: list[str]
    tolerances: TolerancePolicy
    input_data: str | Path  # "random" or a file
    seed: int | None
    warnings: list[Problem] = field(default_factory=list)
    targets: tuple[str, ...] = ()  # the preset's output targets (`[comparison] targets`)
    input_names: list[str] = field(default_factory=list)  # the model's inputs / outputs, binding order
    output_names: list[str] = field(default_factory=list)
    trt_minor: int | None = None  # None: any minor of `trt_major` (`trt = "11.1"` in the preset sets it)

    @property
    def source_path(self) -> Path | None:
        return self.preset.path

    @property
    def low_precision(self) -> bool:
        return self.precision in LOW_PRECISION_NAMES

    @property
    def uses_conversion(self) -> bool:
        """TensorRT 11 pins precision in the ONNX graph: low-precision builds go through `trt-tui convert`."""
        return self.trt_major >= 11 and self.low_precision

    @property
    def trt_version(self) -> str:
        return f"{self.trt_major}" if self.trt_minor is None else f"{self.trt_major}.{self.trt_minor}"

    @property
    def trtexec_checks_accuracy(self) -> bool:
        """trtexec 11.1+ compares its outputs with reference outputs itself (--loadRefOutputs)."""
        return (self.trt_major, self.trt_minor or 0) >= (11, 1)

    @property
    def build_model_path(self) -> Path:
        """The ONNX file the engine is built from (the converted one on TensorRT 11)."""
        return self.converted_model_path if self.uses_conversion and self.converted_model_path else self.model_path

    def to_json(self) -> dict:
        def tol(t) -> dict:
            return {"atol": t.atol, "rtol": t.rtol, "stat": t.stat, "quantile": t.quantile, "infinities_equal": t.infinities_equal}

        return {
            "name": self.name,
            "source": str(self.source_path) if self.source_path else None,
            "model": str(self.model_path),
            "build_model": str(self.build_model_path),
            "trt": self.trt_major,
            "trt_minor": self.trt_minor,
            "precision": self.precision,
            "tf32": self.tf32,
            "strongly_typed": self.strongly_typed,
            "precision_constraints": self.precision_constraints,
            "force_low_precision": self.force_low_precision,
            "pin_output_types": self.pin_output_types,
            "keep_io_types": self.keep_io_types,
            "pin_rules": self.pin_rules.to_json(),
            "pinned_nodes": list(self.pinned_nodes),
            "inputs": list(self.input_names),
            "outputs": list(self.output_names),
            "input_formats": [{"tensor": f.tensor, "format": f.trtexec_text()} for f in self.input_formats],
            "output_formats": [{"tensor": f.tensor, "format": f.trtexec_text()} for f in self.output_formats],
            "profiles": [
                {"name": name, "shapes": {t: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for t, s in prof.items()}}
                for name, prof in zip(self.profile_names, self.profiles)
            ],
            "builder": {
                "optimization_level": self.optimization_level,
                "memory_pools_mib": dict(self.memory_pools),
                "timing_cache": str(self.timing_cache) if self.timing_cache else None,
                "profiling_verbosity": self.profiling_verbosity,
                "engine": str(self.engine_path),
                "converted_model": str(self.converted_model_path) if self.converted_model_path else None,
                "extra_args": list(self.extra_args),
            },
            "comparison": {
                "default": tol(self.tolerances.default),
                "outputs": [{"pattern": p, **tol(t)} for p, t in self.tolerances.rules],
                "input_data": str(self.input_data),
                "seed": self.seed,
                "targets": list(self.targets),
            },
            "warnings": [w.to_json() for w in self.warnings],
        }

"""The preset schema: plain dataclasses mirroring the TOML file, section by section.

A preset is what users save, share and script. Fields that only exist on TensorRT 10.x are `None` when the
file does not set them, so validation can tell "set by the user" (an error on TensorRT 11) from "left to
the default" (filled in by `resolve_preset`). Relative paths are kept as written and resolved against
the preset file's directory (`Preset.base_dir`), so a preset stays valid when its folder moves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from trt_tui.core.tolerance import Tolerance, TolerancePolicy
from trt_tui.core.pins import PinRules

SCHEMA_VERSION = 1
PRECISIONS = ("fp32", "fp16", "bf16")
TRT_MAJORS = (10, 11)
CONSTRAINTS = ("obey", "prefer", "none")
IO_MODES = ("auto", "none")
PROFILING_VERBOSITIES = ("layer_names_only", "detailed", "none")
MEMORY_POOLS = ("workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM", "tacticSharedMem")


@dataclass
class PrecisionSettings:
    mode: str = "fp16"  # fp32 | fp16 | bf16
    tf32: bool = True  # false -> trtexec --noTF32
    # 10.x-only (None = not set in the file; see the module docstring)
    strongly_typed: bool | None = None
    constraints: str | None = None  # obey | prefer | none
    force_low_precision: bool | None = None  # the seeds' `*:fp16` default for every non-pinned layer
    pin_output_types: bool | None = None  # also pin the pinned layers' output types (--layerOutputTypes)
    keep_io_types: bool = True  # TensorRT 11 conversion / AutoCast: keep the model's IO dtypes

    @classmethod
    def for_route(cls, mode: str, trt: int, *, force_low_precision: bool = False) -> PrecisionSettings:
        """The settings a new preset writes for TensorRT `trt`: on 10 the 10.x knobs written out (so the file
        shows them: obey the pins, pin their output types); on 11 none of them (TensorRT 11 rejects them)."""
        settings = cls(mode=mode)
        if trt < 11:
            settings.strongly_typed = False
            if mode in ("fp16", "bf16"):
                settings.constraints = "obey"
                settings.force_low_precision = force_low_precision
                settings.pin_output_types = True
        return settings


@dataclass
class IOFormat:
    """One binding's format: `dtype` is a trtexec type name (fp32, fp16, int64, ...) or None (from the graph)."""

    tensor: str
    dtype: str | None
    layout: str = "chw"

    def trtexec_text(self) -> str:
        return f"{self.dtype}:{self.layout}" if self.dtype else self.layout

    @classmethod
    def parse(cls, tensor: str, text: str) -> IOFormat:
        dtype, sep, layout = text.rpartition(":")
        return cls(tensor, dtype if sep else None, layout)


@dataclass
class IOSettings:
    formats: str = "auto"  # auto: type:chw for every binding from the ONNX dtypes; none: no IO-format flags
    inputs: dict[str, str] = field(default_factory=dict)  # tensor -> "fp16:chw" (10.x) or "chw" (11.x)
    outputs: dict[str, str] = field(default_factory=dict)


ShapeTriple = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


@dataclass
class Profile:
    """One optimization profile. Derived from the ONNX dims unless `shapes` gives an input explicitly:
    fixed dims stay, the batch dim gets MIN 1 and OPT/MAX `batch`, other named dims take `dims` values."""

    name: str = "default"
    batch: int = 1
    batch_dim: str | None = None  # symbolic dim name of the batch; None = the dim shared by all inputs
    dims: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # named dim -> (min, opt, max)
    shapes: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)  # input -> {min, opt, max}


@dataclass
class BuilderSettings:
    optimization_level: int | None = None  # 0-5; None = TensorRT's default (3)
    memory_pools: dict[str, int] = field(default_factory=dict)  # pool -> MiB
    timing_cache: str | None = None  # path, relative to the preset file
    profiling_verbosity: str | None = None
    engine: str | None = None  # --saveEngine path, relative to the preset file; default <preset stem>.plan
    converted_model: str | None = None  # TensorRT 11: the mixed-precision ONNX; default <engine stem>.mixed.onnx
    extra_args: list[str] = field(default_factory=list)  # passed to trtexec unchecked (validation warns)


@dataclass
class OutputTolerance:
    pattern: str  # regex searched in the tensor name
    tolerance: Tolerance


@dataclass
class ComparisonDefaults:
    default: Tolerance = field(default_factory=Tolerance)
    outputs: list[OutputTolerance] = field(default_factory=list)
    input_data: str = "random"  # "random" or a path (Polygraphy RunResults/inputs JSON), relative to the preset
    seed: int | None = None
    # output targets ("logits:rel_rms<=1e-4", tolerance.parse_target), e.g. the ones `trt-tui search -o` met:
    # when given, they decide compare's verdict and are search's target
    targets: list[str] = field(default_factory=list)
    infinities_compare_equal: bool = False  # matching +-inf are equal in every output (Polygraphy's switch)

    def tolerance_policy(self) -> TolerancePolicy:
        policy = TolerancePolicy(self.default, tuple((o.pattern, o.tolerance) for o in self.outputs))
        return policy.with_infinities_equal(True) if self.infinities_compare_equal else policy


@dataclass
class Preset:
    model: str  # as written in the file: relative to the preset file's directory, or absolute
    name: str = ""
    description: str = ""
    trt: int = 10
    # the TensorRT minor version, where it matters (trtexec 11.1+ checks accuracy itself); `trt = "11.1"` in TOML
    trt_minor: int | None = None
    precision: PrecisionSettings = field(default_factory=PrecisionSettings)
    pins: PinRules = field(default_factory=PinRules)
    io: IOSettings = field(default_factory=IOSettings)
    profiles: list[Profile] = field(default_factory=list)
    builder: BuilderSettings = field(default_factory=BuilderSettings)
    comparison: ComparisonDefaults = field(default_factory=ComparisonDefaults)
    path: Path | None = None  # the file this preset was loaded from / saved to
    # keys the loader did not recognise ("precision.optimisation_level"); validation warns about them
    unknown_keys: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        # normalised (`presets/../src/m.onnx` -> `src/m.onnx`), links left alone: it is shown and exported
        return Path(os.path.normpath(p if p.is_absolute() else (self.base_dir / p)))

    @property
    def model_path(self) -> Path:
        return self.resolve_path(self.model)

    def tolerance_policy(self) -> TolerancePolicy:
        return self.comparison.tolerance_policy()

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return self.path.stem if self.path else Path(self.model).stem

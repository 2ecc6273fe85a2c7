"""THE runner abstraction: what runs on each side of a comparison, built from one spec string.

A reference is ONNX Runtime FP32 on the model, or outputs saved by an earlier run. A candidate is a runner
over some ONNX model (the CPU emulation of fp16/bf16 + pins, the mixed-precision rewrite, any ONNX file), a
TensorRT engine through Polygraphy's TrtRunner (an engine file, or built from a preset: trt_preset.py), or
saved outputs. Everything runs through Polygraphy runners,
so other features (streaming contracts) reuse `make_runners` and call `runner.infer(feed_dict)`.

TensorRT is imported only when an engine is asked for; without it a `MissingBackendError` says so in one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.fileio import require_regular_file
from trt_tui.core.model_checks import check_runnable
from trt_tui.core.mapped_weights import read_mapped
from trt_tui.core.parity.segments import ort_runner
from trt_tui.core.weights import WeightSource, load_without_weights, weights_apart

if TYPE_CHECKING:  # named in annotations only: presets are resolved elsewhere
    from trt_tui.core.preset import Preset, ResolvedPreset

PRECISIONS = ("fp16", "bf16")
CANDIDATE_KINDS = ("emulate", "mixed", "cuda", "onnx", "engine", "trt", "outputs")


@dataclass(frozen=True)
class CandidateSpec:
    """What to compare against the reference. `pins` are exact node names kept in FP32."""

    kind: str = "emulate"
    path: str | None = None  # onnx:/engine:/outputs: sources
    precision: str = "fp16"
    pins: tuple[str, ...] = ()
    fuse_bias: bool = True  # emulation: treat MatMul + constant-bias Add as one fused GEMM, as TensorRT does
    # trt (an engine built from a preset): `path` is the preset file, or `preset` a Preset / ResolvedPreset
    # object (the TUI's current, possibly unsaved, preset); `outputs_only` leaves the engine unmarked
    preset: Preset | ResolvedPreset | None = field(default=None, compare=False, repr=False)
    outputs_only: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CANDIDATE_KINDS:
            raise UserError(f"unknown candidate {self.kind!r}; choose emulate, mixed, cuda, onnx:PATH, engine:PATH, "
                            "trt[:PRESET] or outputs:PATH")  # fmt: skip
        if self.kind == "trt" and not (self.path or self.preset is not None):
            raise UserError("candidate trt builds a TensorRT engine from a preset: give --preset FILE or trt:PRESET")
        if self.outputs_only and self.kind != "trt":
            raise UserError(f"--outputs-only applies to a TensorRT engine built from a preset (trt), not to {self.kind}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; choose fp16 or bf16")
        if self.kind in ("onnx", "engine", "outputs") and not self.path:
            raise UserError(f"candidate {self.kind}: needs a path, e.g. {self.kind}:FILE")

    @property
    def label(self) -> str:
        if self.kind in ("emulate", "mixed", "cuda"):
            pins = f" +{len(self.pins)} pinned" if self.pins else ""
            return f"{self.kind} {self.precision}{pins}"
        if self.kind == "trt":
            source = self.path or self.preset.name  # a Preset or ResolvedPreset: both are named
            return f"trt:{source} ({'outputs only' if self.outputs_only else 'layer-wise'})"
        return f"{self.kind}:{self.path}"


def parse_candidate(text: str, *, precision: str = "fp16", pins: Sequence[str] = (), fuse_bias: bool = True,
                    preset: str | None = None, outputs_only: bool = False) -> CandidateSpec:  # fmt: skip
    """'emulate' | 'mixed' | 'onnx:PATH' | 'engine:PATH' | 'trt[:PRESET]' | 'outputs:PATH[#runner]'.

    A bare 'trt' builds from `preset` (the command's --preset file)."""
    kind, sep, path = text.partition(":")
    if kind == "trt" and not sep and preset:
        path, sep = str(preset), ":"
    return CandidateSpec(kind=kind, path=path if sep else None, precision=precision, pins=tuple(pins), fuse_bias=fuse_bias,
                         outputs_only=outputs_only)  # fmt: skip


def parse_reference(text: str) -> tuple[str, str | None]:
    """'onnxruntime' | 'outputs:PATH[#runner]' -> (kind, path)."""
    kind, sep, path = text.partition(":")
    if kind == "onnxruntime" and not sep:
        return kind, None
    if kind == "outputs" and path:
        return kind, path
    raise UserError(f"unknown reference {text!r}; choose onnxruntime or outputs:PATH")


def default_providers() -> list[str]:
    """The CPU: the drift preview is GPU-free by design, and both sides must run the same kernels. GPU runs are
    asked for by name (the `cuda` candidate: providers.GPU_PROVIDERS)."""
    return ["cpu"]


def load_model(path: str | os.PathLike[str], *, map_weights: bool = False) -> onnx.ModelProto:
    """The model proto with external data left on disk (read it with `WeightSource(path.parent)`: sessions and
    rewrites map it when they need it); bad files are a UserError naming the file. `map_weights`: big inline
    weights too (graph.read_model)."""
    p = Path(path)
    require_regular_file(p, "ONNX file")
    try:
        model = read_mapped(p) if map_weights else None
        model = model if model is not None else load_without_weights(p)
    except Exception as exc:  # protobuf DecodeError, missing external data (FileNotFoundError / OSError), ...
        raise UserError(f"cannot load the ONNX model ({type(exc).__name__}: {exc})", p) from None
    check_runnable(model, p)  # short weights, undefined inputs, absurd dims: one line, not a crash mid-run
    return model


def candidate_model_and_weights(model: onnx.ModelProto, spec: CandidateSpec, base_dir: str | os.PathLike[str] | None = None,
                                weights=None):  # fmt: skip
    """(The candidate's model, the WeightSource its initializers are read from). `weights`: the DerivedWeights
    that holds the values of `model`'s placeholders (a `writing.by_reference` copy); None: `model` has none."""
    if spec.kind == "onnx":
        return load_model(spec.path), WeightSource(Path(spec.path).parent)
    try:
        from trt_tui.core import precision
    except ImportError:  # the precision rewrite lands separately; say what is missing rather than crash
        raise UserError(f"candidate {spec.kind!r} needs trt_tui.core.precision, which this build lacks") from None
    low = spec.precision
    if spec.kind == "emulate":
        # the emulated model runs in the parity engine's own (segment) sessions, not emulation_session:
        # check once per process that this ORT really rounds through the low precision
        precision.check_ort_keeps_rounding()
        if weights is None:  # the emulation reads the big inline weights from `model`: it holds no copy of them
            from trt_tui.core.precision.writing import by_reference

            model, weights = by_reference(model, base_dir)
        result = precision.emulate(model, low, list(spec.pins), fuse_bias=spec.fuse_bias, base_dir=base_dir, weights=weights)
        return result.model, result.weights
    if spec.kind in ("mixed", "cuda"):  # cuda: the same mixed-precision ONNX, on ONNX Runtime's CUDA EP
        result = precision.to_mixed_precision(model, low, list(spec.pins), keep_io_types=True, base_dir=base_dir)
        return result.model, result.weights
    raise UserError(f"candidate {spec.kind!r} is not an ONNX model")


def trt_engine_runner(path: str | os.PathLike[str], name: str = "tensorrt"):
    """Polygraphy's TrtRunner over a serialized engine (not activated). Needs TensorRT."""
    p = Path(path)
    if not p.exists():
        raise UserError("no such file", p)
    require_tensorrt(f"comparing engine {p.name}")
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(p))), name=name)


def trt_candidate_runner(spec: CandidateSpec, *, index=None, name: str = "candidate"):
    """A trt_preset.CandidateRunner: the TrtRunner (not activated) over an engine built from the spec's preset,
    and its TrtPresetPlan. Needs TensorRT."""
    require_tensorrt("building a candidate engine from a preset")  # before touching the preset: one clear line
    from trt_tui.core.parity.trt_preset import trt_preset_runner

    preset = spec.preset if spec.preset is not None else spec.path
    return trt_preset_runner(preset, outputs_only=spec.outputs_only, index=index, name=name)


def require_tensorrt(what: str) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise MissingBackendError(f"TensorRT is not installed on this machine ({what} needs it; pip install 'trt-tui[trt]' where NVIDIA's wheels are reachable)") from None


def onnx_runner(model: onnx.ModelProto, outputs: Sequence[str] | None = None, *, providers: Sequence[str] | None = None,
                name: str = "onnxrt", weights: WeightSource | None = None):  # fmt: skip
    """A Polygraphy ONNX Runtime runner (not activated) over `model`, with `outputs` marked (None: the model's own).

    Big initializers reach the session as OrtValues read through `weights` (external data memory-mapped),
    never inside the serialized model: no 2 GB limit, no copy of the weights.

    Graph optimisations stay off: the emulation's Cast pairs must survive, and both sides of a comparison
    should run the same per-op kernels so that only precision differs.
    """
    if outputs is not None:
        model = mark_outputs(model, outputs)
    source = weights or WeightSource()
    model, supplied = weights_apart(model, mapped=source.base_dir is not None, source=source)
    values = {t.name: source.ort_value(t) for t in supplied}
    return ort_runner(model.SerializeToString(), providers or default_providers(), name=name, initializers=values,
                      external_folder=source.base_dir)  # fmt: skip


def mark_outputs(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """A copy of `model` whose graph outputs are exactly `outputs` (exact names; unknown names are an error)."""
    produced = {t for n in model.graph.node for t in n.output if t} | {i.name for i in model.graph.input}
    missing = [t for t in outputs if t not in produced]
    if missing:
        raise UserError(f"no tensor named {', '.join(map(repr, missing[:5]))} in the model")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    types = {vi.name: vi for vi in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    del out.graph.output[:]
    for t in outputs:
        vi = types.get(t)
        out.graph.output.append(vi if vi is not None else onnx.helper.make_tensor_value_info(t, 0, None))
    return out


@dataclass
class RunnerPair:
    """An activated reference runner and candidate runner: `with make_runners(...) as pair: pair.reference.infer(feed)`."""

    reference: object
    candidate: object

    def __enter__(self) -> RunnerPair:
        self.reference.activate()
        try:
            self.candidate.activate()
        except BaseException:
            self.reference.deactivate()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for runner in (self.candidate, self.reference):
            if runner.is_active:
                runner.deactivate()

    def infer(self, feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Both runners on the same feed: (reference outputs, candidate outputs), by name."""
        return dict(self.reference.infer(feed)), dict(self.candidate.infer(feed))


def make_runners(
    model: str | os.PathLike[str] | onnx.ModelProto,
    candidate: CandidateSpec | str = "emulate",
    *,
    precision: str = "fp16",
    pins: Sequence[str] = (),
    outputs: Sequence[str] | None = None,
    providers: Sequence[str] | None = None,
) -> RunnerPair:
    """The reference (ONNX Runtime FP32) and candidate Polygraphy runners for a model, not yet activated.

    `candidate` is a `CandidateSpec` or a spec string ('emulate', 'mixed', 'onnx:PATH', 'engine:PATH'; then
    `precision`/`pins` apply). `outputs` marks tensors by exact name on both sides (None: the model outputs).
    Use as a context manager to activate both; an engine candidate keeps the outputs it was built with.
    """
    # the registry (candidates.py) builds on this module: imported here, not at the top
    from trt_tui.core.parity.candidates import CandidateContext, candidate_kind, kind_providers

    path = None if isinstance(model, onnx.ModelProto) else Path(model)
    ref_model = model if path is None else load_model(path)
    spec = parse_candidate(candidate, precision=precision, pins=pins) if isinstance(candidate, str) else candidate
    kind = candidate_kind(spec.kind)
    gpu = kind_providers(kind, ()) if kind.gpu else None  # asked for cuda: one line here when there is none
    providers = list(providers or gpu or default_providers())
    ctx = CandidateContext(spec, None, path, ref_model, providers)
    cand = kind.runner(ctx, outputs, name="candidate")  # before the reference: a refusal costs no session
    reference = onnx_runner(ref_model, outputs, providers=providers, name="reference", weights=WeightSource(ctx.base_dir))
    return RunnerPair(reference, cand)


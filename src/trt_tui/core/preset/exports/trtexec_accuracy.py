"""trtexec 11.1+ checks accuracy itself: the export writes the inputs and the FP32 reference outputs (ONNX
Runtime on the original model) as raw files next to the script, and adds

    --loadInputs=name:file,... --loadRefOutputs=name:file,... --accuracyAlgorithm=ALG --accuracyThreshold=T
    [--atol=A --rtol=R]   (l0 only)

so a user on a GPU box gets trtexec's own verdict ("Accuracy loss for tensor ...", a non-zero exit on failure).
Formats, CONFIRMED in NVIDIA/TensorRT at the 11.1 OSS release (samples/common/sampleOptions.cpp,
sampleInference.cpp, samples/trtexec/README.md section 7.5): files are raw tensor bytes in the binding's type,
no header (as --loadInputs); `--accuracyThreshold` (positive) is mandatory with reference outputs, and
--loadRefOutputs needs --loadInputs; a check fails when loss >= threshold; --atol/--rtol are refused for any
algorithm but l0. Several pairs are `--refPair=0 --loadInputs=.. --loadRefOutputs=.. --refPair=1 ...` (an
index before each pair, at least two pairs): this export writes one pair, so no --refPair. trtexec validates
FP32, FP16, INT32 and INT8 outputs only: other outputs get no reference. trtexec warns that a check built
with --onnx may be unreliable (builds are nondeterministic) and suggests --loadEngine.

The preset's default tolerance becomes one algorithm and threshold (trtexec has one threshold for all outputs):
    elemwise (every element within atol + rtol*|ref|)  -> l0 (fraction outside), threshold just above 0
    quantile q (fraction q within)                      -> l0, threshold 1 - q
    median (half the elements within)                   -> l0, threshold 0.5
    max (max |d| <= atol)                               -> lInf, threshold atol
    mean (mean |d| <= atol)                             -> l1, threshold atol
(l0's per-element test, |d| > atol + rtol*|ref|, is numpy's isclose; Polygraphy's elemwise passes an element
within atol OR rtol: close, not identical; max/mean ignore rtol.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.preset.resolved import ResolvedPreset

ALGORITHMS = ("l0", "l1", "l2", "lInf", "cos")
_CHECKABLE = {np.dtype("float32"), np.dtype("float16"), np.dtype("int32"), np.dtype("int8")}


@dataclass
class AccuracyCheck:
    algorithm: str
    threshold: float
    atol: float | None = None  # l0 only
    rtol: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class AccuracyData:
    """One input/reference pair written to disk, and the check; `args(paths)` are the trtexec flags."""

    inputs: dict[str, Path]
    references: dict[str, Path]
    check: AccuracyCheck

    def args(self, paths) -> list[str]:
        out = ["--loadInputs=" + ",".join(f"{n}:{paths(p)}" for n, p in self.inputs.items()),
               "--loadRefOutputs=" + ",".join(f"{n}:{paths(p)}" for n, p in self.references.items()),
               f"--accuracyAlgorithm={self.check.algorithm}", f"--accuracyThreshold={_fmt(self.check.threshold)}"]  # fmt: skip
        if self.check.atol is not None:
            out += [f"--atol={_fmt(self.check.atol)}", f"--rtol={_fmt(self.check.rtol)}"]
        return out


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def accuracy_check(r: ResolvedPreset, largest_output: int) -> AccuracyCheck:
    """The trtexec algorithm and threshold for the preset's default tolerance (see the module docstring)."""
    t = r.tolerances.default
    notes = []
    if r.tolerances.rules:
        notes.append("trtexec has one threshold for every output: the preset's per-output tolerances are not used")
    if t.stat == "elemwise":
        check = AccuracyCheck("l0", 0.5 / max(largest_output, 1), t.atol, t.rtol)  # any element outside fails
    elif t.stat == "quantile":
        check = AccuracyCheck("l0", max(1.0 - t.quantile, 0.5 / max(largest_output, 1)), t.atol, t.rtol)
    elif t.stat == "median":
        check = AccuracyCheck("l0", 0.5, t.atol, t.rtol)
    elif t.stat == "max":
        check = AccuracyCheck("lInf", t.atol)
    elif t.stat == "mean":
        check = AccuracyCheck("l1", t.atol)
    else:
        raise UserError(f"tolerance statistic {t.stat!r} has no trtexec accuracy algorithm", r.source_path)
    if check.threshold <= 0:
        raise UserError("trtexec needs a positive --accuracyThreshold: give the tolerance a positive atol", r.source_path)
    check.notes = notes
    return check


def write_reference_data(r: ResolvedPreset, directory: Path, stem: str, *, overwrite: bool = False) -> AccuracyData:
    """Inputs (the preset's input data, else random with its seed, at the first profile's OPT shapes) and the
    FP32 outputs of ONNX Runtime on the original model, as raw files `<stem>.<tensor>.input.bin` /
    `<stem>.<tensor>.ref.bin` in `directory`."""
    if not r.trtexec_checks_accuracy:
        raise UserError(f"trtexec checks accuracy from TensorRT 11.1 on; this preset targets TensorRT {r.trt_version} "
                        '(set trt = "11.1" in the preset)', r.source_path)  # fmt: skip
    from trt_tui.core.fileio import atomic_write
    from trt_tui.core.graph import TRTEXEC_UNSAFE, load_graph

    index = load_graph(r.model_path)
    feed = _feed(r, index)
    outputs = _reference_outputs(r, feed)
    unsafe = [n for n in [*feed, *outputs] if TRTEXEC_UNSAFE.search(n)]
    if unsafe:
        raise UserError(f"tensor name {unsafe[0]!r} contains ',' or ':' and cannot be written on a trtexec command line",
                        r.source_path)  # fmt: skip
    io_types = {f.tensor: f.dtype for f in (*r.input_formats, *r.output_formats) if f.dtype}
    inputs, refs, skipped = {}, {}, []
    for name, value in feed.items():
        inputs[name] = directory / f"{stem}.{_safe(name)}.input.bin"
        atomic_write(inputs[name], _binding_bytes(value, io_types.get(name), r), overwrite=overwrite)
    for name, value in outputs.items():
        data = _binding_array(value, io_types.get(name), r)
        if data.dtype not in _CHECKABLE:
            skipped.append(name)
            continue
        refs[name] = directory / f"{stem}.{_safe(name)}.ref.bin"
        atomic_write(refs[name], np.ascontiguousarray(data).tobytes(), overwrite=overwrite)
    if not refs:
        raise UserError("no model output has a type trtexec can check (FP32, FP16, INT32, INT8)", r.source_path)
    check = accuracy_check(r, max(int(np.asarray(v).size) for v in outputs.values()))
    if skipped:
        check.notes.append(f"not checked by trtexec (type it cannot compare): {', '.join(skipped)}")
    return AccuracyData(inputs, refs, check)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "tensor"


def _feed(r: ResolvedPreset, index) -> dict[str, np.ndarray]:
    from trt_tui.core.parity.inputs import InputSpec, load_feeds, random_feeds

    if r.input_data != "random":
        return load_feeds(r.input_data, index)[0]
    shapes = {name: tuple(triple[1]) for name, triple in (r.profiles[0] if r.profiles else {}).items()}
    spec = InputSpec(seed=r.seed if r.seed is not None else InputSpec().seed, shapes=shapes)
    return random_feeds(index, spec)[0]


def _reference_outputs(r: ResolvedPreset, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The FP32 reference by the runner every comparison uses (onnx_runner: weights mapped, not copied into a
    prepacked session; the same kernels as compare's reference)."""
    from trt_tui.core.parity.runners import load_model, onnx_runner
    from trt_tui.core.weights import WeightSource

    model = load_model(r.model_path)  # a bad file: one line naming it
    runner = onnx_runner(model, providers=["cpu"], name="FP32 reference", weights=WeightSource(Path(r.model_path).parent))
    try:
        runner.activate()
        return dict(runner.infer(feed))
    except UserError:
        raise
    except Exception as exc:  # ORT refusing the model or the data is the user's problem: one line
        raise UserError(f"ONNX Runtime could not compute the FP32 reference outputs: {' '.join(str(exc).split())[:300]}",
                        r.model_path) from None  # fmt: skip
    finally:
        if runner.is_active:
            runner.deactivate()


def _binding_array(value: np.ndarray, io_type: str | None, r: ResolvedPreset) -> np.ndarray:
    """The data in the engine binding's type: the preset's IO format type, else the graph's (11.x without
    keep_io_types: float IO in the low precision)."""
    a = np.asarray(value)
    wanted = io_type
    if wanted is None and r.uses_conversion and not r.keep_io_types and a.dtype.kind == "f":
        wanted = r.precision
    if wanted == "fp16":
        return a.astype(np.float16)
    if wanted == "bf16":
        raise UserError("trtexec cannot check bf16 bindings (it compares FP32, FP16, INT32 and INT8)", r.source_path)
    if wanted == "fp32":
        return a.astype(np.float32)
    return a


def _binding_bytes(value: np.ndarray, io_type: str | None, r: ResolvedPreset) -> bytes:
    return np.ascontiguousarray(_binding_array(value, io_type, r)).tobytes()

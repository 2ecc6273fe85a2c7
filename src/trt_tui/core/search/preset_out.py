"""The search's pins as a preset: ready to export for TensorRT 10 (`--layerPrecisions`) or 11 (mixed ONNX).

From a base preset (the one the search took its settings from) the precision, profiles, builder settings and
tolerances are kept; what names the base itself is not: the written preset gets its own name, a description
of what the search found, and artefact paths derived from its own file name (the base's engine and mixed ONNX
would otherwise be rebuilt over). Without a base, a preset like `trt-tui preset new` writes, with the
samples' shapes as the profile of the dynamic inputs and the precision's default tolerance. Either way the
route is one `trt` (10: flags; 11: strongly typed, no 10.x-only option), and the input data the search ran
on is recorded where the schema can hold it (one file, or the random seed); what it cannot hold (a folder,
several files, a sample count, value ranges) is said in the description and returned as a note. A file is
only replaced with `overwrite` (atomically, as every preset save).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.pins import PinRules
from trt_tui.core.search.result import SearchResult


@dataclass(frozen=True)
class SearchData:
    """The input data a search ran on: sample files/folders, else `samples` random ones from `seed`."""

    inputs: tuple[str, ...] = ()
    samples: int = 1
    seed: int | None = None
    ranges: bool = False  # --range values were given (a preset has no field for them)
    closed_loop: str | None = None  # a stateful search: the contract file whose closed loop was the criterion


def pins_as_rules(result: SearchResult) -> PinRules:
    return PinRules(op_types=tuple(result.rules.op_types), names=tuple(result.rules.names))


def apply_to_preset(preset, result: SearchResult):
    """A copy of `preset` whose pin rules are the search's answer (the caller decides where it goes)."""
    out = copy.deepcopy(preset)
    out.pins = pins_as_rules(result)
    return out


def _relative(path: str | os.PathLike[str], folder: Path) -> str:
    """`path` as a preset writes it: relative to the preset's folder, so the pair can move together."""
    absolute = Path(path).absolute()
    try:
        return Path(os.path.relpath(absolute, folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return absolute.as_posix()


def new_preset(model: str | os.PathLike[str], precision: str, result: SearchResult, target: Path,
               sample: dict[str, np.ndarray] | None, trt: int = 10):  # fmt: skip
    """A preset for `model` (as `trt-tui preset new` makes one) with the answer's pins."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.preset import PrecisionSettings, Preset, Profile
    from trt_tui.core.preset.model import ComparisonDefaults
    from trt_tui.core.tolerance import default_tolerance

    index = load_graph(model)
    # `*:fp16` on TensorRT 10: the search verified the pins with every other node in low precision
    prec = PrecisionSettings.for_route(precision, trt, force_low_precision=True)
    shapes = {}
    for t in index.inputs:
        if t.dynamic_axes and sample is not None and t.name in sample:
            s = tuple(int(d) for d in np.shape(sample[t.name]))
            shapes[t.name] = {"min": s, "opt": s, "max": s}
    return Preset(
        model=_relative(model, target.parent), trt=trt, precision=prec, pins=pins_as_rules(result),
        profiles=[Profile(name="search", shapes=shapes)] if shapes else [], path=target,
        comparison=ComparisonDefaults(default=default_tolerance(precision)),
    )  # fmt: skip


def _set_route(preset, trt: int) -> None:
    """Switch a copied preset to TensorRT `trt`: 11 drops the 10.x-only options it would reject."""
    from trt_tui.core.preset import PrecisionSettings

    if trt == preset.trt:
        return
    old = preset.precision
    preset.precision = PrecisionSettings.for_route(old.mode, trt, force_low_precision=True)
    preset.precision.tf32, preset.precision.keep_io_types = old.tf32, old.keep_io_types
    preset.trt, preset.trt_minor = trt, None


def _record_data(preset, data: SearchData) -> tuple[str, str | None]:
    """Set the preset's input data to what the search ran on, where the schema can hold it.
    Returns (how the description says it, a note on what the preset could not keep, or None)."""
    c = preset.comparison
    if data.closed_loop is not None:  # a contract's stream, not comparison data: the preset's is left as it is
        return f"checked by the closed loop of {Path(data.closed_loop).name}", None
    if data.inputs:
        if len(data.inputs) == 1 and Path(data.inputs[0]).is_file():
            c.input_data = _relative(data.inputs[0], preset.base_dir)
            return f"searched on {Path(data.inputs[0]).name}", None
        where = ", ".join(Path(p).name for p in data.inputs)
        return f"searched on the samples in {where}", (
            f"a preset holds one input file, not {where}: `trt-tui compare --preset` checks "
            f"{'random data' if c.input_data == 'random' else c.input_data}; give it --inputs FILE for each sample file")
    c.input_data, c.seed = "random", data.seed
    said = f"searched on {data.samples} random sample{'s' if data.samples != 1 else ''} (seed {data.seed})"
    missing = []
    if data.samples > 1:
        missing.append(f"the sample count (give `trt-tui compare --preset` --iterations {data.samples})")
    if data.ranges:
        missing.append("the --range values (give compare the same --range)")
    return said, ("a preset does not keep " + " nor ".join(missing)) if missing else None


def write_preset(result: SearchResult, target: str | os.PathLike[str], *, base=None, model=None, precision: str = "fp16",
                 sample: dict[str, np.ndarray] | None = None, targets=(), trt: int | None = None,
                 data: SearchData | None = None, overwrite: bool = False,
                 infinities_equal: bool = False) -> tuple[Path, str | None]:  # fmt: skip
    """Write the answer as a preset at `target`; validated before writing. Returns (the path, a note on the
    search's input data the preset could not keep, or None).
    `targets`: the output targets the search met, kept as the preset's `[comparison] targets`, so that
    `trt-tui compare --preset` judges the pins by what they were found for (its per-tensor tolerances are
    stricter: internal tensors drift more than the outputs, and a search answer failed them).
    `trt`: the TensorRT route (None: the base preset's, else 10). `infinities_equal`: the search counted the
    same +-inf as equal; the preset says so, so that compare judges the outputs as the search did."""
    from trt_tui.core.preset import save_preset, validate_preset

    path = Path(target).absolute()
    if path.exists() and not overwrite:
        raise UserError("already exists; pass --force to overwrite", path)
    if not result.passed:
        raise UserError("no passing pin set was found: no preset written", path)
    route = trt if trt is not None else (base.trt if base is not None else 10)
    if base is not None:
        preset = apply_to_preset(base, result)
        _set_route(preset, route)
        preset.builder.engine = preset.builder.converted_model = None  # <own stem>.plan / .mixed.onnx, not the base's
    else:
        preset = new_preset(model, precision, result, path, sample, route)
    preset.name = path.stem
    said, note = _record_data(preset, data or SearchData())
    if targets:
        preset.comparison.targets = list(targets)
    if infinities_equal:
        preset.comparison.infinities_compare_equal = True
    kept = len(result.pins)
    preset.description = (f"FP32 pins found by trt-tui search for {'; '.join(result.criterion)}: {kept} node"
                          f"{'s' if kept != 1 else ''} kept FP32 ({result.rules.text()}), {precision} elsewhere, "
                          f"TensorRT {route} route; {said}" + (f"; note: {note}" if note else ""))  # fmt: skip
    errors = [p for p in validate_preset(preset) if p.is_error]
    if errors:
        raise UserError(f"the preset would not be valid: {errors[0].one_line()}", path)
    return save_preset(preset, path, overwrite=overwrite), note

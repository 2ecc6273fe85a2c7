"""The search's pins as a preset: ready to export for TensorRT 10 (`--layerPrecisions`) and 11 (mixed ONNX).

From a base preset (the one the search took its settings from), only the pin rules change: op types whose
every node is pinned, plus the other nodes by name; the rest (precision, profiles, builder settings,
tolerances) is kept. Without one, a TensorRT 10 preset like `trt-tui preset new` writes, with the samples'
shapes as the profile of the dynamic inputs. The file is never overwritten.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.pins import PinRules
from trt_tui.core.search.result import SearchResult


def pins_as_rules(result: SearchResult) -> PinRules:
    return PinRules(op_types=tuple(result.rules.op_types), names=tuple(result.rules.names))


def apply_to_preset(preset, result: SearchResult):
    """A copy of `preset` whose pin rules are the search's answer (the caller decides where it goes)."""
    out = copy.deepcopy(preset)
    out.pins = pins_as_rules(result)
    return out


def new_preset(model: str | os.PathLike[str], precision: str, result: SearchResult, target: Path, sample: dict[str, np.ndarray] | None):
    """A TensorRT 10 preset for `model` (as `trt-tui preset new` makes one) with the answer's pins."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.preset import PrecisionSettings, Preset, Profile

    index = load_graph(model)
    prec = PrecisionSettings(mode=precision, strongly_typed=False, constraints="obey", force_low_precision=True,
                             pin_output_types=True)  # fmt: skip
    shapes = {}
    for t in index.inputs:
        if t.dynamic_axes and sample is not None and t.name in sample:
            s = tuple(int(d) for d in np.shape(sample[t.name]))
            shapes[t.name] = {"min": s, "opt": s, "max": s}
    model_path = Path(model).absolute()
    try:
        model_text = Path(os.path.relpath(model_path, target.parent)).as_posix()
    except ValueError:  # another drive (Windows)
        model_text = model_path.as_posix()
    return Preset(
        model=model_text, name=target.stem, description=f"FP32 pins found by trt-tui search ({result.rules.text()}): "
        + "; ".join(result.criterion), trt=10, precision=prec, pins=pins_as_rules(result),
        profiles=[Profile(name="search", shapes=shapes)] if shapes else [], path=target,
    )  # fmt: skip


def write_preset(result: SearchResult, target: str | os.PathLike[str], *, base=None, model=None, precision: str = "fp16",
                 sample: dict[str, np.ndarray] | None = None, targets=()) -> Path:  # fmt: skip
    """Write the answer as a preset at `target` (never over an existing file); validated before writing.
    `targets`: the output targets the search met, kept as the preset's `[comparison] targets`, so that
    `trt-tui compare --preset` judges the pins by what they were found for (its per-tensor tolerances are
    stricter: internal tensors drift more than the outputs, and a search answer failed them)."""
    from trt_tui.core.preset import save_preset, validate_preset

    path = Path(target).absolute()
    if path.exists():
        raise UserError("already exists; trt-tui search never overwrites a preset: choose another name", path)
    if not result.passed:
        raise UserError("no passing pin set was found: no preset written", path)
    preset = apply_to_preset(base, result) if base is not None else new_preset(model, precision, result, path, sample)
    if targets:
        preset.comparison.targets = list(targets)
    errors = [p for p in validate_preset(preset) if p.is_error]
    if errors:
        raise UserError(f"the preset would not be valid: {errors[0].one_line()}", path)
    return save_preset(preset, path, overwrite=False)

"""Input data and saved outputs for a comparison: random feeds, `.npz` files and Polygraphy JSON.

Random feeds come from Polygraphy's own `DataLoader`, so the same seed gives the same data as
`polygraphy run --seed N` (the user can reproduce a trt_tui comparison with Polygraphy and vice versa).
Saved outputs are Polygraphy RunResults JSON (`polygraphy run --save-outputs`, or a PyTorch reference saved
through `RunResults`) or `.npz` (tensor name -> array); both are read by exact tensor name only.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import require_regular_file
from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.constants import DEFAULT_SEED


def parse_shape(text: str, source: str | None = None) -> tuple[int, ...]:
    """'1x64x256' or '1,64,256' -> (1, 64, 256)."""
    parts = text.replace(",", "x").split("x") if text.strip() else []
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"bad shape {text!r}: expected numbers separated by 'x', e.g. 1x64x256", source) from None
    if any(d < 0 for d in shape):
        raise UserError(f"bad shape {text!r}: dimensions must be >= 0", source)
    return shape


@dataclass
class InputSpec:
    """How to make random inputs: shapes per input (or per named dim), value ranges per input."""

    seed: int = DEFAULT_SEED
    iterations: int = 1
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # input name -> concrete shape
    dims: dict[str, int] = field(default_factory=dict)  # symbolic dim name ("batch", "T") -> value
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # input name or "" (default) -> (lo, hi)


def resolve_shapes(index: GraphIndex, spec: InputSpec, warnings: list[str] | None = None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Concrete (dtype, shape) per model input. Unknown dynamic dims become 1, as Polygraphy does, with a warning."""
    names = {t.name for t in index.inputs}
    unknown = sorted(set(spec.shapes) - names) + sorted(k for k in spec.ranges if k and k not in names)
    if unknown:
        raise UserError(f"no model input named {', '.join(map(repr, unknown))}; inputs are {', '.join(sorted(names))}", index.path)
    out = {}
    for t in index.inputs:
        if t.dtype is None or t.dtype == "undefined":
            raise UserError(f"input {t.name!r} has no element type", index.path)
        if t.name in spec.shapes:
            shape = spec.shapes[t.name]
            if t.shape is not None and (len(shape) != len(t.shape) or any(isinstance(d, int) and d != s for d, s in zip(t.shape, shape))):
                raise UserError(f"shape {shape} does not fit input {t.name!r} of shape {t.shape_text()}", index.path)
        elif t.shape is None:
            raise UserError(f"input {t.name!r} has unknown rank; give its shape", index.path)
        else:
            shape = []
            for d in t.shape:
                if isinstance(d, int):
                    shape.append(d)
                elif isinstance(d, str) and d in spec.dims:
                    shape.append(spec.dims[d])
                else:
                    shape.append(1)
                    if warnings is not None:
                        warnings.append(f"input {t.name!r}: dynamic dim {d or '?'} set to 1 (give a shape to change it)")
            shape = tuple(shape)
        out[t.name] = (t.dtype, tuple(shape))
    return out


def random_feeds(index: GraphIndex, spec: InputSpec, warnings: list[str] | None = None) -> list[dict[str, np.ndarray]]:
    """`spec.iterations` feed dicts from Polygraphy's DataLoader (seed, per-input ranges, integer ranges)."""
    from polygraphy.common import TensorMetadata
    from polygraphy.comparator import DataLoader

    from trt_tui.core.parity.segments import quiet_polygraphy

    quiet_polygraphy()

    meta = TensorMetadata()
    for name, (dtype, shape) in resolve_shapes(index, spec, warnings).items():
        meta.add(name, np.dtype(_numpy_dtype(dtype)), shape)
    ranges = dict(spec.ranges) or None
    loader = DataLoader(seed=spec.seed, iterations=spec.iterations, input_metadata=meta, val_range=ranges)
    loader.input_metadata = meta  # normally set by the Comparator from a runner; ours is the model's own
    return [dict(loader[i]) for i in range(spec.iterations)]


def _numpy_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return dtype


def load_feeds(path: str | os.PathLike[str], index: GraphIndex) -> list[dict[str, np.ndarray]]:
    """Feeds from `.npz` (one iteration) or Polygraphy JSON (`--save-inputs`: a list of feed dicts)."""
    p = Path(path)
    data = _load_any(p)
    iterations = data if isinstance(data, list) else [data]
    if not iterations or not all(isinstance(it, Mapping) for it in iterations):
        raise UserError("expected a feed dict or a list of feed dicts (input name -> array)", p)
    names = [t.name for t in index.inputs]
    feeds = []
    for n, it in enumerate(iterations):
        missing = [k for k in names if k not in it]
        if missing:
            raise UserError(f"iteration {n} has no data for input(s) {', '.join(missing)} (inputs are matched by exact name)", p)
        feeds.append({k: np.asarray(it[k]) for k in names})
    return feeds


@dataclass
class SavedOutputs:
    """Outputs saved by an earlier run: one mapping name -> array per iteration (arrays may load lazily)."""

    label: str
    iterations: list[Mapping[str, np.ndarray]]
    inputs: list[dict[str, np.ndarray]] | None = None  # when the file also holds the model inputs

    @property
    def names(self) -> list[str]:
        return list(self.iterations[0]) if self.iterations else []


def load_saved_outputs(spec: str) -> SavedOutputs:
    """`PATH` or `PATH#runner` (a Polygraphy RunResults JSON holding several runners) or an `.npz`."""
    path_text, _, runner = spec.partition("#")
    p = Path(path_text)
    require_regular_file(p)
    if p.suffix == ".npz":
        try:
            npz = np.load(p, allow_pickle=False)  # lazy: each array is read when compared
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"not a readable .npz file ({exc})", p) from None
        return SavedOutputs(label=f"outputs:{p.name}", iterations=[npz])
    from polygraphy.comparator import RunResults

    try:
        results = RunResults.load(str(p))
    except Exception as exc:  # Polygraphy raises several types for a bad file; all mean "not RunResults"
        raise UserError(f"not a Polygraphy RunResults JSON file ({type(exc).__name__}: {_first_line(exc)})", p) from None
    names = [name for name, _ in results.lst]
    if not names:
        raise UserError("holds no runner results", p)
    if runner:
        if runner not in names:
            raise UserError(f"no runner named {runner!r}; it holds {', '.join(names)}", p)
    elif len(names) > 1:
        raise UserError(f"holds results of several runners ({', '.join(names)}); choose one with {p}#RUNNER", p)
    else:
        runner = names[0]
    iterations = [dict(it) for it in results[runner]]
    return SavedOutputs(label=f"outputs:{p.name}#{runner}", iterations=iterations)


def _load_any(p: Path):
    require_regular_file(p)
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"not a readable .npz file ({exc})", p) from None
    from polygraphy.json import load_json

    try:
        return load_json(str(p))
    except Exception as exc:  # Polygraphy raises several types for a bad file
        raise UserError(f"not a Polygraphy JSON data file ({type(exc).__name__}: {_first_line(exc)})", p) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""

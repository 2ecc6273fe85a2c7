"""Input data and saved outputs for a comparison: random feeds, `.npz` files and Polygraphy JSON.

Random feeds come from Polygraphy's own `DataLoader`, so the same seed gives the same data as
`polygraphy run --seed N` (the user can reproduce a trt_tui comparison with Polygraphy and vice versa).
Saved outputs are Polygraphy RunResults JSON (`polygraphy run --save-outputs`, or a PyTorch reference saved
through `RunResults`) or `.npz` (tensor name -> array); both are read by exact tensor name only.
"""

from __future__ import annotations

import os
import re
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


def parse_dim_flag(text: str) -> tuple[str, tuple[int, int, int]]:
    """--dim 'NAME=N' or 'NAME=MIN,OPT,MAX' -> (NAME, (min, opt, max)). NAME is a symbolic dim ('T') or, for an
    unnamed `?` axis, 'INPUT:AXIS'. One value means min = opt = max."""
    name, sep, value = text.rpartition("=")
    try:
        parts = tuple(int(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if not sep or not name or len(parts) not in (1, 3) or any(p < 0 for p in parts):
        raise UserError(f"--dim {text!r}: expected NAME=N or NAME=MIN,OPT,MAX (NAME a dim name or INPUT:AXIS), e.g. T=64")
    triple = parts * 3 if len(parts) == 1 else parts
    if not triple[0] <= triple[1] <= triple[2]:
        raise UserError(f"--dim {text!r}: needs MIN <= OPT <= MAX")
    return name, triple  # type: ignore[return-value]


def parse_shape_flag(text: str) -> tuple[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """--shape 'INPUT:SHAPE' or 'INPUT:MIN/OPT/MAX' (e.g. x:1x80x100/4x80x400/8x80x800) -> (INPUT, triple)."""
    name, sep, shapes = text.rpartition(":")
    if not sep or not name:
        raise UserError(f"--shape {text!r}: expected INPUT:SHAPE or INPUT:MIN/OPT/MAX, e.g. x:1x64x256")
    parts = tuple(parse_shape(p) for p in shapes.split("/"))
    if len(parts) not in (1, 3) or len({len(p) for p in parts}) != 1:
        raise UserError(f"--shape {text!r}: give one shape, or MIN/OPT/MAX shapes of the same rank")
    triple = parts * 3 if len(parts) == 1 else parts
    if not all(a <= b <= c for a, b, c in zip(*triple)):
        raise UserError(f"--shape {text!r}: needs MIN <= OPT <= MAX on every axis")
    return name, triple  # type: ignore[return-value]


@dataclass
class InputSpec:
    """How to make random inputs: shapes per input (or per named dim), value ranges per input."""

    seed: int = DEFAULT_SEED
    iterations: int = 1
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # input name -> concrete shape
    dims: dict[str, int] = field(default_factory=dict)  # symbolic dim name ("batch", "T") -> value
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # input name or "" (default) -> (lo, hi)


def dim_key(input_name: str, axis: int) -> str:
    """The --dim key of an unnamed (`?`) dynamic axis: 'INPUT:AXIS' (a named dim uses its own name)."""
    return f"{input_name}:{axis}"


def resolve_shapes(index: GraphIndex, spec: InputSpec, warnings: list[str] | None = None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Concrete (dtype, shape) per model input. A dynamic dim takes `spec.dims[name]` (unnamed `?` axes:
    `spec.dims["INPUT:AXIS"]`); one nobody set becomes 1, as Polygraphy does, with one warning per dim saying
    which inputs it touched and the flag that sets it."""
    names = {t.name for t in index.inputs}
    unknown = sorted(set(spec.shapes) - names) + sorted(k for k in spec.ranges if k and k not in names)
    if unknown:
        raise UserError(f"no model input named {', '.join(map(repr, unknown))}; inputs are {', '.join(sorted(names))}", index.path)
    named = {d for t in index.inputs for d in (t.shape or ()) if isinstance(d, str)}
    unnamed = {dim_key(t.name, a) for t in index.inputs for a, d in enumerate(t.shape or ()) if not isinstance(d, (int, str))}
    stray = sorted(set(spec.dims) - named - unnamed)
    if stray:
        known = ", ".join(sorted(named | unnamed)) or "none"
        raise UserError(f"--dim {', '.join(map(repr, stray))}: the model has no such dynamic dim (dims: {known})", index.path)
    defaulted: dict[str, list[str]] = {}  # dim (or INPUT:AXIS) -> inputs where it became 1
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
            for axis, d in enumerate(t.shape):
                key = d if isinstance(d, str) else dim_key(t.name, axis)
                if isinstance(d, int):
                    shape.append(d)
                elif key in spec.dims:
                    shape.append(spec.dims[key])
                else:
                    shape.append(1)
                    defaulted.setdefault(key, []).append(t.name)
            shape = tuple(shape)
        out[t.name] = (t.dtype, tuple(shape))
    if warnings is not None:
        for key, inputs in defaulted.items():
            what = f"dynamic dim {key!r}" if key in named else f"unnamed dynamic axis {key.rpartition(':')[2]} of {inputs[0]!r}"
            warnings.append(f"{what} (input(s) {', '.join(inputs)}) set to 1: set it with --dim {key}=N")
    return out


# integer inputs whose names say what they hold (searched, case-insensitive)
LENGTH_NAME = re.compile(r"(^|[_.\-/])(len|lens|length|lengths|seq_?len|num_frames)($|[_.\-/])|length", re.IGNORECASE)
IDS_NAME = re.compile(r"(^|[_.\-/])(ids?|tokens?|token_ids|input_ids|phonemes?|phoneme_ids|indices)($|[_.\-/])", re.IGNORECASE)
DEFAULT_VOCAB = 16  # ids with no embedding table in sight are drawn from [0, DEFAULT_VOCAB)


def _length_value(index: GraphIndex, name: str, shapes: dict[str, tuple[str, tuple[int, ...]]]) -> tuple[int, str] | None:
    """(value, why) for a length input: the extent of the input it measures. That input is the one whose name
    is the longest prefix of this one's (`audio_len` -> `audio`), else the first float input; its extent is
    the time axis the graph shows for a cache (`cache_last_channel_len` -> axis 2 of [layers, B, time, d]: see
    core.cache_layout), else its first named non-batch dim, else its smallest non-batch axis."""
    from trt_tui.core.cache_layout import cache_time_axis

    floats = [t for t in index.inputs if t.is_float and len(shapes[t.name][1]) >= 1]
    if not floats:
        return None
    stem = LENGTH_NAME.sub("", name).rstrip("_")
    target = max((t for t in floats if stem and t.name.startswith(stem)), key=lambda t: len(t.name), default=floats[0])
    dims = shapes[target.name][1]
    length = index.tensor(name)
    told = cache_time_axis(index, target, length) if stem and target.name.startswith(stem) and length else None
    if told is not None and told.time_axis < len(dims):
        return dims[told.time_axis], f"axis {told.time_axis} of {target.name!r}: {told.why}"
    batch = {d for t in index.inputs for d in (t.shape or ())[:1] if isinstance(d, str)}  # named leading dims
    axes = [a for a, d in enumerate(target.shape or ()) if d not in batch] or list(range(len(dims)))
    named = [a for a in axes if isinstance((target.shape or ())[a], str)]
    axis = named[0] if named else min(axes, key=lambda a: dims[a])
    return dims[axis], f"axis {axis} of {target.name!r}"


def _vocab(index: GraphIndex, name: str) -> tuple[int, str] | None:
    """(rows, table) of a constant embedding table the input indexes (a Gather reading it as indices)."""
    for consumer in index.consumers.get(name, ()):
        node = index.node(consumer)
        if node is None or node.op_type != "Gather" or len(node.inputs) < 2 or node.inputs[1] != name:
            continue
        table = index.tensor(node.inputs[0])
        axis = next((a.i for a in node.proto.attribute if a.name == "axis"), 0) if node.proto is not None else 0
        if node.inputs[0] in index.constant_tensors and table is not None and table.shape and isinstance(table.shape[axis], int):
            return table.shape[axis], node.inputs[0]
    return None


def integer_defaults(index: GraphIndex, spec: InputSpec, shapes: dict[str, tuple[str, tuple[int, ...]]],
                     warnings: list[str] | None) -> dict[str, tuple[str, int, int]]:  # fmt: skip
    """Integer inputs the user gave no range for -> ("length", value, value) or ("ids", 0, vocab): valid values
    instead of Polygraphy's random 0/1. Every choice (and every integer input left at 0/1) is a warning
    saying how to set it."""
    out: dict[str, tuple[str, int, int]] = {}
    for t in index.inputs:
        dtype = shapes[t.name][0]
        if not dtype.startswith(("int", "uint")) or t.name in spec.ranges or "" in spec.ranges:
            continue
        how = f"--range {t.name}:LO,HI or --inputs FILE"
        if LENGTH_NAME.search(t.name) and (found := _length_value(index, t.name, shapes)) is not None:
            value, why = found
            out[t.name] = ("length", value, value)
            note = f"integer input {t.name!r} looks like a length: set to {value} ({why}); change it with {how}"
        elif IDS_NAME.search(t.name):
            vocab = _vocab(index, t.name)
            rows, where = vocab if vocab is not None else (DEFAULT_VOCAB, None)
            out[t.name] = ("ids", 0, max(rows, 1))
            src = f"the rows of embedding table {where!r}" if where else "no embedding table found"
            note = f"integer input {t.name!r} looks like ids: drawn from [0, {rows}) ({src}); change it with {how}"
        else:
            note = f"integer input {t.name!r} filled with random 0/1 (Polygraphy's default range): give {how}"
        if warnings is not None:
            warnings.append(note)
    return out


def import_for_random_feeds() -> None:
    """Import now the Polygraphy modules `random_feeds` needs, for a caller that draws feeds on a thread.

    Polygraphy's `@mod.export` looks up its caller's module with `inspect.getmodule`. That function's caches
    race when two threads import Polygraphy modules at once, and it then returns None. A comparison's child
    failed this way under load, 1 run in 10 to 20: "'NoneType' object has no attribute '__all__'". There the
    feeds thread imported `polygraphy.comparator` while the candidate's setup imported other Polygraphy modules.
    Imported here first, the thread imports none."""
    import polygraphy.common  # noqa: F401
    import polygraphy.comparator  # noqa: F401

    from trt_tui.core.parity import segments  # noqa: F401


def random_feeds(index: GraphIndex, spec: InputSpec, warnings: list[str] | None = None) -> list[dict[str, np.ndarray]]:
    """`spec.iterations` feed dicts from Polygraphy's DataLoader (seed, per-input ranges, integer ranges);
    integer lengths and ids get valid values (integer_defaults)."""
    from polygraphy.common import TensorMetadata
    from polygraphy.comparator import DataLoader

    from trt_tui.core.parity.segments import quiet_polygraphy

    quiet_polygraphy()

    shapes = resolve_shapes(index, spec, warnings)
    bf16 = [name for name, (dtype, _) in shapes.items() if dtype == "bfloat16"]
    if bf16:  # neither Polygraphy's data loader nor ONNX Runtime's Python API takes numpy bf16 inputs
        raise UserError(f"model input(s) {', '.join(bf16)} are bfloat16, which ONNX Runtime's Python API cannot be "
                        "fed; compare the FP32 model instead (convert keeps FP32 IO with --keep-io-types)", index.path)  # fmt: skip
    meta = TensorMetadata()
    for name, (dtype, shape) in shapes.items():
        meta.add(name, np.dtype(_numpy_dtype(dtype)), shape)
    ranges = dict(spec.ranges) or None
    loader = DataLoader(seed=spec.seed, iterations=spec.iterations, input_metadata=meta, val_range=ranges)
    loader.input_metadata = meta  # normally set by the Comparator from a runner; ours is the model's own
    feeds = [dict(loader[i]) for i in range(spec.iterations)]
    chosen = integer_defaults(index, spec, shapes, warnings)
    rng = np.random.default_rng(spec.seed)
    for feed in feeds:
        for name, (kind, lo, hi) in chosen.items():
            arr = feed[name]
            values = np.full(arr.shape, lo) if kind == "length" else rng.integers(lo, hi, size=arr.shape)
            feed[name] = values.astype(arr.dtype)
    return feeds


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
        feed = {k: np.asarray(it[k]) for k in names}
        for t in index.inputs:
            problem = _feed_mismatch(t, feed[t.name])
            if problem:  # here, naming the file: ONNX Runtime's own refusal names neither the file nor the sample
                raise UserError(f"iteration {n}: input {t.name!r} {problem}", p)
        feeds.append(feed)
    return feeds


def _feed_mismatch(t, value: np.ndarray) -> str | None:
    """What makes `value` no feed for the model input `t`: another dtype, rank or fixed dim (None: it fits;
    symbolic and unknown dims take any size; a dtype numpy cannot name, bf16, is left to the runtime; so is the
    shape of an input declared rank 0, which ONNX Runtime does not check)."""
    try:
        expected = np.dtype(t.dtype) if t.dtype and t.dtype != "bfloat16" else None
    except TypeError:
        expected = None
    if expected is not None and value.dtype != expected and value.dtype.kind in "biufc" and expected.kind in "biufc":
        return f"is {value.dtype.name}, the model takes {expected.name} (convert it, e.g. array.astype(np.{expected.name}))"
    if not t.shape:  # unknown rank, or declared rank 0: ONNX Runtime checks no shape there (a [1] feed runs)
        return None
    shape = "x".join(map(str, value.shape)) or "scalar"
    if value.ndim != len(t.shape):
        return f"has shape {shape}, the model takes {t.shape_text()} (rank {len(t.shape)})"
    bad = [i for i, (d, v) in enumerate(zip(t.shape, value.shape)) if isinstance(d, int) and d >= 0 and d != v]
    if bad:
        return f"has shape {shape}, the model takes {t.shape_text()} (axis {bad[0]} must be {t.shape[bad[0]]})"
    return None


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

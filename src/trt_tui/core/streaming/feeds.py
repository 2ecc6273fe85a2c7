"""What goes into each chunk: the stream inputs (generated from the contract's feeds or read from a file)
and the initial state.

Generated inputs are reproducible per chunk: chunk i draws from `default_rng([seed, i])`, so chunk 7 is
the same whether the run has 10 chunks or 300. An inputs file is an `.npz` with one array per input,
stacked along a leading chunk axis (`audio_signal` of shape [chunks, B, 32, 8]) or one array per chunk
(`audio_signal:0`, `audio_signal:1`, ... for schedules whose frame counts differ), or a Polygraphy inputs
JSON (`polygraphy run --save-inputs`: a list of {name: array}, one per chunk).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.streaming.contract import Contract, TensorSpec
from trt_tui.core.streaming.schedule import ChunkPlan


def numpy_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(name)


def concrete_shape(contract: Contract, spec: TensorSpec, frames: int | None) -> tuple[int, ...]:
    axis = contract.schedule.time_axes.get(spec.name)
    shape = []
    for i, d in enumerate(spec.shape):
        if i == axis and frames is not None:
            shape.append(frames)
        elif isinstance(d, int):
            shape.append(d)
        else:
            shape.append(contract.dims[d])  # validated: every named dim has a value
    return tuple(shape)


def initial_state(contract: Contract) -> dict[str, np.ndarray]:
    """The state inputs at chunk 0, by input name."""
    out = {}
    for pair in contract.state:
        spec = contract.inputs[pair.input]
        shape = concrete_shape(contract, spec, None)
        dtype = numpy_dtype(spec.dtype)
        if pair.init.kind == "file":
            arr = _load_npy(pair.init.path)
            if arr.shape != shape:
                raise UserError(f"initial state for {pair.input} has shape {list(arr.shape)}, expected {list(shape)}", pair.init.path)
            out[pair.input] = arr.astype(dtype, copy=False)
        else:
            out[pair.input] = np.full(shape, pair.init.value if pair.init.kind == "constant" else 0, dtype=dtype)
    return out


class StreamInputs:
    """Per-chunk feeds for every input that is not a state: from the inputs file first, else generated."""

    def __init__(self, contract: Contract, inputs_file: str | os.PathLike[str] | None = None, *,
                 require_feeds: bool = True) -> None:  # fmt: skip
        self.contract = contract
        self.file = None if inputs_file is None else Path(inputs_file)
        self.loaded: list[dict[str, np.ndarray]] | None = None if self.file is None else load_inputs_file(self.file)
        state_inputs = contract.state_inputs
        self.names = [n for n in contract.inputs if n not in state_inputs]
        missing = [n for n in self.names if contract.inputs[n].feed is None and not self._in_file(n)]
        if missing and require_feeds:
            where = f"in {self.file}" if self.file else "(no --inputs file given)"
            raise UserError(f"no feed for input(s) {', '.join(missing)} and no data {where}", contract.path)

    @property
    def from_file(self) -> set[str]:
        """Inputs the inputs file provides on every chunk."""
        return {n for n in self.names if self._in_file(n)}

    def _in_file(self, name: str) -> bool:
        return bool(self.loaded) and all(name in chunk for chunk in self.loaded)

    @property
    def available_chunks(self) -> int | None:
        """How many chunks the inputs file holds (None: generated inputs never run out)."""
        return None if self.loaded is None else len(self.loaded)

    def feeds(self, plan: ChunkPlan) -> dict[str, np.ndarray]:
        c = self.contract
        rng = np.random.default_rng([c.schedule.seed, plan.index])
        out = {}
        for name in self.names:
            spec = c.inputs[name]
            shape = concrete_shape(c, spec, plan.frames)
            dtype = numpy_dtype(spec.dtype)
            if self._in_file(name):
                if plan.index >= len(self.loaded):
                    raise UserError(f"holds {len(self.loaded)} chunks; chunk {plan.index} was asked for", self.file)
                arr = np.asarray(self.loaded[plan.index][name])
                if arr.shape != shape:
                    raise UserError(
                        f"{name} of chunk {plan.index} has shape {list(arr.shape)}, the contract expects {list(shape)}",
                        self.file,
                    )
                out[name] = arr.astype(dtype, copy=False)
                continue
            f = spec.feed
            if f.kind == "frames":
                n = plan.frames if plan.frames is not None else _fixed_frames(c)
                out[name] = np.full(shape, n, dtype=dtype)
            elif f.kind == "constant":
                out[name] = np.full(shape, f.value, dtype=dtype)
            elif f.kind == "normal":
                out[name] = (rng.standard_normal(shape) * f.std + f.mean).astype(dtype)
            else:
                out[name] = rng.uniform(f.low, f.high, shape).astype(dtype)
        return out


def _fixed_frames(c: Contract) -> int:
    """The frame count of a contract whose schedule resizes nothing: the time axis's fixed size."""
    for name, axis in c.schedule.time_axes.items():
        dim = c.inputs[name].shape[axis]
        if isinstance(dim, int):
            return dim
    raise UserError("a 'frames' feed needs schedule.frames or a time axis of fixed size", c.path)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read as .npy: {exc}", path) from None


def load_inputs_file(path: Path) -> list[dict[str, np.ndarray]]:
    if not path.is_file():
        raise UserError("no such file", path)
    if path.suffix == ".json":
        return _load_polygraphy_json(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read as .npz (or a Polygraphy inputs .json): {exc}", path) from None
    per_chunk: dict[int, dict[str, np.ndarray]] = {}
    stacked: dict[str, np.ndarray] = {}
    for key, arr in arrays.items():
        name, sep, idx = key.rpartition(":")
        if sep and idx.isdigit():
            per_chunk.setdefault(int(idx), {})[name] = arr
        else:
            stacked[key] = arr
    n = min([a.shape[0] for a in stacked.values() if a.ndim] + ([max(per_chunk) + 1] if per_chunk else []), default=0)
    if n == 0:
        raise UserError("holds no chunk of any input", path)
    chunks = []
    for i in range(n):
        feed = {k: a[i] for k, a in stacked.items() if a.ndim}
        feed.update(per_chunk.get(i, {}))
        chunks.append(feed)
    return chunks


def _load_polygraphy_json(path: Path) -> list[dict[str, np.ndarray]]:
    from polygraphy.json import load_json

    try:
        data = load_json(str(path))
    except Exception as exc:  # Polygraphy raises a variety of errors on foreign JSON
        raise UserError(f"cannot read as Polygraphy inputs JSON: {' '.join(str(exc).split())[:200]}", path) from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise UserError("a Polygraphy inputs JSON must hold a list of {name: array} feeds, one per chunk", path)
    return [{k: np.asarray(v) for k, v in d.items()} for d in data]

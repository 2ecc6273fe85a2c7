"""A recorded reference: per-chunk inputs, state and outputs written by a framework run (PyTorch, NeMo...)
with `trt_tui.recorder`, or by `trt-tui stream --record`, read lazily one chunk at a time.

    rec = open_recording("ref_300")            # a folder with manifest.json + chunk_*.npz, or a .jsonl file
    len(rec); inputs, outputs = rec.chunk(7)   # only chunk 7 is read

A JSON Lines file is indexed once (line offsets, read in blocks: memory stays bounded whatever its size) and
then each chunk's line is read on demand. `RecordedReference` is the reference side of a stream
(`engine.ReferenceSource`): the recorded stream inputs drive every candidate; the state a chunk ran with is
the recorded state input of that chunk, else the recorded state output of the chunk before, else the
contract's initial state (chunk 0). Every record is checked against the contract as it is read: a missing
tensor, another kind of dtype, or a shape the contract does not allow is one line naming the file and chunk.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.streaming.contract import Contract, TensorSpec
from trt_tui.core.streaming.engine import RefChunk
from trt_tui.core.streaming.feeds import initial_state, numpy_dtype
from trt_tui.recorder import CHUNK_FILE, FORMAT, MANIFEST

_BLOCK = 1 << 24  # 16 MiB: the block size when indexing a JSON Lines file


class Recording:
    """The records of a run, read one chunk at a time."""

    path: Path
    meta: dict

    def __len__(self) -> int:
        raise NotImplementedError

    def chunk(self, index: int) -> tuple[dict[str, np.ndarray | list], dict[str, np.ndarray | list]]:
        raise NotImplementedError


class NpzFolder(Recording):
    def __init__(self, path: Path) -> None:
        self.path = path
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise UserError(f"no {MANIFEST}: not a recording folder, or an unfinished recording", path)
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {MANIFEST}: {exc}", path) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{MANIFEST} is not a {FORMAT} manifest", path)
        n = data.get("chunks")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UserError(f"{MANIFEST}: chunks must be a non-negative integer", path)
        self.chunks = n
        self.meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}

    def __len__(self) -> int:
        return self.chunks

    def chunk(self, index: int):
        f = self.path / CHUNK_FILE.format(index)
        try:
            with np.load(f, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise UserError(f"chunk {index}: {f.name} is missing (the manifest says {self.chunks} chunks)", self.path) from None
        except (OSError, ValueError) as exc:
            raise UserError(f"chunk {index}: cannot read {f.name}: {' '.join(str(exc).split())[:200]}", self.path) from None
        ins = {k[len("inputs/") :]: v for k, v in arrays.items() if k.startswith("inputs/")}
        outs = {k[len("outputs/") :]: v for k, v in arrays.items() if k.startswith("outputs/")}
        return ins, outs


class JsonLines(Recording):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = {}
        self.offsets = self._index()
        if not self.offsets:
            raise UserError("holds no chunk (one JSON object per line expected)", path)

    def _index(self) -> list[int]:
        """Start offsets of the non-empty lines, the header line excluded; reads 16 MiB at a time."""
        try:
            with open(self.path, "rb") as f:
                starts, pos = [0], 0
                while block := f.read(_BLOCK):
                    i = block.find(b"\n")
                    while i >= 0:
                        starts.append(pos + i + 1)
                        i = block.find(b"\n", i + 1)
                    pos += len(block)
                offsets = [s for s, e in zip(starts, [*starts[1:], pos]) if e - s > 2]  # a record is at least "{}"
                if offsets:
                    f.seek(offsets[0])
                    if f.read(16).replace(b" ", b"").startswith(b'{"format"'):
                        f.seek(offsets[0])
                        try:
                            header = json.loads(f.readline())
                        except ValueError:
                            header = {}
                        self.meta = header.get("meta", {}) if isinstance(header, dict) else {}
                        offsets = offsets[1:]
        except OSError as exc:
            raise UserError(exc.strerror or str(exc), self.path) from None
        return offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def chunk(self, index: int):
        with open(self.path, "rb") as f:
            f.seek(self.offsets[index])
            line = f.readline()
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserError(f"chunk {index}: invalid JSON on its line: {exc}", self.path) from None
        if not isinstance(record, dict) or not isinstance(record.get("inputs"), dict) or not isinstance(record.get("outputs"), dict):
            raise UserError(f"chunk {index}: a record needs \"inputs\" and \"outputs\" objects", self.path)
        try:
            ins = {k: decode_array(v) for k, v in record["inputs"].items()}
            outs = {k: decode_array(v) for k, v in record["outputs"].items()}
        except (ValueError, TypeError) as exc:
            raise UserError(f"chunk {index}: {exc}", self.path) from None
        return ins, outs


def decode_array(v) -> np.ndarray | list:
    """{"dtype", "shape", "base64"|"data"} -> array; a bare nested list stays a list (the contract gives its dtype)."""
    if isinstance(v, list) or isinstance(v, (int, float)):
        return v
    if not isinstance(v, dict) or "dtype" not in v or "shape" not in v:
        raise ValueError("an array is {\"dtype\", \"shape\", \"base64\"} or {\"dtype\", \"shape\", \"data\"} or a nested list")
    dtype = numpy_dtype(str(v["dtype"]))
    shape = tuple(int(d) for d in v["shape"])
    if "base64" in v:
        raw = base64.b64decode(v["base64"])
        arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{arr.size} values in base64 for shape {list(shape)}")
        return arr.reshape(shape).astype(dtype, copy=False)
    if "data" in v:
        arr = np.asarray(v["data"], dtype=dtype)
        if arr.shape != shape:
            raise ValueError(f"data of shape {list(arr.shape)}, declared {list(shape)}")
        return arr
    raise ValueError("an array needs \"base64\" or \"data\"")


def open_recording(path: str | os.PathLike[str]) -> Recording:
    p = Path(path)
    if p.is_dir():
        return NpzFolder(p)
    if not p.exists():
        raise UserError("no such file or folder", p)
    if not p.is_file():
        raise UserError("not a regular file or a recording folder", p)
    return JsonLines(p)


class RecordedReference:
    """The reference side of a stream, read from a recording (engine.ReferenceSource)."""

    label = "recorded reference"

    def __init__(self, contract: Contract, recording: Recording) -> None:
        self.contract = contract
        self.recording = recording
        self.available_chunks = len(recording)
        self.where = recording.path
        self.label = f"recorded:{recording.path.name}"
        self._prev_state_out: dict[str, np.ndarray] | None = None
        self._initial = initial_state(contract)
        states = contract.state_inputs
        self._feed_names = [n for n in contract.inputs if n not in states]

    def check_first(self) -> None:
        """Read and check chunk 0 now, before any runner is built: a mismatch is one line, exit 2."""
        self._read(0)

    def _read(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        ins, outs = self.recording.chunk(index)
        c = self.contract
        feeds: dict[str, np.ndarray] = {}
        for name in self._feed_names:
            if name not in ins:
                raise UserError(f"chunk {index}: the recording has no input {name!r} (it has {_names(ins)})", self.where)
            feeds[name] = self._conform(ins[name], c.inputs[name], index, "input")
        state_ins = {p.input: self._conform(ins[p.input], c.inputs[p.input], index, "input")
                     for p in c.state if p.input in ins}  # fmt: skip
        outputs: dict[str, np.ndarray] = {}
        for name, spec in c.outputs.items():
            if name not in outs:
                raise UserError(f"chunk {index}: the recording has no output {name!r} (it has {_names(outs)})", self.where)
            outputs[name] = self._conform(outs[name], spec, index, "output")
        for p in c.state:
            if p.output not in outputs:
                if p.output not in outs:
                    raise UserError(f"chunk {index}: the recording has no state output {p.output!r}", self.where)
                outputs[p.output] = np.asarray(outs[p.output])
        return {**feeds, **{f"\0state:{k}": v for k, v in state_ins.items()}}, outputs

    def chunk(self, plan) -> RefChunk:
        ins, outputs = self._read(plan.index)
        feeds = {k: v for k, v in ins.items() if not k.startswith("\0state:")}
        recorded_state = {k[len("\0state:") :]: v for k, v in ins.items() if k.startswith("\0state:")}
        state_in = {}
        for p in self.contract.state:
            if p.input in recorded_state:
                state_in[p.input] = recorded_state[p.input]
            elif self._prev_state_out is not None:
                state_in[p.input] = self._prev_state_out[p.input]
            else:
                state_in[p.input] = self._initial[p.input]
        self._prev_state_out = {p.input: outputs[p.output] for p in self.contract.state}
        frames = None
        for name, axis in self.contract.schedule.time_axes.items():
            if name in feeds and axis < feeds[name].ndim:
                frames = int(feeds[name].shape[axis])
                break
        return RefChunk(feeds, state_in, outputs, 0.0, frames)

    def _conform(self, value, spec: TensorSpec, index: int, kind: str) -> np.ndarray:
        """The recorded array in the contract's dtype; a shape or dtype kind the contract forbids is a UserError."""
        want = np.dtype(numpy_dtype(spec.dtype))
        try:
            arr = np.asarray(value) if not isinstance(value, list) else np.asarray(value, dtype=want)
        except (ValueError, TypeError) as exc:
            raise UserError(f"chunk {index}: {kind} {spec.name}: {exc}", self.where) from None
        where = f"chunk {index}: {kind} {spec.name}"
        if _kind(arr.dtype) != _kind(want):
            raise UserError(f"{where} is {arr.dtype} in the recording, the contract says {spec.dtype}", self.where)
        c = self.contract
        time_axis = c.schedule.time_axes.get(spec.name) if kind == "input" else None
        ok = arr.ndim == len(spec.shape)
        if ok:
            for axis, (got, d) in enumerate(zip(arr.shape, spec.shape)):
                want_d = d if isinstance(d, int) else c.dims.get(d)
                if axis != time_axis and want_d is not None and got != want_d:
                    ok = False
        if not ok:
            shown = [d if isinstance(d, int) else (f"{d}={c.dims[d]}" if d in c.dims else d) for d in spec.shape]
            raise UserError(f"{where} has shape {list(arr.shape)} in the recording, the contract says {shown}", self.where)
        return arr if arr.dtype == want else arr.astype(want)


def _kind(dtype: np.dtype) -> str:
    k = np.dtype(dtype).kind
    return "float" if k in "fV" or np.dtype(dtype).name == "bfloat16" else ("int" if k in "iu" else k)


def _names(d: dict) -> str:
    names = list(d)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "nothing"

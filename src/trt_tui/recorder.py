"""Record a streaming reference, one chunk at a time, from any framework: numpy and the standard library only.

This module imports nothing else from trt_tui (no ONNX, no ONNX Runtime, no Textual), so a PyTorch or NeMo
script can call it with only numpy installed next to it, or copy this one file. `trt-tui stream MODEL
--contract C --reference recorded:PATH` then runs every candidate against what was recorded.

    from trt_tui.recorder import Recorder

    with Recorder("ref_300", meta={"model": "parakeet", "chunk_frames": 592}) as rec:   # a folder of .npz
        for i in range(300):
            feeds = {"audio_signal": x, "length": n, "cache_last_channel": c, ...}       # what goes in, caches too
            outs = model(feeds)                                                        # what comes out
            rec.write(inputs=feeds, outputs=outs)                                      # numpy arrays (or torch
                                                                                       # tensors: .numpy() is called)

Formats (both read lazily, one chunk at a time, by trt-tui):

- a folder (default): `manifest.json` {"format": "trt-tui-recording", "version": 1, "chunks": N, "inputs":
  [names], "outputs": [names], "meta": {...}} and one `chunk_000000.npz` per chunk, whose arrays are named
  `inputs/NAME` and `outputs/NAME`. The manifest is written last: a folder without one is an unfinished
  recording.
- JSON Lines (`Recorder("ref.jsonl")`): an optional header line {"format": "trt-tui-recording", "version": 1,
  "meta": {...}} (its first key is "format"), then one line per chunk, `{"chunk": i, "inputs": {NAME: ARRAY}, "outputs":
  {NAME: ARRAY}}` with ARRAY = {"dtype": "float32", "shape": [1, 128, 592], "base64": "..."} (raw C-order
  little-endian bytes, base64) or, when read, also {"dtype", "shape", "data": nested lists} or a bare nested
  list (its dtype then comes from the contract). `encoding="list"` writes nested lists.

`inputs` holds everything fed to the model for that chunk (stream inputs and the state going in);
`outputs` everything it returned (outputs and the state coming out). The contract says which is which.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

FORMAT = "trt-tui-recording"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK_FILE = "chunk_{:06d}.npz"


def to_numpy(value) -> np.ndarray:
    """numpy arrays as they are; torch tensors (and anything with .detach/.cpu/.numpy) converted; scalars too."""
    for step in ("detach", "cpu"):
        if hasattr(value, step) and not isinstance(value, np.ndarray):
            value = getattr(value, step)()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


def encode_array(arr: np.ndarray, encoding: str = "base64") -> dict:
    """One array as JSON: {"dtype", "shape", "base64"} (exact) or {"dtype", "shape", "data"} (nested lists)."""
    arr = np.asarray(arr)
    if encoding == "list":
        return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": arr.tolist()}
    data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "base64": base64.b64encode(data).decode("ascii")}


class Recorder:
    """Write one record per chunk. `path` ending in .jsonl/.json: JSON Lines; anything else: a folder of .npz.

    Refuses to write over an existing recording unless `overwrite=True`. Use as a context manager (or call
    `close()`): the folder's manifest is written on close.
    """

    def __init__(self, path: str | os.PathLike[str], *, meta: dict | None = None, overwrite: bool = False,
                 encoding: str = "base64", compress: bool = False) -> None:  # fmt: skip
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.jsonl = self.path.suffix.lower() in (".jsonl", ".json")
        self.encoding = encoding
        self.compress = compress
        self.chunks = 0
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._closed = False
        if encoding not in ("base64", "list"):
            raise ValueError(f"encoding must be 'base64' or 'list', not {encoding!r}")
        if self.jsonl:
            if self.path.exists() and not overwrite:
                raise FileExistsError(f"{self.path} already exists (pass overwrite=True)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self.path.with_name(f".{self.path.name}.recording.tmp")
            self._file = open(self._tmp, "w", encoding="ascii")  # noqa: SIM115 (closed in close())
            # a header line first (readers recognise it by its first key); chunk lines follow
            self._file.write(json.dumps({"format": FORMAT, "version": VERSION, "meta": self.meta}) + "\n")
        else:
            if self.path.exists() and any(self.path.iterdir()) and not overwrite:
                raise FileExistsError(f"{self.path} already exists and is not empty (pass overwrite=True)")
            self.path.mkdir(parents=True, exist_ok=True)
            for old in self.path.glob("chunk_*.npz"):
                old.unlink()
            (self.path / MANIFEST).unlink(missing_ok=True)

    def write(self, inputs: dict, outputs: dict) -> None:
        """Record one chunk: `inputs` fed to the model (state included), `outputs` it returned (state included)."""
        if self._closed:
            raise ValueError("the recorder is closed")
        ins = {str(k): to_numpy(v) for k, v in inputs.items()}
        outs = {str(k): to_numpy(v) for k, v in outputs.items()}
        for names, d in ((self.input_names, ins), (self.output_names, outs)):
            names.extend(n for n in d if n not in names)
        if self.jsonl:
            record = {"chunk": self.chunks, "inputs": {k: encode_array(v, self.encoding) for k, v in ins.items()},
                      "outputs": {k: encode_array(v, self.encoding) for k, v in outs.items()}}  # fmt: skip
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        else:
            arrays = {f"inputs/{k}": v for k, v in ins.items()} | {f"outputs/{k}": v for k, v in outs.items()}
            target = self.path / CHUNK_FILE.format(self.chunks)
            tmp = target.with_name(f".{target.name}.tmp")
            with open(tmp, "wb") as f:
                (np.savez_compressed if self.compress else np.savez)(f, **arrays)
            os.replace(tmp, target)
        self.chunks += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.jsonl:
            self._file.close()
            os.replace(self._tmp, self.path)
            return
        manifest = {"format": FORMAT, "version": VERSION, "chunks": self.chunks, "inputs": self.input_names,
                    "outputs": self.output_names, "meta": self.meta}  # fmt: skip
        tmp = self.path / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / MANIFEST)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

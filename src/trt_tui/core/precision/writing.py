"""Rewritten models at any size: weights derived on demand, streamed to external data, staged and validated.

A rewrite never copies a model's weights into memory when they are large. Weights a rewrite changes
(rounded through fp16/bf16, or converted to it) are *derived*: the rewritten model holds a placeholder
(name, type, dims; see `core.weights.placeholder`) and `DerivedWeights` computes the values from the source
initializer when asked, element-wise, so that `write_model` can stream them chunk by chunk. Sessions that
take initializers as OrtValues (the parity engine) use `result.weights` like any `WeightSource`.

Derivation is used when the source has external data or when its weights could pass `EXTERNAL_DATA_LIMIT`
once rewritten (the emulation may hold an FP32 and a rounded copy); small models stay inline as before.
Models are written with external data (`<name>.data`, offsets aligned) whenever they hold placeholders,
external initializers or more than `EXTERNAL_DATA_LIMIT` bytes, into a staging folder next to the target,
optionally validated (onnx.checker and an ONNX Runtime load in a child process), then renamed into place: an interrupted or
invalid write never leaves a file under the target's name, and nothing is overwritten unless asked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import staging_dir
from trt_tui.core.weights import INLINE_MAX_BYTES, PLACEHOLDER_LOCATION, WeightSource, _storage_dtype, external_info, is_external, nbytes, placeholder

# protobuf cannot serialise a message above 2 GiB; leave a margin. Tests lower it to run the >2 GB paths.
EXTERNAL_DATA_LIMIT = 2_000_000_000
CHUNK_BYTES = 64 << 20  # what one streaming step holds in memory
ALIGN = 4096  # external data offsets aligned to pages, so ONNX Runtime can memory-map them
INLINE_BYTES = 1024  # initializers up to this size stay inline in written models (shape constants)
# Validation loads ONNX Runtime at its default optimisation level (what users get, and where corpus F7 crashed)
# up to this many bytes of weights; above it with optimisations off: ORT CPU constant-folds FP32 copies of
# fp16 weights (no fp16 MatMul kernel), measured 1.19x the FP32 weight bytes on a 2.4 GB model.
VALIDATE_OPTIMISED_MAX_BYTES = 256 << 20

Transform = Callable[[np.ndarray], np.ndarray]  # element-wise: applying it per chunk equals applying it whole


class DerivedWeights(WeightSource):
    """The initializer values of a rewritten model: the source's (external data relative to `base_dir`) plus
    the derived ones, computed from their source initializer on demand."""

    def __init__(self, base_dir: str | os.PathLike[str] | None = None):
        super().__init__(base_dir)
        self.derived: dict[str, tuple[TensorProto, Transform]] = {}

    def derive(self, source: TensorProto, name: str, data_type: int, transform: Transform) -> TensorProto:
        """A placeholder named `name` whose values are `transform(source values)` stored as `data_type`."""
        if self.is_derived(source):  # derived from a derived weight (which may have the same name): compose
            first, inner = self.derived[source.name]
            source, transform = first, _composed(transform, inner, source.data_type)
        ph = placeholder(source)
        ph.name = name
        ph.data_type = data_type
        self.derived[name] = (source, transform)
        return ph

    def is_derived(self, init: TensorProto) -> bool:
        return init.name in self.derived and is_external(init) and external_info(init).get("location") == PLACEHOLDER_LOCATION

    def array(self, init: TensorProto) -> np.ndarray:
        if self.is_derived(init):
            source, transform = self.derived[init.name]
            return _as_storage(transform(np.asarray(super().array(source))), init.data_type)
        return super().array(init)

    def chunks(self, init: TensorProto) -> Iterator[bytes]:
        """The initializer's stored bytes, a bounded chunk at a time (derived ones computed per chunk)."""
        for part in self._source_chunks(init):
            yield part.tobytes()

    def _source_chunks(self, init: TensorProto) -> Iterator[np.ndarray]:
        if self.is_derived(init):
            source, transform = self.derived[init.name]
            for part in self._source_chunks(source):
                yield _as_storage(transform(part), init.data_type)
            return
        dtype = _storage_dtype(init.data_type)
        count = nbytes(init) // dtype.itemsize if dtype.itemsize else 0
        step = max(1, CHUNK_BYTES // max(dtype.itemsize, 1))
        if not is_external(init):  # inline: a flat view of the proto's values
            flat = np.asarray(super().array(init)).reshape(-1)
            for start in range(0, flat.size, step):
                yield flat[start : start + step]
            return
        path, offset = self.checked_range(init)
        # plain reads, not a memory map: mapped pages would count in RSS until the whole tensor is done
        with open(path, "rb") as f:
            for start in range(0, count, step):
                n = min(step, count - start)
                f.seek(offset + start * dtype.itemsize)
                yield np.fromfile(f, dtype=dtype, count=n)


def by_reference(model: onnx.ModelProto, base_dir: str | os.PathLike[str] | None = None) -> tuple[onnx.ModelProto, DerivedWeights]:
    """(A copy of `model` whose big inline initializers are placeholders, the DerivedWeights that reads them
    from `model` on demand). A rewrite run in a comparison's segments then holds no second copy of the
    weights: a proto copy duplicates every inline byte, and the rewrite's output would hold a third (measured
    on ddddocr_ocr, 52 MB of inline weights). `model` must outlive the copy; external data stays as it is."""
    weights = DerivedWeights(base_dir)
    light = _without_initializers(model)
    light.graph.initializer.extend(
        weights.derive(t, t.name, t.data_type, _same) if not is_external(t) and nbytes(t) > INLINE_MAX_BYTES else t
        for t in model.graph.initializer
    )
    return light, weights


def _composed(outer: Transform, inner: Transform, inner_type: int) -> Transform:
    return lambda arr: outer(np.asarray(_as_storage(inner(arr), inner_type)))


def _same(arr: np.ndarray) -> np.ndarray:
    return arr


def _as_storage(arr: np.ndarray, data_type: int) -> np.ndarray:
    return np.ascontiguousarray(arr).view(_storage_dtype(data_type)) if arr.dtype.itemsize == _storage_dtype(data_type).itemsize else arr


def needs_external_data(model: onnx.ModelProto) -> bool:
    inits = model.graph.initializer
    return any(is_external(t) for t in inits) or sum(nbytes(t) for t in inits) > EXTERNAL_DATA_LIMIT


def write_model(model: onnx.ModelProto, path: str | os.PathLike[str], weights: WeightSource | None = None) -> Path:
    """Write `model` to `path` (not atomic: write into a `StagedModel`). External initializers are read
    through `weights` (derived ones computed), streamed into `<name>.data` next to `path`."""
    path = Path(path)
    if not needs_external_data(model) and model.ByteSize() < EXTERNAL_DATA_LIMIT:
        path.write_bytes(model.SerializeToString())
        return path
    weights = weights or WeightSource()
    data_name = path.name + ".data"
    out = onnx.ModelProto()
    out.CopyFrom(_without_initializers(model))
    with open(path.with_name(data_name), "wb") as data:
        for init in model.graph.initializer:
            if not is_external(init) and nbytes(init) <= INLINE_BYTES:
                out.graph.initializer.append(init)
                continue
            offset = -data.tell() % ALIGN + data.tell()
            data.seek(offset)
            for chunk in weights.chunks(init):
                data.write(chunk)
            length = data.tell() - offset
            ref = out.graph.initializer.add()
            ref.name, ref.data_type = init.name, init.data_type
            ref.dims.extend(init.dims)
            ref.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(length))):
                entry = ref.external_data.add()
                entry.key, entry.value = key, value
    path.write_bytes(out.SerializeToString())
    return path


def _without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    from trt_tui.core.weights import weight_free

    light = weight_free(model)
    light.metadata_props.extend(model.metadata_props)
    del light.graph.initializer[:]
    return light


class StagedModel:
    """A folder next to `target` to write a model (and its .data) into; `commit()` renames them into place.

    Leaving the `with` block without commit removes everything: nothing appears under the target's name.
    """

    def __init__(self, target: str | os.PathLike[str], *, overwrite: bool = False):
        self.target = Path(target)
        self.overwrite = overwrite
        if not overwrite and self.target.exists():
            raise UserError("already exists; pass --force to overwrite", self.target)
        # our temp naming: a writer killed mid-write leaves a folder the next write removes (issue 12)
        self.dir = staging_dir(self.target, make_parents=True)
        self.path = self.dir / self.target.name

    def __enter__(self) -> StagedModel:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def commit(self) -> Path:
        data = self.dir / (self.target.name + ".data")
        if data.exists():  # the weights first: the .onnx that names them appears last
            _place(data, self.target.with_name(data.name), self.overwrite)
        _place(self.path, self.target, self.overwrite)
        return self.target


def _place(src: Path, dst: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(src, dst)
        return
    try:  # link() fails if the target appeared meanwhile: a concurrent writer is not clobbered either
        os.link(src, dst)
    except FileExistsError:
        raise UserError("already exists; pass --force to overwrite", dst) from None
    os.unlink(src)


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str], *, overwrite: bool = False, weights: WeightSource | None = None) -> Path:
    """Write a model atomically (external data streamed when large; see write_model); never clobbers unless asked."""
    with StagedModel(path, overwrite=overwrite) as staged:
        write_model(model, staged.path, weights)
        return staged.commit()


def validate_written(
    path: str | os.PathLike[str], name: str | os.PathLike[str] | None = None, source: str | os.PathLike[str] | None = None
) -> str | None:
    """Check a written model: onnx.checker (full, from the file: works past 2 GB) and an ONNX Runtime load.

    Raises UserError (naming `name`, default `path`) when the model is invalid or ONNX Runtime refuses it;
    returns a one-line note when the only problem is one ONNX Runtime's CPU provider has with valid models:
    no kernel for a low-precision type (a bf16 mixed-precision model is meant for TensorRT; ORT CPU has no
    bf16 Add), or an op of a custom domain it does not know (a TensorRT plugin). A checker complaint the
    `source` model has too (e.g. graph outputs without a shape) is a note as well: the rewrite did not cause it."""
    path = Path(path)
    shown = name if name is not None else path
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the checker raises several types; any of them means the file is invalid
        complaint = _first_line(exc)
        if source is None or _checker_complaint(source) != complaint:
            raise UserError(f"the written model fails onnx.checker: {complaint}", shown) from None
        note = f"the source model fails onnx.checker the same way: {complaint[:160]}"
    else:
        note = None
    # in a child process, at the optimisation level users get: an ONNX Runtime crash on the written model
    # (measured: SIGSEGV in session creation for a pinned GRU -> Cast -> Squeeze -> Transpose -> MatMul at
    # ORT_ENABLE_ALL) must become one line, not a dead CLI
    light = onnx.load_model(str(path), load_external_data=False)
    optimised = sum(nbytes(t) for t in light.graph.initializer) <= VALIDATE_OPTIMISED_MAX_BYTES
    del light
    proc = subprocess.run([sys.executable, "-c", _ORT_LOAD, str(path), "all" if optimised else "off"], capture_output=True, text=True)
    if proc.returncode < 0:
        raise UserError(f"ONNX Runtime crashed (signal {-proc.returncode}) loading the written model", shown)
    if proc.returncode != 0:
        text = (proc.stderr.strip().splitlines() or ["no message"])[-1].replace(str(path), str(shown))
        custom = re.search(r"(\S+):(\S+)\(-?\d+\) is not a registered function/op", text)
        if "NOT_IMPLEMENTED" in text and "Could not find an implementation" in text:
            return f"valid model (onnx.checker), but ONNX Runtime's CPU provider cannot run it: {text[text.find('Could'):][:160]}"
        if custom and custom.group(1) not in ("", "ai.onnx"):
            return f"valid model (onnx.checker); ONNX Runtime does not know the custom op {custom.group(1)}:{custom.group(2)}"
        raise UserError(f"ONNX Runtime cannot load the written model: {text[:300]}", shown)
    return note


_ORT_LOAD = """
import sys
import onnxruntime as ort
opts = ort.SessionOptions()  # the default optimisation level (ORT_ENABLE_ALL): what users get
if sys.argv[2] == "off":  # big models: no optimisation, no folded copies of the weights
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
opts.add_session_config_entry("session.disable_prepacking", "1")  # no copy of the weights just to check
try:
    ort.InferenceSession(sys.argv[1], sess_options=opts, providers=["CPUExecutionProvider"])
except Exception as exc:
    sys.stderr.write(" ".join(str(exc).split()) + "\\n")
    sys.exit(1)
"""


def _checker_complaint(path: str | os.PathLike[str]) -> str | None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - any checker failure is the answer
        return _first_line(exc)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

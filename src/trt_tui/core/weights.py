"""Initializer values without loading a model's weights: inline bytes as views, external data memory-mapped.

A model with external data is loaded with `load_external_data=False` (its proto then holds names, types and
file offsets only). `WeightSource.array(init)` returns the values of one initializer: for external data a
read-only `np.memmap` of exactly its byte range (pages are read when touched and released when the array is
dropped), for inline data a numpy view of the proto's bytes. Sessions get big initializers as ONNX Runtime
OrtValues (`SessionOptions.add_external_initializers`) instead of inside serialized model bytes, so nothing
ever passes protobuf's 2 GB limit and each segment of a comparison holds only its own weights.

External data locations are checked the way a careful reader must: relative, inside the model's folder,
a regular file, and the byte range inside it; anything else is one UserError naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.errors import UserError

# Initializers at most this big stay inline in a segment's model bytes: shape constants and small tables
# must be visible to ONNX Runtime's graph resolution, and copying them costs nothing.
INLINE_MAX_BYTES = 4096
PLACEHOLDER_LOCATION = "__trt_tui_supplied_at_session_creation__"


def external_info(init: TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in init.external_data}


def is_external(init: TensorProto) -> bool:
    return init.data_location == TensorProto.EXTERNAL


def nbytes(init: TensorProto) -> int:
    """Bytes the initializer's values take (from its type and dims, without reading them)."""
    count = int(np.prod([int(d) for d in init.dims], dtype=np.int64)) if init.dims else 1
    if init.data_type == TensorProto.STRING:
        return 0
    return count * np.dtype(_storage_dtype(init.data_type)).itemsize


def _storage_dtype(data_type: int) -> np.dtype:
    """The numpy dtype of the raw bytes (bf16/fp8 as their bit patterns: ml_dtypes types need no special case)."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(data_type))


class WeightSource:
    """Reads initializer values of one model lazily. `base_dir` is the folder external data is relative to."""

    def __init__(self, base_dir: str | os.PathLike[str] | None = None):
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else None
        # location -> (checked path, its size): a 24-layer model names one file from ~800 initializers, and
        # resolving and statting it for each is measurable (~1 s a comparison); files do not change mid-run
        self._files: dict[str, tuple[Path, int]] = {}

    def array(self, init: TensorProto) -> np.ndarray:
        """The initializer's values, read-only, without copying where the storage allows it."""
        if is_external(init):
            return self._mapped(init)
        if init.raw_data:
            dtype = _storage_dtype(init.data_type)
            dims = [int(d) for d in init.dims]
            raw = init.raw_data  # one bytes object; the view below keeps it alive
            expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize if dims else dtype.itemsize
            if len(raw) != expected:
                raise UserError(f"initializer {init.name!r} holds {len(raw)} bytes but its shape {dims} needs {expected}")
            return np.frombuffer(raw, dtype=dtype).reshape(dims)
        return numpy_helper.to_array(init)

    def _mapped(self, init: TensorProto) -> np.ndarray:
        path, offset = self.checked_range(init)
        dtype = _storage_dtype(init.data_type)
        dims = [int(d) for d in init.dims]
        if dims and int(np.prod(dims, dtype=np.int64)) == 0:
            return np.zeros(dims, dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(dims) if dims else ())

    def checked_range(self, init: TensorProto) -> tuple[Path, int]:
        """The external data file of `init` and the offset of its bytes, refused (one line naming the file)
        unless the file holds exactly the bytes its shape needs at that offset. Every reader goes through it."""
        info = external_info(init)
        path, size = self._file(init)
        dtype = _storage_dtype(init.data_type)
        dims = [int(d) for d in init.dims]
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else count * dtype.itemsize
        except ValueError:
            raise UserError(f"initializer {init.name!r}: bad external data offset or length", path) from None
        if offset < 0 or length != count * dtype.itemsize or offset + length > size:
            raise UserError(
                f"initializer {init.name!r}: external data range {offset}+{length} does not hold shape {dims} "
                f"({count * dtype.itemsize} bytes) inside the file ({size} bytes)",
                path,
            )
        return path, offset

    def _file(self, init: TensorProto) -> tuple[Path, int]:
        location = external_info(init).get("location", "")
        known = self._files.get(location)
        if known is None:
            path = self.resolve(init)
            known = self._files[location] = (path, path.stat().st_size)
        return known

    def resolve(self, init: TensorProto) -> Path:
        """The external data file of `init`, refused unless it is a regular file inside the model's folder."""
        location = external_info(init).get("location", "")
        if self.base_dir is None:
            raise UserError(f"initializer {init.name!r} has external data but the model's folder is unknown")
        if not location or os.path.isabs(location):
            raise UserError(f"initializer {init.name!r}: external data location {location!r} must be a relative path",
                            self.base_dir)
        path = (self.base_dir / location).resolve()
        if self.base_dir not in path.parents:
            raise UserError(f"initializer {init.name!r}: external data {location!r} lies outside the model's folder", self.base_dir)
        if not path.is_file():
            raise UserError(f"initializer {init.name!r}: external data {location!r} is missing or not a regular file", self.base_dir)
        return path

    def ort_value(self, init: TensorProto):
        """An OrtValue over the initializer's values (shares the memory map: no copy on the CPU)."""
        import onnxruntime as ort

        arr = self.array(init)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if arr.dtype.kind in "biuf" and arr.dtype.name in _ORT_NATIVE:
            return ort.OrtValue.ortvalue_from_numpy(arr)
        # bf16 / fp8 / other ml_dtypes types: hand ORT the bit pattern with the ONNX element type
        bits = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, onnx_element_type=init.data_type)


_ORT_NATIVE = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64"}  # fmt: skip


def placeholder(init: TensorProto) -> TensorProto:
    """The initializer's name, type and dims with no data: its values are supplied as an OrtValue."""
    ph = TensorProto()
    ph.name = init.name
    ph.data_type = init.data_type
    ph.dims.extend(init.dims)
    ph.data_location = TensorProto.EXTERNAL
    entry = ph.external_data.add()
    entry.key, entry.value = "location", PLACEHOLDER_LOCATION
    return ph


def inlined(init: TensorProto, source: WeightSource) -> TensorProto:
    """A small external initializer with its values inline (ONNX Runtime reads shape constants and the like
    while resolving a graph from bytes, before external data; models saved with size_threshold=0 have them
    external). Other initializers are returned as they are."""
    if not is_external(init) or nbytes(init) > INLINE_MAX_BYTES or not on_disk(init):
        return init
    return numpy_helper.from_array(np.array(source.array(init)), init.name)


def on_disk(init: TensorProto) -> bool:
    """External data in a real file (not a placeholder): ONNX Runtime can map it itself, without a copy."""
    return is_external(init) and external_info(init).get("location") not in (None, "", PLACEHOLDER_LOCATION)


# Element types numpy holds natively, so a weight of that type can be fed to ONNX Runtime as an input through
# its Python API (bf16 and fp8 cannot: those stay initializers given as OrtValues).
FEEDABLE_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE})


def supplied_separately(init: TensorProto) -> bool:
    """Whether a segment's model gets this initializer as an OrtValue rather than inline."""
    return is_external(init) or nbytes(init) > INLINE_MAX_BYTES


def weight_bytes_by_output(model: onnx.ModelProto) -> dict[str, int]:
    """Bytes of the initializers each node reads, charged to its first output: what a segment computing that
    tensor must hold besides activations (the comparison's memory budget counts them)."""
    sizes = {t.name: nbytes(t) for t in model.graph.initializer}
    out: dict[str, int] = {}
    for node in model.graph.node:
        first = next((o for o in node.output if o), None)
        read = sum(sizes.get(t, 0) for t in set(node.input))
        if first and read:
            out[first] = out.get(first, 0) + read
    return out


def weights_apart(model: onnx.ModelProto, mapped: bool = False, source: WeightSource | None = None) -> tuple[onnx.ModelProto, list[TensorProto]]:
    """A copy of `model` whose big initializers are placeholders, and those initializers (to supply as OrtValues).

    `mapped`: initializers in external data files stay references (ONNX Runtime maps them from the folder)."""
    supplied = [t for t in model.graph.initializer if supplied_separately(t) and not (mapped and on_disk(t))]
    small_external = [t for t in model.graph.initializer if on_disk(t) and nbytes(t) <= INLINE_MAX_BYTES]
    if not supplied and not small_external:
        return model, []
    light = onnx.ModelProto()
    light.CopyFrom(model)  # initializer bytes are copied here, then dropped: cheaper than a serialisation
    names = {t.name for t in supplied}
    keep = [placeholder(t) if t.name in names else inlined(t, source or WeightSource()) for t in light.graph.initializer]
    del light.graph.initializer[:]
    light.graph.initializer.extend(keep)
    return light, supplied


def weight_free(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` for shape inference: big initializers become placeholders (type and dims only).

    Shape inference serialises the model to C++ and back: with the weights inline that is most of its time
    and memory, and past 2 GB it fails. Small initializers stay, since shape constants are read by value."""
    light = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(light, field, getattr(model, field))
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g, src = light.graph, model.graph
    g.name = src.name
    g.node.extend(src.node)
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.sparse_initializer.extend(src.sparse_initializer)
    g.initializer.extend(placeholder(t) if supplied_separately(t) else t for t in src.initializer)
    return light


def load_without_weights(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """The model proto with external data left on disk (names, types and offsets only)."""
    return onnx.load_model(str(path), load_external_data=False)

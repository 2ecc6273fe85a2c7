"""Small pieces both rewrites share: unique names, dtype conversion of constant values, the output skeleton."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

NUMPY_LOW = {TensorProto.FLOAT16: np.float16, TensorProto.BFLOAT16: ml_dtypes.bfloat16}
SHORT = {TensorProto.FLOAT: "fp32", TensorProto.FLOAT16: "fp16", TensorProto.BFLOAT16: "bf16"}


def to_low(arr: np.ndarray, low_type: int) -> np.ndarray:
    """fp32 -> fp16/bf16 with round-to-nearest-even, as ORT's and TensorRT's casts do (inf on overflow)."""
    with warnings.catch_warnings():  # overflow to inf is the point, not a surprise
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(arr, np.float32).astype(NUMPY_LOW[low_type])


def round_through(arr: np.ndarray, low_type: int) -> np.ndarray:
    """The fp32 value an fp32 tensor takes after a round trip through the low precision."""
    return to_low(arr, low_type).astype(np.float32)


def tensor_from(arr: np.ndarray, name: str) -> onnx.TensorProto:
    """A TensorProto with the array's exact dtype, shape and values. Not np.ascontiguousarray: it turns a 0-d
    scalar into shape [1], and a ViT's `Pow(scalar, scalar) -> Cast -> Unsqueeze -> Concat` then no longer
    loads (from_array copies non-contiguous arrays itself)."""
    return numpy_helper.from_array(np.asarray(arr), name)


class Names:
    """Fresh tensor/node names that collide with nothing in the original graph or with each other."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.used: set[str] = {vi.name for vi in (*g.input, *g.output, *g.value_info)}
        self.used.update(i.name for i in g.initializer)
        for n in g.node:
            self.used.add(n.name)
            self.used.update(n.input)
            self.used.update(n.output)

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model without nodes and initializers (those are rebuilt by the rewrite)."""
    out = onnx.ModelProto()
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    out.producer_name = model.producer_name
    out.producer_version = model.producer_version
    out.domain = model.domain
    out.model_version = model.model_version
    out.doc_string = model.doc_string
    out.metadata_props.extend(model.metadata_props)
    out.functions.extend(model.functions)
    g, src = out.graph, model.graph
    g.name = src.name
    g.doc_string = src.doc_string
    g.input.extend(src.input)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    return out


def set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)


def add_cast(graph: onnx.GraphProto, name: str, source: str, target: str, to: int) -> None:
    """Append a Cast node (built in place: onnx.helper.make_node is ~4x slower, which shows at 10k nodes)."""
    node = graph.node.add()
    node.op_type = "Cast"
    node.name = name
    node.input.append(source)
    node.output.append(target)
    attr = node.attribute.add()
    attr.name = "to"
    attr.type = AttributeProto.INT
    attr.i = to

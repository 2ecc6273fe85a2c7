"""A tiny deterministic ONNX graph builder for the demo model, test fixtures and benchmarks.

Nodes are named the way PyTorch's TorchScript exporter names them (`/encoder/layers.0/self_attn/Softmax`),
which is the naming the seeds' trtexec command lines use. No torch needed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization exists from 17; TensorRT 10 parses it
IR_VERSION = 8  # onnx >= 1.23 defaults to IR 14, which onnxruntime 1.31 rejects


class GraphBuilder:
    """Builds a model node by node. With `external_data` (an open binary file next to the model and its name
    relative to the model), weights over `EXTERNAL_MIN_BYTES` are written there as they are made and only
    referenced from the proto: models of several GB are built in about their weights' size of memory once."""

    EXTERNAL_MIN_BYTES = 1024

    def __init__(self, name: str = "graph", seed: int = 0, external_data: tuple | None = None) -> None:
        self.name = name
        self.external_data = external_data  # (binary file, location relative to the model)
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._scope: list[str] = []
        self._names: Counter[str] = Counter()
        self._consts: dict[tuple, str] = {}

    # ---- naming ------------------------------------------------------------------------------------------
    def scope(self, part: str) -> _Scope:
        return _Scope(self, part)

    def _unique(self, base: str) -> str:
        self._names[base] += 1
        n = self._names[base]
        return base if n == 1 else f"{base}_{n - 1}"

    def _node_name(self, op: str) -> str:
        prefix = "/" + "/".join(self._scope) + "/" if self._scope else "/"
        return self._unique(prefix + op)

    # ---- graph pieces -----------------------------------------------------------------------------------
    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, tensor: str, name: str, elem_type: int = TensorProto.FLOAT, shape: list | None = None) -> str:
        """Expose `tensor` as graph output `name` (through an Identity when the names differ)."""
        if tensor != name:
            self.nodes.append(helper.make_node("Identity", [tensor], [name], name=self._node_name("Identity")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def weight(self, shape: tuple[int, ...], scale: float | None = None, name: str | None = None) -> str:
        fan_in = shape[0] if len(shape) > 1 else max(shape[0], 1)
        std = scale if scale is not None else 1.0 / np.sqrt(fan_in)
        if self.external_data is not None:  # big models: float32 draws (half the memory and time)
            value = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        else:  # the demo and fixtures keep their exact historical values
            value = (self.rng.standard_normal(shape) * std).astype(np.float32)
        return self.initializer(value, name)

    def initializer(self, value: np.ndarray, name: str | None = None) -> str:
        name = name or self._unique(("/".join(self._scope) + "/" if self._scope else "") + "w")
        value = np.asarray(value)
        if self.external_data is not None and value.nbytes >= self.EXTERNAL_MIN_BYTES:
            handle, location = self.external_data
            offset = handle.tell()
            handle.write(np.ascontiguousarray(value).tobytes())
            tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(value.dtype), dims=value.shape)
            tensor.data_location = TensorProto.EXTERNAL
            for key, v in (("location", location), ("offset", str(offset)), ("length", str(value.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, v
            self.initializers.append(tensor)
        else:
            self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def const(self, value, dtype=np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.initializer(arr, self._unique(f"const_{len(self._consts)}"))
        return self._consts[key]

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, name: str | None = None, **attrs) -> str | list[str]:
        node_name = name or self._node_name(op_type)
        outs = [f"{node_name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name, **attrs))
        return outs[0] if n_out == 1 else outs

    # ---- layers ---------------------------------------------------------------------------------------------
    def linear(self, x: str, d_in: int, d_out: int, bias: bool = True, scale: float | None = None) -> str:
        y = self.op("MatMul", [x, self.weight((d_in, d_out), scale)])
        if bias:
            y = self.op("Add", [y, self.initializer(np.zeros(d_out, np.float32) + self.rng.normal(0, 0.02, d_out).astype(np.float32))])
        return y

    def layer_norm(self, x: str, d: int, decomposed: bool = False, eps: float = 1e-5) -> str:
        gamma = self.initializer((1.0 + self.rng.normal(0, 0.05, d)).astype(np.float32))
        beta = self.initializer(self.rng.normal(0, 0.05, d).astype(np.float32))
        if not decomposed:
            return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=eps)
        # the opset<17 export shape most real FP32 models have
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        centered = self.op("Sub", [x, mean])
        sq = self.op("Pow", [centered, self.const(2.0)])
        var = self.op("ReduceMean", [sq], axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const(eps)])])
        normed = self.op("Div", [centered, std])
        return self.op("Add", [self.op("Mul", [normed, gamma]), beta])

    def swish(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def feed_forward(self, x: str, d: int, hidden: int) -> str:
        with self.scope("linear1"):
            h = self.linear(x, d, hidden)
        with self.scope("activation"):
            h = self.swish(h)
        with self.scope("linear2"):
            return self.linear(h, hidden, d)

    def build(self, opset: int = OPSET, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            ir_version=IR_VERSION,
            producer_name="trt_tui.modelgen",
            doc_string=doc,
        )
        return model


class _Scope:
    def __init__(self, builder: GraphBuilder, part: str) -> None:
        self.builder, self.part = builder, part

    def __enter__(self) -> GraphBuilder:
        self.builder._scope.append(self.part)
        return self.builder

    def __exit__(self, *exc) -> None:
        self.builder._scope.pop()

"""Shared helpers for the precision tests: run a model on ORT CPU with every node output exposed."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from trt_tui.core.precision import emulation_session


def expose(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.output[:]
    for t in names:
        out.graph.output.add().name = t
    return out


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Every float32 node output of the original model, in graph order."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*inferred.graph.value_info, *inferred.graph.output)}
    return [o for n in model.graph.node for o in n.output if o and types.get(o) == onnx.TensorProto.FLOAT]


def run(model: onnx.ModelProto, names: list[str], feeds: dict[str, np.ndarray], emulated: bool = True) -> dict[str, np.ndarray]:
    m = expose(model, names)
    if emulated:
        sess = emulation_session(m)
    else:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(names, sess.run(names, feeds)))


def first_nonfinite(values: dict[str, np.ndarray]) -> str | None:
    return next((t for t, v in values.items() if not np.isfinite(v).all()), None)


def ir10(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fixtures keep IR version 10: onnx's default (14) is rejected by ONNX Runtime."""
    model.ir_version = 10
    return model

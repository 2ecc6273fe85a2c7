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
    arr = np.asarray(arr, np.float32)
    if arr.size >= ORT_ROUND_MIN:
        fast = _ort_round_trip(arr, low_type)
        if fast is not None:
            return fast
    return to_low(arr, low_type).astype(np.float32)


# Big weights (an emulated comparison rounds every weight of the model) go through ONNX Runtime's own Cast
# pair: numpy's float16 cast is scalar, ~5-16 ns per element here, ORT's vectorised one ~1-3 ns. Both round
# to nearest even; checked on every exponent x rounding-bit pattern of float32 for fp16 and bf16: identical
# but for NaN payloads, so an array holding NaN takes numpy's route.
ORT_ROUND_MIN = 1 << 20  # elements; below this a session run costs about what it saves
ORT_ROUND_CHUNK = 1 << 24  # elements per run (64 MB of float32)
_ROUNDERS: dict[int, object] = {}


def _ort_round_trip(arr: np.ndarray, low_type: int) -> np.ndarray | None:
    """`arr` (float32) rounded through `low_type` by ONNX Runtime, or None (no ORT, NaN present, any doubt)."""
    try:
        session = _ROUNDERS.get(low_type)
        if session is None:
            import onnxruntime as ort
            from onnx import helper

            nodes = [helper.make_node("Cast", ["x"], ["low"], to=low_type), helper.make_node("Cast", ["low"], ["y"], to=TensorProto.FLOAT)]
            graph = helper.make_graph(nodes, "round_trip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])  # fmt: skip
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep both Casts
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # its arena keeps the largest buffers it ever made: chunks bound them (~100 MB); one run per whole
            # weight kept an 800 MB weight's fp16 and output buffers (+830 MB peak on a 2.4 GB model's compare)
            session = _ROUNDERS[low_type] = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        flat = np.ascontiguousarray(arr).reshape(-1)
        if flat.size <= ORT_ROUND_CHUNK:  # one run: its output is ours (a copy), no second buffer to fill
            out = session.run(None, {"x": flat})[0]
            return out.reshape(arr.shape) if out.shape == flat.shape and not _has_nan(out) else None
        out = np.empty(flat.shape, np.float32)
        for start in range(0, flat.size, ORT_ROUND_CHUNK):  # chunks: ORT's temporaries stay small
            part = session.run(None, {"x": flat[start : start + ORT_ROUND_CHUNK]})[0]
            if part.shape != (min(ORT_ROUND_CHUNK, flat.size - start),) or _has_nan(part):
                return None
            out[start : start + part.size] = part
    except Exception:  # numpy's route is the reference: any trouble here just means the slower path
        return None
    return out.reshape(arr.shape)


def _has_nan(a: np.ndarray) -> bool:
    """NaN anywhere: max propagates it, one pass without isnan's temporary mask."""
    return bool(np.isnan(a.max()))


def tensor_from(arr: np.ndarray, name: str) -> onnx.TensorProto:
    """A TensorProto with the array's exact dtype, shape and values. Not np.ascontiguousarray: it turns a 0-d
    scalar into shape [1], and a ViT's `Pow(scalar, scalar) -> Cast -> Unsqueeze -> Concat` then no longer
    loads (from_array copies non-contiguous arrays itself)."""
    return numpy_helper.from_array(np.asarray(arr), name)


class Names:
    """Fresh tensor/node names that collide with nothing in the original graph or with each other."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.used: set[str] = set()
        for g in all_graphs(model.graph):  # subgraph bodies too: a name must not shadow or collide with theirs
            self.used.update(vi.name for vi in (*g.input, *g.output, *g.value_info))
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


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def all_graphs(graph: onnx.GraphProto):
    """`graph` and every subgraph body under it (If branches, Loop/Scan bodies), depth first."""
    yield graph
    for n in graph.node:
        for sub in subgraphs(n):
            yield from all_graphs(sub)


def outer_references(graph: onnx.GraphProto) -> list[str]:
    """Names a body (and the bodies under it) reads from enclosing scopes, in first-use order."""
    defined = {vi.name for vi in graph.input} | {i.name for i in graph.initializer}
    refs: dict[str, None] = {}
    for n in graph.node:
        for t in n.input:
            if t and t not in defined:
                refs.setdefault(t)
        for sub in subgraphs(n):
            for t in outer_references(sub):
                if t not in defined:
                    refs.setdefault(t)
        defined.update(n.output)
    return list(refs)


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


def fix_stale_shapes(model: onnx.ModelProto, reference: onnx.ModelProto | None = None) -> list[str]:
    """Replace declared graph-output shapes (and drop value_info entries) that contradict shape inference.

    Some exports declare shapes the graph does not produce (ddddocr's OCR declares an output [1, seqlen] that
    really is (16, 1, 8210)); the original escapes the checker only where inference cannot see the real rank,
    and a rewrite (an opset upgrade, new Casts) may let it see it. A rewrite must not fail on a declaration the
    original already gets wrong: the declaration is corrected and each correction returned as a warning.
    `reference`: a model computing the same tensors under the same names, inferred instead of `model` (the
    gated emulation's hundreds of If nodes make inference 50x slower than on the graph it was made from)."""
    from trt_tui.core.weights import weight_free

    light = weight_free(reference if reference is not None else model)
    for vi in light.graph.output:
        vi.type.tensor_type.ClearField("shape")
    del light.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(light, check_type=False, strict_mode=False, data_prop=False)
    except Exception:  # noqa: BLE001 - no inference, nothing to correct: the checker will say what is wrong
        return []
    shapes = {vi.name: vi.type.tensor_type.shape for vi in (*inferred.graph.value_info, *inferred.graph.output)
              if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")}  # fmt: skip

    def conflict(declared, found) -> bool:
        if len(declared.dim) != len(found.dim):
            return True
        return any(a.HasField("dim_value") and b.HasField("dim_value") and a.dim_value != b.dim_value for a, b in zip(declared.dim, found.dim))

    def text(shape) -> str:
        return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim) + "]"

    fixes = []
    for vi in model.graph.output:
        tt = vi.type.tensor_type
        found = shapes.get(vi.name)
        if found is not None and tt.HasField("shape") and conflict(tt.shape, found):
            fixes.append(f"output {vi.name} is declared {text(tt.shape)} but the graph makes {text(found)}: declaration corrected")
            tt.shape.CopyFrom(found)
    keep = []
    for vi in model.graph.value_info:
        tt = vi.type.tensor_type
        found = shapes.get(vi.name)
        if found is not None and tt.HasField("shape") and conflict(tt.shape, found):
            fixes.append(f"value_info {vi.name} is declared {text(tt.shape)} but the graph makes {text(found)}: dropped")
            continue
        keep.append(vi)
    if len(keep) != len(model.graph.value_info):
        del model.graph.value_info[:]
        model.graph.value_info.extend(keep)
    return fixes

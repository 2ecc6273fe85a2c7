"""The ONNX graph index: everything the UI, the presets and the exports ask of a model, answered fast.

`load_graph(path)` reads the model without its external weight data, runs shape inference (and keeps
going without it when it fails), and indexes every node: name (TensorRT-parser name for unnamed nodes),
op type, IO tensors with dtype and shape, an attribute summary, topological index, subgraph parent and
module scope.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, TensorProto

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import require_regular_file
from trt_tui.core.mapped_weights import read_mapped
from trt_tui.core.weights import PLACEHOLDER_LOCATION, weight_free

FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
TORCH_SCOPE_KEY = "pkg.torch.onnx.name_scopes"
# trtexec's --layerPrecisions/--layerOutputTypes use ',' between entries and ':' before the type.
TRTEXEC_UNSAFE = re.compile(r"[,:]")

# Ops whose output is random: a comparison of two runs must seed them alike or refuse (see random_nodes).
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"})

Dim = int | str | None
Shape = tuple[Dim, ...]


@functools.lru_cache(maxsize=64)
def dtype_name(elem_type: int) -> str:
    """ONNX TensorProto element type -> numpy-style name ('float32', 'float16', 'int64', ...)."""
    if elem_type == 0:
        return "undefined"
    name = TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64", "string": "string", "bool": "bool"}.get(name, name)


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dtype: str | None  # None when unknown (inference failed or the tensor is untyped)
    shape: Shape | None  # None when the rank is unknown; symbolic dims are names, unknown dims None

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape or ()) if not isinstance(d, int))

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "x".join("?" if d is None else str(d) for d in self.shape) or "scalar"

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}


@dataclass(slots=True)
class NodeInfo:
    name: str  # the name TensorRT's ONNX parser gives the layer (node_of_<output> for unnamed nodes)
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    topo_index: int  # for nodes inside subgraphs: the index of the top-level parent node
    scope: str
    parent: str | None = None  # the If/Loop/Scan node whose body holds this node
    name_was_empty: bool = False
    flags: tuple[str, ...] = ()
    proto: onnx.NodeProto | None = field(default=None, repr=False, compare=False)

    @property
    def attributes(self) -> str:
        """A short `name=value, ...` summary (computed on demand: most nodes are never looked at)."""
        return _attribute_summary(self.proto) if self.proto is not None else ""

    @property
    def in_subgraph(self) -> bool:
        return self.parent is not None

    def to_json(self, index: GraphIndex | None = None) -> dict:
        def tensor(name: str) -> dict:
            info = index.tensor(name) if index else None
            return info.to_json() if info else {"name": name, "dtype": None, "shape": None}

        return {
            "name": self.name,
            "op_type": self.op_type,
            "domain": self.domain,
            "topo_index": self.topo_index,
            "inputs": [tensor(t) for t in self.inputs if t],
            "outputs": [tensor(t) for t in self.outputs if t],
            "attributes": self.attributes,
            "scope": self.scope,
            "parent": self.parent,
            "flags": list(self.flags),
        }


@dataclass
class GraphIndex:
    path: Path
    model: onnx.ModelProto  # without external weight data
    nodes: list[NodeInfo]  # top-level nodes in topological order, subgraph nodes right after their parent
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    tensors: TensorTable
    initializers: frozenset[str]
    warnings: list[str] = field(default_factory=list)
    shape_inference_ok: bool = True
    # the file as it was when read (graph.file_id; None: unknown): a comparison reuses `model`
    # rather than parsing the file again only while the file is still this one
    file_id: tuple[int, ...] | None = None
    by_name: dict[str, NodeInfo] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)  # tensor -> producing node name
    consumers: dict[str, list[str]] = field(default_factory=dict)  # tensor -> consuming node names

    # ---- queries -------------------------------------------------------------------------------------
    def node(self, name: str) -> NodeInfo | None:
        return self.by_name.get(name)

    def tensor(self, name: str) -> TensorInfo | None:
        return self.tensors.get(name)

    @property
    def top_level_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.parent is None]

    @property
    def op_counts(self) -> Counter[str]:
        return Counter(n.op_type for n in self.nodes)

    def is_float_node(self, node: NodeInfo) -> bool:
        """A node computes in floating point if any of its outputs is a float tensor."""
        return any((t := self.tensors.get(o)) is not None and t.is_float for o in node.outputs if o)

    def producers_of(self, node: NodeInfo) -> list[str]:
        return [self.producer[t] for t in node.inputs if t in self.producer]

    def consumers_of(self, node: NodeInfo) -> list[str]:
        seen: dict[str, None] = {}
        for t in node.outputs:
            for c in self.consumers.get(t, ()):
                seen[c] = None
        return list(seen)

    @functools.cached_property
    def constant_tensors(self) -> frozenset[str]:
        """Tensors computable from constants alone (initializers, Constant nodes and whatever only they feed):
        weights, not layers. A comparison never reports them: their drift is the rounding of a weight, and
        it shows in the first computed tensor that reads them. Random ops and nodes with subgraphs (which
        may read outer tensors) are never constant."""
        const = set(self.initializers)
        for n in self.top_level_nodes:
            if n.op_type in RANDOM_OPS or (n.proto is not None and any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in n.proto.attribute)):
                continue
            if all(t in const for t in n.inputs if t):
                const.update(t for t in n.outputs if t)
        return frozenset(const)

    def random_nodes(self) -> list[NodeInfo]:
        """Nodes whose output is random: the RANDOM_OPS, and Dropout in training mode (training_mode input
        given and not a constant False). Listed by `inspect`; comparisons seed them alike or refuse."""
        out = []
        for n in self.nodes:
            if n.op_type in RANDOM_OPS and n.domain in ("ai.onnx", ""):
                out.append(n)
            elif n.op_type == "Dropout" and len(n.inputs) >= 3 and n.inputs[2] and not self._constant_false(n.inputs[2]):
                out.append(n)
        return out

    def _constant_false(self, tensor: str) -> bool:
        """A boolean tensor whose value is known to be False (an initializer or a Constant node)."""
        from onnx import numpy_helper

        for init in self.model.graph.initializer:
            if init.name == tensor:
                return init.data_location != TensorProto.EXTERNAL and not bool(numpy_helper.to_array(init).any())
        producer = self.by_name.get(self.producer.get(tensor, ""))
        if producer is not None and producer.op_type == "Constant" and producer.proto is not None:
            for attr in producer.proto.attribute:
                if attr.name == "value":
                    return not bool(numpy_helper.to_array(attr.t).any())
        return False

    def filter(self, op: str | None = None, match: str | None = None) -> list[NodeInfo]:
        """Nodes of an op type (exact, case-insensitive) and/or whose name matches a regex (searched)."""
        try:
            pattern = re.compile(match) if match else None
        except re.error as exc:
            raise UserError(f"bad regular expression {match!r}: {exc}") from None
        wanted = op.lower() if op else None
        return [
            n
            for n in self.nodes
            if (wanted is None or n.op_type.lower() == wanted) and (pattern is None or pattern.search(n.name))
        ]

    def to_json(self) -> dict:
        return {
            "model": str(self.path),
            "op_types": dict(sorted(self.op_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "nodes": [n.to_json(self) for n in self.nodes],
            "inputs": [t.to_json() | {"dynamic_axes": list(t.dynamic_axes)} for t in self.inputs],
            "outputs": [t.to_json() | {"dynamic_axes": list(t.dynamic_axes)} for t in self.outputs],
            "warnings": list(self.warnings),
        }


# ---- loading -----------------------------------------------------------------------------------------
def read_model(path: str | os.PathLike[str], *, map_weights: bool = False) -> onnx.ModelProto:
    """Parse an ONNX file without its external data; every failure is a one-line UserError. `map_weights`:
    big inline weights become external data pointing into the file itself (mapped_weights.py), for a
    comparison, which reads them in place; never for a model that will be written out."""
    p = Path(path)
    require_regular_file(p, "ONNX file")  # a FIFO or /dev/zero would never return
    try:
        model = read_mapped(p) if map_weights else None
        model = model if model is not None else onnx.load_model(str(p), load_external_data=False)
    except DecodeError as exc:
        raise UserError(f"not a valid ONNX model (protobuf parse failed: {exc}); is the file truncated?", p) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot read ONNX model: {exc}", p) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise UserError("not an ONNX model (no graph found); is this the right file?", p)
    return model


def missing_external_data(model: onnx.ModelProto, base_dir: Path) -> list[str]:
    """External-data files referenced by initializers that do not exist next to the model."""
    missing: dict[str, None] = {}
    for init in _all_initializers(model.graph):
        if init.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in init.external_data if e.key == "location"), None)
            if location and location != PLACEHOLDER_LOCATION and not (base_dir / location).exists():
                missing[location] = None
    return list(missing)


def file_id(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """What tells a file changed since it was read (mtime, ctime, size, inode: a copy that keeps the mtime
    still changes the ctime); None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def load_graph(path: str | os.PathLike[str], *, infer_shapes: bool = True, map_weights: bool = False) -> GraphIndex:
    """The model's GraphIndex. `map_weights`: as read_model's (the index of a comparison, which shares its model)."""
    p = Path(path)
    identity = file_id(p)  # before reading: a change while it is read makes the two differ
    model = read_model(p, map_weights=map_weights)
    warnings: list[str] = []
    missing = missing_external_data(model, p.parent)
    if missing:
        warnings.append(
            "external weight data missing: " + ", ".join(missing) + " (indexing works; running or building will not)"
        )
    inferred = model
    ok = True
    if infer_shapes:
        model_for_inference = weight_free(model)  # same types and shapes; 10-50x faster on real models
        try:
            inferred = onnx.shape_inference.infer_shapes(model_for_inference, check_type=False, strict_mode=True, data_prop=False)
        except Exception as exc:  # onnx raises several unrelated types here; any of them means "inference failed"
            ok = False
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warnings.append(f"shape inference failed ({reason[:200]}); shapes shown only where they could be inferred")
            try:  # non-strict inference still fills in everything upstream of the problem
                inferred = onnx.shape_inference.infer_shapes(model_for_inference, check_type=False, strict_mode=False)
            except Exception:
                inferred = model
    index = _build_index(p, model, inferred.graph, warnings)
    index.shape_inference_ok = ok
    index.file_id = identity
    return index


def _all_initializers(graph: onnx.GraphProto):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            for sub in _subgraphs(attr):
                yield from _all_initializers(sub)


def _subgraphs(attr: AttributeProto) -> list[onnx.GraphProto]:
    if attr.type == AttributeProto.GRAPH:
        return [attr.g]
    if attr.type == AttributeProto.GRAPHS:
        return list(attr.graphs)
    return []


def _shape_of(type_proto: onnx.TypeProto) -> tuple[str | None, Shape | None]:
    if not type_proto.HasField("tensor_type"):
        return None, None
    tt = type_proto.tensor_type
    dtype = dtype_name(tt.elem_type) if tt.elem_type else None
    if not tt.HasField("shape"):
        return dtype, None
    dims: list[Dim] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dtype, tuple(dims)


class TensorTable(Mapping[str, TensorInfo]):
    """name -> TensorInfo, decoded from the protobuf records on first access.

    Decoding every value_info of a 10,000-node model up front costs more than the rest of indexing;
    most views only need the tensors of the rows on screen.
    """

    def __init__(self) -> None:
        self._raw: dict[str, object] = {}
        self._decoded: dict[str, TensorInfo] = {}

    def add_raw(self, name: str, record: object, *, prefer: bool = False) -> None:
        if prefer or name not in self._raw:
            self._raw[name] = record

    def __getitem__(self, name: str) -> TensorInfo:
        info = self._decoded.get(name)
        if info is None:
            info = _decode_tensor(name, self._raw[name])  # KeyError for unknown names, as a dict would
            self._decoded[name] = info
        return info

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _decode_tensor(name: str, record: object) -> TensorInfo:
    if isinstance(record, onnx.ValueInfoProto):
        dtype, shape = _shape_of(record.type)
        return TensorInfo(name, dtype, shape)
    assert isinstance(record, TensorProto)
    return TensorInfo(name, dtype_name(record.data_type), tuple(int(d) for d in record.dims))


def _collect_tensors(graph: onnx.GraphProto, into: TensorTable) -> None:
    # graph IO first: the model's own declarations win over inferred value_info for the same name
    for vi in graph.input:
        into.add_raw(vi.name, vi)
    for vi in graph.output:
        if vi.type.tensor_type.elem_type:
            into.add_raw(vi.name, vi)
    for vi in graph.value_info:
        into.add_raw(vi.name, vi)
    for vi in graph.output:  # untyped outputs only when nothing better is known
        into.add_raw(vi.name, vi)
    for init in graph.initializer:
        into.add_raw(init.name, init)
    for node in graph.node:
        if not node.attribute:
            continue
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == AttributeProto.TENSOR:
                    into.add_raw(node.output[0], attr.t)
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH or attr.type == AttributeProto.GRAPHS:
                for sub in _subgraphs(attr):
                    _collect_tensors(sub, into)


def _attribute_summary(node: onnx.NodeProto, limit: int = 120) -> str:
    if not node.attribute:
        return ""
    parts = []
    for a in node.attribute:
        if a.type == AttributeProto.FLOAT:
            v = f"{a.f:g}"
        elif a.type == AttributeProto.INT:
            v = str(a.i)
        elif a.type == AttributeProto.STRING:
            v = repr(a.s.decode("utf-8", "replace"))
        elif a.type == AttributeProto.INTS:
            v = "[" + ",".join(str(i) for i in a.ints[:8]) + (",…" if len(a.ints) > 8 else "") + "]"
        elif a.type == AttributeProto.FLOATS:
            v = "[" + ",".join(f"{f:g}" for f in a.floats[:8]) + (",…" if len(a.floats) > 8 else "") + "]"
        elif a.type == AttributeProto.TENSOR:
            v = f"<tensor {dtype_name(a.t.data_type)} {'x'.join(map(str, a.t.dims)) or 'scalar'}>"
        elif a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            n = sum(len(g.node) for g in _subgraphs(a))
            v = f"<graph {n} nodes>"
        else:
            v = "…"
        parts.append(f"{a.name}={v}")
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scope_from_metadata(node: onnx.NodeProto) -> str | None:
    for prop in node.metadata_props:
        if prop.key == TORCH_SCOPE_KEY and prop.value:
            raw = prop.value.strip()
            parts: list[str]
            try:
                value = ast.literal_eval(raw)
                parts = [str(x) for x in value] if isinstance(value, (list, tuple)) else [str(value)]
            except (ValueError, SyntaxError):
                parts = [s.strip() for s in raw.split(",")]
            parts = [x for x in parts if x]
            if not parts:
                return ""
            # torch writes either cumulative paths (['blocks', 'blocks.0', 'blocks.0.ln1']) or the pieces
            cumulative = all(b.startswith(a) for a, b in zip(parts, parts[1:]))
            return parts[-1] if cumulative else ".".join(parts)
    return None


def _scope_from_name(name: str) -> str:
    head = name.rpartition("/")[0]
    return head.strip("/") if "//" not in head else "/".join(p for p in head.split("/") if p)


def _topological_order(
    ins: list[tuple[str, ...]], outs: list[tuple[str, ...]], graph_inputs: set[str]
) -> list[int]:
    """Indices of the nodes (given by their input/output names) in a topological order, keeping the
    file's order where it already is one."""
    produced_by: dict[str, int] = {}
    for i, names in enumerate(outs):
        for o in names:
            produced_by[o] = i
    produced_by.pop("", None)
    available = set(graph_inputs)
    in_order = True
    for i, names in enumerate(ins):
        for t in names:
            if t not in available and t in produced_by:
                in_order = False
                break
        if not in_order:
            break
        available.update(outs[i])
    if in_order:
        return list(range(len(ins)))
    # Kahn's algorithm, smallest original index first (stable), for files that are not sorted.
    import heapq

    nodes = ins
    deps: list[set[int]] = [set() for _ in nodes]
    users: dict[int, list[int]] = defaultdict(list)
    for i, names in enumerate(ins):
        for t in names:
            j = produced_by.get(t) if t else None
            if j is not None and j != i and j not in deps[i]:
                deps[i].add(j)
                users[j].append(i)
    remaining = [len(d) for d in deps]
    heap = [i for i, r in enumerate(remaining) if r == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        i = heapq.heappop(heap)
        order.append(i)
        for u in users[i]:
            remaining[u] -= 1
            if remaining[u] == 0:
                heapq.heappush(heap, u)
    if len(order) < len(nodes):  # a cycle: keep the rest in file order rather than dropping nodes
        seen = set(order)
        order.extend(i for i in range(len(nodes)) if i not in seen)
    return order


def _build_index(path: Path, model: onnx.ModelProto, inferred: onnx.GraphProto, warnings: list[str]) -> GraphIndex:
    graph = model.graph
    tensors = TensorTable()
    # the inferred graph is a full copy of the model plus value_info, so one pass over it is enough
    _collect_tensors(inferred if len(inferred.node) == len(graph.node) else graph, tensors)

    initializers = frozenset(i.name for i in graph.initializer)
    graph_inputs = [vi.name for vi in graph.input if vi.name not in initializers]
    nodes: list[NodeInfo] = []
    name_counts: Counter[str] = Counter()

    def add(node: onnx.NodeProto, topo: int, parent: str | None, io=None) -> NodeInfo:
        inputs, outputs = io if io is not None else (tuple(node.input), tuple(node.output))
        name = node.name
        if not name:
            name = "node_of_" + next((o for o in outputs if o), "")
        scope = _scope_from_metadata(node) if node.metadata_props else None
        if scope is None:
            scope = _scope_from_name(node.name)
        info = NodeInfo(
            name=name,
            op_type=node.op_type,
            domain=node.domain or "ai.onnx",
            inputs=inputs,
            outputs=outputs,
            topo_index=topo,
            scope=scope,
            parent=parent,
            name_was_empty=not node.name,
            proto=node,
        )
        nodes.append(info)
        name_counts[name] += 1
        if node.attribute:
            for attr in node.attribute:
                if attr.type == AttributeProto.GRAPH or attr.type == AttributeProto.GRAPHS:
                    for sub in _subgraphs(attr):
                        for inner in sub.node:
                            add(inner, topo, name)
        return info

    top = list(graph.node)
    ins = [tuple(n.input) for n in top]
    outs = [tuple(n.output) for n in top]
    for topo, i in enumerate(_topological_order(ins, outs, set(graph_inputs) | initializers)):
        add(top[i], topo, None, (ins[i], outs[i]))

    by_name: dict[str, NodeInfo] = {}
    producer: dict[str, str] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    dupes = sorted(n for n, c in name_counts.items() if c > 1)
    unsafe = 0
    for n in nodes:
        flags = []
        if name_counts[n.name] > 1:
            flags.append("duplicate-name")
        if TRTEXEC_UNSAFE.search(n.name):
            flags.append("trtexec-unsafe-name")
            unsafe += 1
        if n.name_was_empty:
            flags.append("unnamed")
        if n.parent is not None:
            flags.append("in-subgraph")
        if n.op_type in RANDOM_OPS:
            flags.append("random")
        n.flags = tuple(flags)
        by_name.setdefault(n.name, n)
        for o in n.outputs:
            if o:
                producer.setdefault(o, n.name)
        for t in n.inputs:
            if t:
                consumers[t].append(n.name)

    unnamed = sum(1 for n in nodes if n.name_was_empty)
    if dupes:
        shown = ", ".join(dupes[:5]) + (f" and {len(dupes) - 5} more" if len(dupes) > 5 else "")
        warnings.append(f"{len(dupes)} duplicated node name(s): {shown}")
    if unsafe:
        warnings.append(
            f"{unsafe} node name(s) contain ',' or ':' and cannot be pinned on a trtexec command line "
            "(use the TensorRT 11 mixed-precision route or the Python builder)"
        )
    if unnamed:
        warnings.append(f"{unnamed} unnamed node(s) were given TensorRT parser names (node_of_<first output>)")
    in_sub = sum(1 for n in nodes if n.parent is not None)
    if in_sub:
        warnings.append(f"{in_sub} node(s) live inside If/Loop/Scan subgraphs (listed under their parent)")

    def io(names: list[str]) -> list[TensorInfo]:
        return [tensors.get(n) or TensorInfo(n, None, None) for n in names]

    return GraphIndex(
        path=path,
        model=model,
        nodes=nodes,
        inputs=io(graph_inputs),
        outputs=io([o.name for o in graph.output]),
        tensors=tensors,
        initializers=initializers,
        warnings=warnings,
        by_name=by_name,
        producer=producer,
        consumers=dict(consumers),
    )

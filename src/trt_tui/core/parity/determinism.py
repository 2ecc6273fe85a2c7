"""Random ops in a comparison: the same fixed seed on both sides, or a clear refusal.

A model with unseeded RandomNormal(Like)/RandomUniform(Like)/Multinomial/Bernoulli nodes or a Dropout in
training mode draws new noise on every run, and a comparison would report that noise as drift (a TTS model
showed rel_rms 1.9-8.6 from it). ONNX Runtime honours a node's `seed` attribute: the same seed gives the same
draws in every session, so seeding the reference and the candidate model alike makes both draw the same
values. Candidates that are not an ONNX model we rewrite (a TensorRT engine, saved outputs) cannot be
seeded: the comparison refuses them (`refuse_unseedable`).
"""

from __future__ import annotations

import onnx
from onnx import helper

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex

# the seed written into every random node that has none (any fixed value works; both sides get the same)
RANDOM_SEED = 1234.0


def seed_random_ops(model: onnx.ModelProto, names: set[str], seed: float = RANDOM_SEED) -> int:
    """Give every node named in `names` (GraphIndex.random_nodes) a `seed` attribute when it has none; in
    place. Returns how many nodes were seeded. Node names follow the index (node_of_<output> when unnamed)."""
    seeded = 0
    for node in model.graph.node:
        name = node.name or "node_of_" + next((o for o in node.output if o), "")
        if name in names and not any(a.name == "seed" for a in node.attribute):
            node.attribute.append(helper.make_attribute("seed", float(seed)))
            seeded += 1
    return seeded


def random_note(index: GraphIndex) -> str | None:
    """One line naming the random nodes (None when there are none)."""
    nodes = index.random_nodes()
    if not nodes:
        return None
    shown = ", ".join(f"{n.name} ({n.op_type})" for n in nodes[:5]) + (" ..." if len(nodes) > 5 else "")
    return f"{len(nodes)} random node(s): {shown}"


def refuse_unseedable(index: GraphIndex, side: str) -> None:
    """A side we cannot seed (engine, saved outputs) facing a model with random nodes: refuse in one line."""
    note = random_note(index)
    if note is not None:
        raise UserError(f"{note}; {side} cannot be given the same seed, so its output would differ by noise, not "
                        "precision: give the nodes a seed attribute in the model, or compare the emulate/mixed "
                        "candidate, which trt_tui seeds alike on both sides", index.path)  # fmt: skip

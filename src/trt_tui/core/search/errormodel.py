"""A first-order model of a pin set's output error, built from the sensitivity pass (sensitivity.py).

Where the error comes from, as the emulation models fp16/bf16 (storage rounding, FP32 accumulation):
- a float tensor is rounded where it is stored: by its producer when that runs low, else by each low node
  that reads it. Data-movement nodes (Reshape, Transpose, Concat...: `PASS_THROUGH_OPS`) copy values exactly,
  so a tensor's readers are the compute nodes it reaches through them. The rounding of tensor t reaches the
  outputs by each reader: that path is gone when the producer AND that reader run FP32 (a low reader rounds
  its own copy). One pinned node alone removes little: pins come in connected groups (a LayerNorm and the
  MatMul reading it; the residual Add reading the same tensor may stay low);
- a low node's constants (weights) are rounded where it reads them: gone when that node is pinned.

Each term is measured once: rho_t, the relative error of rounding t's FP32 value; omega_n, the relative error
n's rounded constants add to its output; k_rt, reader r's amplification of an error on t; G, the gain of a
relative error at a tensor to the checked outputs.
Rounding errors of different tensors are independent, so their effects at the outputs add in quadrature:

    err(S)^2 ~= alpha * W(S),   W(S) = sum of (rho_t k_rt G_r)^2 over paths (t -> reader r) still rounded under S
                                     + sum of (omega_n G_n)^2 over compute nodes n not in S

and alpha is read off measured evaluations (the nothing-pinned baseline first, then each evaluation: the
search re-calibrates on the last set it ran). Checked on the demo against per-tensor ground truth (one run per
tensor, only it rounded): the quadrature sum of the terms is within 10% of the all-rounded error, and 94% of
the error (weighted) comes from terms whose measured gain is within 2x of the truth.

`build(goal)` picks a small set with W(S) <= goal: greedy by error removed per node pinned, where an option is
one node or the group that keeps one tensor FP32; then a reverse pass drops pins the goal does not need.
Data-movement nodes are never candidates: `expand(S)` pins exactly those that carry an FP32 value between
FP32 nodes (a Reshape between a pinned LayerNorm and a pinned MatMul), the only ones whose pin changes values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trt_tui.core.precision.opsupport import PASS_THROUGH_OPS


@dataclass
class Source:
    """One path of a tensor's rounding: gone when every node in `needs` is pinned (its producer if low, the
    reader the path goes through; just the producer for a checked output)."""

    tensor: str
    needs: frozenset[int]  # compute nodes that must be pinned
    weight: float  # (rho G)^2, inf when the tensor overflows the low precision


@dataclass
class ErrorModel:
    names: list[str]  # per plan node index
    candidates: list[int]  # compute nodes that can be pinned (plan indices, topological order)
    sources: list[Source]
    node_weight: dict[int, float]  # (omega G)^2 per candidate
    passthrough: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)  # node -> (float ins, outs)
    fp32_tensors: frozenset[str] = frozenset()  # tensors that are FP32 whatever is pinned (inputs, FP32 nodes)
    producer: dict[str, int] = field(default_factory=dict)  # tensor -> producing node
    readers: dict[str, list[int]] = field(default_factory=dict)  # tensor -> reading nodes
    graph_outputs: frozenset[str] = frozenset()
    low_nodes: frozenset[int] = frozenset()  # every node that computes low with nothing pinned

    def __post_init__(self) -> None:
        self.index = {self.names[i]: i for i in self.candidates}
        self._pos = {n: k for k, n in enumerate(self.candidates)}
        self._outs: dict[int, list[str]] = {}
        for t, p in self.producer.items():
            self._outs.setdefault(p, []).append(t)
        self._of_node: dict[int, list[int]] = {}
        for k, s in enumerate(self.sources):
            for n in s.needs:
                self._of_node.setdefault(n, []).append(k)
        # an overflowing tensor must stay FP32: its producer and readers are pinned before anything else
        self.forced = frozenset(n for s in self.sources if math.isinf(s.weight) for n in s.needs) | frozenset(
            n for n, w in self.node_weight.items() if math.isinf(w)
        )

    # ---- the predicted error -------------------------------------------------------------------------------
    def weight(self, pins: set[int], *, finite: bool = False) -> float:
        """W(S); `finite` leaves out the infinite (overflow) terms."""
        w = 0.0
        for s in self.sources:
            if not s.needs <= pins and not (finite and math.isinf(s.weight)):
                w += s.weight
        for n, v in self.node_weight.items():
            if n not in pins and not (finite and math.isinf(v)):
                w += v
        return w

    def _gain(self, pins: set[int], new: set[int]) -> float:
        """How much W drops when `new` joins `pins`."""
        g = sum(self.node_weight.get(n, 0.0) for n in new)
        seen = set()
        after = pins | new
        for n in new:
            for k in self._of_node.get(n, ()):
                if k not in seen:
                    seen.add(k)
                    s = self.sources[k]
                    if not s.needs <= pins and s.needs <= after:
                        g += s.weight
        return g

    def _loss(self, pins: set[int], n: int) -> float:
        """How much W grows when n leaves `pins`."""
        g = self.node_weight.get(n, 0.0)
        for k in self._of_node.get(n, ()):
            if self.sources[k].needs <= pins:
                g += self.sources[k].weight
        return g

    # ---- choosing sets -------------------------------------------------------------------------------------
    def build(self, goal: float, must: set[int] = frozenset()) -> set[int]:
        """A small set of candidates containing `must` (and the forced ones) with W(S) <= goal (or every one)."""
        pins = set(must) | set(self.forced)
        w = self.weight(pins)
        singles = [n for n in self.candidates if self.node_weight.get(n, 0.0) > 0]
        while w > goal:
            best, best_new, best_gain = -1.0, None, 0.0
            options = [s.needs - pins for s in self.sources if not s.needs <= pins]
            options += [{n} for n in singles if n not in pins]
            for new in options:
                gain = self._gain(pins, new)
                ratio = gain / len(new)
                if ratio > best or (ratio == best and best_new is not None and len(new) < len(best_new)):
                    best, best_new, best_gain = ratio, new, gain
            if best_new is None or best_gain <= 0:
                break
            pins |= best_new
            w -= best_gain
        return self.prune(pins, goal, must)

    def prune(self, pins: set[int], goal: float, must: set[int] = frozenset()) -> set[int]:
        """Drop the pins whose removal keeps W(S) <= goal, least useful first (`must` and forced ones stay)."""
        pins = set(pins)
        w = self.weight(pins)
        keep = set(must) | set(self.forced)
        for n in sorted(pins - keep, key=lambda n: (self._loss(pins, n), -self._pos.get(n, 0))):
            loss = self._loss(pins, n)
            if w + loss <= goal:
                pins.discard(n)
                w += loss
        return pins

    # ---- names ---------------------------------------------------------------------------------------------
    def to_names(self, pins: set[int]) -> frozenset[str]:
        """The pin set to emulate: the chosen compute nodes plus the data-movement nodes that carry FP32 values."""
        return frozenset(self.names[n] for n in pins) | frozenset(self.names[n] for n in self.carriers(pins))

    def from_names(self, names) -> set[int]:
        return {self.index[n] for n in names if n in self.index}

    def carriers(self, pins: set[int]) -> set[int]:
        """Data-movement nodes between FP32 values and FP32 readers (or graph outputs): pinned so that the value
        is not rounded on the way. Elsewhere their pin changes nothing (a low reader rounds anyway)."""
        fp32 = set(self.fp32_tensors)
        for n in pins:
            fp32.update(self._outs.get(n, ()))
        carries: set[int] = set()
        for n, (ins, outs) in self.passthrough.items():  # topological order: a chain carries along
            if any(t in fp32 for t in ins):
                carries.add(n)
                fp32.update(outs)
        useful: set[str] = set(self.graph_outputs)
        for t, rs in self.readers.items():
            if any(r in pins or r not in self.low_nodes for r in rs):
                useful.add(t)
        chosen: set[int] = set()
        for n in reversed(list(self.passthrough)):
            ins, outs = self.passthrough[n]
            if n in carries and any(t in useful for t in outs):
                chosen.add(n)
                useful.update(ins)
        return chosen


def is_passthrough(op_type: str) -> bool:
    return op_type in PASS_THROUGH_OPS

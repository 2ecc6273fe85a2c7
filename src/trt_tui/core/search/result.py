"""The search's answer: pins (and rules where simpler), errors with and without them, the log; JSON trt_tui.search/1."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import onnx

from trt_tui.core import jsonio
from trt_tui.core.fileio import atomic_write

SCHEMA = "trt_tui.search/1"
STATUS_TEXT = {
    "found": "found a passing pin set",
    "no-pins-needed": "the target is met with nothing pinned",
    "budget": "stopped: evaluation budget spent",
    "cancelled": "stopped: cancelled",
    "fp32-fails": "the FP32 model itself misses the target (against a second FP32 run): not searched",
    "unreachable": "even with every candidate node pinned to FP32 the target is missed",
}


@dataclass
class PinRulesFound:
    """A pin set as rules: op types whose every node is in the set, plus the other nodes by name."""

    op_types: dict[str, int]  # op type -> node count
    names: list[str]

    @classmethod
    def from_pins(cls, model: onnx.ModelProto, pins: list[str]) -> PinRulesFound:
        from trt_tui.core.precision.plan import node_name

        nodes = [(node_name(n), n.op_type) for n in model.graph.node]
        per_op = Counter(op for _, op in nodes)
        chosen = set(pins)
        pinned_per_op = Counter(op for name, op in nodes if name in chosen)
        whole = {op: n for op, n in pinned_per_op.items() if n == per_op[op] and n >= 2}
        op_of = dict(nodes)
        names = [p for p in pins if op_of.get(p) not in whole]
        return cls(dict(sorted(whole.items())), names)

    def text(self) -> str:
        parts = [f"{op} ({n})" for op, n in self.op_types.items()]
        if self.names:
            parts.append(f"{len(self.names)} named node{'s' if len(self.names) != 1 else ''}")
        return " + ".join(parts) if parts else "nothing"

    def to_json(self) -> dict:
        return {"op_types": self.op_types, "names": self.names, "text": self.text()}


@dataclass
class SearchResult:
    model: str
    precision: str
    criterion: list[str]
    status: str
    pins: list[str]  # topological order; empty when nothing is needed or nothing was found
    rules: PinRulesFound
    passed: bool  # a passing set was found (and checked on every sample unless stopped early)
    evaluations: int
    inferences: int
    outputs: dict[str, dict]  # output -> {"without": metrics, "with": metrics, "failed_without": [...], ...}
    log: list[dict]
    elapsed_s: float
    candidates: int  # nodes the search could pin (low-precision nodes that reach a checked output)
    float_nodes: int  # nodes computing in low precision with nothing pinned
    samples: dict = field(default_factory=dict)  # {"search": n, "held_out": n} or {"stream_chunks": n}
    held_out: dict | None = None
    sensitivity: dict = field(default_factory=dict)
    budget: int | None = None
    reasons: list[str] = field(default_factory=list)  # why the FP32 check / the final set failed, if it did
    # pins that are data movement (Reshape, Concat...): not chosen, they carry FP32 values between chosen pins
    carriers: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        text = STATUS_TEXT.get(self.status, self.status)
        if self.status in ("budget", "cancelled"):  # exit 0 or 1 hangs on this: say which
            text += ": kept the smallest passing set found" if self.passed else ": no passing set found"
        return text

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "pins": self.pins,
            "rules": self.rules.to_json(),
            "passed": self.passed,
            "evaluations": self.evaluations,
            "outputs": self.outputs,
            "log": self.log,
            "elapsed_s": round(self.elapsed_s, 4),
            "status": self.status,
            "message": self.message,
            "model": self.model,
            "precision": self.precision,
            "criterion": self.criterion,
            "inferences": self.inferences,
            "candidates": self.candidates,
            "compute_pins": len(self.pins) - len(self.carriers),
            "carriers": self.carriers,
            "float_nodes": self.float_nodes,
            "samples": self.samples,
            "held_out": self.held_out,
            "sensitivity": self.sensitivity,
            "budget": self.budget,
            "reasons": self.reasons,
        }

    def write_json(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        atomic_write(path, jsonio.dumps(self.to_json(), indent=2) + "\n", overwrite=overwrite)

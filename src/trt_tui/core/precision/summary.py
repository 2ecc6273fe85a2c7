"""What a rewrite really put in low precision, and what it kept FP32 and why.

This is the API a comparison uses to refuse a no-op ("a candidate that ran nothing in low precision must
never PASS"): both rewrite results (`MixedPrecisionResult`, `EmulationResult`) expose

- `result.kept_fp32`: every node kept FP32, with its reason (`KeptFp32(node, op_type, reason)`): pinned by
  the user, no low-precision type in the ONNX spec (mixed route only), a constant beyond init_max, or
  computed from constants/shapes only;
- `result.low_precision`: a `LowPrecisionSummary` with how many nodes compute and how many tensors hold
  low-precision values, and `ran_nothing_low` (True: comparing this candidate would compare FP32 with FP32).

Rewritten models also carry the summary in their metadata (`read_low_precision(model)`), so a file written
by `convert` can be checked the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import onnx

METADATA_KEY = "trt_tui.low_precision"

PINNED = "pinned FP32 by the user"


@dataclass(frozen=True)
class KeptFp32:
    node: str
    op_type: str
    reason: str

    def to_json(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "reason": self.reason}


@dataclass(frozen=True)
class LowPrecisionSummary:
    low: str  # fp16 | bf16
    low_nodes: int  # nodes computing in the low precision
    # mixed: tensors stored in the low type; emulate: tensors whose values are rounded through it
    low_tensors: int
    kept_fp32: tuple[KeptFp32, ...] = ()
    opset: tuple[int, int] | None = None  # (from, to) when the rewrite upgraded the default-domain opset

    @property
    def ran_nothing_low(self) -> bool:
        return self.low_tensors == 0

    def one_line(self) -> str:
        """Why a comparison of this candidate would check nothing (meant for ran_nothing_low)."""
        text = f"nothing runs in {self.low}: the rewrite found no FP32 tensor to put in {self.low}"  # none left, or none there
        if self.kept_fp32:
            first = self.kept_fp32[0]
            text += f" ({len(self.kept_fp32)} node(s) kept FP32, e.g. {first.node}: {first.reason})"
        return text

    def to_json(self) -> dict:
        return {
            "low": self.low,
            "low_nodes": self.low_nodes,
            "low_tensors": self.low_tensors,
            "ran_nothing_low": self.ran_nothing_low,
            "kept_fp32": [k.to_json() for k in self.kept_fp32],
            "opset": list(self.opset) if self.opset else None,
        }


def write_low_precision(model: onnx.ModelProto, summary: LowPrecisionSummary) -> None:
    from trt_tui.core.precision.common import set_metadata

    set_metadata(model, METADATA_KEY, json.dumps(summary.to_json()))


def read_low_precision(model: onnx.ModelProto) -> LowPrecisionSummary | None:
    """The summary a trt_tui rewrite stored in the model, or None (not written by trt_tui)."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            d = json.loads(prop.value)
            kept = tuple(KeptFp32(**k) for k in d.get("kept_fp32", ()))
            opset = tuple(d["opset"]) if d.get("opset") else None
            return LowPrecisionSummary(d["low"], d["low_nodes"], d["low_tensors"], kept, opset)
    return None

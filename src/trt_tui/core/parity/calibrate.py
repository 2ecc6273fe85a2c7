"""How far to trust the CPU preview on a model: its drift next to real GPU kernels' drift, tensor by tensor.

`calibrate(model, ...)` runs two comparisons on the same inputs: the CPU emulation (the preview) against
FP32 on the CPU, and the `cuda` candidate (the mixed-precision ONNX on ONNX Runtime's CUDA EP, real fp16/bf16
kernels) against FP32 on the CUDA EP with TF32 off. For every tensor both compared, the ratio
preview rel_rms / GPU rel_rms says how the preview reads there (1.0: exact; below: it underestimates).
Ratios are summarised per op type (the producing node's) and listed per graph output, as median, p10, p90.

Tensors whose GPU drift is zero (the GPU ran them in FP32, or they are exact) or tiny (below `floor`, where
the ratio is noise) are left out of the ratios and counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from trt_tui.core.parity.engine import CompareOptions, compare
from trt_tui.core.parity.runners import CandidateSpec

RATIO_FLOOR = 1e-6  # GPU rel_rms below this: the ratio would be noise (fp16 rounding of exact values is ~1e-4)


@dataclass
class RatioStats:
    count: int
    median: float
    p10: float
    p90: float
    within: float  # fraction of ratios in [0.8, 1.25]

    @staticmethod
    def of(ratios: list[float]) -> RatioStats:
        a = np.asarray(ratios, dtype=np.float64)
        p10, median, p90 = np.quantile(a, [0.1, 0.5, 0.9])
        return RatioStats(len(a), float(median), float(p10), float(p90), float(np.mean((a >= 0.8) & (a <= 1.25))))

    def to_json(self) -> dict:
        return {"count": self.count, "median": self.median, "p10": self.p10, "p90": self.p90, "within_0.8_1.25": self.within}


@dataclass
class Calibration:
    model: str
    precision: str
    per_tensor: dict[str, tuple[str, float, float]]  # tensor -> (op type, preview rel_rms, GPU rel_rms)
    outputs: list[str]
    skipped: int  # tensors without a usable ratio (GPU drift zero or below the floor)
    warnings: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, float]:
        return {t: p / g for t, (_, p, g) in self.per_tensor.items() if g > RATIO_FLOOR and math.isfinite(p / g)}

    def by_op_type(self) -> dict[str, RatioStats]:
        groups: dict[str, list[float]] = defaultdict(list)
        for t, r in self.ratios().items():
            groups[self.per_tensor[t][0]].append(r)
        return {op: RatioStats.of(rs) for op, rs in sorted(groups.items())}

    def overall(self) -> RatioStats | None:
        rs = list(self.ratios().values())
        return RatioStats.of(rs) if rs else None

    def to_json(self) -> dict:
        ratios = self.ratios()
        overall = self.overall()
        return {
            "schema": "trt_tui.calibrate/1",
            "model": self.model,
            "precision": self.precision,
            "overall": overall.to_json() if overall else None,
            "op_types": {op: s.to_json() for op, s in self.by_op_type().items()},
            "outputs": {
                t: {"preview_rel_rms": self.per_tensor[t][1], "gpu_rel_rms": self.per_tensor[t][2], "ratio": ratios.get(t)}
                for t in self.outputs if t in self.per_tensor
            },
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


def calibrate(model, *, precision: str = "fp16", pins=(), inputs=None, options: CompareOptions | None = None,
              fuse_bias: bool = True) -> Calibration:  # fmt: skip
    """The preview's drift against the CUDA EP's, per tensor (see the module docstring). Needs onnxruntime-gpu."""
    from trt_tui.core.parity.providers import require_cuda

    require_cuda("calibrate")
    options = options or CompareOptions()
    cpu = CompareOptions(**{**options.__dict__, "providers": ["cpu"]})
    preview = compare(model, CandidateSpec("emulate", precision=precision, pins=tuple(pins), fuse_bias=fuse_bias),
                      precision=precision, inputs=inputs, options=cpu)  # fmt: skip
    gpu = compare(model, CandidateSpec("cuda", precision=precision, pins=tuple(pins)), precision=precision,
                  inputs=inputs, options=CompareOptions(**{**options.__dict__, "providers": None}))  # fmt: skip
    gpu_rows = {d.name: d for d in gpu.tensors}
    per_tensor: dict[str, tuple[str, float, float]] = {}
    skipped = 0
    for d in preview.tensors:
        g = gpu_rows.get(d.name)
        if g is None:
            continue
        per_tensor[d.name] = (d.op_type or "?", float(d.rel_rms), float(g.rel_rms))
        if not (g.rel_rms > RATIO_FLOOR):
            skipped += 1
    from trt_tui.core.graph import load_graph

    outputs = list(load_graph(model, infer_shapes=False).outputs) if not isinstance(model, list) else []
    return Calibration(str(model), precision, per_tensor, [o if isinstance(o, str) else o.name for o in outputs], skipped,
                       warnings=[*preview.warnings, *gpu.warnings])  # fmt: skip

"""Precision rewriting: strongly-typed mixed-precision ONNX (the TensorRT 11 route) and CPU drift emulation.

- `to_mixed_precision(model, "fp16"|"bf16", pins, keep_io_types=True, init_max=65504.0)`: real FP16/BF16
  graph, pinned nodes FP32, Casts at the boundaries (mixed.py).
- `emulate(model, low, pins, fuse_bias=True)`: FP32 graph that rounds every low-precision tensor through
  fp16/bf16 under its original name, for drift previews on ONNX Runtime CPU (emulate.py).
- `emulate_switchable(model, low)`: one emulated graph whose nodes are pinned at run time by boolean inputs,
  bit for bit `emulate(model, low, pins)` for any pins (switchable.py; the pin search's evaluations).
- `emulation_session(model)`: the ORT session to run it with (session.py).
Both rewrites accept a path (external data loaded) or a ModelProto and refuse If/Loop/Scan models.

What a rewrite really made low precision (for refusing a comparison that would check nothing) is
`result.low_precision` (a `LowPrecisionSummary`: `low_nodes`, `low_tensors`, `ran_nothing_low`,
`kept_fp32`) and `result.kept_fp32` (every node kept FP32 with its reason); `read_low_precision(model)`
reads the same summary back from a model file trt_tui wrote (summary.py).
"""

from trt_tui.core.precision.emulate import EmulationResult, emulate
from trt_tui.core.precision.mixed import CastInserted, MixedPrecisionResult, to_mixed_precision
from trt_tui.core.precision.plan import AutoFp32, OverflowInitializer
from trt_tui.core.precision.summary import KeptFp32, LowPrecisionSummary, read_low_precision
from trt_tui.core.precision.session import check_ort_keeps_rounding, count_cast_pairs, emulation_session, save_model

__all__ = [
    "AutoFp32",
    "CastInserted",
    "check_ort_keeps_rounding",
    "EmulationResult",
    "KeptFp32",
    "LowPrecisionSummary",
    "read_low_precision",
    "MixedPrecisionResult",
    "OverflowInitializer",
    "count_cast_pairs",
    "emulate",
    "emulation_session",
    "save_model",
    "to_mixed_precision",
]

"""A comparison as per-node data for Google's Model Explorer, so the drift shows on the graph there.

Model Explorer's node data JSON (its "custom node data" overlay): `results` maps a node id or an output
tensor name to `{"value": number}`, and `thresholds` (ascending `value` with a `bgColor`: a node takes the
colour of the first threshold its value does not exceed) or `gradient` (`stop` 0..1 with a `bgColor`) says
how values are coloured. We key by output tensor name (what was compared; unambiguous where node names
repeat) and colour rel_rms by decades around the tolerance. Format as documented by the Model Explorer wiki
("Custom node data"); not checked against a running Model Explorer here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.fileio import atomic_write
from trt_tui.core.parity.results import CompareResult

METRICS = ("rel_rms", "max_abs", "p99_abs", "headroom")
THRESHOLDS = [  # rel_rms: green where fp16 storage rounding alone lands, red where something broke
    {"value": 1e-4, "bgColor": "#1a9850"},
    {"value": 1e-3, "bgColor": "#91cf60"},
    {"value": 1e-2, "bgColor": "#fee08b"},
    {"value": 1e-1, "bgColor": "#fc8d59"},
    {"value": 1e300, "bgColor": "#d73027"},
]
NONFINITE = 1e300  # JSON has no inf/nan: non-finite drift is shown as the largest value (red)


def node_data(result: CompareResult, metric: str = "rel_rms") -> dict:
    """The node data document for `result`: one value per compared tensor, by output tensor name."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    results = {}
    for d in result.tensors:
        value = float(getattr(d, metric))
        results[d.name] = {"value": value if math.isfinite(value) else NONFINITE}
    doc: dict = {"results": results}
    if metric == "rel_rms":
        doc["thresholds"] = THRESHOLDS
    else:
        doc["gradient"] = [{"stop": 0, "bgColor": "#ffffbf"}, {"stop": 1, "bgColor": "#d73027"}]
    return doc


def write_node_data(result: CompareResult, path: str | os.PathLike[str], *, metric: str = "rel_rms",
                    overwrite: bool = False) -> Path:  # fmt: skip
    return atomic_write(path, jsonio.dumps(node_data(result, metric), indent=1) + "\n", overwrite=overwrite)

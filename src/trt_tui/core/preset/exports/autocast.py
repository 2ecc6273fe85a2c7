"""The equivalent ModelOpt AutoCast conversion (`python -m modelopt.onnx.autocast`).

The rules are written as AutoCast understands them (op types, regexes) when that selects exactly the
preset's pins; with exclusions, which AutoCast cannot express, every pinned node is named by an anchored,
escaped regex instead. `--data_max inf` turns off AutoCast's own range heuristic so that exactly the pinned
nodes stay FP32, as in the trtexec build (AutoCast still keeps initializers that overflow FP16 in FP32).
"""

from __future__ import annotations

import re

from trt_tui.core.errors import UserError
from trt_tui.core.preset.exports.common import Paths, command
from trt_tui.core.preset.resolved import ResolvedPreset


def export_autocast(r: ResolvedPreset, paths: Paths) -> str:
    if not r.low_precision:
        raise UserError("precision is fp32: there is nothing for AutoCast to convert", r.source_path)
    output = r.converted_model_path or r.engine_path.with_name(f"{r.engine_path.stem}.mixed.onnx")
    args = ["python", "-m", "modelopt.onnx.autocast", "--onnx_path", paths(r.model_path), "--output_path", paths(output)]
    args += ["--low_precision_type", r.precision]
    rules = r.pin_rules
    if rules.exclude:
        nodes, ops = [f"^{re.escape(n)}$" for n in r.pinned_nodes], []
    else:
        nodes = list(rules.patterns) + [f"^{re.escape(n)}$" for n in rules.names]
        ops = list(rules.op_types)
    if nodes:
        args += ["--nodes_to_exclude", *nodes]
    if ops:
        args += ["--op_types_to_exclude", *ops]
    args += ["--data_max", "inf"]
    if r.input_data != "random":
        args += ["--calibration_data", paths(r.input_data)]
    if r.keep_io_types:
        args.append("--keep_io_types")
    return command(args, head=3) + "\n"

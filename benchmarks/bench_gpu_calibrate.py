"""The CPU preview against real GPU kernels, model by model (needs onnxruntime-gpu and a GPU).

    python benchmarks/bench_gpu_calibrate.py MODEL[@DIM=N,DIM=N] ... [--precision fp16] [--seed N] [--json OUT]

For each model: `trt_tui.core.parity.calibrate` (the preview's per-tensor rel_rms over the CUDA EP's, same
inputs) and a table: overall median / p10 / p90 and the share of tensors within [0.8, 1.25], the recurrent
op types' medians, and every graph output's ratio (for streaming models the cache outputs are the ones
that matter). Failures are one line per model; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trt_tui.core.errors import UserError  # noqa: E402
from trt_tui.core.parity.calibrate import calibrate  # noqa: E402
from trt_tui.core.parity.inputs import InputSpec  # noqa: E402

RECURRENT = ("GRU", "LSTM", "RNN")


def parse(item: str) -> tuple[Path, dict[str, int]]:
    path, _, dims = item.partition("@")
    return Path(path), {k: int(v) for k, v in (d.split("=") for d in dims.split(",") if d)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--precision", default="fp16", choices=("fp16", "bf16"))
    ap.add_argument("--seed", type=int, default=1, help="random inputs' seed (a scalar output's ratio is one draw: vary it)")
    ap.add_argument("--json", help="write every model's calibration here")
    args = ap.parse_args()
    report = {}
    for item in args.models:
        path, dims = parse(item)
        key = path.name + (f"@{item.partition('@')[2]}" if dims else "")  # one model at several shapes: one entry each
        start = time.perf_counter()
        try:
            cal = calibrate(path, precision=args.precision, inputs=InputSpec(seed=args.seed, dims=dims))
        except UserError as exc:
            print(f"{path.name}: FAILED {exc.one_line()}", flush=True)
            report[key] = {"error": exc.one_line()}
            continue
        doc = cal.to_json()
        doc["seconds"] = round(time.perf_counter() - start, 2)
        report[key] = doc
        o = doc["overall"]
        head = "no measurable GPU drift" if o is None else (
            f"median {o['median']:.3f}  p10 {o['p10']:.3f}  p90 {o['p90']:.3f}  within {o['within_0.8_1.25']:.0%} of {o['count']}")
        print(f"{key} ({args.precision}, {doc['seconds']} s): {head}", flush=True)
        for op in RECURRENT:
            if op in doc["op_types"]:
                s = doc["op_types"][op]
                print(f"    {op}: median {s['median']:.3f} (p10 {s['p10']:.3f}, p90 {s['p90']:.3f}, {s['count']} tensors)")
        for name, row in doc["outputs"].items():
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
            print(f"    output {name}: ratio {ratio} (preview {row['preview_rel_rms']:.3g}, GPU {row['gpu_rel_rms']:.3g})")
        for w in doc["warnings"]:
            print(f"    warning: {w[:200]}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`convert` at the seeds' scale: a 2.4 GB FP32 model with external data, mixed and --emulate, fp16 and bf16.

    python benchmarks/bench_convert_scale.py [--routes SUBSTR,...] [--no-check]

Uses bench_scale.py's plain model (3 MatMul + Softmax layers, 2.4 GB of random FP32 weights in external
data, generated once into ~/.cache/trt_tui/bench/plain; never committed). Each route runs as its own
process under /usr/bin/time; prints wall time, peak RSS and RSS / weight bytes (issue 14's target: convert
peak RSS <= 1.0x the weight bytes; before the streaming writer: mixed 24 s / 6.7 GB, --emulate crashed at
9.5 GB). Validation (onnx.checker + ONNX Runtime load) is on, as by default, unless --no-check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import CACHE, ROOT, make_plain, measure, weight_bytes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", help="comma-separated substrings of route names to run (default: all)")
    ap.add_argument("--no-check", action="store_true", help="pass --no-check to convert")
    args = ap.parse_args()
    model = make_plain(CACHE / "plain")
    wb = weight_bytes(model)
    cli = [sys.executable, "-m", "trt_tui", "convert", str(model), "--force"] + (["--no-check"] if args.no_check else [])
    print(f"{model} ({wb / 1e9:.2f} GB of weights); validation {'off' if args.no_check else 'on'}")
    print(f"{'route':24} {'status':10} {'wall s':>8} {'peak RSS':>10} {'RSS/weights':>11} {'written':>10}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        for name, flags in {
            "convert mixed fp16": ["--precision", "fp16"],
            "convert mixed bf16": ["--precision", "bf16"],
            "convert --emulate fp16": ["--precision", "fp16", "--emulate"],
            "convert --emulate bf16": ["--precision", "bf16", "--emulate"],
        }.items():
            if args.routes and not any(r in name for r in args.routes.split(",")):
                continue
            out = Path(tmp) / "out.onnx"
            status, wall, rss = measure([*cli, *flags, "-o", str(out)], ROOT)
            written = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
            print(f"{name:24} {status:10} {wall:8.1f} {rss / 1e6:8.0f}MB {rss / wb:11.2f} {written / 1e9:8.2f}GB", flush=True)
            for p in Path(tmp).iterdir():
                p.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""300 chunks of the demo model in closed loop on the CPU fp16 emulation (target: under 10 s).

Times the whole `stream()` call (runner build + activation, chunks, trend fit) and splits it into the
reference's and the candidate's inference and everything else (feeds, masks, metrics, invariants).
Prints the machine's load average too: these machines are shared, and a loaded one is slower.
Usage: python benchmarks/bench_streaming.py [--chunks 300] [--mode closed-loop] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from trt_tui.core.resources import demo_model_path
from trt_tui.core.streaming.session import setup_stream, stream

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "demo_streaming_encoder.contract.json"
TARGET_S = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=300)
    ap.add_argument("--mode", default="closed-loop", choices=("closed-loop", "functional"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    best = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        setup = setup_stream(demo_model_path(), CONTRACT)
        report = stream(setup, mode=args.mode, chunks=args.chunks)
        total = time.perf_counter() - t0
        if best is None or total < best[0]:
            best = (total, report)
    total, report = best
    ref = sum(r.ref_seconds for r in report.results)
    cand = sum(r.cand_seconds for r in report.results)
    loop = report.seconds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"demo model, {report.chunks_run} chunks, {args.mode}, emulate fp16 vs onnxruntime fp32 "
          f"({os.cpu_count()} CPUs, load average {load:.1f})")  # fmt: skip
    print(f"  total            {total:7.2f} s   ({total / report.chunks_run * 1e3:.1f} ms/chunk; target < {TARGET_S:.0f} s)")
    print(f"  setup + runners  {total - loop:7.2f} s   (contract, model check, emulation rewrite, sessions)")
    print(f"  reference infer  {ref:7.2f} s")
    print(f"  candidate infer  {cand:7.2f} s")
    print(f"  metrics & rest   {loop - ref - cand:7.2f} s   (feeds, masks, drift metrics, invariants, trend)")
    print(f"  verdict: {'PASS' if report.passed else 'FAIL'}, trend of log_probs: {report.trends['log_probs'].short()}")
    print(f"{'OK' if total < TARGET_S else 'SLOW'}: {total:.2f} s for {report.chunks_run} chunks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

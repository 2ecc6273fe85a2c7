"""Rewrite a generated >=10,000-node graph both ways: `to_mixed_precision` and `emulate` (target < 2 s each).

Prints the best of N in-process runs for fp16 and bf16, with a pin set of every Softmax (a typical preset),
and the time to open the emulation session (ORT load + the Cast-pair self-check).
Usage: python benchmarks/bench_precision_rewrite.py [--nodes 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from trt_tui.core.modelgen.synth import wide_graph
from trt_tui.core.precision import emulate, emulation_session, to_mixed_precision


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    model = wide_graph(args.nodes)
    pins = [n.name for n in model.graph.node if n.op_type == "Softmax"]
    print(f"model: {len(model.graph.node)} nodes, {len(pins)} pinned (every Softmax); best of {args.repeat}")
    for low in ("fp16", "bf16"):
        t_mixed, mixed = best(lambda: to_mixed_precision(model, low, pins), args.repeat)
        t_emu, emu = best(lambda: emulate(model, low, pins), args.repeat)
        print(f"{low}: to_mixed_precision {t_mixed:.3f} s ({len(mixed.casts_inserted)} Casts inserted)   "
              f"emulate {t_emu:.3f} s ({len(emu.cast_pairs)} Cast pairs)   target < 2 s each")
    t0 = time.perf_counter()
    emulation_session(emu.model)
    print(f"emulation_session (ORT load with ORT_DISABLE_ALL + Cast-pair self-check): {time.perf_counter() - t0:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Index a generated >=10,000-node model and compare with `polygraphy inspect model MODEL --show layers`.

Prints trt_tui's time (best of N in-process loads, and the cold `trt-tui inspect --nodes` process) next to
Polygraphy's CLI time on the same file, and the ratio. Target: under 1 s for 10,000 nodes, at most half of
Polygraphy's time. Usage: python benchmarks/bench_graph_index.py [--nodes 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx
from polygraphy.backend.onnx.util import str_from_onnx

from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.synth import wide_graph


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.onnx"
        onnx.save(wide_graph(args.nodes), path)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            index = load_graph(path)
            times.append(time.perf_counter() - t0)
        ours = min(times)
        cli = min(timed([sys.executable, "-m", "trt_tui", "inspect", str(path), "--nodes"]) for _ in range(args.repeat))
        poly_inproc = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            str_from_onnx(onnx.load(str(path)), show_layers=True)
            poly_inproc.append(time.perf_counter() - t0)
        poly_exe = shutil.which("polygraphy") or str(Path(sys.executable).with_name("polygraphy"))
        poly = [timed([poly_exe, "inspect", "model", str(path), "--show", "layers"]) for _ in range(args.repeat)]
        print(f"model: {len(index.nodes)} nodes ({path.stat().st_size / 1e6:.1f} MB)")
        print(f"trt_tui load_graph (in process, best of {args.repeat}): {ours:.3f} s  (target < 1 s)")
        print(f"trt-tui inspect --nodes (cold process: imports, index, print every node; best of {args.repeat}): {cli:.3f} s")
        print(f"polygraphy inspect model --show layers (best of {args.repeat}): {min(poly):.3f} s")
        print(f"polygraphy in process (onnx.load + str_from_onnx(show_layers=True), no shape inference): {min(poly_inproc):.3f} s")
        print(f"ratio trt_tui index / polygraphy inspect command: {ours / min(poly):.2f}  (target <= 0.5)")
        print(f"ratio trt-tui inspect command / polygraphy inspect command: {cli / min(poly):.2f}")
        print(f"ratio trt_tui index / polygraphy in process: {ours / min(poly_inproc):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Layer-wise FP32 vs emulated-FP16 comparison of a generated 12-layer encoder: trt_tui vs Polygraphy's route.

Both routes compare every float tensor of the same model on the same random input (Polygraphy's DataLoader,
same seed) against the same CPU emulation (`trt_tui.core.precision.emulate`):
- trt_tui: `trt_tui.core.parity.engine.compare` (segmented execution, batches under --max-memory, numpy);
- Polygraphy: two ONNX Runtime runners with all outputs marked, `Comparator.run` + `compare_accuracy`.
Each route runs in its own child process (imports included: end to end); the child reports its wall time
and peak RSS (getrusage ru_maxrss). The parent prints both, the ratios, and checks the two routes agree on
max |diff| for every tensor. Target: trt_tui >= 5x faster, <= half the peak memory.

Usage: python benchmarks/bench_parity.py [--seq 384] [--layers 12] [--max-memory SIZE|auto]
       python benchmarks/bench_parity.py --onnx REAL.onnx [--dim NAME=N ...]   (a real model: both routes get
       the same inputs, made once by trt_tui's input generator and saved to an .npz)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

D_MODEL, FFN, HEADS = 256, 1024, 4


def child_trt_tui(model: str, max_memory: str, inputs: str | None = None) -> dict:
    from trt_tui.core.parity.engine import CompareOptions, compare, parse_size
    from trt_tui.core.parity.inputs import InputSpec

    result = compare(model, "emulate", precision="fp16", inputs=inputs or InputSpec(seed=1),
                     options=CompareOptions(max_memory=None if max_memory == "auto" else parse_size(max_memory),
                                            providers=["cpu"]))  # fmt: skip
    return {"tensors": len(result.tensors), "batches": result.batches, "max_memory": result.max_memory,
            "max_abs": {d.name: d.max_abs for d in result.tensors}}  # fmt: skip


def child_polygraphy(model: str, inputs: str | None = None) -> dict:
    import onnx
    import onnxruntime as ort
    from polygraphy import constants
    from polygraphy.backend.onnx import ModifyOutputs
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
    from polygraphy.comparator import Comparator, DataLoader
    from polygraphy.comparator.compare import SimpleCompareFunc
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.logger import G_LOGGER

    from trt_tui.core.precision import emulate

    G_LOGGER.module_severity = G_LOGGER.ERROR
    fp32 = onnx.load(model)
    emulated = emulate(fp32, "fp16", []).model
    level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the emulation's Cast pairs must survive; same on both
    runners = [
        OnnxrtRunner(SessionFromOnnx(ModifyOutputs(m, outputs=constants.MARK_ALL)().SerializeToString(),
                                     graph_optimization_level=level), name=name)  # fmt: skip
        for m, name in ((emulated, "cand"), (fp32, "ref"))  # reference second: reldiff divides by it
    ]
    if inputs:
        import numpy as np

        with np.load(inputs) as z:
            loader = [{k: z[k] for k in z.files}]
    else:
        loader = DataLoader(seed=1)
    results = Comparator.run(runners, data_loader=loader)
    ref_names = set(results["ref"][0].keys())
    exact = lambda name, index, out: [name] if name in out else []  # noqa: E731
    # the emulated model also exposes its private pre-rounding tensors: compare only what both share
    func = SimpleCompareFunc(find_output_func=exact)
    results.lst[0] = ("cand", [IterationResult({n: it[n] for n in it.keys() if n in ref_names}, runner_name="cand")
                               for it in results["cand"]])  # fmt: skip
    acc = Comparator.compare_accuracy(results, compare_func=[func])
    acc = acc[0] if hasattr(acc, "lst") else acc
    per_output = acc[("cand", "ref")][0]
    return {"tensors": len(per_output), "max_abs": {n: float(r.max_absdiff) for n, r in per_output.items()}}


def run_child(route: str, model: str, max_memory: str, inputs: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", route, "--model", model, "--max-memory", max_memory]
    if inputs:
        cmd += ["--inputs", inputs]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["wall_s"] = time.perf_counter() - t0
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--max-memory", default="auto", help="trt_tui's budget (default: compare's own default)")
    ap.add_argument("--child", choices=("trt_tui", "polygraphy"))
    ap.add_argument("--model")
    ap.add_argument("--inputs")
    ap.add_argument("--onnx", help="a real model instead of the generated encoder")
    ap.add_argument("--dim", action="append", default=[], metavar="NAME=N")
    args = ap.parse_args()
    if args.child:
        data = (child_trt_tui(args.model, args.max_memory, args.inputs) if args.child == "trt_tui"
                else child_polygraphy(args.model, args.inputs))  # fmt: skip
        data["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(data))
        return 0

    import onnx

    from trt_tui.core.modelgen.synth import transformer_encoder

    with tempfile.TemporaryDirectory() as tmp:
        inputs = None
        if args.onnx:
            import numpy as np

            from trt_tui.core.graph import load_graph
            from trt_tui.core.parity.inputs import InputSpec, random_feeds

            model = args.onnx
            dims = {k: int(v) for k, v in (d.split("=") for d in args.dim)}
            inputs = str(Path(tmp) / "inputs.npz")
            np.savez(inputs, **random_feeds(load_graph(model), InputSpec(seed=1, dims=dims), [])[0])
            print(f"model: {model}; FP32 vs emulated FP16, the same saved inputs on both routes")
        else:
            model = str(Path(tmp) / "encoder.onnx")
            onnx.save(transformer_encoder(layers=args.layers, d=D_MODEL, heads=HEADS, ffn=FFN, seq=args.seq, batch=1), model)
            print(f"model: {args.layers}-layer encoder, d={D_MODEL}, ffn={FFN}, seq={args.seq}, batch 1; FP32 vs emulated FP16")
        ours = run_child("trt_tui", model, args.max_memory, inputs)
        theirs = run_child("polygraphy", model, args.max_memory, inputs)
    agree = sum(
        abs(ours["max_abs"][n] - v) <= 1e-6 * max(1.0, abs(v)) for n, v in theirs["max_abs"].items() if n in ours["max_abs"]
    )
    print(f"{'route':<34}{'tensors':>8}{'wall s':>9}{'peak MiB':>10}")
    budget = f"{ours['max_memory'] / 2**20:.0f}M" + (" auto" if args.max_memory == "auto" else "")
    print(f"{'trt_tui (max-memory ' + budget + ', ' + str(ours['batches']) + ' batches)':<34}"
          f"{ours['tensors']:>8}{ours['wall_s']:>9.2f}{ours['peak_rss_mib']:>10.0f}")  # fmt: skip
    print(f"{'polygraphy (mark all + compare)':<34}{theirs['tensors']:>8}{theirs['wall_s']:>9.2f}{theirs['peak_rss_mib']:>10.0f}")
    speed = theirs["wall_s"] / ours["wall_s"]
    mem = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
    print(f"speed-up {speed:.1f}x (target >= 5x: {'met' if speed >= 5 else 'NOT met'}); "
          f"memory {mem:.2f} of Polygraphy's (target <= 0.5: {'met' if mem <= 0.5 else 'NOT met'})")  # fmt: skip
    print(f"max |diff| agrees on {agree}/{len(theirs['max_abs'])} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())

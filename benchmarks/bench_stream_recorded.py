"""`stream` against a recorded reference of more than 1 GB over 300 chunks: bounded memory (issue 16).

    python benchmarks/bench_stream_recorded.py [--chunks 300] [--cache-frames 1700] [--formats npz,jsonl]

Generates once into ~/.cache/trt_tui/bench/recorded_stream (never committed): the cache_stream model
(core.modelgen.cache_stream: 256 features, a cache of 1700 frames, 32 frames a chunk: ~3.5 MB of inputs,
state and outputs a chunk), its contract with the seeds' acceptance criteria, and a reference recorded by
trt_tui.recorder from the model's numpy twin (the "framework"), as a folder of .npz and as JSON Lines. Then,
each as its own process under /usr/bin/time: `trt-tui stream --reference recorded:... --candidate
emulate:fp16 --candidate emulate:bf16` (ONNX Runtime FP32 runs too, as the baseline) in closed loop and
functional mode. Prints the recording's size, wall time, peak RSS and RSS / recording size: the whole
reference is never resident, one chunk at a time is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import CACHE, ROOT, measure  # noqa: E402

FEATURES, FRAMES = 256, 32


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def generate(out: Path, chunks: int, cache: int, formats: list[str]) -> dict[str, Path]:
    import onnx

    from trt_tui.core.modelgen.cache_stream import cache_stream_model, contract_doc, record_reference

    out.mkdir(parents=True, exist_ok=True)
    model = out / "cache_stream.onnx"
    contract = out / "cache_stream.contract.json"
    onnx.save(cache_stream_model(FEATURES, cache, FRAMES), model)
    contract.write_text(json.dumps(contract_doc(FEATURES, cache, FRAMES, chunks), indent=1))
    paths = {"model": model, "contract": contract}
    for fmt in formats:
        target = out / (f"ref_{chunks}_{cache}" + (".jsonl" if fmt == "jsonl" else ""))
        done = target / "manifest.json" if fmt == "npz" else target
        if not done.exists():
            print(f"recording {chunks} chunks into {target} ...", flush=True)
            record_reference(target, chunks, FEATURES, cache, FRAMES, overwrite=True)
        paths[fmt] = target
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=300)
    ap.add_argument("--cache-frames", type=int, default=1700)
    ap.add_argument("--formats", default="npz,jsonl")
    ap.add_argument("--modes", default="closed-loop,functional")
    args = ap.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    paths = generate(CACHE / "recorded_stream", args.chunks, args.cache_frames, formats)
    print(f"model: cache_stream, {FEATURES} features, cache {args.cache_frames} frames, {FRAMES} frames a chunk")
    print(f"{'reference':<34} {'size':>9} {'mode':<12} {'chunks':>6} {'wall s':>8} {'peak RSS':>10} {'RSS/size':>8}  status")
    for fmt in formats:
        ref = paths[fmt]
        size = size_of(ref)
        for mode in [m for m in args.modes.split(",") if m]:
            argv = [sys.executable, "-m", "trt_tui", "stream", str(paths["model"]), "--contract", str(paths["contract"]),
                    "--reference", f"recorded:{ref}", "--candidate", "emulate:fp16", "--candidate", "emulate:bf16",
                    "--mode", mode, "--chunks", str(args.chunks), "--json", "-"]  # fmt: skip
            status, wall, rss = measure(argv, ROOT)
            print(f"{ref.name:<34} {size / 2**30:>7.2f} G {mode:<12} {args.chunks:>6} {wall:>8.1f} "
                  f"{rss / 2**20:>8.0f} M {rss / size:>8.2f}  {status}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

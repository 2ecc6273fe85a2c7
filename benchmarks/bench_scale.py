"""The seeds' scale: every route on models with over 2 GB of external weight data, time and peak memory.

    python benchmarks/bench_scale.py [--cache DIR] [--only parakeet|plain] [--routes inspect,compare,...]

Generates (once, into the cache; never committed):
- `parakeet/encoder.onnx`: a streaming conformer encoder at parakeet-tdt-0.6b's scale (24 layers, d_model 1024,
  128 features, caches cache_last_channel 24x1x256x1024 and cache_last_time 24x1x1024x4, about 0.6 B
  parameters of random weights in external data), with the demo's input/cache signature and a contract;
- `plain/plain.onnx`: 3 MatMul + Softmax layers, 2.4 GB of FP32 weights in external data.

Runs each route as its own process and prints wall time, CPU time (user + system), peak RSS (the process
tree's maximum, from /usr/bin/time), RSS / weight bytes and the load average, next to one plain FP32 ONNX
Runtime inference of the whole model, run first and again last (the
peer: issue 14's targets are compare RSS <= 1.0x the weight bytes and time <= 4x that inference; convert
RSS <= 1.0x the weight bytes; inspect <= 1 s and <= 200 MB whatever the weight size, and <= 0.5x
`polygraphy inspect model --show layers`).

The peer is what a user runs to get one FP32 answer: a fresh Python process that imports numpy and ONNX
Runtime, makes an `InferenceSession` from the model file with ONNX Runtime's defaults (all graph
optimisations, weight prepacking, its memory arena, one intra-op thread per core; external data read by
ONNX Runtime) and runs it once on random inputs with every dynamic dim set to 1 (the shapes compare uses;
integer inputs are ones, which changes no shape). Every route is timed the same way: its own process,
Python start and imports included. The model's files are read once before the first route, untimed, so no
route (the first peer especially) pays for a cold page cache; the ratios of the rows are to the first peer,
and a last line gives compare's ratio to both peers (the load changes while the routes run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trt_tui.core.modelgen.builder import GraphBuilder  # noqa: E402
from trt_tui.core.modelgen.demo import PARAKEET, build_demo_model  # noqa: E402

CACHE = Path(os.environ.get("TRT_TUI_BENCH_CACHE", Path.home() / ".cache" / "trt_tui" / "bench"))
PLAIN_D = 14142  # 3 x d^2 x 4 bytes = 2.4 GB


def weight_bytes(model_path: Path) -> int:
    m = onnx.load_model(str(model_path), load_external_data=False)
    total = 0
    for t in m.graph.initializer:
        n = int(np.prod(t.dims, dtype=np.int64)) if t.dims else 1
        total += n * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    return total


def make_parakeet(folder: Path) -> Path:
    path = folder / "encoder.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "encoder.data", "wb") as handle:
        builder = GraphBuilder("parakeet_scale_encoder", seed=0, external_data=(handle, "encoder.data"))
        model = build_demo_model(shape=PARAKEET, builder=builder)
    onnx.save_model(model, str(path))  # weights are already external: the proto is small
    contract = json.loads((ROOT / "contracts" / "demo_streaming_encoder.contract.json").read_text())
    s = PARAKEET
    contract.update(model="encoder.onnx", description="parakeet-scale benchmark encoder (random weights)")
    ins, outs = contract["inputs"], contract["outputs"]
    ins["audio_signal"]["shape"] = ["B", s.features, s.chunk]
    ins["cache_last_channel"]["shape"] = [s.layers, "B", s.cache_channel, s.d_model]
    ins["cache_last_time"]["shape"] = [s.layers, "B", s.d_model, s.kernel - 1]
    outs["log_probs"]["shape"] = ["B", s.chunk, s.vocab]
    outs["cache_last_channel_next"]["shape"] = ins["cache_last_channel"]["shape"]
    outs["cache_last_time_next"]["shape"] = ins["cache_last_time"]["shape"]
    contract.pop("profiles", None)
    contract["schedule"]["frames"] = [s.chunk]
    for inv in contract["invariants"]:
        if inv["check"] == "equals":
            inv["value"] = s.chunk
        if inv["check"] == "range":
            inv["max"] = s.cache_channel
    (folder / "encoder.contract.json").write_text(json.dumps(contract, indent=1))
    return path


def make_plain(folder: Path, d: int = PLAIN_D) -> Path:
    path = folder / "plain.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "plain.data", "wb") as handle:
        g = GraphBuilder("plain_2g4", seed=0, external_data=(handle, "plain.data"))
        x = g.input("x", TensorProto.FLOAT, [4, d])
        for i in range(3):
            with g.scope(f"layers.{i}"):
                x = g.op("Softmax", [g.op("MatMul", [x, g.weight((d, d))])], axis=-1)
        g.output(x, "y", TensorProto.FLOAT, [4, d])
        model = g.build(doc="2.4 GB of FP32 weights in external data (benchmark)")
    onnx.save_model(model, str(path))
    return path


def measure(argv: list[str], cwd: Path) -> tuple[str, float, int, float]:
    """(ok or the first error line, wall seconds, peak RSS bytes, CPU seconds user + system) of one command
    under /usr/bin/time -v. CPU seconds say what the wall time would be on an idle machine better than the
    wall time itself does on a shared one (the load average is printed with each route)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *argv], cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        text = Path(report.name).read_text()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", text).group(1)) for kind in ("User", "System"))
    status = "ok"
    if proc.returncode not in (0, 1):  # compare/stream exit 1 on a failed verdict: the route still ran
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        status = f"exit {proc.returncode}: {lines[-1][:110] if lines else ''}"
    return status, wall, rss, cpu


ORT_ONCE = r"""
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feed = {}
for i in s.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    feed[i.name] = rng.standard_normal(shape).astype(np.float32) if "float" in i.type else np.ones(shape, np.int64)
s.run(None, feed)
"""


def routes(model: Path, contract: Path | None, tmp: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "trt_tui"]
    out = {
        "ORT FP32 inference (peer)": [sys.executable, "-c", ORT_ONCE, str(model)],
        "inspect --json": [*cli, "inspect", str(model), "--json"],
        "polygraphy inspect (peer)": [sys.executable, "-m", "polygraphy", "inspect", "model", str(model), "--show", "layers"],
        "convert mixed fp16": [*cli, "convert", str(model), "--precision", "fp16", "-o", str(tmp / "mixed.onnx"), "--force"],
        "convert --emulate": [*cli, "convert", str(model), "--precision", "fp16", "--emulate", "-o", str(tmp / "emulated.onnx"), "--force"],
        "compare (3 iterations)": [*cli, "compare", str(model), "--iterations", "3", "--max-memory", "256M"],
    }
    if contract is not None:
        out["stream (5 chunks)"] = [*cli, "stream", str(model), "--contract", str(contract), "--chunks", "5"]
    preset = tmp / "p.toml"
    out["preset new"] = [*cli, "preset", "new", str(model), "-o", str(preset), "--precision", "fp16", "--dim", "B=1"]
    out["preset export trtexec"] = [*cli, "preset", "export", str(preset), "--format", "trtexec"]
    out["build --backend emulate"] = [*cli, "build", str(preset), "--backend", "emulate", "--json", "--state-dir", str(tmp / "state")]
    out["ORT FP32 inference (peer again)"] = out["ORT FP32 inference (peer)"]  # the load may have changed meanwhile
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("parakeet", "plain"))
    ap.add_argument("--routes", help="comma-separated substrings of route names to run (default: all)")
    args = ap.parse_args()
    polygraphy_bin = Path(sys.executable).with_name("polygraphy")
    models = []
    if args.only in (None, "plain"):
        models.append(("plain 2.4 GB", make_plain(CACHE / "plain"), None))
    if args.only in (None, "parakeet"):
        p = make_parakeet(CACHE / "parakeet")
        models.append(("parakeet-scale encoder", p, p.with_name("encoder.contract.json")))
    for label, model, contract in models:
        wb = weight_bytes(model)
        warm_page_cache(model)
        print(f"\n{label}: {model} ({wb / 1e9:.2f} GB of weights)")
        print(f"{'route':28} {'status':10} {'wall s':>8} {'CPU s':>7} {'peak RSS':>10} {'RSS/weights':>11} {'x peer wall':>11} "
              f"{'x peer CPU':>10}  load avg")  # fmt: skip
        peer: tuple[float, float] | None = None
        timed: dict[str, tuple[float, float]] = {}
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            for name, argv in routes(model, contract, Path(tmp)).items():
                if args.routes and not name.startswith("ORT FP32") and not any(r in name for r in args.routes.split(",")):
                    continue
                if "polygraphy" in name and polygraphy_bin.exists():
                    argv = [str(polygraphy_bin), *argv[3:]]
                status, wall, rss, cpu = measure(argv, ROOT)
                timed[name] = (wall, cpu)
                if name == "ORT FP32 inference (peer)":
                    peer = (wall, cpu)
                ratios = f"{wall / peer[0]:11.2f} {cpu / peer[1]:10.2f}" if peer else f"{'':11} {'':10}"
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(f"{name:28} {status:10} {wall:8.2f} {cpu:7.2f} {rss / 1e6:8.0f}MB {rss / wb:11.2f} {ratios}  {load}", flush=True)
        print(peer_summary(timed))
    return 0


def warm_page_cache(model: Path) -> None:
    """Read the model and its external data files once (untimed), as any second run finds them."""
    m = onnx.load_model(str(model), load_external_data=False)
    files = {model} | {model.parent / e.value for t in m.graph.initializer for e in t.external_data if e.key == "location"}
    for path in files:
        with open(path, "rb") as f:
            while f.read(64 << 20):
                pass


def peer_summary(timed: dict[str, tuple[float, float]]) -> str:
    """compare's wall-time ratio to each peer run and its CPU-time ratio to the faster one."""
    first, again = timed.get("ORT FP32 inference (peer)"), timed.get("ORT FP32 inference (peer again)")
    ours = next((v for k, v in timed.items() if k.startswith("compare")), None)
    if not (first and again and ours):
        return ""
    cpu = min(first[1], again[1])
    return (f"compare / peer: {ours[0] / first[0]:.2f}x wall (peer first), {ours[0] / again[0]:.2f}x wall (peer again), "
            f"{ours[1] / cpu:.2f}x CPU (faster peer)")


if __name__ == "__main__":
    raise SystemExit(main())

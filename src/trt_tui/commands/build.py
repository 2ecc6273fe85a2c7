"""`trt-tui build PRESET`: build in the foreground with a progress bar and the log tail.

The build itself runs in a child process under the job manager, exactly as the TUI runs it; this command
only watches. Ctrl-C, SIGTERM and SIGHUP (the terminal closing) cancel the build (its whole process group),
record it as cancelled, and exit 128 + the signal (130 for Ctrl-C). Exit codes: 0 built (or,
for the CPU preview, written), 1 the build failed / timed out / was cancelled, 2 bad input or a missing
backend.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections import deque
from typing import TYPE_CHECKING

from trt_tui.commands.args import non_negative_float
from trt_tui.commands.output import console, err_console, print_json
from trt_tui.core.build.constants import CHOICES

if TYPE_CHECKING:
    from trt_tui.core.build.manager import JobManager
    from trt_tui.core.build.types import BuildJob

# Every `trt-tui` start imports this module to declare its flags: the job manager, its backends and rich's live
# display are imported inside the functions that use them, so that the CLI starts fast.

TAIL = 12


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled exactly as Ctrl-C (cancel, record, exit 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame) -> None:  # noqa: ARG001
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a second signal must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Signalled(signum)


def _handle_termination() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)
        # Ctrl-C must cancel the build even when we were started with SIGINT ignored (a background job of a
        # non-interactive shell, a CI runner, a test worker): Python then never installs its own handler
        signal.signal(signal.SIGINT, signal.default_int_handler)


def add_state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", metavar="DIR", help="build history and build folders (default: $TRT_TUI_HOME or ./.trt_tui)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="build a preset (TensorRT Python API, trtexec, or the CPU preview) with live progress",
        description="Build PRESET in a child process, showing progress and the log tail. Every build gets a "
        "folder with the preset snapshot, the exact command, the full log, the artifacts and result.json; "
        "`trt-tui builds` lists them.",
    )
    p.add_argument("preset", help="preset TOML file")
    p.add_argument("--backend", choices=CHOICES, default="auto",
                   help="auto (default: the best available, with the reason shown), tensorrt, trtexec, or emulate "
                   "(CPU preview: writes the mixed-precision and emulated ONNX, builds no engine)")
    p.add_argument("--timeout", type=non_negative_float, metavar="S", help="stop the build after S seconds")
    p.add_argument("--json", action="store_true", help="no live display; print the finished job as JSON")
    add_state_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from trt_tui.core.build.manager import JobManager, default_backends
    from trt_tui.core.build.request import request_from_preset
    from trt_tui.core.build.state import state_dir
    from trt_tui.core.build.types import JobState

    backends = default_backends()
    request = request_from_preset(args.preset, args.backend, backends, timeout_s=args.timeout)
    _handle_termination()
    manager = JobManager(state_dir(args.state_dir), backends=backends)
    try:
        if not args.json:
            err_console().print(f"[dim]backend:[/] {request.backend} [dim]({escape(request.backend_reason)})[/]")
        job = manager.submit(request)
        try:
            job = _wait_quietly(manager, job) if args.json else _watch(manager, job)
        except KeyboardInterrupt as exc:
            manager.cancel(job.id)
            job = manager.wait(job.id, timeout=30)
            try:
                _report(job, args.json)
            except OSError:  # SIGHUP: the terminal is gone; the history has the outcome
                pass
            return 128 + exc.signum if isinstance(exc, Signalled) else 130
        _report(job, args.json)
        return 0 if job.state == JobState.SUCCEEDED else 1
    finally:
        manager.close()


def _wait_quietly(manager: JobManager, job: BuildJob) -> BuildJob:
    while True:  # short waits so Ctrl-C is handled promptly
        done = manager.wait(job.id, timeout=0.2)
        if done.state.terminal:
            return done


def _watch(manager: JobManager, job: BuildJob) -> BuildJob:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from trt_tui.core.build.types import JobChanged, JobState, LogLines
    from trt_tui.core.build.types import Progress as ProgressEvent

    lock = threading.Lock()
    tail: deque[str] = deque(maxlen=TAIL)
    state = {"phase": "queued", "fraction": None}

    def on_batch(events) -> None:
        with lock:
            for ev in events:
                if isinstance(ev, LogLines) and ev.job_id == job.id:
                    tail.extend(line for line in ev.lines if not line.startswith("@@trt_tui "))
                elif isinstance(ev, ProgressEvent) and ev.job_id == job.id:
                    state["phase"], state["fraction"] = ev.phase, ev.fraction
                elif isinstance(ev, JobChanged) and ev.job.id == job.id and ev.job.state == JobState.RUNNING:
                    state["phase"] = state["phase"] if state["phase"] != "queued" else "starting"

    unsubscribe = manager.subscribe(on_batch)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                   console=console())
    task = bar.add_task("queued", total=1.0)
    try:
        with Live(console=bar.console, refresh_per_second=8, transient=True) as live:
            while True:
                done = manager.wait(job.id, timeout=0.12)
                with lock:
                    fraction = state["fraction"]
                    bar.update(task, description=str(state["phase"])[:40], completed=fraction or 0,
                               total=1.0 if fraction is not None else None)
                    lines = [Text(line[:200], style="dim", no_wrap=True, overflow="ellipsis") for line in tail]
                live.update(Group(bar, *lines))
                if done.state.terminal:
                    return done
    finally:
        unsubscribe()


def _report(job: BuildJob, as_json: bool) -> None:
    if as_json:
        print_json(job.to_json())
        return
    print_job(job)


def print_job(job: BuildJob) -> None:
    from rich.markup import escape

    from trt_tui.core.build.types import JobState

    out = console()
    r = job.result
    color = {JobState.SUCCEEDED: "green", JobState.RUNNING: "cyan", JobState.QUEUED: "cyan"}.get(job.state, "red")
    out.print(f"[bold]{job.id}[/]  [{color}]{job.state.value}[/]  {job.request.backend}  "
              f"{escape(job.request.label or job.request.preset_path)}")
    if r is None:
        out.print(f"  build dir: {job.build_dir}")
        return
    out.print(f"  {escape(r.message)}")
    if r.engine_built:
        out.print(f"  engine: {escape(str(r.engine_path))}" + (f" ({r.engine_size_mib} MiB)" if r.engine_size_mib else ""))
    elif "no TensorRT engine was built" not in r.message:
        out.print("  [yellow]no engine was built[/]")
    for role, rel in r.artifacts.items():
        if role != "engine":
            out.print(f"  {role}: {rel}")
    if r.build_time_s is not None:
        out.print(f"  build time: {r.build_time_s:g} s")
    perf = r.performance or {}
    if perf.get("throughput_qps") is not None:
        out.print(f"  throughput: {perf['throughput_qps']:g} qps")
    for key, label in (("latency", "latency"), ("gpu_compute", "GPU compute"), ("h2d", "H2D"), ("d2h", "D2H")):
        stats = perf.get(key)
        if stats:
            shown = ", ".join(f"{k.removesuffix('_ms')} {v:g}" for k, v in stats.items() if k in ("min_ms", "mean_ms", "median_ms", "p99_ms"))
            out.print(f"  {label} (ms): {shown}")
    if r.pin_check:
        out.print(f"  pin check: {r.pin_check['summary']}")
        shown = [row for row in r.pin_check["pins"] if row["status"] != "fp32"][:10]
        for row in shown:  # the verdict names the layer: ran in FP32 / fused into another precision / cannot be told
            style = "red" if row["status"] in ("mismatch", "fused") else "yellow"
            out.print(f"    [{style}]{escape(row['node'])}[/]: {escape(row.get('verdict', row['status']))}")
    if r.accuracy:
        verdict = "[green]passed[/]" if r.accuracy["passed"] else "[red]FAILED[/]"
        out.print(f"  trtexec accuracy check: {verdict}")
        for name, row in list(r.accuracy["tensors"].items())[:10]:
            limit = "" if row.get("threshold") is None else f" >= threshold {row['threshold']:g}"
            out.print(f"    {escape(name)}: {row['algorithm']} {row['loss']}{limit}")
    for note in r.notes:
        if note not in r.message:
            out.print(f"  [yellow]note:[/] {escape(note)}")
    out.print(f"  build dir: {escape(job.build_dir)}")

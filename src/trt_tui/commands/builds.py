"""`trt-tui builds [list | show ID | cancel ID]`: the build history (shared with the TUI)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from trt_tui.commands.args import int_at_least
from trt_tui.commands.build import add_state_dir, print_job
from trt_tui.commands.output import console, elide, print_json
from trt_tui.core.errors import UserError

if TYPE_CHECKING:
    from trt_tui.core.build.manager import JobManager

# Every `trt-tui` start imports this module to declare its flags: the job manager is imported inside the
# functions that use it, so that the CLI starts fast.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("builds", help="list, show or cancel builds (the build history)",
                       description="The build history. IDs may be shortened to any unique prefix.")
    add_state_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_list, limit=30)
    bs = p.add_subparsers(dest="builds_command", metavar="SUBCOMMAND")
    ls = bs.add_parser("list", help="recent builds, newest first")
    ls.add_argument("--limit", type=int_at_least(1), default=30, metavar="N", help="show the N newest (default 30)")
    ls.set_defaults(func=run_list)
    show = bs.add_parser("show", help="one build: result, artifacts, pin check, log tail")
    show.add_argument("id")
    show.add_argument("--log", type=int_at_least(0), default=20, metavar="N", help="log lines to show (default 20)")
    show.set_defaults(func=run_show)
    cancel = bs.add_parser("cancel", help="cancel a queued or running build")
    cancel.add_argument("id")
    cancel.set_defaults(func=run_cancel)
    for child in (ls, show, cancel):  # accept the options after the subcommand too
        add_state_dir(child)
        child.add_argument("--json", action="store_true", help="print JSON")


def _manager(args) -> JobManager:
    from trt_tui.core.build.manager import JobManager
    from trt_tui.core.build.state import state_dir

    return JobManager(state_dir(args.state_dir))


def run_list(args: argparse.Namespace) -> int:
    from rich.markup import escape

    m = _manager(args)
    try:
        jobs = m.jobs(limit=args.limit)
    finally:
        m.close()
    if args.json:
        print_json([j.to_json() for j in jobs])
        return 0
    out = console()
    if not jobs:
        out.print("no builds yet (run `trt-tui build PRESET`)")
    for j in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at))
        message = j.result.message if j.result else (j.phase or "")
        label = escape(j.request.label or j.request.preset_path)
        out.print(f"{j.id}  {when}  {j.state.value:<11} {j.request.backend:<8} {label}  [dim]{escape(elide(message, 90))}[/]")
    return 0


def _find(m: JobManager, job_id: str):
    job = m.get(job_id)
    if job is None:
        raise UserError(f"no build with id {job_id!r} (or the prefix is ambiguous); see `trt-tui builds list`")
    return job


def run_show(args: argparse.Namespace) -> int:
    m = _manager(args)
    try:
        job = _find(m, args.id)
        tail = m.log_tail(job.id, args.log)
    finally:
        m.close()
    if args.json:
        print_json({**job.to_json(), "log_tail": tail})
        return 0
    from trt_tui.core.build.protocol import readable_line

    print_job(job)
    if tail:
        out = console()
        out.print("  [dim]log tail:[/]")
        for line in tail:  # the worker's `@@trt_tui {...}` progress lines in words, as the live view and the TUI
            out.print(f"    {elide(readable_line(line), 200)}", markup=False, highlight=False)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    m = _manager(args)
    try:
        job = _find(m, args.id)
        outcome = m.cancel(job.id)
    finally:
        m.close()
    words = {"requested": "cancel requested; the trt_tui running it stops its process group",
             "cancelled": "cancelled", "cancelling": "cancelling", "finished": f"already finished ({job.state.value})"}
    if args.json:
        print_json({"id": job.id, "outcome": outcome})
    else:
        console().print(f"{job.id}: {words[outcome]}")
    return 0

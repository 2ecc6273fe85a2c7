"""A comparison run in a child process: for fronts that must never load TensorRT (the TUI), when a side is a
TensorRT engine (`engine:PATH`). A TensorRT crash or hang then ends the child, not the app; cancel is SIGTERM.

    for kind, payload in compare_isolated(request, cancel=event):   # a ComparisonRequest (parity.request)
        kind == "batch": payload is a BatchUpdate;  kind == "done": payload is (CompareResult, warnings)

The parent sends the request pickled on the child's stdin (without its graph index: the child indexes the
model itself); the child runs `request.prepare()` and answers with a stream of pickled messages on its stdout
(its own prints, Polygraphy's and TensorRT's logs go to stderr). Both ends are this package: the pickles
never cross a trust boundary.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from trt_tui.core.errors import UserError
from trt_tui.core.parity.request import ComparisonRequest

_STDERR_KEEP = 20


def compare_isolated(request: ComparisonRequest, *, cancel: threading.Event | None = None) -> Iterator[tuple[str, Any]]:
    """`request.prepare().run()` in a child process, yielding its messages."""
    from trt_tui.core.build.worker_backends import worker_env

    proc = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
        [sys.executable, "-m", "trt_tui.core.parity.isolated"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=worker_env(), start_new_session=True,
    )  # fmt: skip
    tail: list[str] = []
    kind, code = None, None
    drain = threading.Thread(target=_keep_tail, args=(proc.stderr, tail), daemon=True)
    drain.start()
    stop = threading.Event()
    if cancel is not None:
        threading.Thread(target=_forward_cancel, args=(proc, cancel, stop), daemon=True).start()
    try:
        # the index holds the whole graph and the resolved preset is already in the request's settings
        proc.stdin.write(pickle.dumps(dataclasses.replace(request, index=None, resolved=None)))
        proc.stdin.close()
        while True:
            try:
                kind, payload = pickle.load(proc.stdout)
            except EOFError:
                break
            if kind == "error":
                raise UserError(payload)
            yield kind, payload
            if kind == "done":
                break
        code = proc.wait()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    drain.join(timeout=1)
    if kind != "done":
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise UserError(f"the comparison's child process ended without a result (exit {code}): {last.strip()}")


def _keep_tail(stream, tail: list[str]) -> None:
    for raw in stream:
        tail.append(raw.decode("utf-8", "replace"))
        del tail[:-_STDERR_KEEP]


def _forward_cancel(proc: subprocess.Popen, cancel: threading.Event, stop: threading.Event) -> None:
    while not stop.is_set():
        if cancel.wait(0.1):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the child finishes the batch in hand and reports "cancelled"
            return


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed (Polygraphy, TensorRT) goes to stderr, never into the message stream
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())

    def send(*message) -> None:
        pickle.dump(message, out)
        out.flush()

    try:
        request: ComparisonRequest = pickle.load(sys.stdin.buffer)
        comparison = request.prepare()
        for update in comparison.run(cancel=cancel):
            send("batch", update)
        send("done", (comparison.result(), list(comparison.warnings)))
    except UserError as exc:  # MissingBackendError included
        send("error", exc.one_line())
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 12 item 4, the TUI's side: closing the terminal (SIGHUP to the app) or SIGTERM while a build runs
ends the build's process group and records the outcome in the history at once (not by the next start's
recovery). The app runs in a real pseudo-terminal; closing its master end is the terminal going away."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.builds.conftest import alive, wait_for

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "core" / "builds" / "bin" / "trtexec"
DRIVER = Path(__file__).with_name("tui_hangup_driver.py")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="needs a Linux pty")


def _spawn(tmp_path: Path) -> tuple[int, int]:
    env = {**os.environ, "TRT_TUI_TRTEXEC": str(FAKE), "FAKE_TRTEXEC_PYTHON": sys.executable,
           "FAKE_TRTEXEC_MODE": "hang", "FAKE_TRTEXEC_PIDFILE": str(tmp_path / "pids"), "TERM": "xterm-256color",
           "TRT_TUI_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, with the pty as its controlling terminal
        os.execve(sys.executable, [sys.executable, str(DRIVER), str(tmp_path)], env)
    return pid, fd


def _drain_until(fd: int, predicate, timeout: float) -> bool:
    """Read (and drop) the app's screen output so it never blocks on a full pty, until predicate()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 1 << 16)
            except OSError:
                pass
    return predicate()


def _wait_exit(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


def _history(tmp_path: Path) -> list[str]:
    env = {**os.environ, "TRT_TUI_HOME": str(tmp_path / "state"), "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-m", "trt_tui", "builds", "list", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    return [job["state"] for job in json.loads(out.stdout)]


@pytest.mark.parametrize("how", ["close-terminal", "sigterm"])
def test_tui_ends_and_records_its_builds_when_the_terminal_goes(tmp_path, how):
    pid, fd = _spawn(tmp_path)
    code = None
    try:
        assert _drain_until(fd, (tmp_path / "pids").exists, timeout=60), "the build never started"
        leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
        if how == "close-terminal":
            os.close(fd)  # the kernel sends SIGHUP to the session whose controlling terminal this was
            fd = -1
        else:
            os.kill(pid, signal.SIGTERM)
            _drain_until(fd, lambda: False, timeout=0.2)
        code = _wait_exit(pid, timeout=60)
    finally:
        if code is None:
            os.kill(pid, signal.SIGUSR1)  # the driver dumps every thread's stack: what it hung on
            time.sleep(1)
            print((tmp_path / "stacks.txt").read_text())
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if fd >= 0:
            os.close(fd)
    sig = signal.SIGHUP if how == "close-terminal" else signal.SIGTERM
    assert code == 128 + sig, f"the app should end on its own with 128+{sig.name}, got {code}"
    assert wait_for(lambda: not alive(leader) and not alive(grandchild), timeout=5)
    assert _history(tmp_path) == ["cancelled"]  # recorded by the app, not "interrupted" by recovery

"""The process runner: bytes logged exactly, lines decoded safely, whole process groups killed."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from trt_tui.core.build.runner import LineSplitter, ProcessRun

from .conftest import FAKE_TRTEXEC, alive, assert_group_gone, wait_for


def test_line_splitter_handles_partial_long_and_invalid_lines():
    s = LineSplitter(max_chars=10)
    assert s.feed(b"ab") == []
    assert s.feed(b"c\r\nde") == ["abc"]
    assert s.feed(b"\xff\n") == ["de\ufffd"]
    assert s.feed(b"x" * 25 + b"\n") == ["x" * 10 + " ... [15 more bytes of this line are in the log file]"]
    assert s.feed(b"tail") == [] and s.flush() == ["tail"]


def test_output_is_logged_byte_for_byte(tmp_path):
    payload = b"one\n\xff\xfe not utf-8\n" + b"y" * (1 << 20) + b"\nno newline at end"
    script = (
        "import sys; sys.stdout.buffer.write(b'one\\n\\xff\\xfe not utf-8\\n' + b'y' * (1 << 20)"
        " + b'\\nno newline at end')"
    )
    got: list[str] = []
    outcome = ProcessRun([sys.executable, "-c", script], log_path=tmp_path / "log", on_lines=got.extend).run()
    assert outcome.ok and outcome.returncode == 0
    assert (tmp_path / "log").read_bytes() == payload
    assert got[0] == "one" and got[1] == "\ufffd\ufffd not utf-8"
    assert got[2].startswith("y" * 100) and "more bytes of this line are in the log file" in got[2]
    assert got[3] == "no newline at end" and outcome.lines == 4 and outcome.bytes == len(payload)


def test_exec_failure_is_reported_not_raised(tmp_path):
    outcome = ProcessRun([str(tmp_path / "missing")], log_path=tmp_path / "log").run()
    assert outcome.start_error and not outcome.ok
    assert "could not start" in (tmp_path / "log").read_text()


def _hang_run(tmp_path, monkeypatch, ignore_term: bool, **kw) -> tuple[ProcessRun, str]:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    monkeypatch.setenv("FAKE_TRTEXEC_PIDFILE", str(pidfile))
    monkeypatch.setenv("FAKE_TRTEXEC_PYTHON", sys.executable)
    if ignore_term:
        monkeypatch.setenv("FAKE_TRTEXEC_IGNORE_TERM", "1")
    run = ProcessRun([str(FAKE_TRTEXEC)], log_path=tmp_path / "log", kill_grace_s=0.3, **kw)
    return run, str(pidfile)


@pytest.mark.parametrize("ignore_term", [False, True], ids=["sigterm-enough", "needs-sigkill"])
def test_timeout_kills_the_whole_group(tmp_path, monkeypatch, ignore_term):
    # 2.5 s: the stand-in (a Python process that starts a grandchild) must have written its pidfile
    # before the timeout fires, even when CI's two cores are busy with other tests
    run, pidfile = _hang_run(tmp_path, monkeypatch, ignore_term, timeout_s=2.5)
    started = time.monotonic()
    outcome = run.run()
    assert outcome.timed_out and not outcome.ok
    assert time.monotonic() - started < 2.5 + 0.3 + 4  # timeout + kill grace + slack
    leader, grandchild = map(int, open(pidfile).read().split())
    assert leader == outcome.pid
    assert wait_for(lambda: not alive(grandchild), timeout=3)  # SIGKILL is asynchronous: allow teardown
    assert_group_gone(outcome.pid)


def test_cancel_from_another_thread(tmp_path, monkeypatch):
    run, pidfile = _hang_run(tmp_path, monkeypatch, ignore_term=False)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("o", run.run()))
    t.start()
    assert wait_for(lambda: os.path.exists(pidfile))
    run.cancel()
    t.join(5)
    assert not t.is_alive()
    outcome = box["o"]
    assert outcome.cancelled and outcome.describe() == "cancelled"
    assert_group_gone(outcome.pid)


def test_leftover_group_members_are_killed_when_the_leader_exits(tmp_path):
    # The leader starts a background sleeper in its group and exits at once.
    script = "import subprocess, sys; p = subprocess.Popen(['sleep', '30']); print(p.pid, flush=True)"
    got: list[str] = []
    outcome = ProcessRun([sys.executable, "-c", script], log_path=tmp_path / "log", on_lines=got.extend).run()
    assert outcome.returncode == 0
    assert wait_for(lambda: not alive(int(got[0])), timeout=3)
    assert_group_gone(outcome.pid)


def test_a_failing_callback_still_leaves_no_process(tmp_path, monkeypatch):
    def boom(lines):
        raise RuntimeError("subscriber bug")

    run, _ = _hang_run(tmp_path, monkeypatch, ignore_term=True, on_lines=boom)
    with pytest.raises(RuntimeError):
        run.run()
    assert_group_gone(run.pid)

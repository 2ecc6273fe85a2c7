"""Fault tests for builds (issue 12 items 4, 5, 6 and the history part of 10): signals to `trt-tui build`,
kill -9 of its process, a full or unwritable state directory, a locked or damaged history, and two
processes sharing one state directory. Builds run trtexec's test double (tests/core/builds/fake_trtexec.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trt_tui.cli import main
from trt_tui.core.build import history as history_module
from trt_tui.core.build.history import BuildHistory, HistoryError
from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.types import JobState, Progress
from trt_tui.core.errors import UserError

from tests.core.builds.conftest import alive, fake_trtexec, trtexec_request, wait_for  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "core" / "builds" / "bin" / "trtexec"


@pytest.fixture
def env(tmp_path, demo_model) -> dict[str, str]:
    preset = tmp_path / "demo.toml"
    preset.write_text(f'model = "{demo_model}"\ntrt = 10\n[precision]\nmode = "fp16"\n[pins]\nop_types = ["Softmax"]\n')
    return {
        **os.environ,
        "TRT_TUI_HOME": str(tmp_path / "state"),
        "TRT_TUI_TRTEXEC": str(FAKE),
        "FAKE_TRTEXEC_PYTHON": sys.executable,
        "FAKE_TRTEXEC_PIDFILE": str(tmp_path / "pids"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "PRESET": str(preset),
    }


def _build(env: dict[str, str], *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trt_tui", "build", env["PRESET"], "--backend", "trtexec", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trt_tui", *args], env=env, capture_output=True, text=True, timeout=60)


def _started(tmp_path: Path) -> tuple[int, int]:
    assert wait_for(lambda: (tmp_path / "pids").exists(), timeout=20), "the build never started"
    leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
    return leader, grandchild


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_term_hup_int_end_the_build_group_and_record_it(env, tmp_path, sig):
    env["FAKE_TRTEXEC_MODE"] = "hang"
    proc = _build(env, "--json")
    try:
        leader, grandchild = _started(tmp_path)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)  # generous: a loaded 2-core CI machine is slow, not wrong
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert not alive(leader) and wait_for(lambda: not alive(grandchild), timeout=3)
    job = json.loads(out)
    assert job["state"] == "cancelled"
    listed = json.loads(_cli(env, "builds", "list", "--json").stdout)
    assert [j["state"] for j in listed] == ["cancelled"]  # recorded by the process itself, not by recovery


def test_kill_9_of_the_parent_leaves_nothing_running(env, tmp_path):
    env["FAKE_TRTEXEC_MODE"] = "hang"
    proc = _build(env, "--json")
    try:
        leader, grandchild = _started(tmp_path)
        proc.kill()
        proc.wait(timeout=10)
        assert wait_for(lambda: not alive(leader), timeout=5)
        assert wait_for(lambda: not alive(grandchild), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    listed = _cli(env, "builds", "list", "--json")
    assert listed.returncode == 0 and [j["state"] for j in json.loads(listed.stdout)] == ["interrupted"]


def test_full_disk_during_a_build_fails_it_in_one_line_and_the_history_stays_readable(env, tmp_path):
    """RLIMIT_FSIZE stands in for a full disk (no tmpfs or loop device here): every write past it fails."""
    assert _cli(env, "builds", "list").returncode == 0  # the history exists, small
    env["FAKE_TRTEXEC_MODE"] = "flood"
    env["FAKE_TRTEXEC_LINES"] = "5000"

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = _build(env, "--json", preexec_fn=limit)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (1, 2), (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1
    if proc.returncode == 1:
        job = json.loads(out)
        assert job["state"] == "failed" and "cannot write" in job["result"]["message"]
    listed = _cli(env, "builds", "list", "--json")  # no limit now: readable, and recovers what was left
    assert listed.returncode == 0, listed.stderr
    assert all(j["state"] in ("failed", "interrupted") for j in json.loads(listed.stdout))
    env["FAKE_TRTEXEC_MODE"] = "ok"
    again = _build(env, "--json")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and json.loads(out)["state"] == "succeeded", err


def test_a_history_write_failure_fails_the_build_and_releases_its_slot(tmp_path, fake_trtexec, monkeypatch):
    m = JobManager(tmp_path / "state", kill_grace_s=0.5, event_interval_s=0.05)
    try:
        real_finish = m.history.finish
        calls = {"n": 0}

        def full(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise HistoryError("cannot write the build history: database or disk is full", m.history.path)
            return real_finish(*args, **kwargs)

        monkeypatch.setattr(m.history, "finish", full)
        first = m.submit(trtexec_request(tmp_path))
        done = m.wait(first.id, timeout=30)
        assert done.state == JobState.FAILED and "disk is full" in done.result.message
        second = m.submit(trtexec_request(tmp_path))  # the device slot was released: it runs
        assert m.wait(second.id, timeout=30).state == JobState.SUCCEEDED
    finally:
        m.close()


def test_mark_running_failure_ends_the_build_group(tmp_path, fake_trtexec, monkeypatch):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    m = JobManager(tmp_path / "state", kill_grace_s=0.5, event_interval_s=0.05)
    try:
        def full(*args, **kwargs):
            raise HistoryError("cannot write the build history: database or disk is full", m.history.path)

        monkeypatch.setattr(m.history, "mark_running", full)
        job = m.wait(m.submit(trtexec_request(tmp_path)).id, timeout=30)
        assert job.state == JobState.FAILED and "disk is full" in job.result.message
    finally:
        m.close()


def test_unwritable_state_directory_is_one_line_exit_2(env, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for args in (["build", env["PRESET"], "--backend", "emulate", "--state-dir", str(blocker / "state")],
                 ["builds", "list", "--state-dir", str(blocker / "state")]):
        run = _cli(env, *args)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "cannot create the state directory" in run.stderr


def test_history_locked_too_long_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "LOCK_TIMEOUT_S", 0.2)
    h = BuildHistory(tmp_path / "history.sqlite")
    other = sqlite3.connect(tmp_path / "history.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        from trt_tui.core.build.types import BuildJob

        job = BuildJob(id="x", request=trtexec_request(tmp_path), build_dir=str(tmp_path))
        with pytest.raises(UserError, match="locked.*another trt-tui process"):
            h.add(job, os.getpid(), "")
    finally:
        other.execute("ROLLBACK")
        other.close()
        h.close()


def test_unknown_history_state_is_one_line_exit_2(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRT_TUI_HOME", env["TRT_TUI_HOME"])
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(FAKE))
    monkeypatch.setenv("FAKE_TRTEXEC_PYTHON", sys.executable)
    assert main(["build", env["PRESET"], "--backend", "trtexec", "--json"]) == 0
    capsys.readouterr()
    db = sqlite3.connect(Path(env["TRT_TUI_HOME"]) / "history.sqlite")
    db.execute("UPDATE builds SET state = 'from_the_future'")
    db.commit()
    db.close()
    assert main(["builds", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown state 'from_the_future'" in err


def test_one_build_per_device_across_managers_and_the_wait_is_shown(tmp_path, fake_trtexec, monkeypatch):
    """Two managers (as two processes would) on one state directory: the second waits, and says why."""
    monkeypatch.setenv("FAKE_TRTEXEC_SLEEP", "1")
    monkeypatch.setenv("FAKE_TRTEXEC_TIMES", str(tmp_path / "times"))
    a = JobManager(tmp_path / "state", event_interval_s=0.05)
    b = JobManager(tmp_path / "state", event_interval_s=0.05)
    seen: list[str] = []
    b.subscribe(lambda batch: seen.extend(ev.phase for ev in batch if isinstance(ev, Progress)))
    try:
        ja = a.submit(trtexec_request(tmp_path))
        assert wait_for(lambda: a.get(ja.id).state == JobState.RUNNING)
        jb = b.submit(trtexec_request(tmp_path))
        assert wait_for(lambda: any("waiting for gpu0" in p for p in seen), timeout=5)
        assert b.get(jb.id).state == JobState.QUEUED
        assert a.wait(ja.id, timeout=30).state == JobState.SUCCEEDED
        assert b.wait(jb.id, timeout=30).state == JobState.SUCCEEDED
    finally:
        a.close()
        b.close()
    (s1, e1), (s2, e2) = sorted(tuple(map(float, ln.split())) for ln in (tmp_path / "times").read_text().splitlines())
    assert e1 <= s2, "the two builds overlapped on gpu0"


def test_two_processes_on_one_state_dir_never_overlap(env, tmp_path):
    env["FAKE_TRTEXEC_SLEEP"] = "0.7"
    env["FAKE_TRTEXEC_TIMES"] = str(tmp_path / "times")
    procs = [_build(env, "--json") for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        assert json.loads(out)["state"] == "succeeded"
    spans = sorted(tuple(map(float, ln.split())) for ln in (tmp_path / "times").read_text().splitlines())
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, f"builds overlapped on gpu0: {spans}"


def test_a_lock_conflict_sqlite_returns_at_once_is_retried(tmp_path):
    """Some conflicts (a journal-mode switch, a stale WAL snapshot) are "database is locked" at once, without
    SQLite's busy wait: a write retries them instead of failing the build (seen once with three processes)."""
    from trt_tui.core.build.types import BuildJob

    h = BuildHistory(tmp_path / "history.sqlite")
    real, failures = h._db, [sqlite3.OperationalError("database is locked")] * 2

    class Flaky:
        def execute(self, *args):
            if failures:
                raise failures.pop()
            return real.execute(*args)

    h._db = Flaky()
    try:
        h.add(BuildJob(id="x", request=trtexec_request(tmp_path), build_dir=str(tmp_path)), os.getpid(), "")
    finally:
        h._db = real
    assert not failures and h.row("x") is not None
    h.close()

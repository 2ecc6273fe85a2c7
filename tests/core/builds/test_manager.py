"""The job manager end to end, with the trtexec test double: results, files, history, events, and the
reliability cases (failure, signal, timeout, cancel, floods, queueing, restarts, crashes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trt_tui.core.build.history import BuildHistory
from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.types import JobChanged, JobState, LogLines, Progress

from .conftest import alive, assert_group_gone, trtexec_request, wait_for


def test_successful_trtexec_build(manager, fake_trtexec, tmp_path):
    batches = []
    manager.subscribe(batches.append)
    job = manager.submit(trtexec_request(tmp_path))
    done = manager.wait(job.id, timeout=10)
    r = done.result
    assert done.state == JobState.SUCCEEDED, r.message
    assert r.engine_built and Path(r.engine_path).read_bytes().startswith(b"FAKE ENGINE")
    assert r.build_time_s == 104.774 and r.engine_size_mib == 231.019 and r.trt_version == "10.9.0"
    assert r.performance["throughput_qps"] == 8.66824 and r.performance["gpu_compute"]["median_ms"] == 111.208
    assert r.pin_check["pins"][0]["status"] == "fp32" and r.pin_check["mismatches"] == []
    d = Path(done.build_dir)
    argv = json.loads((d / "command.json").read_text())["argv"]
    assert argv[0] == str(fake_trtexec) and "--fp16" in argv
    assert f"--saveEngine={d / 'engine.plan'}" in argv and "--saveEngine=elsewhere.plan" not in argv
    assert "--profilingVerbosity=detailed" in argv and (d / "command.txt").read_text().startswith(str(fake_trtexec))
    assert (d / "preset.toml").read_text() == 'model = "m.onnx"\n'
    assert "&&&& PASSED TensorRT.trtexec" in (d / "build.log").read_text()
    assert json.loads((d / "result.json").read_text())["state"] == "succeeded"
    assert manager.history.get(job.id).state == JobState.SUCCEEDED
    manager.hub.flush()
    events = [e for b in batches for e in b]
    states = [e.job.state for e in events if isinstance(e, JobChanged)]
    assert states[0] == JobState.QUEUED and states[-1] == JobState.SUCCEEDED
    assert [p["name"] for p in r.phases] == ["parsing", "building", "engine built", "inference", "inference done", "passed"]
    assert [e.fraction for e in events if isinstance(e, Progress)][-1] == 1.0
    assert any("Engine built in" in line for e in events if isinstance(e, LogLines) for line in e.lines)


@pytest.mark.parametrize(
    ("mode", "state", "words"),
    [
        ("fail", JobState.FAILED, "exit code 1; trtexec said: ModelImporter.cpp:949"),
        ("signal", JobState.FAILED, "killed by signal SIGKILL"),
        ("noengine", JobState.FAILED, "wrote no engine file"),
    ],
)
def test_failures_are_reported_and_no_engine_claimed(manager, fake_trtexec, tmp_path, monkeypatch, mode, state, words):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", mode)
    job = manager.wait(manager.submit(trtexec_request(tmp_path)).id, timeout=10)
    assert job.state == state and words in job.result.message
    assert not job.result.engine_built and job.result.engine_path is None
    assert manager.history.get(job.id).result.message == job.result.message


def test_timeout_and_cancel_leave_no_process(manager, fake_trtexec, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    monkeypatch.setenv("FAKE_TRTEXEC_PIDFILE", str(tmp_path / "pids"))
    job = manager.wait(manager.submit(trtexec_request(tmp_path, timeout_s=1.0)).id, timeout=10)
    assert job.state == JobState.TIMED_OUT and "timed out" in job.result.message
    leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
    assert wait_for(lambda: not alive(grandchild), timeout=3)  # SIGKILL is asynchronous
    assert_group_gone(leader)

    (tmp_path / "pids").unlink()
    monkeypatch.setenv("FAKE_TRTEXEC_IGNORE_TERM", "1")  # only SIGKILL ends this one
    job = manager.submit(trtexec_request(tmp_path))
    assert wait_for(lambda: (tmp_path / "pids").exists())
    assert manager.get(job.id).state == JobState.RUNNING
    assert manager.cancel(job.id) == "cancelling"
    job = manager.wait(job.id, timeout=10)
    assert job.state == JobState.CANCELLED and not job.result.engine_built
    leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
    assert wait_for(lambda: not alive(grandchild), timeout=3)  # SIGKILL is asynchronous
    assert_group_gone(leader)
    assert manager.cancel(job.id) == "finished"


@pytest.mark.parametrize("mode", ["flood", "longline", "binary"])
def test_heavy_or_odd_output_is_kept_whole(manager, fake_trtexec, tmp_path, monkeypatch, mode):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", mode)
    lines = []
    batches = []

    def on_batch(batch):
        batches.append(len(batch))
        lines.extend(line for e in batch if isinstance(e, LogLines) for line in e.lines)

    manager.subscribe(on_batch)
    job = manager.wait(manager.submit(trtexec_request(tmp_path)).id, timeout=30)
    assert job.state == JobState.SUCCEEDED, job.result.message
    manager.hub.flush()
    raw = (Path(job.build_dir) / "build.log").read_bytes()
    assert raw.endswith(b"\n") and b"&&&& PASSED" in raw
    assert lines[-1].startswith("&&&& PASSED")
    if mode == "flood":
        assert raw.count(b"\n") == len(lines) > 200_000
        assert len(batches) < len(lines) / 100  # batched, not one event per line
        assert job.result.performance["throughput_qps"] == 8.66824  # the summary after the flood is still parsed
    if mode == "longline":
        assert b"x" * (1024 * 1024) in raw
        assert any("more bytes of this line are in the log file" in line for line in lines)
    if mode == "binary":
        assert b"\xff\xfe\xc3\x28" in raw
        assert any("\ufffd" in line for line in lines)


def test_two_builds_queue_on_one_device(manager, fake_trtexec, tmp_path):
    first = manager.submit(trtexec_request(tmp_path))
    second = manager.submit(trtexec_request(tmp_path))
    assert manager.get(second.id).state == JobState.QUEUED
    a, b = manager.wait(first.id, 10), manager.wait(second.id, 10)
    assert a.state == b.state == JobState.SUCCEEDED
    assert b.started_at >= a.finished_at - 0.01  # one at a time per GPU by default
    assert [j.id for j in manager.jobs()][:2] == [second.id, first.id]
    assert a.build_dir != b.build_dir


def test_two_slots_run_side_by_side(tmp_path, fake_trtexec, monkeypatch):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    m = JobManager(tmp_path / "state", slots_per_device=2, kill_grace_s=0.3)
    try:
        jobs = [m.submit(trtexec_request(tmp_path)) for _ in range(3)]
        assert wait_for(lambda: [m.get(j.id).state for j in jobs] == [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED])
        assert m.cancel(jobs[2].id) == "cancelled"
        assert m.get(jobs[2].id).state == JobState.CANCELLED
    finally:
        m.close()
    h = BuildHistory(tmp_path / "state" / "history.sqlite")
    assert [h.get(j.id).state for j in jobs] == [JobState.CANCELLED] * 3  # close() cancels what runs
    h.close()


def test_history_survives_a_restart(tmp_path, fake_trtexec):
    m = JobManager(tmp_path / "state")
    job = m.wait(m.submit(trtexec_request(tmp_path)).id, 10)
    m.close()
    again = JobManager(tmp_path / "state")
    try:
        listed = again.jobs()
        assert [j.id for j in listed] == [job.id]
        assert listed[0].result.performance["throughput_qps"] == 8.66824
        assert again.get(job.id[:12]).id == job.id  # a unique prefix is enough
        assert again.log_tail(job.id)[-1].startswith("&&&& PASSED")
    finally:
        again.close()


def test_builds_of_a_crashed_owner_are_interrupted_and_killed(tmp_path, fake_trtexec):
    """A trt_tui that dies (SIGKILL) leaves nothing running (issue 12 item 4: PR_SET_PDEATHSIG on the leader,
    the watchdog ends the group); the next start marks the build interrupted."""
    state = tmp_path / "state"
    script = (
        "import sys, time\n"
        "from trt_tui.core.build.manager import JobManager\n"
        "from tests.core.builds.conftest import trtexec_request\n"
        "from pathlib import Path\n"
        f"m = JobManager({str(state)!r})\n"
        f"job = m.submit(trtexec_request(Path({str(tmp_path)!r})))\n"
        "print(job.id, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "FAKE_TRTEXEC_MODE": "hang", "FAKE_TRTEXEC_PIDFILE": str(tmp_path / "pids"),
           "PYTHONPATH": os.pathsep.join([str(Path.cwd() / "src"), str(Path.cwd())])}
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        job_id = owner.stdout.readline().strip()
        assert wait_for(lambda: (tmp_path / "pids").exists(), timeout=10)
        leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
        # Another live trt_tui (this test) sees the build as running and leaves it alone.
        h = BuildHistory(state / "history.sqlite")
        assert wait_for(lambda: h.get(job_id).state == JobState.RUNNING)
        assert h.recover() == [] and alive(leader)
        owner.kill()
        owner.wait()
        assert wait_for(lambda: not alive(leader), timeout=3)  # the kernel's parent-death signal
        assert wait_for(lambda: not alive(grandchild), timeout=3)  # the watchdog's killpg
        m = JobManager(state)
        try:
            assert m.recovered == [job_id]
            job = m.get(job_id)
            assert job.state == JobState.INTERRUPTED and "interrupted" in job.result.message
            assert_group_gone(leader)
        finally:
            m.close()
        h.close()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_cancel_from_another_process_through_the_history(tmp_path, fake_trtexec, monkeypatch, manager):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    job = manager.submit(trtexec_request(tmp_path))
    assert wait_for(lambda: manager.get(job.id).state == JobState.RUNNING and manager.history.get(job.id).state == JobState.RUNNING)
    other = JobManager(tmp_path / "state")  # e.g. `trt-tui builds cancel ID` in another terminal
    try:
        assert other.recovered == []  # the owner (this process) is alive
        assert other.cancel(job.id) == "requested"
    finally:
        other.close()
    assert manager.wait(job.id, 10).state == JobState.CANCELLED


def test_missing_backend_fails_the_job_in_one_line(manager, fake_trtexec, tmp_path, monkeypatch):
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(tmp_path / "nope"))
    job = manager.wait(manager.submit(trtexec_request(tmp_path)).id, 10)
    assert job.state == JobState.FAILED and "TRT_TUI_TRTEXEC" in job.result.message
    assert "\n" not in job.result.message


def test_version_mismatch_is_noted(manager, fake_trtexec, tmp_path):
    job = manager.wait(manager.submit(trtexec_request(tmp_path, trt_major=11)).id, 10)
    assert any("targets TensorRT 11.x but trtexec is TensorRT 10.9.0" in n for n in job.result.notes)


def test_job_snapshots_are_copies(manager, fake_trtexec, tmp_path):
    job = manager.submit(trtexec_request(tmp_path))
    job.state = JobState.FAILED
    assert manager.get(job.id).state != JobState.FAILED or manager.get(job.id).result is not None
    assert manager.wait(job.id, 10).state == JobState.SUCCEEDED

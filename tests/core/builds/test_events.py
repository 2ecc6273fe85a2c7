"""Batched event delivery: coalescing, ordering, a broken subscriber, and bounded memory."""

from __future__ import annotations

import threading

from trt_tui.core.build.events import EventHub
from trt_tui.core.build.types import BuildJob, BuildRequest, JobChanged, LogLines, Progress


def _job(job_id="j") -> BuildJob:
    return BuildJob(id=job_id, request=BuildRequest("p", "", "m", "emulate"))


def test_lines_are_batched_and_progress_coalesced():
    hub = EventHub(interval_s=0.05, max_lines=10_000)
    batches = []
    hub.subscribe(batches.append)
    hub.publish(JobChanged(_job()))
    for i in range(1000):
        hub.publish(LogLines("j", (f"line {i}",)))
        hub.publish(Progress("j", "building", i / 1000))
    assert hub.flush()
    events = [e for b in batches for e in b]
    lines = [line for e in events if isinstance(e, LogLines) for line in e.lines]
    assert lines == [f"line {i}" for i in range(1000)]
    assert len(batches) < 50
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].fraction == 0.999 and len(progress) < 50
    assert isinstance(events[0], JobChanged)
    hub.close()


def test_a_failing_subscriber_does_not_stop_the_others():
    hub = EventHub(interval_s=0.01)
    got = []
    hub.subscribe(lambda b: 1 / 0)
    hub.subscribe(got.extend)
    hub.publish(LogLines("j", ("a",)))
    assert hub.flush()
    assert got == [LogLines("j", ("a",))]
    hub.close()


def test_unsubscribe_and_slow_subscriber_memory_bound():
    hub = EventHub(interval_s=0.01, max_lines=100, max_pending_lines=1000)
    release = threading.Event()
    got = []

    def slow(batch):
        release.wait(2)
        got.extend(batch)

    unsubscribe = hub.subscribe(slow)
    hub.publish(LogLines("j", ("first",)))
    for i in range(100):
        hub.publish(LogLines("j", tuple(f"{i}-{k}" for k in range(100))))
    release.set()
    assert hub.flush()
    delivered = sum(len(e.lines) for e in got)
    skipped = sum(e.skipped for e in got)
    assert delivered + skipped == 1 + 100 * 100 and skipped > 0
    # One batch went out before the subscriber blocked; while it was busy at most one bound's worth waited.
    assert delivered <= 2 * 1000 + 100
    unsubscribe()
    hub.publish(LogLines("j", ("late",)))
    assert hub.flush()
    assert all("late" not in e.lines for e in got)
    hub.close()

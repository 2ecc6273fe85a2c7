"""IProgressMonitor bookkeeping, driven the way TensorRT drives a monitor (no TensorRT needed)."""

from __future__ import annotations

from trt_tui.core.build.phases import PhaseTracker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def drive(tracker, clock, *, steps=4, inner=2):
    """A fake monitor driver: TensorRT-like nested phases with steps."""
    tracker.phase_start("Building engine", None, steps)
    for step in range(steps):
        tracker.phase_start("Tactic selection", "Building engine", inner)
        for i in range(inner):
            clock.now += 1
            if not tracker.step_complete("Tactic selection", i):
                return False
        tracker.phase_finish("Tactic selection")
        clock.now += 1
        if not tracker.step_complete("Building engine", step):
            return False
    tracker.phase_finish("Building engine")
    return True


def test_fractions_rise_monotonically_through_nested_phases():
    events = []
    clock = Clock()
    tracker = PhaseTracker(lambda phase, f: events.append((phase, f)), min_interval_s=0, clock=clock)
    assert drive(tracker, clock)
    fractions = [f for _, f in events if f is not None]
    assert fractions == sorted(fractions)
    assert events[0] == ("Building engine", 0.0)
    assert ("Building engine > Tactic selection", 0.125) in events  # step 0, inner 1 of 2: (0 + 0.5) / 4
    assert ("Building engine", 1.0) in events
    assert events[-1][1] is None  # nothing running after the last phase finished
    assert tracker.finished.count("Tactic selection") == 4 and tracker.finished[-1] == "Building engine"


def test_cancel_makes_step_complete_return_false():
    cancel = {"now": False}
    clock = Clock()
    tracker = PhaseTracker(lambda *a: None, cancelled=lambda: cancel["now"], clock=clock)
    tracker.phase_start("Building engine", None, 3)
    assert tracker.step_complete("Building engine", 0) is True
    cancel["now"] = True
    assert tracker.step_complete("Building engine", 1) is False


def test_step_events_are_throttled_but_phase_changes_are_not():
    events = []
    clock = Clock()
    tracker = PhaseTracker(lambda phase, f: events.append(phase), min_interval_s=10, clock=clock)
    tracker.phase_start("A", None, 100)
    for i in range(100):
        clock.now += 0.01
        tracker.step_complete("A", i)
    tracker.phase_finish("A")
    assert events == ["A", "A"]  # start and finish; the 100 steps within 1 s were coalesced


def test_unknown_phases_and_zero_steps_are_harmless():
    tracker = PhaseTracker(lambda *a: None)
    assert tracker.step_complete("never started", 3) is True
    tracker.phase_finish("never started")
    tracker.phase_start("empty", None, 0)
    assert tracker.fraction() == 0.0

"""The chunk schedule: how many frames each chunk has (a first chunk of 592 frames, then 584, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from trt_tui.core.streaming.contract import Schedule


@dataclass(frozen=True)
class ChunkPlan:
    index: int
    frames: int | None  # None: the model's fixed frame count (the contract resizes no time axis)


def frames_of(schedule: Schedule, index: int) -> int | None:
    """Frames of chunk `index`: the schedule's entry for it, the last entry repeating after the list ends."""
    if not schedule.frames:
        return None
    return schedule.frames[min(index, len(schedule.frames) - 1)]


def plan_chunks(schedule: Schedule, chunks: int | None = None) -> Iterator[ChunkPlan]:
    """The chunks to run, `chunks` overriding the schedule's count."""
    n = schedule.chunks if chunks is None else chunks
    for i in range(n):
        yield ChunkPlan(i, frames_of(schedule, i))

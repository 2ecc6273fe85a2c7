"""Big long-lived allocations without garbage-collector pauses, and worker threads that leave the UI thread the GIL.

A full (generation 2) collection walks every tracked object while holding the GIL. It starts when the
objects that survived since the last one exceed a quarter of the older ones: exactly while a 10,000-node
model, a 5,000-tensor kept run or two runs side by side are being built. Measured in
bench_tui_responsiveness.py on the loaded 2-core machine: 0.4-0.7 s UI stalls, from a worker thread or the
UI thread alike. So: no collection while building, then the result is frozen (never walked again).

The price: whatever was alive at the freeze is never collected by the cycle collector (reference counting
still frees it). Cyclic garbage alive at that moment (a closed screen not yet collected) stays; that is a
few screens' worth over a session, against half-second freezes of the UI.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """Build what the block allocates with the cyclic collector off, then freeze it. Safe from any thread;
    two overlapping blocks leave the collector as it was before the first."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def let_ui_run() -> None:
    """Called by a worker thread between small steps of a long parse: it lets go of the GIL for a moment.
    Without it the UI thread shares the GIL half and half with the worker (a 5 ms switch interval each way),
    so a 60 ms redraw while a kept run loads took 140-290 ms (bench_tui_responsiveness.py, 2-core machine)."""
    time.sleep(0.002)

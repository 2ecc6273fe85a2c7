"""How a worker child talks to its parent: marked JSON lines on stdout and files in the build dir.

Progress goes out as one line `@@trt_tui {"phase": ..., "fraction": ...}` (it also lands in build.log, which
is harmless and honest; live views show it in words through `readable_line`). The result is written atomically to `worker_result.json` before the worker exits;
the parent reads it after the process group is gone and merges in how the process ended.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARK = "@@trt_tui "
REQUEST_FILE = "request.json"
WORKER_RESULT_FILE = "worker_result.json"


def progress_line(phase: str, fraction: float | None) -> str:
    return MARK + json.dumps({"phase": phase, "fraction": None if fraction is None else round(fraction, 4)})


def emit_progress(phase: str, fraction: float | None) -> None:
    sys.stdout.write(progress_line(phase, fraction) + "\n")
    sys.stdout.flush()


def parse_line(line: str) -> dict[str, Any] | None:
    if not line.startswith(MARK):
        return None
    try:
        data = json.loads(line[len(MARK):])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def readable_line(line: str) -> str:
    """A progress line as people read it (`» writing the emulated ONNX (50%)`); other lines unchanged."""
    data = parse_line(line)
    if data is None:
        return line
    fraction = data.get("fraction")
    percent = f" ({fraction:.0%})" if isinstance(fraction, (int, float)) else ""
    return f"» {data.get('phase', 'progress')}{percent}"

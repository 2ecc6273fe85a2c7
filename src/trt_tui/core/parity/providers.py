"""ONNX Runtime execution providers: which to ask for, with which options, and where nodes really ran.

`onnxruntime` and `onnxruntime-gpu` install the same module; which providers exist is read at run time.
Comparisons run on the CPU unless a GPU candidate is asked for (`cuda`): the CPU drift preview is the
product's GPU-free promise, and a GPU reference must not differ from the candidate by more than precision.

On CUDA, TF32 is turned off (`use_tf32=0`): TF32 rounds FP32 matmul/conv inputs to 10 mantissa bits, which
would put fp16-sized error into the "FP32" reference (the seeds' "wrong results fixed by --noTF32"). ONNX
Runtime falls back to the CPU EP for nodes its CUDA EP has no kernel for (bf16 especially); `placements`
reads which nodes those were from ONNX Runtime's own verbose partitioning log, so a GPU result can say
which of its nodes did not run on the GPU.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from typing import Any

from trt_tui.core.errors import MissingBackendError, UserError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CUDA_OPTIONS = {"use_tf32": "0"}  # exact FP32 on Ampere+ (ORT's default is TF32 on)
GPU_PROVIDERS = ("cuda", "cpu")  # the CPU EP takes the nodes CUDA has no kernel for


def available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def require_cuda(what: str) -> None:
    """One line when the CUDA EP is missing: which build is installed and how to get the GPU one."""
    have = available()
    if CUDA not in have:
        raise MissingBackendError(
            f"{what} needs ONNX Runtime's CUDA execution provider, and this ONNX Runtime offers only "
            f"{', '.join(p.removesuffix('ExecutionProvider') for p in have)} (install onnxruntime-gpu instead of "
            "onnxruntime, on a machine with an NVIDIA GPU: see the README)"
        )


def resolve(wanted: Iterable[str]) -> list[str | tuple[str, dict[str, str]]]:
    """Provider names by case-insensitive substring ('cuda', 'cpu') -> ORT's providers argument, with options."""
    have = available()
    chosen: list[str | tuple[str, dict[str, str]]] = []
    for want in wanted:
        match = next((p for p in have if want.lower() in p.lower()), None)
        if match is None:
            raise UserError(f"ONNX Runtime has no execution provider {want!r}; available: {', '.join(have)}")
        chosen.append((match, dict(CUDA_OPTIONS)) if match == CUDA else match)
    return chosen


def cpu_only(providers: Sequence[str]) -> bool:
    """Whether providers as a side names them ("cpu", "CPUExecutionProvider") are all ONNX Runtime's CPU EP."""
    return all("cpu" in p.lower() for p in providers)


def uses_gpu(providers: Sequence[Any]) -> bool:
    return any((p[0] if isinstance(p, tuple) else p) == CUDA for p in providers)


# ---- where nodes ran ----------------------------------------------------------------------------------
# ORT's partitioner logs, at verbose level, one block per provider:
#   "Node placements" / " Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2"
#   "  Cast (node_name)"
# or "All nodes placed on [CUDAExecutionProvider]. Number of nodes: 17".
_BLOCK = re.compile(r"Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)")
_ALL = re.compile(r"All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)")
_NODE = re.compile(r"^\s+(\S+) \((.*)\)\s*$")


def parse_placements(log: str) -> dict[str, list[str]]:
    """Provider -> node names (op types where a node has no name), from ORT's verbose session log."""
    placed: dict[str, list[str]] = {}
    current: str | None = None
    for line in log.splitlines():
        # "2026-... [V:onnxruntime:, session_state.cc:1160 VerifyEachNodeIsAssignedToAnEp]   MatMul (name)"
        msg = line.split("] ", 1)[1] if ":onnxruntime:" in line and "] " in line else line
        m = _ALL.search(msg)
        if m:
            placed.setdefault(m.group(1), [])
            current = None
            continue
        m = _BLOCK.search(msg)
        if m:
            current = m.group(1)
            placed.setdefault(current, [])
            continue
        n = _NODE.match(msg) if current is not None else None
        if n:
            placed[current].append(n.group(2) or n.group(1))
        else:
            current = None
    return placed


def memcpy_or_internal(name: str) -> bool:
    return name.startswith("Memcpy") or name.startswith("InsertedPrecisionFreeCast")


@contextmanager
def captured_stderr():
    """ONNX Runtime's C++ logger writes to file descriptor 2: catch it in a file while a session is made.

    Yields a callable returning the text caught so far."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode("utf-8", errors="replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def make_session(make: Callable[[int], Any], providers: Sequence[Any], on_placement: Callable[[dict], None] | None):
    """`make(log_severity)` -> an InferenceSession; on a GPU, with the node placements reported to `on_placement`."""
    if on_placement is not None and uses_gpu(providers):
        # a verbose probe session lists which provider took each node; the session kept is a quiet one, since
        # a verbose session would keep logging every run to the terminal
        with captured_stderr() as caught:
            probe = make(0)
            log = caught()
        del probe
        on_placement(parse_placements(log))
    return make(3)

"""How much memory a stream run needs, estimated before the first chunk, so that a contract with
`"dims": {"B": 1000000}` is refused with the figure instead of growing to tens of GB.

Per chunk the run holds: the reference's stream inputs, state and outputs; per candidate its own state,
outputs and ONNX Runtime's copies of the feeds; the drift metrics' float64 temporaries over the largest
output; and per side the model's weights (each ONNX Runtime session holds its own, an emulated candidate
its rewritten copy), or, for a model too big for that, one segment's weights at a time. Python integers throughout: dims of 2**62 must not overflow into a small number.
"""

from __future__ import annotations

import os
from pathlib import Path

from trt_tui.core.errors import UserError
from trt_tui.core.streaming.contract import Contract, TensorSpec

_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int8": 1, "uint8": 1,
             "bool": 1}  # fmt: skip


def tensor_bytes(contract: Contract, spec: TensorSpec, frames: int) -> int:
    time_axis = contract.schedule.time_axes.get(spec.name)
    time_dims = {contract.inputs[n].shape[a] for n, a in contract.schedule.time_axes.items() if n in contract.inputs}
    n = 1
    for axis, d in enumerate(spec.shape):
        if axis == time_axis or (isinstance(d, str) and d in time_dims and d not in contract.dims):
            n *= frames
        elif isinstance(d, int):
            n *= d
        else:
            n *= contract.dims.get(d, 1)  # an output dim nobody names: unknown, count it as 1
    return n * _ITEMSIZE.get(spec.dtype, 4)


def model_bytes(index) -> int:
    """The model file's size plus the external-data files it names (a GraphIndex: nothing is loaded)."""
    from onnx import TensorProto

    p = Path(index.path)
    total = p.stat().st_size if p.is_file() else 0
    locations = {
        e.value for init in index.model.graph.initializer if init.data_location == TensorProto.EXTERNAL
        for e in init.external_data if e.key == "location"
    }  # fmt: skip
    for loc in locations:
        f = p.parent / loc
        total += f.stat().st_size if f.is_file() else 0
    return total


# A model whose weights exceed this runs in segments (parity.segments.SegmentedRunner): one segment's session at
# a time, each holding at most about this many bytes of weights, mapped from files. Smaller models keep one
# whole session per side for the run (faster: no session per segment per chunk).
STREAM_SEGMENT_BYTES = 512 << 20


def segment_bytes(weights: int, max_memory: int | None = None) -> int | None:
    """The weight bytes per segment when the model runs in segments, or None when it runs whole. A --max-memory
    below what whole sessions would take makes the segments smaller (a quarter of it, for tensors besides)."""
    budget = STREAM_SEGMENT_BYTES if max_memory is None else min(STREAM_SEGMENT_BYTES, max(max_memory // 4, 1 << 20))
    return budget if weights > budget else None


def estimate_stream_bytes(contract: Contract, *, weights: int, candidates: int = 1, recorded: bool = False,
                          segment: int | None = None, whole_candidates: int = 0) -> tuple[int, str]:  # fmt: skip
    """(bytes, breakdown) of a stream run with `candidates` candidates beside the reference; `segment`: the
    model runs in segments of that many weight bytes (`segment_bytes`), but for `whole_candidates` of them."""
    frames = max(contract.schedule.frames, default=1)
    ins = sum(tensor_bytes(contract, s, frames) for s in contract.inputs.values())
    state = sum(tensor_bytes(contract, contract.inputs[p.input], frames) for p in contract.state if p.input in contract.inputs)
    outs = [tensor_bytes(contract, s, frames) for s in contract.outputs.values()]
    out_total = sum(outs)
    largest = max(outs, default=0)
    per_chunk = ins + out_total + candidates * (ins + out_total + state)  # reference + each candidate
    if recorded:
        per_chunk += ins + out_total  # the recorded chunk being read
    temporaries = 8 * largest  # float64 |diff| and friends over the largest output
    if segment is None:
        sessions = weights * (1 + 2 * candidates)  # each session's weights, and a candidate's rewritten model
        held = f"weights for {1 + candidates} side(s) {format_bytes(sessions)}"
    else:  # one segment session at a time (its weights mapped; supplied ones copied once by ORT)
        sessions = 2 * segment + 2 * weights * whole_candidates
        held = f"weights of one segment at a time {format_bytes(2 * segment)}"
        if whole_candidates:
            held += f", of {whole_candidates} whole candidate(s) {format_bytes(2 * weights * whole_candidates)}"
    total = per_chunk + temporaries + sessions
    breakdown = f"tensors of a chunk {format_bytes(per_chunk)}, metric temporaries {format_bytes(temporaries)}, {held}"
    return total, breakdown


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages; None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_stream_memory(contract: Contract, *, weights: int, candidates: int = 1, recorded: bool = False,
                        max_memory: int | None = None, segment: int | None = None, whole_candidates: int = 0) -> int:  # fmt: skip
    """The estimate; a UserError naming the contract when it exceeds --max-memory or the machine's memory."""
    need, breakdown = estimate_stream_bytes(contract, weights=weights, candidates=candidates, recorded=recorded,
                                            segment=segment, whole_candidates=whole_candidates)  # fmt: skip
    limits = []
    if max_memory is not None:
        limits.append((max_memory, "--max-memory"))
    avail = available_memory()
    if avail is not None:
        limits.append((avail, "the memory available on this machine"))
    for limit, what in limits:
        if need > limit:
            dims = ", ".join(f"{k}={v}" for k, v in contract.dims.items())
            raise UserError(
                f"a stream run would need about {format_bytes(need)} ({breakdown}), more than {what} "
                f"({format_bytes(limit)}); make the contract's dims smaller ({dims or 'none set'}) or the frames per chunk",
                contract.path,
            )
    return need


def format_bytes(n: int) -> str:
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if x < 1024 or unit == "PiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"

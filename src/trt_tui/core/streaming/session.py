"""Model + contract (+ preset) -> runners -> a streamed report: what `trt-tui stream` and the TUI both call.

    setup = setup_stream("model.onnx", "model.contract.json", candidate="emulate", precision="fp16")
    report = stream(setup, mode="closed-loop", chunks=300, on_chunk=print, cancel=event)

Runners come from the parity engine (`trt_tui.core.parity.runners.make_runners`): ONNX Runtime FP32 as the
reference; the fp16/bf16 CPU emulation (+ pins), the mixed-precision rewrite, any ONNX file or a TensorRT
engine as the candidate. A preset supplies the precision and the pinned nodes; the contract keeps the
tolerances (it is the binding spec of the stream).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.parity.runners import CandidateSpec, make_runners, parse_candidate
from trt_tui.core.streaming.contract import MODES, Contract
from trt_tui.core.streaming.contract_choice import check_contract
from trt_tui.core.streaming.engine import ChunkResult, StreamReport, run_stream
from trt_tui.core.streaming.feeds import StreamInputs
from trt_tui.core.streaming.guards import unfed_state_inputs
from trt_tui.core.streaming.memory import check_stream_memory, model_bytes


LOW_PRECISION_KINDS = ("emulate", "mixed", "cuda", "engine", "trt")  # candidates that round: zero error is suspect


@dataclass
class StreamSetup:
    model: Path
    contract: Contract
    candidate: CandidateSpec
    inputs: StreamInputs
    warnings: list[str]
    preset_name: str | None = None
    unchecked: list[str] = field(default_factory=list)  # guards.unfed_state_inputs, carried into the report


def setup_stream(
    model: str | os.PathLike[str],
    contract: str | os.PathLike[str] | Contract,
    *,
    candidate: str = "emulate",
    precision: str | None = None,
    pins: Sequence[str] = (),
    preset: str | os.PathLike[str] | None = None,
    inputs_file: str | os.PathLike[str] | None = None,
    fuse_bias: bool = True,
    max_memory: int | None = None,
) -> StreamSetup:
    """Check everything that can be checked before the first chunk runs (UserError naming the file if not)."""
    model = Path(model)
    index = load_graph(model)
    c, warnings = check_contract(contract, index)
    preset_name = None
    pin_list = list(pins)
    if preset is not None:
        from trt_tui.core.preset import load_preset, resolve_preset

        resolved = resolve_preset(load_preset(preset), index)
        preset_name = resolved.name
        if precision is None:
            if not resolved.low_precision and candidate in ("emulate", "mixed"):
                raise UserError(f"the preset is {resolved.precision}: nothing to emulate; pass --precision or an engine", preset)
            precision = resolved.precision if resolved.low_precision else None
        pin_list = list(dict.fromkeys([*resolved.pinned_nodes, *pin_list]))
    kind = candidate.partition(":")[0]
    if kind == "outputs":
        raise UserError("streaming feeds each side's state back, so the candidate must be a runner, not saved outputs")
    spec = parse_candidate(candidate, precision=precision or "fp16", pins=pin_list, fuse_bias=fuse_bias)
    check_stream_memory(c, weights=model_bytes(index), candidates=1, max_memory=max_memory)
    inputs = StreamInputs(c, inputs_file)
    unchecked = unfed_state_inputs(c, inputs.from_file)
    return StreamSetup(model, c, spec, inputs, warnings + unchecked, preset_name, unchecked)


def stream(
    setup: StreamSetup,
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    cancel=None,
) -> StreamReport:
    """Build and activate the runners, run the chunks, return the report (see engine.run_stream)."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose {' or '.join(MODES)}")
    if chunks is not None and chunks < 1:
        raise UserError("--chunks must be at least 1")
    if chunks is None and setup.inputs.available_chunks is not None:
        # an inputs file (e.g. real audio) ends where it ends: run what it holds, up to the schedule's count
        chunks = min(setup.contract.schedule.chunks, setup.inputs.available_chunks)
    with make_runners(str(setup.model), setup.candidate) as pair:
        report = run_stream(
            setup.contract, pair.reference, pair.candidate, mode=mode, chunks=chunks, inputs=setup.inputs,
            on_chunk=on_chunk, cancel=cancel, low_precision=setup.candidate.kind in LOW_PRECISION_KINDS,
        )  # fmt: skip
    report.static_unchecked = list(setup.unchecked)
    return report

"""Model + contract (+ preset) -> runners -> streamed reports: what `trt-tui stream` and the TUI both call.

    setup = setup_stream("model.onnx", "model.contract.json", candidates=["ort", "emulate:fp16", "engine:m.plan"],
                         reference="recorded:ref_300")
    run = stream_all(setup, mode="closed-loop", on_chunk=print, cancel=event)   # {label: StreamReport}
    report = stream(setup)                                                     # the first candidate's report

The reference is ONNX Runtime FP32 on the model (`onnxruntime`, the default), or a recording
(`recorded:PATH`, see recorded.py) made by a framework run or by `--record`. Candidates come from the parity
engine's runners (`trt_tui.core.parity.runners`): `ort` (ONNX Runtime FP32 on the model: the baseline), the
fp16/bf16 CPU emulation + pins (`emulate`, `emulate:bf16`), the mixed-precision rewrite (`mixed`,
`mixed:bf16`), any ONNX file (`onnx:PATH`) or a TensorRT engine (`engine:PATH`). All candidates run on the
same inputs against the same reference. Against a recording, ONNX Runtime FP32 is always one of them, so
that "is the candidate worse than ONNX Runtime FP32 against the reference?" has an answer (baseline.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.parity.runners import PRECISIONS, CandidateSpec, parse_candidate
from trt_tui.core.streaming.contract import MODES, Contract
from trt_tui.core.streaming.contract_choice import check_contract
from trt_tui.core.streaming.engine import ChunkResult, RunnerReference, StreamReport, run_streams
from trt_tui.core.streaming.feeds import StreamInputs
from trt_tui.core.streaming.guards import unfed_state_inputs
from trt_tui.core.streaming.memory import check_stream_memory, model_bytes, segment_bytes

LOW_PRECISION_KINDS = ("emulate", "mixed", "cuda", "engine", "trt")  # candidates that round: zero error is suspect
ORT_NAMES = ("ort", "onnxruntime", "ort-fp32", "onnxruntime-fp32")
ORT_LABEL = "onnxruntime fp32"


@dataclass(frozen=True)
class StreamCandidate:
    label: str
    spec: CandidateSpec | None  # None: ONNX Runtime FP32 on the model itself

    @property
    def low_precision(self) -> bool:
        return self.spec is not None and self.spec.kind in LOW_PRECISION_KINDS

    @property
    def pins(self) -> tuple[str, ...]:
        return self.spec.pins if self.spec is not None else ()


@dataclass
class StreamSetup:
    model: Path
    contract: Contract
    candidate: CandidateSpec | None  # the first candidate's spec (None: ONNX Runtime FP32)
    inputs: StreamInputs
    warnings: list[str]
    preset_name: str | None = None
    unchecked: list[str] = field(default_factory=list)  # guards.unfed_state_inputs, carried into the reports
    candidates: list[StreamCandidate] = field(default_factory=list)
    recording: object | None = None  # recorded.Recording when the reference is recorded
    record_to: Path | None = None  # --record: write the ONNX Runtime reference run there
    record_overwrite: bool = False
    segment_bytes: int | None = None  # the ONNX models run in segments of this many weight bytes (None: whole)

    @property
    def reference_label(self) -> str:
        return f"recorded:{self.recording.path}" if self.recording is not None else ORT_LABEL


def parse_stream_candidate(text: str, *, precision: str, pins: Sequence[str], fuse_bias: bool) -> StreamCandidate:
    """'ort' | 'emulate[:fp16|bf16]' | 'mixed[:fp16|bf16]' | 'onnx:PATH' | 'engine:PATH' | 'trt[:PRESET]'."""
    if text in ORT_NAMES:
        return StreamCandidate(ORT_LABEL, None)
    kind, sep, rest = text.partition(":")
    if kind == "outputs":
        raise UserError("streaming feeds each side's state back, so the candidate must be a runner, not saved outputs")
    if kind in ("emulate", "mixed") and sep:
        if rest not in PRECISIONS:
            raise UserError(f"candidate {text!r}: the precision after {kind}: must be fp16 or bf16")
        spec = CandidateSpec(kind=kind, precision=rest, pins=tuple(pins), fuse_bias=fuse_bias)
    else:
        spec = parse_candidate(text, precision=precision, pins=pins, fuse_bias=fuse_bias)
    return StreamCandidate(spec.label, spec)


def setup_stream(
    model: str | os.PathLike[str],
    contract: str | os.PathLike[str] | Contract,
    *,
    candidate: str = "emulate",
    candidates: Sequence[str] | None = None,
    precision: str | None = None,
    pins: Sequence[str] = (),
    preset: str | os.PathLike[str] | None = None,
    inputs_file: str | os.PathLike[str] | None = None,
    fuse_bias: bool = True,
    max_memory: int | None = None,
    reference: str = "onnxruntime",
    record: str | os.PathLike[str] | None = None,
    record_overwrite: bool = False,
) -> StreamSetup:
    """Check everything that can be checked before the first chunk runs (UserError naming the file if not)."""
    model = Path(model)
    index = load_graph(model)
    c, warnings = check_contract(contract, index)
    preset_name = None
    pin_list = list(pins)
    texts = list(candidates) if candidates else [candidate]
    if preset is not None:
        from trt_tui.core.preset import load_preset, resolve_preset

        resolved = resolve_preset(load_preset(preset), index)
        preset_name = resolved.name
        if precision is None:
            if not resolved.low_precision and any(t.partition(":")[0] in ("emulate", "mixed") and ":" not in t for t in texts):
                raise UserError(f"the preset is {resolved.precision}: nothing to emulate; pass --precision or an engine", preset)
            precision = resolved.precision if resolved.low_precision else None
        pin_list = list(dict.fromkeys([*resolved.pinned_nodes, *pin_list]))
    cands = [parse_stream_candidate(t, precision=precision or "fp16", pins=pin_list, fuse_bias=fuse_bias) for t in texts]

    recording = None
    kind, sep, path = reference.partition(":")
    if kind == "recorded" and path:
        from trt_tui.core.streaming.recorded import RecordedReference, open_recording

        recording = open_recording(path)
        RecordedReference(c, recording).check_first()  # a recording that does not fit: one line, before any runner
        if not any(x.spec is None for x in cands):
            cands.insert(0, StreamCandidate(ORT_LABEL, None))  # the baseline every answer is stated against
        if inputs_file is not None:
            raise UserError("--inputs and a recorded reference both give the stream inputs; use one")
        if record is not None:
            raise UserError("--record writes the ONNX Runtime reference run; the reference here is already recorded")
    elif reference != "onnxruntime":
        raise UserError(f"unknown reference {reference!r}; choose onnxruntime or recorded:PATH")
    labels = [x.label for x in cands]
    dup = next((lab for lab in labels if labels.count(lab) > 1), None)
    if dup is not None:
        raise UserError(f"the candidate {dup!r} is given twice")
    weights = model_bytes(index)
    segment = segment_bytes(weights, max_memory)
    whole = sum(1 for x in cands if x.spec is not None and not _segmentable(x.spec.kind))
    check_stream_memory(c, weights=weights, candidates=len(cands), recorded=recording is not None,
                        max_memory=max_memory, segment=segment, whole_candidates=whole)  # fmt: skip
    inputs = StreamInputs(c, inputs_file) if recording is None else StreamInputs(c, None, require_feeds=False)
    unchecked = unfed_state_inputs(c, inputs.from_file) if recording is None else []
    record_to = None
    if record is not None:
        record_to = Path(record)
        if record_to.exists() and not (record_to.is_dir() and not any(record_to.iterdir())) and not record_overwrite:
            raise UserError("already exists; choose another name or pass --force", record_to)
    return StreamSetup(model, c, cands[0].spec, inputs, warnings + unchecked, preset_name, unchecked, cands, recording,
                       record_to, record_overwrite, segment)  # fmt: skip


def _segmentable(kind_name: str) -> bool:
    """False for a candidate whose ONNX Runtime session must hold the whole model's weights here (the mixed
    ONNX, cuda, onnx:PATH: see CandidateKind.segmentable); engines and saved outputs hold none of them."""
    from trt_tui.core.parity.candidates import RewriteKind, candidate_kind

    kind = candidate_kind(kind_name)
    return kind.segmentable or not isinstance(kind, RewriteKind)


@contextmanager
def open_runners(setup: StreamSetup) -> Iterator[tuple[object | None, dict[str, object]]]:
    """(the ONNX Runtime reference runner or None for a recording, {label: candidate runner}), activated.

    One ONNX Runtime FP32 session serves both the reference and the `ort` candidate."""
    from trt_tui.core.parity.candidates import CandidateContext, candidate_kind, kind_providers
    from trt_tui.core.parity.runners import default_providers, load_model, onnx_runner
    from trt_tui.core.weights import WeightSource

    ref_model = load_model(setup.model)
    providers = default_providers()
    fp32: list = []

    def ort() -> object:
        if not fp32:
            weights = WeightSource(setup.model.parent)
            if setup.segment_bytes is None:
                fp32.append(onnx_runner(ref_model, None, providers=providers, name="reference", weights=weights))
            else:
                from trt_tui.core.parity.segments import SegmentedRunner  # a model too big to hold whole

                fp32.append(SegmentedRunner(ref_model, weights, setup.segment_bytes, providers, name="reference"))
        return fp32[0]

    reference = ort() if setup.recording is None else None
    runners: dict[str, object] = {}
    for cand in setup.candidates:
        if cand.spec is None:  # the ONNX Runtime FP32 run itself: one session serves both
            runners[cand.label] = ort()
            continue
        kind = candidate_kind(cand.spec.kind)  # the registry every comparison goes through (parity.candidates)
        ctx = CandidateContext(cand.spec, None, setup.model, ref_model, kind_providers(kind, providers),
                               segment_bytes=setup.segment_bytes)
        runners[cand.label] = kind.runner(ctx, None, name=cand.label)
    active: list = []
    try:
        for r in [reference, *runners.values()]:
            if r is not None and not any(r is a for a in active):
                r.activate()
                active.append(r)
        yield reference, runners
    finally:
        for r in reversed(active):
            if r.is_active:
                r.deactivate()


class _RecordingReference:
    """Wraps the ONNX Runtime reference and writes each chunk (inputs with the state going in, outputs) to a
    recording (`--record DIR`) as it runs."""

    def __init__(self, inner: RunnerReference, recorder) -> None:
        self.inner, self.recorder = inner, recorder
        self.label, self.available_chunks, self.where = inner.label, inner.available_chunks, inner.where

    def chunk(self, plan):
        ref = self.inner.chunk(plan)
        self.recorder.write(inputs={**ref.feeds, **ref.state_in}, outputs=ref.outputs)
        return ref


def stream_all(
    setup: StreamSetup,
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    on_chunk: Callable[[dict[str, ChunkResult]], None] | None = None,
    cancel=None,
) -> dict[str, StreamReport]:
    """Build and activate the runners, run the chunks against every candidate: {label: StreamReport}."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose {' or '.join(MODES)}")
    if chunks is not None and chunks < 1:
        raise UserError("--chunks must be at least 1")
    if chunks is None:
        chunks = default_chunks(setup)
    recorder = None
    with open_runners(setup) as (reference, runners):
        if setup.recording is not None:
            from trt_tui.core.streaming.recorded import RecordedReference

            source = RecordedReference(setup.contract, setup.recording)
        else:
            source = RunnerReference(setup.contract, reference, setup.inputs)
            if setup.record_to is not None:
                from trt_tui.recorder import Recorder

                try:
                    recorder = Recorder(setup.record_to, overwrite=setup.record_overwrite,
                                        meta={"model": setup.model.name, "mode": mode, "reference": ORT_LABEL})  # fmt: skip
                except (OSError, FileExistsError) as exc:
                    raise UserError(f"cannot record there: {exc}", setup.record_to) from None
                source = _RecordingReference(source, recorder)
        try:
            reports = run_streams(setup.contract, source, runners, mode=mode, chunks=chunks, on_chunk=on_chunk,
                                  cancel=cancel, low_precision={c.label: c.low_precision for c in setup.candidates})  # fmt: skip
        finally:
            if recorder is not None:
                recorder.close()
    for report in reports.values():
        report.static_unchecked = list(setup.unchecked)
    return reports


def default_chunks(setup: StreamSetup) -> int:
    """The contract's schedule, or what a recording / an inputs file holds (a recording runs whole)."""
    if setup.recording is not None:
        return len(setup.recording)
    n = setup.contract.schedule.chunks
    if setup.inputs.available_chunks is not None:
        n = min(n, setup.inputs.available_chunks)
    return n


def stream(
    setup: StreamSetup,
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    cancel=None,
) -> StreamReport:
    """The first candidate's report (see stream_all for several); `on_chunk(result)` after every chunk."""
    first = setup.candidates[0].label
    cb = None if on_chunk is None else (lambda results: on_chunk(results[first]))
    return stream_all(setup, mode=mode, chunks=chunks, on_chunk=cb, cancel=cancel)[first]

"""One comparison request, built from explicit settings and/or a preset; the CLI builds it from flags, the TUI
and the search from their own state. Every front gets the same precedence and the same defaults.

    request = build_request(model="m.onnx", preset="p.toml", candidate="trt", atol=1e-3)
    comparison = request.prepare()            # sides, feeds, pairing, batch plan (engine.Comparison)
    for update in comparison.run(cancel=event): ...
    result = comparison.result()

Precedence: an explicit setting (not None / not empty) > the preset's > the default. What a preset gives:
model, precision, pins (only when no pin setting is explicit), seed, input data, the first profile's OPT
shapes (when no shapes are explicit) and tolerances (when no tolerance setting is explicit).

The preset is loaded and resolved once and the graph indexed once (`request.index`, `request.resolved`);
both are handed downstream: a `trt` candidate gets the resolved preset object, not its path, so
`compare --preset P --candidate trt` reads P once and indexes the model once. A front that has the model
indexed already (the TUI) passes `index=`.

`request.to_json()` is the request as plain data: the CLI's `compare MODEL --preset P` and the TUI's Parity
screen on P build requests that serialise alike (tests/ui/test_parity_request.py holds them to it).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex, load_graph
from trt_tui.core.parity.constants import DEFAULT_SEED
from trt_tui.core.parity.engine import CompareOptions, Comparison, prepare_comparison
from trt_tui.core.parity.inputs import InputSpec
from trt_tui.core.parity.metrics import Tolerance, TolerancePolicy, default_tolerance
from trt_tui.core.parity.runners import CandidateSpec, parse_candidate
from trt_tui.core.pins import PinRules, pin_nodes


@dataclass
class ComparisonRequest:
    """A comparison, fully decided: what `prepare()` hands to the engine. Build it with `build_request`."""

    model: Path
    index: GraphIndex | None  # the model, indexed once (None: prepare() indexes it, e.g. in a child process)
    candidate: CandidateSpec
    reference: str = "onnxruntime"
    inputs: InputSpec | Path = field(default_factory=InputSpec)  # random inputs, or a data file
    options: CompareOptions = field(default_factory=CompareOptions)
    resolved: Any | None = None  # the ResolvedPreset it came from (None: flags only)
    warnings: list[str] = field(default_factory=list)  # pin rules that matched nothing, ...

    @property
    def precision(self) -> str:
        return self.candidate.precision

    def prepare(self) -> Comparison:
        """Sides, feeds, pairing and batch plan (UserError on bad input); the request's warnings come first."""
        comparison = prepare_comparison(self.model, self.candidate, reference=self.reference, precision=self.precision,
                                        inputs=self.inputs, options=self.options, index=self.index)  # fmt: skip
        comparison.warnings[:0] = self.warnings
        return comparison

    def to_json(self) -> dict:
        """Everything the comparison is decided by, as plain data (paths absolute; a `trt` candidate by the
        EngineSpec it builds): equal settings from two fronts give equal JSON."""
        c = self.candidate
        candidate = {"kind": c.kind, "path": c.path, "precision": c.precision, "pins": list(c.pins),
                     "fuse_bias": c.fuse_bias, "outputs_only": c.outputs_only}  # fmt: skip
        if c.kind == "trt" and c.preset is not None:
            from trt_tui.core.parity.trt_preset import plan_trt_candidate, resolve_candidate_preset

            candidate["engine"] = plan_trt_candidate(resolve_candidate_preset(c.preset), outputs_only=c.outputs_only).spec.to_json()
        inputs = str(Path(self.inputs).resolve()) if isinstance(self.inputs, (str, os.PathLike)) else _plain(self.inputs)
        return {
            "model": str(Path(self.model).resolve()), "reference": self.reference, "candidate": candidate, "inputs": inputs,
            "options": _plain(self.options), "preset": self.resolved.name if self.resolved is not None else None,
            "warnings": list(self.warnings),
        }  # fmt: skip


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and paths as JSON's dicts, lists and strings."""
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, os.PathLike) else value


def _resolve(preset: Any, model: str | os.PathLike[str] | None, index: GraphIndex | None, map_weights: bool = False):
    """(ResolvedPreset, GraphIndex, model path) from a preset file / Preset / ResolvedPreset, indexing once
    (not at all when `index`, the model already indexed, is given)."""
    from trt_tui.core.preset import Preset, ResolvedPreset, load_preset, resolve_preset

    if isinstance(preset, ResolvedPreset):
        path = Path(model) if model else preset.model_path
        return preset, index if index is not None else load_graph(path, map_weights=map_weights), path
    loaded = preset if isinstance(preset, Preset) else load_preset(preset)
    path = Path(model) if model else loaded.model_path
    index = index if index is not None else load_graph(path, map_weights=map_weights)
    same = _same_file(loaded.model_path, path)
    return resolve_preset(loaded, index if same else None), index, path


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def build_request(
    model: str | os.PathLike[str] | None = None,
    *,
    index: GraphIndex | None = None,
    preset: Any = None,
    candidate: str | CandidateSpec = "emulate",
    reference: str = "onnxruntime",
    precision: str | None = None,
    pins: PinRules | None = None,
    fuse_bias: bool = True,
    outputs_only: bool = False,
    inputs: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    iterations: int = 1,
    shapes: dict[str, tuple[int, ...]] | None = None,
    dims: dict[str, int] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    stat: str | None = None,
    quantile: float | None = None,
    infinities_equal: bool | None = None,
    max_memory: int | None = None,
    quantiles: tuple[float, ...] = (0.99,),
    match: str | None = None,
    top_k: int | None = None,
    providers: list[str] | None = None,
    map_weights: bool = False,
) -> ComparisonRequest:
    """The one way to turn settings (explicit, else the preset's, else defaults) into a ComparisonRequest.
    `preset` is a file, a Preset (e.g. unsaved TUI edits) or a ResolvedPreset; `candidate` 'trt' without
    ':PRESET' builds from it, and 'trt:PRESET' without `preset` makes PRESET the preset too. `index`: `model`
    already indexed (the TUI's open model), so that it is not indexed again. `map_weights`: the index made
    here is the comparison's alone (the CLI): its big inline weights stay in the file (graph.read_model), read
    in place by both sides; not for engine candidates, whose build may write the model out."""
    text = candidate if isinstance(candidate, str) else None
    kind = text.split(":", 1)[0] if text is not None else candidate.kind
    map_weights = map_weights and kind not in ("trt", "engine")
    if preset is None and text is not None and text.startswith("trt:"):
        preset = text[4:]  # the engine's preset also supplies shapes, seed and tolerances
    resolved = None
    if preset is not None:
        resolved, index, model_path = _resolve(preset, model, index, map_weights)
    elif model:
        model_path = Path(model)
        index = index if index is not None else load_graph(model_path, map_weights=map_weights)
    else:
        raise UserError("give a MODEL or a --preset")

    if precision is None:
        precision = resolved.precision if resolved is not None and resolved.precision in ("fp16", "bf16") else "fp16"
    warnings: list[str] = []
    if pins is not None and not pins.empty:
        pinned, warnings = pin_nodes(index, pins, str(model_path))
    elif resolved is not None:
        pinned = list(resolved.pinned_nodes)
    else:
        pinned = []

    source = str(preset) if isinstance(preset, (str, os.PathLike)) else None  # the preset file, if one was named
    kind, sep, cand_path = (text or "").partition(":")
    if isinstance(candidate, CandidateSpec):
        spec = candidate
    elif kind == "trt" and (not sep or (source is not None and _same_file(cand_path, source))):
        # the request's own preset, resolved once: the build does not read the file again. No path: the same
        # spec whether the preset came as a file (CLI) or as an object with unsaved edits (TUI)
        spec = CandidateSpec(kind="trt", precision=precision, pins=tuple(pinned), fuse_bias=fuse_bias, preset=resolved,
                             outputs_only=outputs_only)  # fmt: skip
    else:
        spec = parse_candidate(text, precision=precision, pins=pinned, fuse_bias=fuse_bias, outputs_only=outputs_only)

    if seed is None:
        seed = resolved.seed if resolved is not None and resolved.seed is not None else DEFAULT_SEED
    data: InputSpec | Path
    if inputs:
        data = Path(inputs)
    elif resolved is not None and str(resolved.input_data) != "random":
        data = Path(resolved.input_data)
    else:
        if iterations < 1:
            raise UserError("--iterations must be at least 1")
        opt = {name: triple[1] for name, triple in resolved.profiles[0].items()} if resolved is not None and resolved.profiles else {}
        data = InputSpec(seed=seed, iterations=iterations, shapes=dict(shapes) if shapes else opt, dims=dict(dims or {}),
                         ranges=dict(ranges or {}))  # fmt: skip

    explicit = any(v is not None for v in (atol, rtol, stat, quantile))
    if resolved is not None and not explicit:
        policy = resolved.tolerances
    else:
        base = default_tolerance(precision)
        try:
            policy = TolerancePolicy(Tolerance(
                atol=base.atol if atol is None else atol, rtol=base.rtol if rtol is None else rtol,
                stat=stat or base.stat, quantile=base.quantile if quantile is None else quantile,
            ))  # fmt: skip
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if infinities_equal is not None:  # --infinities-compare-equal: over the preset's (or the defaults')
        policy = policy.with_infinities_equal(infinities_equal)
    if any(not 0 <= q <= 1 for q in quantiles):
        raise UserError("--quantile must be in [0, 1]")
    options = CompareOptions(tolerances=policy, max_memory=max_memory or None, quantiles=tuple(quantiles),
                             match=match, providers=providers, targets=resolved.targets if resolved is not None else ())  # fmt: skip
    if top_k is not None:
        if top_k < 0:
            raise UserError("--worst must be 0 or more")
        options.top_k = top_k
    return ComparisonRequest(model=model_path, index=index, candidate=spec, reference=reference, inputs=data,
                             options=options, resolved=resolved, warnings=warnings)  # fmt: skip

"""The streaming contract: a versioned JSON file that says how a stateful model is run chunk after chunk.

Schema `trt-tui-contract` version 1 (every section but `inputs`/`outputs` is optional; keys starting with
`_` and `description` are comments and are ignored):

```
{
  "format": "trt-tui-contract", "version": 1,
  "model": "demo_streaming_encoder.onnx",              # informational
  "dims": {"B": 1},                                     # values of named dims (anything not fixed elsewhere)
  "inputs":  {NAME: {"dtype": "float32", "shape": ["B", 32, 8], "feed": FEED}},
  "outputs": {NAME: {"dtype": "float32", "shape": ["B", 8, 32]}},
  "profiles": [{"name": "first_chunk", "shapes": {NAME: {"min": [..], "opt": [..], "max": [..]}}}],
  "state": [{"output": "cache_next", "input": "cache", "init": INIT}],
  "schedule": {"chunks": 50, "frames": [592, 584], "time_axes": {"audio_signal": 2}, "seed": 0},
  "tolerances": {"default": TOL, "outputs": {NAME: TOL}},
  "masks": {OUTPUT: {"axis": 2, "length": {"output": "cache_len_next"} | {"value": 16},
                     "keep": "first" | "last", "batch_axis": 1}},
  "invariants": [{"output": NAME, "check": "equals", "value": 8},
                 {"output": NAME, "check": "monotonic"},            # non-decreasing from chunk to chunk
                 {"output": NAME, "check": "range", "min": 0, "max": 16}],
  "trend": {"metric": "max_abs", "outputs": [NAME], "alpha": 0.01, "min_growth": 0.5, "fail_on_growth": true},
  "acceptance": {"min_pass_rate": 1.0}
}
FEED = {"kind": "random", "low": -1, "high": 1} | {"kind": "normal", "mean": 0, "std": 1}
     | {"kind": "frames"}                      # the number of frames of this chunk (a length input)
     | {"kind": "constant", "value": 0}
INIT = {"kind": "zeros"} | {"kind": "constant", "value": 0} | {"kind": "file", "path": "init.npy"}
TOL  = {"atol": 1e-3, "rtol": 1e-3, "stat": "elemwise|max|mean|median|p95|p99|quantile", "quantile": 0.99}
```

- `schedule.frames`: frames per chunk; the last entry repeats (`[592, 584]`: a first chunk of 592 frames,
  584 after). `time_axes` says which axis of which input carries the frames.
- Inputs named as the `input` of a state pair take the previous chunk's `output` (the `init` value at
  chunk 0); every other input needs a `feed` (or comes from `--inputs`).
- A mask compares an output only on its valid region along `axis`: the first or last `length` entries,
  where `length` is another output of the same chunk (per batch entry along `batch_axis`) or a constant.
- Entries written by `trt-tui contract init` carry `"guessed": "why"` until a person has reviewed them.

`load_contract(path)` parses and validates; a malformed file is one line `file:line:col: ...`, schema
problems are all collected (`ContractError.problems`, each `key.path: message`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import read_text_file
from trt_tui.core.parity.metrics import ERROR_STATS, Tolerance
from trt_tui.core.streaming.constants import MODES

FORMAT = "trt-tui-contract"
VERSION = 1
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")
FEED_KINDS = ("random", "normal", "frames", "constant")
INIT_KINDS = ("zeros", "constant", "file")
CHECKS = ("equals", "monotonic", "range")
TREND_METRICS = ("max_abs", "mean_abs", "median_abs", "p99_abs", "rel_rms")

Dim = int | str


class ContractError(UserError):
    """Every problem found in a contract; one line for the CLI, the full list in `problems`."""

    def __init__(self, problems: list[str], path: str | os.PathLike[str] | None = None) -> None:
        self.problems = list(problems)
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in contract: "
        super().__init__(head + "; ".join(problems), path)


# ---- the parsed contract ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Feed:
    kind: str  # one of FEED_KINDS
    low: float = -1.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    value: float = 0.0
    guessed: str | None = None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[Dim, ...]
    feed: Feed | None = None


@dataclass(frozen=True)
class Init:
    kind: str  # one of INIT_KINDS
    value: float = 0.0
    path: Path | None = None  # resolved against the contract's directory


@dataclass(frozen=True)
class StatePair:
    output: str
    input: str
    init: Init = Init("zeros")
    guessed: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]  # input -> (min, opt, max)


@dataclass(frozen=True)
class Schedule:
    chunks: int = 50
    frames: tuple[int, ...] = ()  # empty: the model's fixed frame count (no time axis resized)
    time_axes: dict[str, int] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class Mask:
    output: str
    axis: int
    length_output: str | None = None
    length_value: int | None = None
    keep: str = "first"  # "first" or "last": where the valid entries sit along the axis
    batch_axis: int | None = None  # axis of the output that the length output's entries index


@dataclass(frozen=True)
class Invariant:
    output: str
    check: str  # one of CHECKS
    value: float | None = None
    min: float | None = None
    max: float | None = None
    guessed: str | None = None

    def describe(self) -> str:
        if self.check == "equals":
            return f"{self.output} == {_num(self.value)}"
        if self.check == "monotonic":
            return f"{self.output} non-decreasing"
        lo = "-inf" if self.min is None else _num(self.min)
        hi = "inf" if self.max is None else _num(self.max)
        return f"{self.output} in [{lo}, {hi}]"


@dataclass(frozen=True)
class Trend:
    metric: str = "max_abs"
    outputs: tuple[str, ...] = ()  # empty: every float output that is not a state
    alpha: float = 0.01  # significance level of the slope's t-test
    min_growth: float = 0.5  # fitted growth over the run, relative to the fitted start, to call it "growing"
    fail_on_growth: bool = True


@dataclass(frozen=True)
class Criterion:
    """The seeds' acceptance vocabulary for one output, over the per-chunk error series of a run."""

    output: str
    metric: str = "max_abs"  # the per-chunk error (one of TREND_METRICS)
    percentiles: tuple[tuple[float, float], ...] = ()  # (q in 0..1, limit): the q-quantile must stay below limit
    within: float | None = None  # pass-rate floor: at least `min_rate` of the chunks have error <= within
    min_rate: float | None = None
    warn_above: float | None = None  # a chunk above: a warning
    fail_above: float | None = None  # a chunk above: the criterion fails


@dataclass(frozen=True)
class Contract:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    dims: dict[str, int] = field(default_factory=dict)
    profiles: tuple[Profile, ...] = ()
    state: tuple[StatePair, ...] = ()
    schedule: Schedule = Schedule()
    default_tolerance: Tolerance = Tolerance(atol=1e-3, rtol=1e-3, stat="max")
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    masks: dict[str, Mask] = field(default_factory=dict)
    invariants: tuple[Invariant, ...] = ()
    trend: Trend = Trend()
    min_pass_rate: float = 1.0
    criteria: tuple[Criterion, ...] = ()
    model: str | None = None
    path: Path | None = None
    warnings: tuple[str, ...] = ()  # e.g. guessed entries nobody has reviewed yet

    @property
    def state_inputs(self) -> dict[str, StatePair]:
        return {p.input: p for p in self.state}

    @property
    def state_outputs(self) -> dict[str, StatePair]:
        return {p.output: p for p in self.state}

    def tolerance_for(self, output: str) -> Tolerance:
        return self.tolerances.get(output, self.default_tolerance)

    def trend_outputs(self) -> tuple[str, ...]:
        if self.trend.outputs:
            return self.trend.outputs
        states = self.state_outputs
        return tuple(n for n, s in self.outputs.items() if n not in states and s.dtype.startswith(("float", "bfloat")))


def _num(v: float | None) -> str:
    if v is None:
        return "?"
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


# ---- loading ------------------------------------------------------------------------------------------------
def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a malformed one is one line `file:line:col: invalid JSON: why` (UserError)."""
    p = Path(path)
    text = read_text_file(p, "contract file", max_bytes=64 * 1024 * 1024)  # refuses FIFOs, devices, folders
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError("invalid JSON: nested too deeply", p) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", f"{p}:{exc.lineno}:{exc.colno}") from None


def load_contract(path: str | os.PathLike[str]) -> Contract:
    p = Path(path)
    return parse_contract(read_json(p), path=p)


def parse_contract(data: Any, path: Path | None = None) -> Contract:
    """Parse and validate a contract document; raises ContractError listing every problem."""
    parser = _Parser(path)
    contract = parser.contract(data)
    if parser.problems:
        raise ContractError(parser.problems, path)
    assert contract is not None
    return contract


# ---- the parser: checks everything, collects every problem with its key path ----------------------------
_COMMENT_KEYS = ("description",)


class _Parser:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def err(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    # -- generic helpers
    def obj(self, v: Any, where: str, allowed: tuple[str, ...] | None = None, required: tuple[str, ...] = ()) -> dict | None:
        if not isinstance(v, dict):
            self.err(where, f"must be an object, not {_kind(v)}")
            return None
        for key in required:
            if key not in v:
                self.err(_join(where, key), "is required")
        if allowed is not None:
            for key in v:
                if key not in allowed and not key.startswith("_") and key not in _COMMENT_KEYS:
                    self.err(_join(where, key), f"unknown key (allowed: {', '.join(allowed)})")
        return v

    def number(self, v: Any, where: str, *, integer: bool = False, minimum: float | None = None,
               maximum: float | None = None) -> float | int | None:  # fmt: skip
        ok = isinstance(v, int) and not isinstance(v, bool) or (not integer and isinstance(v, float))
        if not ok:
            self.err(where, f"must be {'an integer' if integer else 'a number'}, not {_kind(v)}")
            return None
        if isinstance(v, float) and not math.isfinite(v):
            self.err(where, "must be finite")
            return None
        if minimum is not None and v < minimum:
            self.err(where, f"must be >= {minimum:g}, not {v}")
            return None
        if maximum is not None and v > maximum:
            self.err(where, f"must be <= {maximum:g}, not {v}")
            return None
        return v

    def string(self, v: Any, where: str, choices: tuple[str, ...] | None = None) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(where, f"must be a non-empty string, not {_kind(v)}")
            return None
        if choices is not None and v not in choices:
            self.err(where, f"must be one of {', '.join(choices)}, not {v!r}")
            return None
        return v

    def guessed(self, d: dict, where: str) -> str | None:
        g = d.get("guessed")
        if g is None:
            return None
        if not isinstance(g, str):
            self.err(_join(where, "guessed"), f"must be a string (why it was guessed), not {_kind(g)}")
            return None
        self.warnings.append(f"{where}: guessed ({g}); review it, then remove \"guessed\"")
        return g

    # -- sections
    def contract(self, data: Any) -> Contract | None:
        top = self.obj(
            data, "",
            ("format", "version", "model", "dims", "inputs", "outputs", "profiles", "state", "schedule",
             "tolerances", "masks", "invariants", "trend", "acceptance"),
            ("format", "version", "inputs", "outputs"),
        )  # fmt: skip
        if top is None:
            return None
        if "format" in top and top["format"] != FORMAT:
            self.err("format", f"must be {FORMAT!r}, not {top['format']!r} (is this a contract file?)")
        if "version" in top and top["version"] != VERSION:
            self.err("version", f"unsupported version {top['version']!r}; this trt-tui reads version {VERSION}")
        model = top.get("model")
        if model is not None and not isinstance(model, str):
            self.err("model", f"must be a string, not {_kind(model)}")
            model = None
        dims = self.dims(top.get("dims", {}))
        inputs = self.tensors(top.get("inputs"), "inputs", with_feed=True) if "inputs" in top else {}
        outputs = self.tensors(top.get("outputs"), "outputs", with_feed=False) if "outputs" in top else {}
        profiles = self.profiles(top.get("profiles", []), inputs)
        state = self.state(top.get("state", []), inputs, outputs)
        schedule = self.schedule(top.get("schedule", {}), inputs, dims, profiles)
        default_tol, tols = self.tolerances(top.get("tolerances", {}), outputs)
        masks = self.masks(top.get("masks", {}), outputs)
        invariants = self.invariants(top.get("invariants", []), outputs)
        trend = self.trend(top.get("trend", {}), outputs)
        min_pass = 1.0
        acc = self.obj(top.get("acceptance", {}), "acceptance", ("min_pass_rate", "outputs"))
        if acc is not None and "min_pass_rate" in acc:
            v = self.number(acc["min_pass_rate"], "acceptance.min_pass_rate", minimum=0.0, maximum=1.0)
            min_pass = float(v) if v is not None else 1.0
        criteria = self.criteria(acc.get("outputs", {}) if acc is not None else {}, outputs, trend.metric)
        self.cross_checks(inputs, outputs, state, dims, schedule)
        if self.problems:
            return None
        return Contract(
            inputs=inputs, outputs=outputs, dims=dims, profiles=profiles, state=state, schedule=schedule,
            default_tolerance=default_tol, tolerances=tols, masks=masks, invariants=invariants, trend=trend,
            min_pass_rate=min_pass, criteria=criteria, model=model, path=self.path, warnings=tuple(self.warnings),
        )  # fmt: skip

    def dims(self, v: Any) -> dict[str, int]:
        d = self.obj(v, "dims")
        out: dict[str, int] = {}
        for name, value in (d or {}).items():
            n = self.number(value, f"dims.{name}", integer=True, minimum=1)
            if n is not None:
                out[name] = int(n)
        return out

    def tensors(self, v: Any, where: str, *, with_feed: bool) -> dict[str, TensorSpec]:
        d = self.obj(v, where)
        if d is None:
            return {}
        if not d:
            self.err(where, "must name at least one tensor")
        out = {}
        allowed = ("dtype", "shape", "feed", "guessed") if with_feed else ("dtype", "shape")
        for name, spec in d.items():
            w = f"{where}.{name}"
            s = self.obj(spec, w, allowed, ("dtype", "shape"))
            if s is None:
                continue
            dtype = self.string(s.get("dtype"), f"{w}.dtype", DTYPES) if "dtype" in s else None
            shape = self.shape(s.get("shape"), f"{w}.shape") if "shape" in s else None
            feed = self.feed(s["feed"], f"{w}.feed") if with_feed and "feed" in s else None
            if dtype is not None and shape is not None:
                out[name] = TensorSpec(name, dtype, shape, feed)
        return out

    def shape(self, v: Any, where: str) -> tuple[Dim, ...] | None:
        if not isinstance(v, list):
            self.err(where, f"must be a list of dims (integers or names), not {_kind(v)}")
            return None
        dims: list[Dim] = []
        for i, d in enumerate(v):
            if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and d < 0) or d == "":
                self.err(f"{where}[{i}]", f"must be a non-negative integer or a dim name, not {d!r}")
                return None
            dims.append(d)
        return tuple(dims)

    def feed(self, v: Any, where: str) -> Feed | None:
        d = self.obj(v, where, ("kind", "low", "high", "mean", "std", "value", "guessed"), ("kind",))
        if d is None or "kind" not in d:
            return None
        kind = self.string(d["kind"], f"{where}.kind", FEED_KINDS)
        nums = {}
        for key in ("low", "high", "mean", "std", "value"):
            if key in d:
                nums[key] = self.number(d[key], f"{where}.{key}", minimum=0.0 if key == "std" else None)
        if kind == "random" and "low" in d and "high" in d and None not in (nums["low"], nums["high"]):
            if nums["low"] >= nums["high"]:
                self.err(where, f"low ({nums['low']}) must be below high ({nums['high']})")
        if kind == "constant" and "value" not in d:
            self.err(f"{where}.value", "is required for a constant feed")
        if kind is None:
            return None
        return Feed(kind, **{k: float(x) for k, x in nums.items() if x is not None}, guessed=self.guessed(d, where))

    def profiles(self, v: Any, inputs: dict[str, TensorSpec]) -> tuple[Profile, ...]:
        if not isinstance(v, list):
            self.err("profiles", f"must be a list, not {_kind(v)}")
            return ()
        out = []
        for i, item in enumerate(v):
            w = f"profiles[{i}]"
            d = self.obj(item, w, ("name", "shapes"), ("name", "shapes"))
            if d is None or "shapes" not in d:
                continue
            name = self.string(d.get("name"), f"{w}.name") if "name" in d else None
            shapes_d = self.obj(d["shapes"], f"{w}.shapes")
            shapes = {}
            for inp, mom in (shapes_d or {}).items():
                ws = f"{w}.shapes.{inp}"
                if inputs and inp not in inputs:
                    self.err(ws, f"is not an input of the contract ({_names(inputs)})")
                m = self.obj(mom, ws, ("min", "opt", "max"), ("min", "opt", "max"))
                if m is None or not all(k in m for k in ("min", "opt", "max")):
                    continue
                triple = [self.shape(m[k], f"{ws}.{k}") for k in ("min", "opt", "max")]
                if any(t is None for t in triple):
                    continue
                if any(not isinstance(x, int) for t in triple for x in t):
                    self.err(ws, "profile shapes must be integers")
                    continue
                lo, opt, hi = triple
                if not len(lo) == len(opt) == len(hi):
                    self.err(ws, "min, opt and max must have the same rank")
                    continue
                if any(not a <= b <= c for a, b, c in zip(lo, opt, hi)):
                    self.err(ws, f"needs min <= opt <= max on every axis, got {list(lo)} / {list(opt)} / {list(hi)}")
                    continue
                spec = inputs.get(inp)
                if spec is not None:
                    if len(spec.shape) != len(lo):
                        self.err(ws, f"has rank {len(lo)} but the input has rank {len(spec.shape)}")
                        continue
                    for axis, dim in enumerate(spec.shape):
                        if isinstance(dim, int) and not lo[axis] == hi[axis] == dim:
                            self.err(ws, f"axis {axis} is fixed at {dim} in the input but the profile says {lo[axis]}..{hi[axis]}")
                shapes[inp] = (tuple(lo), tuple(opt), tuple(hi))
            if name is not None:
                out.append(Profile(name, shapes))
        return tuple(out)

    def state(self, v: Any, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec]) -> tuple[StatePair, ...]:
        if not isinstance(v, list):
            self.err("state", f"must be a list of {{output, input, init}} pairs, not {_kind(v)}")
            return ()
        out = []
        seen_in: dict[str, int] = {}
        seen_out: dict[str, int] = {}
        for i, item in enumerate(v):
            w = f"state[{i}]"
            d = self.obj(item, w, ("output", "input", "init", "guessed"), ("output", "input"))
            if d is None or "output" not in d or "input" not in d:
                continue
            o = self.string(d["output"], f"{w}.output")
            n = self.string(d["input"], f"{w}.input")
            if o is None or n is None:
                continue
            ok = True
            if o not in outputs:
                self.err(f"{w}.output", f"{o!r} is not an output of the contract ({_names(outputs)})")
                ok = False
            if n not in inputs:
                self.err(f"{w}.input", f"{n!r} is not an input of the contract ({_names(inputs)})")
                ok = False
            if n in seen_in:
                self.err(f"{w}.input", f"{n!r} is already fed by state[{seen_in[n]}]")
            if o in seen_out:
                self.err(f"{w}.output", f"{o!r} already feeds state[{seen_out[o]}]")
            seen_in.setdefault(n, i)
            seen_out.setdefault(o, i)
            if ok:
                si, so = inputs[n], outputs[o]
                if si.dtype != so.dtype:
                    self.err(w, f"dtype differs: output {o} is {so.dtype}, input {n} is {si.dtype}")
                elif not _shapes_compatible(si.shape, so.shape):
                    self.err(w, f"shape differs: output {o} is {list(so.shape)}, input {n} is {list(si.shape)}")
            init = self.init(d.get("init", {"kind": "zeros"}), f"{w}.init")
            if init is not None:
                out.append(StatePair(o, n, init, self.guessed(d, w)))
        return tuple(out)

    def init(self, v: Any, where: str) -> Init | None:
        d = self.obj(v, where, ("kind", "value", "path"), ("kind",))
        if d is None or "kind" not in d:
            return None
        kind = self.string(d["kind"], f"{where}.kind", INIT_KINDS)
        if kind == "constant":
            value = self.number(d.get("value"), f"{where}.value") if "value" in d else None
            if "value" not in d:
                self.err(f"{where}.value", "is required for a constant init")
            return Init(kind, value=float(value or 0.0))
        if kind == "file":
            if "path" not in d:
                self.err(f"{where}.path", "is required for a file init (a .npy file)")
                return None
            rel = self.string(d["path"], f"{where}.path")
            if rel is None:
                return None
            p = Path(rel) if Path(rel).is_absolute() or self.path is None else self.path.parent / rel
            if not p.is_file():
                self.err(f"{where}.path", f"no such file: {p}")
            return Init(kind, path=p)
        return Init(kind) if kind else None

    def schedule(self, v: Any, inputs: dict[str, TensorSpec], dims: dict[str, int],
                 profiles: tuple[Profile, ...]) -> Schedule:  # fmt: skip
        d = self.obj(v, "schedule", ("chunks", "frames", "time_axes", "seed"))
        if d is None:
            return Schedule()
        chunks = self.number(d.get("chunks", 50), "schedule.chunks", integer=True, minimum=1)
        seed = self.number(d.get("seed", 0), "schedule.seed", integer=True, minimum=0)
        frames: tuple[int, ...] = ()
        if "frames" in d:
            f = d["frames"]
            f = [f] if isinstance(f, int) and not isinstance(f, bool) else f
            if not isinstance(f, list) or not f:
                self.err("schedule.frames", f"must be a non-empty list of frame counts (the last repeats), not {_kind(f)}")
            else:
                vals = [self.number(x, f"schedule.frames[{i}]", integer=True, minimum=1) for i, x in enumerate(f)]
                frames = tuple(int(x) for x in vals if x is not None)
        axes: dict[str, int] = {}
        ta = self.obj(d.get("time_axes", {}), "schedule.time_axes")
        for name, axis in (ta or {}).items():
            w = f"schedule.time_axes.{name}"
            a = self.number(axis, w, integer=True, minimum=0)
            if a is None:
                continue
            spec = inputs.get(name)
            if inputs and spec is None:
                self.err(w, f"is not an input of the contract ({_names(inputs)})")
            elif spec is not None and a >= len(spec.shape):
                self.err(w, f"axis {a} is out of range for {name} (rank {len(spec.shape)})")
            elif spec is not None and frames:
                dim = spec.shape[a]
                if isinstance(dim, int) and any(fr != dim for fr in frames):
                    self.err(w, f"axis {a} of {name} is fixed at {dim} frames but the schedule asks for {sorted(set(frames))}")
                if isinstance(dim, str) and dim in dims:
                    self.err(f"dims.{dim}", f"is the time axis of {name}; the schedule sets it, not dims")
            axes[name] = int(a)
        if frames and not axes:
            self.err("schedule.time_axes", "is required with schedule.frames (which axis of which input holds the frames)")
        # every scheduled frame count must fit one of the profiles that covers the time axis, if any does
        for name, a in axes.items():
            ranges = [(p.name, p.shapes[name][0][a], p.shapes[name][2][a]) for p in profiles if name in p.shapes
                      and a < len(p.shapes[name][0])]  # fmt: skip
            if not ranges:
                continue
            for i, fr in enumerate(frames):
                if not any(lo <= fr <= hi for _, lo, hi in ranges):
                    spans = ", ".join(f"{n} {lo}..{hi}" for n, lo, hi in ranges)
                    self.err(f"schedule.frames[{i}]", f"{fr} frames fit no profile for {name} axis {a} ({spans})")
        return Schedule(int(chunks or 50), frames, axes, int(seed or 0))

    def tolerance(self, v: Any, where: str, base: Tolerance) -> Tolerance | None:
        d = self.obj(v, where, ("atol", "rtol", "stat", "quantile"))
        if d is None:
            return None
        atol = self.number(d.get("atol", base.atol), f"{where}.atol", minimum=0.0)
        rtol = self.number(d.get("rtol", base.rtol), f"{where}.rtol", minimum=0.0)
        stat, quantile = base.stat, base.quantile
        if "stat" in d:
            s = d["stat"]
            q = _percentile_stat(s)
            if q is not None:
                stat, quantile = "quantile", q
            elif isinstance(s, str) and s in ERROR_STATS:
                stat = s
            else:
                self.err(f"{where}.stat", f"must be one of {', '.join(ERROR_STATS)} or a percentile like p95, not {s!r}")
                return None
        if "quantile" in d:
            q = self.number(d["quantile"], f"{where}.quantile", minimum=0.0, maximum=1.0)
            if q is None:
                return None
            quantile = float(q)
        if atol is None or rtol is None:
            return None
        return Tolerance(float(atol), float(rtol), stat, quantile)

    def tolerances(self, v: Any, outputs: dict[str, TensorSpec]) -> tuple[Tolerance, dict[str, Tolerance]]:
        default = Contract.__dataclass_fields__["default_tolerance"].default
        d = self.obj(v, "tolerances", ("default", "outputs"))
        if d is None:
            return default, {}
        if "default" in d:
            default = self.tolerance(d["default"], "tolerances.default", default) or default
        per: dict[str, Tolerance] = {}
        o = self.obj(d.get("outputs", {}), "tolerances.outputs")
        for name, tv in (o or {}).items():
            w = f"tolerances.outputs.{name}"
            if outputs and name not in outputs:
                self.err(w, f"is not an output of the contract ({_names(outputs)})")
                continue
            t = self.tolerance(tv, w, default)
            if t is not None:
                per[name] = t
        return default, per

    def masks(self, v: Any, outputs: dict[str, TensorSpec]) -> dict[str, Mask]:
        d = self.obj(v, "masks")
        out = {}
        for name, mv in (d or {}).items():
            w = f"masks.{name}"
            spec = outputs.get(name)
            if outputs and spec is None:
                self.err(w, f"is not an output of the contract ({_names(outputs)})")
            m = self.obj(mv, w, ("axis", "length", "keep", "batch_axis", "guessed"), ("axis", "length"))
            if m is None or "axis" not in m or "length" not in m:
                continue
            self.guessed(m, w)
            axis = self.number(m["axis"], f"{w}.axis", integer=True, minimum=0)
            keep = self.string(m.get("keep", "first"), f"{w}.keep", ("first", "last"))
            batch_axis = None
            if "batch_axis" in m:
                batch_axis = self.number(m["batch_axis"], f"{w}.batch_axis", integer=True, minimum=0)
            rank = len(spec.shape) if spec is not None else None
            for key, a in (("axis", axis), ("batch_axis", batch_axis)):
                if a is not None and rank is not None and a >= rank:
                    self.err(f"{w}.{key}", f"axis {a} is out of range for {name} (rank {rank})")
            if axis is not None and batch_axis is not None and axis == batch_axis:
                self.err(f"{w}.batch_axis", "must differ from axis")
            ln = self.obj(m["length"], f"{w}.length", ("output", "value"))
            l_out = l_val = None
            if ln is not None:
                if ("output" in ln) == ("value" in ln):
                    self.err(f"{w}.length", "needs exactly one of output (another output holding the length) or value")
                elif "output" in ln:
                    l_out = self.string(ln["output"], f"{w}.length.output")
                    ls = outputs.get(l_out) if l_out else None
                    if l_out and outputs and ls is None:
                        self.err(f"{w}.length.output", f"{l_out!r} is not an output of the contract ({_names(outputs)})")
                    elif ls is not None and not ls.dtype.startswith(("int", "uint")):
                        self.err(f"{w}.length.output", f"{l_out} is {ls.dtype}; a length must be an integer output")
                else:
                    val = self.number(ln["value"], f"{w}.length.value", integer=True, minimum=0)
                    l_val = None if val is None else int(val)
            if axis is not None and keep is not None and (l_out or l_val is not None):
                out[name] = Mask(name, int(axis), l_out, l_val, keep, None if batch_axis is None else int(batch_axis))
        return out

    def invariants(self, v: Any, outputs: dict[str, TensorSpec]) -> tuple[Invariant, ...]:
        if not isinstance(v, list):
            self.err("invariants", f"must be a list, not {_kind(v)}")
            return ()
        out = []
        for i, item in enumerate(v):
            w = f"invariants[{i}]"
            d = self.obj(item, w, ("output", "check", "value", "min", "max", "guessed"), ("output", "check"))
            if d is None or "output" not in d or "check" not in d:
                continue
            name = self.string(d["output"], f"{w}.output")
            if name and outputs and name not in outputs:
                self.err(f"{w}.output", f"{name!r} is not an output of the contract ({_names(outputs)})")
            check = self.string(d["check"], f"{w}.check", CHECKS)
            nums = {k: self.number(d[k], f"{w}.{k}") for k in ("value", "min", "max") if k in d}
            if check == "equals" and "value" not in d:
                self.err(f"{w}.value", "is required for an equals check")
            if check == "range":
                if "min" not in d and "max" not in d:
                    self.err(w, "a range check needs min, max or both")
                elif nums.get("min") is not None and nums.get("max") is not None and nums["min"] > nums["max"]:
                    self.err(w, f"min ({nums['min']}) is above max ({nums['max']})")
            extra = {"equals": ("min", "max"), "monotonic": ("value", "min", "max"), "range": ("value",)}.get(check or "", ())
            for k in extra:
                if k in d:
                    self.err(f"{w}.{k}", f"does not apply to a {check} check")
            if name and check:
                out.append(Invariant(name, check, nums.get("value"), nums.get("min"), nums.get("max"), self.guessed(d, w)))
        return tuple(out)

    def trend(self, v: Any, outputs: dict[str, TensorSpec]) -> Trend:
        d = self.obj(v, "trend", ("metric", "outputs", "alpha", "min_growth", "fail_on_growth"))
        if d is None:
            return Trend()
        metric = self.string(d.get("metric", "max_abs"), "trend.metric", TREND_METRICS) or "max_abs"
        names: list[str] = []
        if "outputs" in d:
            if not isinstance(d["outputs"], list):
                self.err("trend.outputs", f"must be a list of output names, not {_kind(d['outputs'])}")
            else:
                for i, n in enumerate(d["outputs"]):
                    s = self.string(n, f"trend.outputs[{i}]")
                    if s and outputs and s not in outputs:
                        self.err(f"trend.outputs[{i}]", f"{s!r} is not an output of the contract ({_names(outputs)})")
                    elif s:
                        names.append(s)
        alpha = self.number(d.get("alpha", 0.01), "trend.alpha", minimum=0.0, maximum=1.0)
        growth = self.number(d.get("min_growth", 0.5), "trend.min_growth", minimum=0.0)
        fail = d.get("fail_on_growth", True)
        if not isinstance(fail, bool):
            self.err("trend.fail_on_growth", f"must be true or false, not {_kind(fail)}")
            fail = True
        return Trend(metric, tuple(names), float(0.01 if alpha is None else alpha),
                     float(0.5 if growth is None else growth), fail)  # fmt: skip

    def criteria(self, v: Any, outputs: dict[str, TensorSpec], default_metric: str) -> tuple[Criterion, ...]:
        d = self.obj(v, "acceptance.outputs")
        out = []
        for name, cv in (d or {}).items():
            w = f"acceptance.outputs.{name}"
            if outputs and name not in outputs:
                self.err(w, f"is not an output of the contract ({_names(outputs)})")
                continue
            c = self.obj(cv, w, ("metric", "percentiles", "pass_rate", "warn_above", "fail_above"))
            if c is None:
                continue
            metric = self.string(c.get("metric", default_metric), f"{w}.metric", TREND_METRICS) or default_metric
            pct: list[tuple[float, float]] = []
            pd = self.obj(c.get("percentiles", {}), f"{w}.percentiles")
            for key, limit in (pd or {}).items():
                q = _percentile_stat(key)
                if q is None:
                    self.err(f"{w}.percentiles.{key}", "must be a percentile such as p95 or p100")
                    continue
                lim = self.number(limit, f"{w}.percentiles.{key}", minimum=0.0)
                if lim is not None:
                    pct.append((q, float(lim)))
            within = min_rate = None
            if "pass_rate" in c:
                pr = self.obj(c["pass_rate"], f"{w}.pass_rate", ("within", "min"), ("within", "min"))
                if pr is not None and "within" in pr and "min" in pr:
                    within = self.number(pr["within"], f"{w}.pass_rate.within", minimum=0.0)
                    min_rate = self.number(pr["min"], f"{w}.pass_rate.min", minimum=0.0, maximum=1.0)
            levels = {k: self.number(c[k], f"{w}.{k}", minimum=0.0) for k in ("warn_above", "fail_above") if k in c}
            if levels.get("warn_above") is not None and levels.get("fail_above") is not None and levels["warn_above"] > levels["fail_above"]:
                self.err(w, f"warn_above ({levels['warn_above']}) is above fail_above ({levels['fail_above']})")
            if not (pct or within is not None or levels):
                self.err(w, "needs percentiles, pass_rate, warn_above or fail_above")
                continue
            out.append(Criterion(
                name, metric, tuple(pct), None if within is None else float(within), None if min_rate is None else float(min_rate),
                None if levels.get("warn_above") is None else float(levels["warn_above"]),
                None if levels.get("fail_above") is None else float(levels["fail_above"]),
            ))  # fmt: skip
        return tuple(out)

    def cross_checks(self, inputs, outputs, state, dims, schedule) -> None:
        fed = {p.input for p in state}
        for name, spec in inputs.items():
            if name in fed:
                if spec.feed is not None:
                    self.err(f"inputs.{name}.feed", "this input is a state (fed from the previous chunk); drop its feed")
            elif spec.feed is None:
                self.warnings.append(f"inputs.{name}: no feed; it must come from --inputs")
            if spec.feed is not None and spec.feed.kind == "frames" and not spec.dtype.startswith(("int", "uint")):
                self.err(f"inputs.{name}.feed", f"a frames feed is a length and needs an integer input, not {spec.dtype}")
        axes = schedule.time_axes
        for name, spec in inputs.items():
            for axis, dim in enumerate(spec.shape):
                on_time_axis = axes.get(name) == axis and bool(schedule.frames)
                if isinstance(dim, str) and dim not in dims and not on_time_axis:
                    self.err(f"inputs.{name}.shape[{axis}]", f"dim {dim!r} has no value: add it to dims or schedule.time_axes")


def _percentile_stat(s: Any) -> float | None:
    if isinstance(s, str) and len(s) > 1 and s[0] == "p":
        try:
            q = float(s[1:]) / 100.0
        except ValueError:
            return None
        return q if 0.0 <= q <= 1.0 else None
    return None


def _shapes_compatible(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> bool:
    """Same rank; fixed dims equal; a named dim matches a named dim of the same name or any fixed one."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int) and x != y:
            return False
        if isinstance(x, str) and isinstance(y, str) and x != y:
            return False
    return True


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the string {v!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _names(d: dict) -> str:
    names = list(d)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "none"

"""Contracts and models: a first contract guessed from a model, and a contract checked against one.

`contract_from_model(index)` writes a starting point: inputs/outputs copied from the model, state pairs
guessed from names (`X_next`, `X_out`, `next_X`, `new_X`, `present.*` -> `X`, `past_key_values.*`, `*_out` ->
`*_in`) with matching dtype and shape, then from shape alone where it is unambiguous; feeds, the time axis
and a cache-length invariant guessed too. Every guess carries `"guessed": "why"` so that `contract
validate` keeps warning until a person has reviewed it.
"""

from __future__ import annotations

import re

from trt_tui.core.graph import GraphIndex, TensorInfo
from trt_tui.core.streaming.contract import FORMAT, VERSION, Contract, _shapes_compatible

_SUFFIXES = ("_next", "_out", "_new", "_output", "_updated", ".next", ".out", "Next", "Out")
_PREFIXES = ("next_", "new_", "updated_", "out_")
_SWAPS = (("present", "past_key_values"), ("present", "past"), ("_out", "_in"), ("output", "input"), ("Out", "In"))
_BATCH_NAMES = re.compile(r"^(b|batch|batch_size|n|bs)$", re.IGNORECASE)


def input_candidates(output: str) -> list[str]:
    """Input names that an output named `output` may feed next chunk, most likely first."""
    names = []
    for suf in _SUFFIXES:
        if output.endswith(suf) and len(output) > len(suf):
            names.append(output[: -len(suf)])
    for pre in _PREFIXES:
        if output.startswith(pre) and len(output) > len(pre):
            names.append(output[len(pre) :])
    for a, b in _SWAPS:
        if a in output:
            names.append(output.replace(a, b, 1))
            if a.startswith("_") and output.endswith(a):
                names.append(output[: -len(a)] + b)
    return list(dict.fromkeys(names))


def guess_state_pairs(index: GraphIndex) -> list[tuple[str, str, str]]:
    """(output, input, why) for every state pair guessed from names, then from unambiguous shapes."""
    inputs = {t.name: t for t in index.inputs}
    pairs: list[tuple[str, str, str]] = []
    used_in: set[str] = set()
    used_out: set[str] = set()
    for out in index.outputs:
        for cand in input_candidates(out.name):
            inp = inputs.get(cand)
            if inp is not None and cand not in used_in and _same_type(inp, out):
                pairs.append((out.name, cand, f"name: {out.name} -> {cand}, same dtype and shape"))
                used_in.add(cand)
                used_out.add(out.name)
                break
    # shape alone: only where exactly one free output and one free input share dtype and full shape
    free_in = [t for t in index.inputs if t.name not in used_in and _rank(t) >= 2]
    free_out = [t for t in index.outputs if t.name not in used_out and _rank(t) >= 2]
    for out in free_out:
        ins = [t for t in free_in if _same_type(t, out, exact=True)]
        outs = [t for t in free_out if _same_type(t, ins[0], exact=True)] if len(ins) == 1 else []
        if len(ins) == 1 and len(outs) == 1:
            pairs.append((out.name, ins[0].name, "shape only: the one output and input of this dtype and shape; check it"))
            used_in.add(ins[0].name)
            free_in.remove(ins[0])
    return pairs


def contract_from_model(index: GraphIndex, model_name: str | None = None) -> dict:
    """A contract document (a dict ready for JSON) guessed from the model; guesses carry "guessed"."""
    pairs = guess_state_pairs(index)
    state_inputs = {i for _, i, _ in pairs}
    review: list[str] = []
    stream = next(
        (t for t in index.inputs if t.name not in state_inputs and t.dtype and t.dtype.startswith("float") and _rank(t) >= 2),
        None,
    )
    time_axis, frames = None, None
    if stream is not None and stream.shape:
        named = [i for i, d in enumerate(stream.shape) if isinstance(d, str) and not _BATCH_NAMES.match(d)]
        time_axis = named[-1] if named else len(stream.shape) - 1
        dim = stream.shape[time_axis]
        frames = dim if isinstance(dim, int) else 16
        why = f"time axis {time_axis} of {stream.name}" + ("" if isinstance(dim, int) else f" ({dim}); 16 frames is a placeholder")
        review.append(f"schedule: {why}; set frames to your chunk sizes (e.g. [592, 584])")
    time_dim = stream.shape[time_axis] if stream is not None and stream.shape and time_axis is not None else None

    dims: dict[str, int] = {}
    for t in list(index.inputs) + list(index.outputs):
        for d in _shape(t):
            if isinstance(d, str) and d != time_dim and d not in dims:
                dims[d] = 1
    if dims:
        review.append(f"dims: {', '.join(dims)} set to 1; change them to the shapes you run")

    inputs = {}
    for t in index.inputs:
        spec: dict = {"dtype": t.dtype or "float32", "shape": _shape(t)}
        if t.name not in state_inputs:
            spec["feed"] = _guess_feed(t)
        inputs[t.name] = spec
    outputs = {t.name: {"dtype": t.dtype or "float32", "shape": _shape(t)} for t in index.outputs}

    state = [{"output": o, "input": i, "init": {"kind": "zeros"}, "guessed": why} for o, i, why in pairs]
    invariants = []
    out_types = {t.name: t for t in index.outputs}
    for o, _, _ in pairs:
        t = out_types[o]
        if t.dtype and t.dtype.startswith("int") and "len" in o.lower():
            invariants.append({"output": o, "check": "monotonic", "guessed": "an integer state named like a length"})
    if not pairs:
        review.append("state: no state pair found from names or shapes; add {output, input} pairs by hand")
    review.append("masks: none guessed; compare caches only on their valid region (see contracts/README.md)")

    doc: dict = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_name or index.path.name,
        "_review": review,
        "dims": dims,
        "inputs": inputs,
        "outputs": outputs,
        "state": state,
        "schedule": {"chunks": 50, **({"frames": [frames], "time_axes": {stream.name: time_axis}} if stream is not None else {}), "seed": 0},
        "tolerances": {"default": {"atol": 1e-3, "rtol": 1e-3, "stat": "p99"}},
        "masks": {},
        "invariants": invariants,
        "trend": {"metric": "max_abs", "alpha": 0.01, "min_growth": 0.5, "fail_on_growth": True},
        "acceptance": {"min_pass_rate": 1.0},
    }
    return doc


def check_against_model(contract: Contract, index: GraphIndex) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a contract against the model it is meant for."""
    problems: list[str] = []
    warnings: list[str] = []
    model_in = {t.name: t for t in index.inputs}
    model_out = {t.name: t for t in index.outputs}
    for name in model_in:
        if name not in contract.inputs:
            problems.append(f"inputs: the model input {name!r} is missing (every input must be fed)")
    for kind, specs, model in (("inputs", contract.inputs, model_in), ("outputs", contract.outputs, model_out)):
        for name, spec in specs.items():
            t = model.get(name)
            if t is None:
                problems.append(f"{kind}.{name}: the model has no {kind[:-1]} named {name!r} ({', '.join(model) or 'none'})")
                continue
            if t.dtype and t.dtype != spec.dtype:
                problems.append(f"{kind}.{name}.dtype: the model says {t.dtype}, the contract {spec.dtype}")
            if t.shape is None:
                continue
            if len(t.shape) != len(spec.shape):
                problems.append(f"{kind}.{name}.shape: the model has rank {len(t.shape)}, the contract {len(spec.shape)}")
                continue
            for axis, (m, c) in enumerate(zip(t.shape, spec.shape)):
                c_val = contract.dims.get(c, c) if isinstance(c, str) else c
                if isinstance(m, int) and isinstance(c_val, int) and m != c_val:
                    problems.append(f"{kind}.{name}.shape[{axis}]: the model fixes {m}, the contract says {c!r}" + (f" = {c_val}" if c != c_val else ""))
    for name in model_out:
        if name not in contract.outputs:
            warnings.append(f"outputs: the model output {name!r} is not in the contract and will not be compared")
    return problems, warnings


def _guess_feed(t: TensorInfo) -> dict:
    dtype = t.dtype or "float32"
    if dtype.startswith(("int", "uint")):
        if "len" in t.name.lower():
            return {"kind": "frames", "guessed": "an integer input named like a length: the frames of the chunk"}
        return {"kind": "constant", "value": 0, "guessed": "an integer input; 0 is a placeholder"}
    if dtype == "bool":
        return {"kind": "constant", "value": 1, "guessed": "a boolean input; true is a placeholder"}
    return {"kind": "random", "low": -1.0, "high": 1.0, "guessed": "uniform noise; use --inputs for real data"}


def _same_type(a: TensorInfo, b: TensorInfo, exact: bool = False) -> bool:
    if a.dtype != b.dtype or a.shape is None or b.shape is None:
        return False
    return tuple(a.shape) == tuple(b.shape) if exact else _shapes_compatible(tuple(a.shape), tuple(b.shape))


def _rank(t: TensorInfo) -> int:
    return len(t.shape) if t.shape is not None else 0


def _shape(t: TensorInfo) -> list:
    # an unknown dim gets a name of its own (set to 1 in dims) so that the contract stays valid
    return [d if d is not None else f"{t.name}_dim{axis}" for axis, d in enumerate(t.shape or ())]

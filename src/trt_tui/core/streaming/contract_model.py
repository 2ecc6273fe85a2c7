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

# Next-state outputs and the inputs they feed, by name. An output X_next/X_out/X_new/next_X/new_X/XN/Xn
# (hn, cn, stateN) feeds X; *_out feeds *_in; out_* feeds in_*; present* feeds past*; h_n/c_n feed h_0/c_0.
_SUFFIXES = ("_next", "_out", "_new", "_output", "_updated", ".next", ".out", "Next", "Out", "New")
_PREFIXES = ("next_", "new_", "updated_", "out_", "output_")
_SWAPS = (("present_key_values", "past_key_values"), ("present", "past_key_values"), ("present", "past"),
          ("_out", "_in"), ("output", "input"), ("Out", "In"), ("out_", "in_"), ("_n", "_0"), ("n", "0"),
          ("_next", "_prev"), ("_new", "_old"))  # fmt: skip
# an input named like its state with an input marker: X_in, in_X, X_prev, X0 (h0, c0)
_IN_SUFFIXES = ("_in", "_input", "_prev", "_0", "0", "In", "Prev", ".in")
_IN_PREFIXES = ("in_", "input_", "prev_", "past_", "last_")
_BATCH_NAMES = re.compile(r"^(b|batch|batch_size|n|bs)$", re.IGNORECASE)
# words that make a tensor look like recurrent state (shape-only pairing needs one on either side) ...
_STATE_WORDS = {"state", "states", "cache", "caches", "hidden", "h", "c", "h0", "c0", "hn", "cn", "hx", "cx", "memory",
                "mem", "past", "prev", "previous", "present", "ctx", "context", "carry", "rnn", "lstm", "gru", "kv",
                "buffer", "buf", "history", "hist"}  # fmt: skip
# ... and words of the main signal, which is never paired by shape alone (an enhancer's audio output has the
# shape of its audio input: feeding it back checks nothing)
_SIGNAL_WORDS = {"audio", "signal", "input", "inputs", "x", "features", "feats", "feat", "mel", "spec", "spectrogram",
                 "wav", "waveform", "pcm", "samples", "speech", "image", "images", "pixel", "pixels", "chunk",
                 "enhanced", "output", "outputs", "y", "logits", "probs", "noisy", "clean", "mix", "mixture"}  # fmt: skip


def _words(name: str) -> set[str]:
    """Lower-case words of a tensor name: split on non-alphanumerics and camelCase (stateN -> state, n)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}


def looks_like_state(name: str) -> bool:
    return bool(_words(name) & _STATE_WORDS)


def looks_like_signal(name: str) -> bool:
    return bool(_words(name) & _SIGNAL_WORDS) and not looks_like_state(name)


def input_candidates(output: str) -> list[str]:
    """Input names that an output named `output` may feed next chunk, most likely first."""
    names = []
    for suf in _SUFFIXES:
        if output.endswith(suf) and len(output) > len(suf):
            names.append(output[: -len(suf)])
    for pre in _PREFIXES:
        if output.startswith(pre) and len(output) > len(pre):
            names.append(output[len(pre) :])
    # stateN -> state, hn -> h, cn -> c (a recurrent cell's "state at step n")
    if len(output) > 1 and output[-1] in "nN" and (output[-2].islower() or output[-2] in "_.") and (
        output[-1] == "N" or output[:-1].rstrip("_.").lower() in ("h", "c", "hidden", "cell", "state")
    ):  # fmt: skip
        names.append(output[:-1].rstrip("_."))
    for a, b in _SWAPS:
        if a in ("n", "_n"):
            if output.endswith(a) and output[: -len(a)].lower() in ("h", "c", "hidden", "cell", "state"):
                names.append(output[: -len(a)] + b)
            continue
        if a in output:
            names.append(output.replace(a, b, 1))
            if a.startswith("_") and output.endswith(a):
                names.append(output[: -len(a)] + b)
    # every bare name above may also be spelled with an input marker: X_in, in_X, X_prev, X0
    bare = list(names)
    for n in bare:
        names += [n + s for s in _IN_SUFFIXES] + [p + n for p in _IN_PREFIXES]
    return list(dict.fromkeys(n for n in names if n and n != output))


def guess_state_pairs(index: GraphIndex, review: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(output, input, why) for every state pair guessed from names, then from unambiguous shapes.

    Names come first. Shape alone pairs an output and an input only when one of them is named like state
    (cache, hidden, h/c, memory, ...) and the input is not the main signal: an audio output has the shape of
    the audio input, and feeding it back as the next input makes a contract that checks nothing. Name matches
    whose dtype or shape differ are not paired; they are listed in `review`.
    """
    review = review if review is not None else []
    inputs = {t.name: t for t in index.inputs}
    pairs: list[tuple[str, str, str]] = []
    used_in: set[str] = set()
    used_out: set[str] = set()
    for out in index.outputs:
        for cand in input_candidates(out.name):
            inp = inputs.get(cand)
            if inp is None or cand in used_in:
                continue
            if looks_like_signal(cand):
                review.append(f"state: {out.name} -> {cand} by name, but {cand} looks like the signal input; not paired")
                continue
            if _same_type(inp, out):
                pairs.append((out.name, cand, f"name: {out.name} -> {cand}, same dtype and shape"))
                used_in.add(cand)
                used_out.add(out.name)
                break
            review.append(f"state: the names say {out.name} -> {cand}, but dtype/shape differ "
                          f"({out.dtype} {_shape(out)} vs {inp.dtype} {_shape(inp)}); not paired")  # fmt: skip
    signal = main_signal(index, used_in)
    free_in = [t for t in index.inputs if t.name not in used_in and _rank(t) >= 2 and t is not signal
               and not looks_like_signal(t.name)]  # fmt: skip
    free_out = [t for t in index.outputs if t.name not in used_out and _rank(t) >= 2]
    for out in free_out:
        ins = [t for t in free_in if _same_type(t, out, exact=True)]
        outs = [t for t in free_out if _same_type(t, ins[0], exact=True)] if len(ins) == 1 else []
        if len(ins) == 1 and len(outs) == 1:
            if not (looks_like_state(ins[0].name) or looks_like_state(out.name)):
                review.append(f"state: {out.name} and {ins[0].name} share dtype and shape, but neither is named like "
                              "a state; not paired (pair them by hand if the output feeds that input)")  # fmt: skip
                continue
            pairs.append((out.name, ins[0].name, "shape only: the one output and input of this dtype and shape; check it"))
            used_in.add(ins[0].name)
            free_in.remove(ins[0])
    return pairs


def main_signal(index: GraphIndex, state_inputs: set[str] | frozenset[str] = frozenset()) -> TensorInfo | None:
    """The stream input: the first float input of rank >= 2 that is not a state (named like a signal first)."""
    floats = [t for t in index.inputs if t.name not in state_inputs and t.dtype and t.dtype.startswith(("float", "bfloat"))
              and _rank(t) >= 2]  # fmt: skip
    named = [t for t in floats if not looks_like_state(t.name)]
    return next(iter(named or floats), None)


def contract_from_model(index: GraphIndex, model_name: str | None = None) -> dict:
    """A contract document (a dict ready for JSON) guessed from the model; guesses carry "guessed"."""
    review: list[str] = []
    pairs = guess_state_pairs(index, review)
    state_inputs = {i for _, i, _ in pairs}
    stream = main_signal(index, state_inputs)
    time_axis, frames, time_dim = None, None, None
    time_axes: dict[str, int] = {}
    if stream is not None and stream.shape:
        shape = _shape(stream)
        named = [i for i, d in enumerate(stream.shape) if isinstance(d, str) and not _BATCH_NAMES.match(d)]
        unknown = [i for i, d in enumerate(stream.shape) if not isinstance(d, (int, str)) or (isinstance(d, int) and d < 0)]
        time_axis = named[-1] if named else (unknown[-1] if unknown else len(shape) - 1)
        dim = shape[time_axis]
        frames = dim if isinstance(dim, int) and dim > 0 else 16
        why = f"time axis {time_axis} of {stream.name}" + ("" if isinstance(dim, int) else f" ({dim}); 16 frames is a placeholder")
        review.append(f"schedule: {why}; set frames to your chunk sizes (e.g. [592, 584])")
        time_axes[stream.name] = time_axis
        if isinstance(dim, str):
            time_dim = dim
            # other inputs on the same named time dim are resized with it
            for t in index.inputs:
                if t is not stream and t.name not in state_inputs and dim in _shape(t):
                    time_axes[t.name] = _shape(t).index(dim)


    inputs = {}
    for t in index.inputs:
        spec: dict = {"dtype": t.dtype or "float32", "shape": _shape(t)}
        if t.name not in state_inputs:
            spec["feed"] = _guess_feed(t)
        inputs[t.name] = spec
    outputs = {t.name: {"dtype": t.dtype or "float32", "shape": _shape(t)} for t in index.outputs}
    for o, i, _ in pairs:  # a state output's unknown dims are its input's (the pair must stay compatible)
        outputs[o]["shape"] = [d_in if isinstance(d_out, str) and d_out.startswith(f"{_dim_name(o)}_dim") else d_out
                               for d_out, d_in in zip(outputs[o]["shape"], inputs[i]["shape"])]  # fmt: skip

    dims: dict[str, int] = {}
    for spec in list(inputs.values()) + list(outputs.values()):
        for d in spec["shape"]:
            if isinstance(d, str) and d != time_dim and d not in dims:
                dims[d] = 1
    if dims:
        review.append(f"dims: {', '.join(dims)} set to 1; change them to the shapes you run")
    state = [{"output": o, "input": i, "init": {"kind": "zeros"}, "guessed": why} for o, i, why in pairs]
    invariants = []
    out_types = {t.name: t for t in index.outputs}
    for o, _, _ in pairs:
        t = out_types[o]
        if t.dtype and t.dtype.startswith("int") and "len" in o.lower():
            invariants.append({"output": o, "check": "monotonic", "guessed": "an integer state named like a length"})
    if not pairs:
        review.append("state: no state pair found from names or shapes; add {output, input} pairs by hand")
    masks = _guess_masks(index, pairs, invariants, review)
    if not masks:
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
        "schedule": {"chunks": 50, **({"frames": [frames], "time_axes": time_axes} if time_axes else {}), "seed": 0},
        "tolerances": {"default": {"atol": 1e-3, "rtol": 1e-3, "stat": "p99"}},
        "masks": masks,
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
    if contract.inputs and not set(contract.inputs) & set(model_in):  # a contract of another model: say that first
        meant = f"written for {contract.model}, " if contract.model and contract.model != index.path.name else ""
        problems.append(f"model: {meant}no input in common with {index.path.name}; "
                        f"write one for it with `trt-tui contract init {index.path.name} -o FILE`")  # fmt: skip
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
                if isinstance(m, int) and m >= 0 and isinstance(c_val, int) and m != c_val:  # -1: unknown
                    problems.append(f"{kind}.{name}.shape[{axis}]: the model fixes {m}, the contract says {c!r}" + (f" = {c_val}" if c != c_val else ""))
    for name in model_out:
        if name not in contract.outputs:
            warnings.append(f"outputs: the model output {name!r} is not in the contract and will not be compared")
    return problems, warnings


# a length state named after its cache: cache_last_channel_len -> cache_last_channel, cache_len -> cache
_LENGTH_SUFFIXES = ("_len", "_length", "_lens", "_lengths", "Len", "Length", "len")


def _guess_masks(index: GraphIndex, pairs: list[tuple[str, str, str]], invariants: list[dict], review: list[str]) -> dict:
    """A mask for each cache state whose valid length is another (integer) state named after it, on the
    time axis the graph shows (see cache_layout); the length's range [0, cache size] as an invariant."""
    from trt_tui.core.cache_layout import batch_axis, cache_time_axis

    out_of = {i: o for o, i, _ in pairs}
    masks: dict = {}
    for len_out, len_in, _ in pairs:
        length = index.tensor(len_in)
        if length is None or not (length.dtype or "").startswith(("int", "uint")):
            continue
        cache_name = next((len_in[: -len(s)].rstrip("_.") for s in _LENGTH_SUFFIXES
                           if len_in.endswith(s) and len_in[: -len(s)].rstrip("_.") in out_of), None)  # fmt: skip
        cache = index.tensor(cache_name) if cache_name else None
        if cache is None or not cache.shape:
            continue
        axes = cache_time_axis(index, cache, length)
        if axes is None:
            review.append(f"masks: {out_of[cache_name]} holds {len_out} valid frames, but the graph does not show "
                          f"which axis of {cache_name} is time; add its mask by hand")  # fmt: skip
            continue
        mask: dict = {"axis": axes.time_axis, "length": {"output": len_out}, "keep": axes.keep}
        b = batch_axis(cache, length, axes.time_axis)
        if b is not None:
            mask["batch_axis"] = b
        masks[out_of[cache_name]] = {**mask, "guessed": f"{len_in} is the valid length of {cache_name}: {axes.why}"}
        size = cache.shape[axes.time_axis]
        if isinstance(size, int) and size > 0:
            invariants.append({"output": len_out, "check": "range", "min": 0, "max": size,
                               "guessed": f"a cache length stays within the {size} frames of {cache_name}"})  # fmt: skip
    return masks


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
    sa, sb = _known(a), _known(b)
    return sa == sb if exact else _shapes_compatible(sa, sb)


def _known(t: TensorInfo) -> tuple:
    """The shape with unknown dims (unnamed, negative) as None, which matches anything."""
    return tuple(d if isinstance(d, str) or (isinstance(d, int) and d >= 0) else None for d in t.shape or ())


def _rank(t: TensorInfo) -> int:
    return len(t.shape) if t.shape is not None else 0


def _shape(t: TensorInfo) -> list:
    # an unknown dim (unnamed, or a negative value such as -1 from some exporters) gets a name of its own
    # (set to 1 in dims) so that the contract stays valid
    return [d if isinstance(d, str) or (isinstance(d, int) and d >= 0) else f"{_dim_name(t.name)}_dim{axis}"
            for axis, d in enumerate(t.shape or ())]  # fmt: skip


def _dim_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "t"

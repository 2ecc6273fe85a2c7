"""The pin check: for every requested FP32 pin, the precision its engine layers really ran in.

Input is the engine-inspector JSON (TensorRT `IEngineInspector` with DETAILED verbosity, or trtexec
`--exportLayerInfo`). Engine layers are fused and renamed (`A + B`, `__myl_...`), so they are mapped back
to ONNX nodes through the `[ONNX Layer: <node>]` entries the ONNX parser puts in each layer's metadata
(several entries joined by \\x1E or \\x1F). Tensor data types are read from `"Format/Datatype": "Row major
linear FP16 format"`, and from split `"Format"` / `"Datatype"` keys when a file has them.

What the JSON looks like, and how sure we are (NVIDIA/TensorRT at the 11.1 OSS release, a892d222):
- The JSON is written by the closed-source IEngineInspector (samples/common/sampleReporting.cpp printLayerInfo
  only streams `getLayerInformation(..., kJSON)` into the --exportLayerInfo file): no open source defines it.
- "Format/Datatype", "Dimensions", "Name", "LayerType", "TacticName", "StreamId", "Metadata": read by
  consumers shipped with 11.1: tools/Polygraphy/polygraphy/backend/trt/util.py (reads elem["Format/Datatype"]
  unconditionally), .agents/skills/trt-perf-analysis/scripts/trt_perf/data.py (validates "Format/Datatype";
  also accepts "Format" and "Datatype" keys); samples/sampleEditableTimingCache/README.md (10.15) shows
  the one-line form `Format/Datatype: Float ... Metadata:`; trex (tools/experimental, removed in 11.1)
  replaced the \\x1E / \\x1F separators of Metadata. So 11.x most likely keeps "Format/Datatype"; the split
  keys are the perf-analysis validator's alternatives, seen in no file. UNCONFIRMED: the exact 11.x spelling
  (no 11.x engine JSON is published in the tree), and the "[ONNX Layer: ...]" entry text (written by the
  closed-source ONNX parser; seen in public issues, not in the tree).

Statuses per pin, each with a one-line `verdict` naming the layer: `fp32` (ran in FP32: every float tensor
of its layers is FP32), `mismatch` (a layer made only from this node ran in lower precision), `fused`
(fused into a layer of another precision: `A + B` vertical or `A || B` horizontal fusions, Myelin
regions `ForeignNode[first...last]` / `__myl_...`, whose boundary is lower precision), `unknown` (cannot be
told: no data types (not DETAILED, dynamic shapes), or inside a Myelin region whose boundary is FP32:
Myelin does not report what ran inside it), `not_found` (no engine layer came from it: folded away, or
fused without metadata and not named in any layer name).

Without metadata (LAYER_NAMES_ONLY engines, older versions) nodes are found in the layer names themselves:
`A + B`, `A || B`, and the first/last node of `ForeignNode[A...B]` (the nodes between cannot be told).
Per-layer timings (trtexec --exportProfile: `[{"count": N}, {"name", "timeMs", "averageMs", "medianMs",
"percentage"}, ...]`, CONFIRMED in samples/common/sampleReporting.cpp Profiler::exportJSONProfile, which
writes each layer name unescaped) are attached to the layers when given.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

_ONNX_LAYER = re.compile(r"\[ONNX Layer: (.*?)\](?=$|[\x1e\x1f\[\s])", re.S)
_DTYPE_KEYS = ("format/datatype", "datatype", "format")  # lower-cased tensor keys, in the order they are read
FLOAT_PRECISIONS = ("fp32", "fp16", "bf16", "fp8", "fp4")


def normalize_dtype(text: str) -> str | None:
    """Inspector data-type text -> 'fp32' | 'fp16' | 'bf16' | 'fp8' | 'int8' | 'int32' | 'int64' | 'bool' | None."""
    t = str(text).lower()
    if not t or "n/a" in t:
        return None
    for token, name in (
        ("bf16", "bf16"), ("bfloat16", "bf16"), ("fp8", "fp8"), ("e4m3", "fp8"), ("fp4", "fp4"),
        ("fp16", "fp16"), ("half", "fp16"), ("float16", "fp16"), ("int8", "int8"), ("int32", "int32"),
        ("int64", "int64"), ("bool", "bool"), ("fp32", "fp32"), ("float32", "fp32"), ("float", "fp32"),
    ):
        if token in t:
            return name
    return None


def tensor_dtype(tensor: Any) -> str | None:
    if isinstance(tensor, str):
        return normalize_dtype(tensor)
    if not isinstance(tensor, dict):
        return None
    keys = {key.lower(): value for key, value in tensor.items() if isinstance(value, str)}
    for key in _DTYPE_KEYS:  # "Format/Datatype" first: the spelling every known consumer reads
        found = normalize_dtype(keys[key]) if key in keys else None
        if found:
            return found
    return None


def onnx_nodes_of(layer: dict[str, Any]) -> list[str]:
    """ONNX node names a (possibly fused) engine layer came from, from its metadata (or its name)."""
    for source in (layer.get("Metadata"), layer.get("Name")):
        if isinstance(source, str) and "[ONNX Layer: " in source:
            return [m.strip() for m in _ONNX_LAYER.findall(source)]
    return []


_FOREIGN = re.compile(r"ForeignNode\[(.*?)(?:\.\.\.(.*?))?\]", re.S)


def is_myelin(layer: dict[str, Any]) -> bool:
    """A Myelin region: it hides what ran inside (`ForeignNode[...]`, `__myl_...`, LayerType Myelin)."""
    name = str(layer.get("Name", ""))
    return "ForeignNode[" in name or name.startswith("__myl") or str(layer.get("LayerType", "")).lower() == "myelin"


def nodes_in_name(name: str) -> list[str]:
    """ONNX node names readable in a fused layer name: `A + B`, `A || B`, `ForeignNode[A...B]` (ends only)."""
    out = []
    for part in re.split(r"\s+\+\s+|\s*\|\|\s*", name):
        part = part.strip()
        m = _FOREIGN.search(part)
        if m:
            out += [n.strip() for n in m.groups() if n and n.strip()]
        elif part:
            out.append(part)
    return out


def layer_timings(profile: Any) -> dict[str, dict[str, float]]:
    """trtexec --exportProfile JSON -> {layer name: {"average_ms", "median_ms", "time_ms", "percentage"}}."""
    rows = profile if isinstance(profile, list) else (profile.get("Layers") or profile.get("layers") or []) if isinstance(profile, dict) else []
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if not isinstance(row, dict) or "name" not in row:
            continue  # the leading {"count": N}
        keep = {}
        for key, ours in (("averageMs", "average_ms"), ("medianMs", "median_ms"), ("timeMs", "time_ms"), ("percentage", "percentage")):
            try:
                keep[ours] = float(row[key])
            except (KeyError, TypeError, ValueError):
                continue
        out[str(row["name"])] = keep
    return out


def pin_check(inspector: dict[str, Any] | list[Any], pins: list[str], timings: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    layers = inspector.get("Layers", []) if isinstance(inspector, dict) else list(inspector)
    detailed = any(isinstance(layer, dict) for layer in layers)
    if not detailed and layers:  # LAYER_NAMES_ONLY: a list of names; nodes can still be found in them
        layers = [{"Name": str(name), "_names_only": True} for name in layers]
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with_metadata = 0
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("LayerType") == "Reformat":
            continue  # reformats are conversions between layers, not where a node's math ran
        nodes = onnx_nodes_of(layer)
        with_metadata += bool(nodes)
        for node in dict.fromkeys(nodes):
            by_node[node].append(layer)
    if not with_metadata:
        # No metadata at all (older engines, LAYER_NAMES_ONLY): the parser's naming, read in fused names.
        for layer in layers:
            if isinstance(layer, dict) and layer.get("LayerType") != "Reformat":
                named = nodes_in_name(str(layer.get("Name", "")))
                for part in named:
                    by_node[part].append({**layer, "_nodes": len(named) + (1 if is_myelin(layer) else 0)})

    rows = []
    for node in pins:
        row = _check_one(node, by_node.get(node, []), detailed)
        for layer in row["layers"]:
            if timings and layer["name"] in timings:
                layer["timing"] = timings[layer["name"]]
        rows.append(row)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["status"]] += 1
    mismatches = [row["node"] for row in rows if row["status"] == "mismatch"]
    summary = f"{len(rows)} FP32 pin(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if rows else "no FP32 pins"
    if not detailed:
        summary += " (the inspector JSON has no per-layer detail: build with DETAILED profiling verbosity)"
    return {"detailed": detailed, "pins": rows, "mismatches": mismatches, "counts": dict(counts), "summary": summary,
            "timed": bool(timings)}


def _check_one(node: str, layers: list[dict[str, Any]], detailed: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"node": node, "layers": [], "precisions": []}
    if not layers:
        row["status"] = "not_found" if detailed else "unknown"
        row["verdict"] = ("cannot be told: no engine layer came from it (folded away, or fused without metadata)"
                          if detailed else "cannot be told: no per-layer detail (build with DETAILED profiling verbosity)")
        return row
    precisions: set[str] = set()
    low_alone = low_fused = hidden = False
    for layer in layers:
        tensors = _as_list(layer.get("Inputs")) + _as_list(layer.get("Outputs"))
        dtypes = sorted({d for d in map(tensor_dtype, tensors) if d in FLOAT_PRECISIONS})
        myelin = is_myelin(layer)
        fused = layer.get("_nodes", len(set(onnx_nodes_of(layer)))) > 1 or (myelin and layer.get("_nodes") is not None)
        low = any(d != "fp32" for d in dtypes)
        low_alone |= low and not fused
        low_fused |= low and fused
        hidden |= myelin and fused and not low  # an FP32 boundary says nothing about what ran inside
        precisions.update(dtypes)
        row["layers"].append({"name": layer.get("Name"), "type": layer.get("LayerType"), "precisions": dtypes,
                              "fused": fused, "myelin": myelin})
    row["precisions"] = sorted(precisions)
    names = ", ".join(repr(str(la["name"])) for la in row["layers"][:3])
    low_text = "/".join(p for p in row["precisions"] if p != "fp32")
    if low_alone:
        row["status"], row["verdict"] = "mismatch", f"did not run in FP32: ran in {low_text} in layer {names}"
    elif low_fused:
        row["status"], row["verdict"] = "fused", f"fused into a layer of another precision ({low_text}): {names}"
    elif hidden:
        row["status"] = "unknown"
        row["verdict"] = f"cannot be told: inside a Myelin region with an FP32 boundary, which hides what ran inside: {names}"
    elif precisions == {"fp32"}:
        row["status"], row["verdict"] = "fp32", f"ran in FP32 in layer {names}"
    else:
        row["status"] = "unknown"
        row["verdict"] = f"cannot be told: no data types for layer {names} (not DETAILED, or dynamic shapes)"
    return row


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]

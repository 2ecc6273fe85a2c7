"""The pin check: for every requested FP32 pin, the precision its engine layers really ran in.

Input is the engine-inspector JSON (TensorRT `IEngineInspector` with DETAILED verbosity, or trtexec
`--exportLayerInfo`). Engine layers are fused and renamed (`A + B`, `__myl_...`), so they are mapped back
to ONNX nodes through the `[ONNX Layer: <node>]` entries the ONNX parser puts in each layer's metadata
(several entries joined by \\x1E or \\x1F). Tensor data types are read from 10.x's combined
`"Format/Datatype": "Row major linear FP16 format"` and, defensively, from 11.x's split keys (their exact
spelling is unverified, so any key naming a data type is accepted).

Statuses per pin: `fp32` (every float tensor of its layers is FP32), `mismatch` (a layer made only from
this node ran in lower precision), `fused` (it ran inside a layer fused with other nodes whose boundary is
lower precision: its internal precision is not reported), `unknown` (no data types: not DETAILED, or
dynamic shapes), `not_found` (no engine layer came from it: folded away or fused without metadata).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

_ONNX_LAYER = re.compile(r"\[ONNX Layer: (.*?)\](?=$|[\x1e\x1f\[\s])", re.S)
_DTYPE_KEYS = ("datatype", "data type", "dtype", "type")
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
    for key, value in tensor.items():  # 11.x split form: a key that names the data type
        k = key.lower()
        if k != "format/datatype" and any(k == d or k.endswith(d) for d in _DTYPE_KEYS) and isinstance(value, str):
            found = normalize_dtype(value)
            if found:
                return found
    for key in ("Format/Datatype", "Format"):
        if isinstance(tensor.get(key), str):
            found = normalize_dtype(tensor[key])
            if found:
                return found
    return None


def onnx_nodes_of(layer: dict[str, Any]) -> list[str]:
    """ONNX node names a (possibly fused) engine layer came from, from its metadata (or its name)."""
    for source in (layer.get("Metadata"), layer.get("Name")):
        if isinstance(source, str) and "[ONNX Layer: " in source:
            return [m.strip() for m in _ONNX_LAYER.findall(source)]
    return []


def pin_check(inspector: dict[str, Any] | list[Any], pins: list[str]) -> dict[str, Any]:
    layers = inspector.get("Layers", []) if isinstance(inspector, dict) else list(inspector)
    detailed = any(isinstance(layer, dict) for layer in layers)
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with_metadata = 0
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("LayerType") == "Reformat":
            continue  # reformats are conversions between layers, not where a node's math ran
        nodes = onnx_nodes_of(layer)
        with_metadata += bool(nodes)
        for node in dict.fromkeys(nodes):
            by_node[node].append(layer)
    if detailed and not with_metadata:
        # No metadata at all (older engines): fall back to the parser's naming, first layer = node name.
        for layer in layers:
            if isinstance(layer, dict) and layer.get("LayerType") != "Reformat":
                for part in str(layer.get("Name", "")).split(" + "):
                    by_node[part.strip()].append({**layer, "_nodes": len(str(layer.get("Name", "")).split(" + "))})

    rows = []
    for node in pins:
        rows.append(_check_one(node, by_node.get(node, []), detailed))
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["status"]] += 1
    mismatches = [row["node"] for row in rows if row["status"] == "mismatch"]
    summary = f"{len(rows)} FP32 pin(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if rows else "no FP32 pins"
    if not detailed:
        summary += " (the inspector JSON has no per-layer detail: build with DETAILED profiling verbosity)"
    return {"detailed": detailed, "pins": rows, "mismatches": mismatches, "counts": dict(counts), "summary": summary}


def _check_one(node: str, layers: list[dict[str, Any]], detailed: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"node": node, "layers": [], "precisions": []}
    if not detailed:
        row["status"] = "unknown"
        return row
    if not layers:
        row["status"] = "not_found"
        return row
    precisions: set[str] = set()
    low_alone = low_fused = False
    for layer in layers:
        tensors = _as_list(layer.get("Inputs")) + _as_list(layer.get("Outputs"))
        dtypes = sorted({d for d in map(tensor_dtype, tensors) if d in FLOAT_PRECISIONS})
        fused = layer.get("_nodes", len(set(onnx_nodes_of(layer)))) > 1
        low = any(d != "fp32" for d in dtypes)
        low_alone |= low and not fused
        low_fused |= low and fused
        precisions.update(dtypes)
        row["layers"].append({"name": layer.get("Name"), "type": layer.get("LayerType"), "precisions": dtypes,
                              "fused": fused})
    row["precisions"] = sorted(precisions)
    if low_alone:
        row["status"] = "mismatch"
    elif low_fused:
        row["status"] = "fused"
    elif precisions == {"fp32"}:
        row["status"] = "fp32"
    else:
        row["status"] = "unknown"
    return row


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]

"""Compare two presets key by key (as their TOML documents) and, when both resolve, by their pinned nodes.

The CLI (`trt-tui preset diff`) and the Preset screen ("diff vs file") both present these results, so the
two can never disagree about what changed.

    changes = diff_presets(saved, edited)             # [PresetChange("precision.mode", "fp16", "bf16"), ...]
    pins = diff_pinned_nodes(saved, edited)           # None when either preset does not resolve
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trt_tui.core.graph import GraphIndex
from trt_tui.core.preset.analyse import analyse
from trt_tui.core.preset.model import Preset
from trt_tui.core.preset.toml_io import preset_to_dict


@dataclass(frozen=True)
class PresetChange:
    """One key that differs. `old`/`new` are None where that preset does not set the key (the TOML document
    leaves unset keys out, so None always means "not set", never a value)."""

    key_path: str  # "precision.mode", "profiles[0].batch"
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        return "removed" if self.new is None else "changed"

    def one_line(self, a_label: str, b_label: str) -> str:
        if self.kind == "changed":
            return f"{self.key_path}: {self.old!r} -> {self.new!r}"
        if self.kind == "added":
            return f"{self.key_path}: only in {b_label}: {self.new!r}"
        return f"{self.key_path}: only in {a_label}: {self.old!r}"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key_path, "a": self.old, "b": self.new}


@dataclass(frozen=True)
class PinnedNodesDiff:
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.only_a or self.only_b)

    def to_json(self) -> dict[str, list[str]]:
        return {"only_a": list(self.only_a), "only_b": list(self.only_b)}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables -> dotted keys; arrays of tables (profiles, tolerance rules) are indexed, other lists
    (pin names, extra args) stay whole values so a reordering shows as one change, not N."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff_presets(a: Preset, b: Preset) -> list[PresetChange]:
    """Every key whose value differs between `a` and `b`, in document order (a's keys first)."""
    fa, fb = _flatten(preset_to_dict(a)), _flatten(preset_to_dict(b))
    # the same model written relative to two directories is the same model
    fa["model"], fb["model"] = str(a.model_path.resolve()), str(b.model_path.resolve())
    return [
        PresetChange(k, fa.get(k), fb.get(k))
        for k in dict.fromkeys([*fa, *fb])
        if fa.get(k) != fb.get(k)
    ]


def diff_pinned_nodes(
    a: Preset, b: Preset, index_a: GraphIndex | None = None, index_b: GraphIndex | None = None
) -> PinnedNodesDiff | None:
    """The nodes pinned to FP32 by one preset only (in each preset's own order); None when either preset
    does not resolve (missing model, invalid pins), since then its pinned set is unknown rather than empty.
    Pass loaded graphs to skip reading the models again."""
    ra, _ = analyse(a, index_a)
    rb, _ = analyse(b, index_b)
    if ra is None or rb is None:
        return None
    sa, sb = set(ra.pinned_nodes), set(rb.pinned_nodes)
    return PinnedNodesDiff(
        tuple(n for n in ra.pinned_nodes if n not in sb), tuple(n for n in rb.pinned_nodes if n not in sa)
    )

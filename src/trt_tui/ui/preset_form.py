"""The Preset screen's form as data: which fields there are, how each reads from and writes to a Preset, and
what switching the target TensorRT version changes. No widgets here (the screen builds them from FIELDS)."""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, replace

from trt_tui.core.graph import GraphIndex
from trt_tui.core.parity.constants import ERROR_STATS
from trt_tui.core.preset import Preset
from trt_tui.core.preset.model import OutputTolerance, Profile
from trt_tui.core.tolerance import Tolerance

UNSET = "unset"
TRI = [("(not set)", UNSET), ("yes", "yes"), ("no", "no")]


@dataclass(frozen=True)
class Field:
    id: str  # widget id: "preset-<id>"
    label: str
    key: str  # the key that focuses it
    kind: str  # select | switch | input | text (several lines)
    options: tuple = ()
    placeholder: str = ""


FIELDS = (
    Field("name", "name", "n", "input", placeholder="shown in builds and the status bar"),
    Field("description", "description", "N", "input"),
    Field("precision", "precision", "p", "select", (("fp16", "fp16"), ("bf16", "bf16"), ("fp32", "fp32"))),
    Field("trt", "target TensorRT", "t", "select", (("TensorRT 10", 10), ("TensorRT 11", 11))),
    Field("tf32", "TF32", "f", "switch"),
    Field("strongly_typed", "strongly typed (10.x)", "s", "select", tuple(TRI)),
    Field("force_low_precision", "force low prec. (10.x)", "l", "select", tuple(TRI)),
    Field("constraints", "constraints (10.x)", "k", "select",
          (("(not set)", UNSET), ("obey", "obey"), ("prefer", "prefer"), ("none", "none"))),
    Field("pin_output_types", "pin output types (10.x)", "u", "select", tuple(TRI)),
    Field("opt", "optimization level", "o", "select", (("(default: 3)", UNSET),) + tuple((str(i), i) for i in range(6))),
    Field("engine", "engine path", "g", "input", placeholder="default: <preset name>.plan next to the preset"),
    Field("memory_pools", "memory pools, MiB", "b", "input", placeholder="workspace=1024, tacticSharedMem=64"),
    Field("io_formats", "IO formats", "i", "select", (("auto (from the ONNX dtypes)", "auto"), ("none (no IO flags)", "none"))),
    Field("atol", "tolerance atol", "r", "input"),
    Field("rtol", "tolerance rtol", "R", "input"),
    Field("stat", "tolerance statistic", "S", "select", tuple((s, s) for s in ERROR_STATS)),
    Field("outputs", "per-output tolerances", "v", "text"),
    Field("infinities", "same ±inf is equal", "I", "switch"),
)  # fmt: skip
OUTPUTS_HELP = "one rule a line: REGEX atol=.. rtol=.. stat=.. (first match wins; unset keys: the default)"
TEN_ONLY = ("strongly_typed", "force_low_precision", "constraints", "pin_output_types")


def _tri(value: bool | None) -> str:
    return UNSET if value is None else "yes" if value else "no"


def _from_tri(value: object) -> bool | None:
    return None if value == UNSET else value == "yes"


def _num(value: float) -> str:
    return f"{value:g}"


def read_form(preset: Preset) -> dict[str, object]:
    """Every field's value for `preset`, keyed by field id."""
    pr, b, tol = preset.precision, preset.builder, preset.comparison.default
    return {
        "name": preset.name, "description": preset.description, "precision": pr.mode,
        "trt": preset.trt if preset.trt in (10, 11) else 10, "tf32": pr.tf32,
        "strongly_typed": _tri(pr.strongly_typed), "force_low_precision": _tri(pr.force_low_precision),
        "constraints": pr.constraints or UNSET, "pin_output_types": _tri(pr.pin_output_types),
        "opt": b.optimization_level if b.optimization_level is not None else UNSET,
        "engine": b.engine or "", "memory_pools": pools_text(b.memory_pools),
        "io_formats": preset.io.formats if preset.io.formats in ("auto", "none") else "auto",
        "atol": _num(tol.atol), "rtol": _num(tol.rtol), "stat": tol.stat,
        "outputs": outputs_text(preset.comparison.outputs, tol),
        "infinities": preset.comparison.infinities_compare_equal,
    }  # fmt: skip


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what}: not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what}: must be a finite number >= 0, not {text!r}")
    return value


def write_form(preset: Preset, values: dict[str, object]) -> list[str]:
    """Apply field values to `preset`; returns the problems of fields that could not be applied (left as
    they were). The target version is not applied here: see migrate_target."""
    problems = []
    pr, b = preset.precision, preset.builder
    preset.name = str(values["name"]).strip()
    preset.description = str(values["description"]).strip()
    pr.mode = str(values["precision"])
    pr.tf32 = bool(values["tf32"])
    pr.strongly_typed = _from_tri(values["strongly_typed"])
    pr.force_low_precision = _from_tri(values["force_low_precision"])
    pr.constraints = None if values["constraints"] == UNSET else str(values["constraints"])
    pr.pin_output_types = _from_tri(values["pin_output_types"])
    b.optimization_level = None if values["opt"] == UNSET else int(values["opt"])
    b.engine = str(values["engine"]).strip() or None
    try:
        b.memory_pools = parse_pools(str(values["memory_pools"]))
    except ValueError as exc:
        problems.append(str(exc))
    preset.io.formats = str(values["io_formats"])
    try:
        tol = replace(preset.comparison.default, atol=_finite(str(values["atol"]), "atol"),
                      rtol=_finite(str(values["rtol"]), "rtol"), stat=str(values["stat"]))  # fmt: skip
        preset.comparison.default = tol
    except ValueError as exc:
        problems.append(str(exc))
    try:
        preset.comparison.outputs = parse_outputs(str(values["outputs"]), preset.comparison.default)
    except ValueError as exc:
        problems.append(str(exc))
    preset.comparison.infinities_compare_equal = bool(values["infinities"])
    return problems


# ---- memory pools and per-output tolerances: one line of text each / one rule a line ------------------------
def pools_text(pools: dict[str, int]) -> str:
    return ", ".join(f"{pool}={mib}" for pool, mib in pools.items())


def parse_pools(text: str) -> dict[str, int]:
    """'workspace=1024, tacticSharedMem=64' -> {pool: MiB}. Syntax only: the pool names and sizes are checked
    by validate_preset, whose problems the screen lists with the rest."""
    pools: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        pool, sep, mib = (x.strip() for x in part.partition("="))
        try:
            if not sep or not pool:
                raise ValueError
            pools[pool] = int(mib)
        except ValueError:
            raise ValueError(f"memory pools: write POOL=MiB (e.g. workspace=1024), not {part!r}") from None
    return pools


TOLERANCE_KEYS = ("atol", "rtol", "stat", "quantile")


def outputs_text(rules: list[OutputTolerance], default: Tolerance) -> str:
    lines = []
    for rule in rules:
        keys = [f"{k}={_num(v) if isinstance(v, float) else v}" for k in TOLERANCE_KEYS
                if (v := getattr(rule.tolerance, k)) != getattr(default, k)]  # fmt: skip
        lines.append(" ".join([rule.pattern, *keys]))
    return "\n".join(lines)


def parse_outputs(text: str, default: Tolerance) -> list[OutputTolerance]:
    """One rule a line: `REGEX key=value ...` (atol, rtol, stat, quantile; unset keys take the default).
    The regex is everything before the trailing key=value words, so it may hold spaces. A bad regex is
    reported by validate_preset (comparison.outputs[i].pattern), like one written in the file."""
    rules = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = list(re.finditer(r"\S+", line))
        if not words:
            continue
        what = f"per-output tolerance line {n}"
        settings: dict[str, str] = {}
        while len(words) > 1 and re.fullmatch(r"[A-Za-z_]\w*=.*", words[-1][0]):
            key, _, value = words.pop()[0].partition("=")
            if key not in TOLERANCE_KEYS:
                raise ValueError(f"{what}: unknown setting {key!r} (one of {', '.join(TOLERANCE_KEYS)})")
            settings.setdefault(key, value)
        pattern = line[words[0].start() : words[-1].end()]
        changes: dict[str, object] = {k: _finite(v, f"{what}: {k}") for k, v in settings.items() if k != "stat"}
        if "stat" in settings:
            changes["stat"] = settings["stat"]
        try:
            rules.append(OutputTolerance(pattern, replace(default, **changes)))
        except ValueError as exc:  # Tolerance checks the statistic and the quantile's range
            raise ValueError(f"{what}: {exc}") from None
    return rules


def migrate_target(preset: Preset, trt: int) -> Preset:
    """`preset` moved to TensorRT `trt` (a copy): to 11, the 10.x-only precision options are removed (11 takes
    precisions from the graph); to 10 nothing needs to go. Show the change with diff_presets(old, new)."""
    moved = copy.deepcopy(preset)
    if moved.trt != trt:
        moved.trt, moved.trt_minor = trt, None
    if trt >= 11:
        for key in TEN_ONLY:
            setattr(moved.precision, key, None)
    return moved


# ---- profiles: one min,opt,max field per profile and dynamic dim ----------------------------------------
def dynamic_dims(index: GraphIndex | None, preset: Preset) -> list[str]:
    """The model's symbolic input dims, then any dim the preset's profiles name that the model does not show."""
    dims: list[str] = []
    if index is not None:
        for t in index.inputs:
            for d in t.shape or ():
                if isinstance(d, str) and d not in dims:
                    dims.append(d)
    for prof in preset.profiles:
        dims.extend(d for d in prof.dims if d not in dims)
    return dims


def triple_text(value: tuple[int, int, int] | None) -> str:
    if value is None:
        return ""
    return str(value[0]) if value[0] == value[1] == value[2] else ",".join(map(str, value))


def parse_triple(text: str, what: str) -> tuple[int, int, int] | None:
    """'' -> None (not set); '8' -> (8, 8, 8); '1,8,16' -> (1, 8, 16), min <= opt <= max, all >= 1."""
    text = text.strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace("/", ",").split(",")]
    if len(parts) == 1:
        parts *= 3
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what}: write min,opt,max (or one value), e.g. 1,8,16; not {text!r}") from None
    if len(values) != 3 or not (1 <= values[0] <= values[1] <= values[2] <= 1 << 31):
        raise ValueError(f"{what}: need 1 <= min <= opt <= max, not {text!r}")
    return values  # type: ignore[return-value]


def profiles_for_form(preset: Preset) -> list[Profile]:
    """The profiles the form shows: the preset's, or one 'default' profile to start from."""
    return preset.profiles or [Profile(name="default")]

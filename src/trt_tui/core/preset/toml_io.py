"""Reading and writing preset TOML files.

Reading is strict about types (a wrong type is a one-line UserError naming the file and key) and lenient
about unknown keys (kept in `Preset.unknown_keys`; validation warns, since they are usually typos).
Value checks that need the model or cross-field knowledge live in `validate.py`, so that all of a file's
problems are reported together. Writing is atomic and never replaces an existing file unless asked.
"""

from __future__ import annotations

import copy
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import tomli_w

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write, read_text_file
from trt_tui.core.tolerance import Tolerance, parse_target
from trt_tui.core.pins import PinRules
from trt_tui.core.preset.model import (
    SCHEMA_VERSION,
    BuilderSettings,
    ComparisonDefaults,
    IOSettings,
    OutputTolerance,
    PrecisionSettings,
    Preset,
    Profile,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
MAX_PRESET_BYTES = 64 * 1024 * 1024  # a preset is a few KiB; 20k pinned names are ~1 MiB
INT64 = 2**63  # TOML integers are 64-bit; Python's parser reads any size
MAX_DIM = 2**31 - 1  # a profile dimension or batch beyond this cannot be built or run (int32 volumes)


class _Reader:
    """Typed access to one TOML table; records the keys it read so the rest can be reported as unknown."""

    def __init__(self, table: dict, key: str, source: Path, unknown: list[str]) -> None:
        self.table, self.key, self.source, self.unknown = table, key, source, unknown
        self.seen: set[str] = set()

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, expected: str, value: Any) -> UserError:
        return UserError(f"{self._path(name)}: expected {expected}, got {value!r}", self.source)

    def get(self, name: str, kind: type | tuple[type, ...], expected: str, default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        # bool is an int subclass in Python; a TOML `true` is never a number here
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(name, expected, value)
        if not isinstance(value, kind):
            raise self.fail(name, expected, value)
        return value

    def str(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, str, "a string", default)

    def int(self, name: str, default: int | None = None, *, maximum: int = INT64 - 1) -> int | None:
        value = self.get(name, int, "an integer", default)
        if value is not None and not -INT64 <= value <= maximum:
            raise self.fail(name, f"an integer up to {maximum}", value)
        return value

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        return self.get(name, bool, "true or false", default)

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name, (int, float), "a number", default)
        if value is None:
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            raise self.fail(name, "a finite number", value) from None
        if not math.isfinite(number):  # TOML has nan and inf: a NaN tolerance would pass every comparison
            raise self.fail(name, "a finite number", value)
        return number

    def strs(self, name: str) -> list[str]:
        value = self.get(name, list, "a list of strings", [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(name, "a list of strings", value)
        return list(value)

    def sub(self, name: str) -> _Reader:
        value = self.get(name, dict, "a table", {})
        return _Reader(value, self._path(name), self.source, self.unknown)

    def subs(self, name: str) -> list[_Reader]:
        value = self.get(name, list, "an array of tables ([[...]])", [])
        if not all(isinstance(v, dict) for v in value):
            raise self.fail(name, "an array of tables ([[...]])", value)
        return [_Reader(v, f"{self._path(name)}[{i}]", self.source, self.unknown) for i, v in enumerate(value)]

    def done(self) -> None:
        self.unknown.extend(self._path(k) for k in self.table if k not in self.seen)


def _int_list(reader: _Reader, name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise reader.fail(name, "a list of integers (a shape)", value)
    if any(v > MAX_DIM for v in value):
        raise reader.fail(name, f"dimensions up to {MAX_DIM}", value)
    return tuple(value)


def _dim_range(reader: _Reader, name: str, value: Any) -> tuple[int, int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value > MAX_DIM:
            raise reader.fail(name, f"a dimension up to {MAX_DIM}", value)
        return (value, value, value)
    if isinstance(value, list) and len(value) == 3:
        return _int_list(reader, name, value)  # type: ignore[return-value]
    raise reader.fail(name, "an integer or [min, opt, max]", value)


def _tolerance(r: _Reader, base: Tolerance) -> Tolerance:
    atol = r.float("atol", base.atol)
    rtol = r.float("rtol", base.rtol)
    stat = r.str("stat", base.stat)
    quantile = r.float("quantile", base.quantile)
    try:
        return Tolerance(atol=atol, rtol=rtol, stat=stat, quantile=quantile)
    except ValueError as exc:
        raise UserError(f"{r.key}: {exc}", r.source) from None


def _profile(r: _Reader, index: int) -> Profile:
    prof = Profile(name=r.str("name", f"profile{index}"), batch=r.int("batch", 1, maximum=MAX_DIM), batch_dim=r.str("batch_dim"))
    dims = r.sub("dims")
    for dim, value in dims.table.items():
        dims.seen.add(dim)
        prof.dims[dim] = _dim_range(dims, dim, value)
    shapes = r.sub("shapes")
    for tensor, value in shapes.table.items():
        shapes.seen.add(tensor)
        if not isinstance(value, dict):
            raise shapes.fail(tensor, "a table with min, opt and max shapes", value)
        tr = _Reader(value, shapes._path(tensor), r.source, r.unknown)
        entry = {}
        for which in ("min", "opt", "max"):
            tr.seen.add(which)
            if which not in value:
                raise UserError(f"{tr.key}: needs min, opt and max (missing {which})", r.source)
            entry[which] = _int_list(tr, which, value[which])
        tr.done()
        prof.shapes[tensor] = entry
    dims.done()
    shapes.done()
    r.done()
    return prof


def _trt_version(top: _Reader) -> tuple[int, int | None]:
    """`trt = 10` (a major) or `trt = "11.1"` (major.minor, where the minor matters)."""
    value = top.get("trt", (int, str), 'a TensorRT version such as 10, 11 or "11.1"', 10)
    if isinstance(value, int):
        return value, None
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*", value)
    if not m:
        raise top.fail("trt", 'a TensorRT version such as 10, 11 or "11.1"', value)
    return int(m.group(1)), None if m.group(2) is None else int(m.group(2))


def preset_from_dict(data: dict, source: Path) -> Preset:
    unknown: list[str] = []
    top = _Reader(data, "", source, unknown)
    schema = top.int("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise UserError(f"schema {schema} is not supported (this trt-tui reads schema {SCHEMA_VERSION})", source)
    model = top.str("model")
    if not model:
        raise UserError("model: missing; set model = \"path/to/model.onnx\" (relative to this file)", source)
    trt, trt_minor = _trt_version(top)
    preset = Preset(model=model, name=top.str("name", ""), description=top.str("description", ""), trt=trt,
                    trt_minor=trt_minor)

    p = top.sub("precision")
    preset.precision = PrecisionSettings(
        mode=p.str("mode", "fp16"),
        tf32=p.bool("tf32", True),
        strongly_typed=p.bool("strongly_typed"),
        constraints=p.str("constraints"),
        force_low_precision=p.bool("force_low_precision"),
        pin_output_types=p.bool("pin_output_types"),
        keep_io_types=p.bool("keep_io_types", True),
    )
    p.done()

    pins = top.sub("pins")
    preset.pins = PinRules(
        op_types=tuple(pins.strs("op_types")),
        patterns=tuple(pins.strs("match")),
        names=tuple(pins.strs("names")),
        exclude=tuple(pins.strs("exclude")),
    )
    pins.done()

    io = top.sub("io")
    ins, outs = io.sub("inputs"), io.sub("outputs")
    preset.io = IOSettings(formats=io.str("formats", "auto"))
    for reader, into in ((ins, preset.io.inputs), (outs, preset.io.outputs)):
        for tensor in list(reader.table):
            into[tensor] = reader.str(tensor)
        reader.done()
    io.done()

    preset.profiles = [_profile(r, i) for i, r in enumerate(top.subs("profiles"))]

    b = top.sub("builder")
    pools = b.sub("memory_pools")
    builder = BuilderSettings(
        optimization_level=b.int("optimization_level"),
        timing_cache=b.str("timing_cache"),
        profiling_verbosity=b.str("profiling_verbosity"),
        engine=b.str("engine"),
        converted_model=b.str("converted_model"),
        extra_args=b.strs("extra_args"),
    )
    for pool in list(pools.table):
        builder.memory_pools[pool] = pools.int(pool)
    pools.done()
    b.done()
    preset.builder = builder

    c = top.sub("comparison")
    d = c.sub("default")
    default = _tolerance(d, Tolerance())
    d.done()
    comparison = ComparisonDefaults(default=default, input_data=c.str("input_data", "random"), seed=c.int("seed"),
                                    targets=c.strs("targets"),
                                    infinities_compare_equal=bool(c.bool("infinities_compare_equal", False)))  # fmt: skip
    for text in comparison.targets:  # the syntax now, not at the first comparison
        try:
            parse_target(text, what="target")
        except UserError as exc:
            raise UserError(f"comparison.targets: {exc.message}", source) from None
    for r in c.subs("outputs"):
        pattern = r.str("pattern")
        if not pattern:
            raise UserError(f"{r.key}.pattern: missing (a regex searched in output names)", source)
        comparison.outputs.append(OutputTolerance(pattern, _tolerance(r, default)))
        r.done()
    c.done()
    preset.comparison = comparison

    top.done()
    preset.unknown_keys = unknown
    preset.path = source
    return preset


def load_preset(path: str | os.PathLike[str]) -> Preset:
    source = Path(path)
    text = read_text_file(source, "preset file", max_bytes=MAX_PRESET_BYTES)
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise UserError("invalid TOML: nested too deeply", source) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT.search(message)
        if at:  # file:line:col, as compilers print it
            raise UserError(f"invalid TOML: {message[: at.start()]}", f"{source}:{at[1]}:{at[2]}") from None
        raise UserError(f"invalid TOML: {message}", source) from None
    return preset_from_dict(data, source.absolute())


# ---- writing ---------------------------------------------------------------------------------------------
def _tolerance_dict(tol: Tolerance, base: Tolerance | None = None) -> dict:
    out = {}
    for key in ("atol", "rtol", "stat", "quantile"):
        value = getattr(tol, key)
        if base is None or value != getattr(base, key):
            out[key] = value
    if tol.stat != "quantile" and base is None:
        out.pop("quantile", None)
    return out


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v != {} and v != []}


def preset_to_dict(preset: Preset) -> dict:
    """The TOML document of a preset; keys left unset (None) are not written, so the file stays minimal."""
    pr = preset.precision
    doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
    doc.update(_drop_none({"name": preset.name or None, "description": preset.description or None}))
    doc["model"] = preset.model
    doc["trt"] = preset.trt if preset.trt_minor is None else f"{preset.trt}.{preset.trt_minor}"
    doc["precision"] = _drop_none(
        {
            "mode": pr.mode,
            "tf32": pr.tf32,
            "strongly_typed": pr.strongly_typed,
            "constraints": pr.constraints,
            "force_low_precision": pr.force_low_precision,
            "pin_output_types": pr.pin_output_types,
            "keep_io_types": pr.keep_io_types,
        }
    )
    pins = _drop_none(
        {
            "op_types": list(preset.pins.op_types),
            "match": list(preset.pins.patterns),
            "names": list(preset.pins.names),
            "exclude": list(preset.pins.exclude),
        }
    )
    if pins:
        doc["pins"] = pins
    doc["io"] = _drop_none({"formats": preset.io.formats, "inputs": dict(preset.io.inputs), "outputs": dict(preset.io.outputs)})
    profiles = []
    for prof in preset.profiles:
        entry: dict[str, Any] = _drop_none({"name": prof.name, "batch": prof.batch, "batch_dim": prof.batch_dim})
        if prof.dims:
            entry["dims"] = {k: (v[0] if v[0] == v[1] == v[2] else list(v)) for k, v in prof.dims.items()}
        if prof.shapes:
            entry["shapes"] = {t: {w: list(s) for w, s in v.items()} for t, v in prof.shapes.items()}
        profiles.append(entry)
    if profiles:
        doc["profiles"] = profiles
    b = preset.builder
    builder = _drop_none(
        {
            "optimization_level": b.optimization_level,
            "memory_pools": dict(b.memory_pools),
            "timing_cache": b.timing_cache,
            "profiling_verbosity": b.profiling_verbosity,
            "engine": b.engine,
            "converted_model": b.converted_model,
            "extra_args": list(b.extra_args),
        }
    )
    if builder:
        doc["builder"] = builder
    c = preset.comparison
    comparison: dict[str, Any] = _drop_none({"input_data": c.input_data, "seed": c.seed})
    if c.infinities_compare_equal:  # written only when on (off is the default, as in Polygraphy)
        comparison["infinities_compare_equal"] = True
    comparison["default"] = _tolerance_dict(c.default)
    if c.outputs:
        comparison["outputs"] = [{"pattern": o.pattern, **_tolerance_dict(o.tolerance, c.default)} for o in c.outputs]
    if c.targets:
        comparison["targets"] = list(c.targets)
    doc["comparison"] = comparison
    return doc


class _Inline(dict):
    """A table written inline (`dims = { T = [1, 2, 3] }`): short, and read as one value."""


def _key(name: str) -> str:
    """A TOML key, quoted when it needs to be (tomli_w knows the rules)."""
    return tomli_w.dumps({name: 0}).rsplit(" = ", 1)[0]


def _value(value: Any) -> str:
    if isinstance(value, _Inline):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return tomli_w.dumps({"x": value}).split(" = ", 1)[1].strip()


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and not isinstance(value, _Inline)


def _is_aot(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_table(v) for v in value)


def _emit(table: dict, path: list[str], out: list[str], aot: bool = False) -> None:
    """TOML as a person writes it: `[section]` and `[[profiles]]` blocks, short one-line arrays.
    (tomli_w inlines short arrays of tables and breaks every array over lines.)"""
    header = ".".join(_key(p) for p in path)
    scalars = [(k, v) for k, v in table.items() if not _is_table(v) and not _is_aot(v)]
    if path and (scalars or aot or not any(_is_table(v) for v in table.values())):
        out.append(f"\n[[{header}]]" if aot else f"\n[{header}]")
    out.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars)
    for k, v in table.items():
        if _is_table(v):
            _emit(v, [*path, k], out)
        elif _is_aot(v):
            for item in v:
                _emit(item, [*path, k], out, aot=True)


def preset_to_toml(preset: Preset) -> str:
    doc = preset_to_dict(preset)
    for prof in doc.get("profiles", []):
        if "dims" in prof:
            prof["dims"] = _Inline(prof["dims"])
    if "memory_pools" in doc.get("builder", {}):
        doc["builder"]["memory_pools"] = _Inline(doc["builder"]["memory_pools"])
    out: list[str] = []
    _emit(doc, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


def snapshot_toml(preset: Preset) -> str:
    """The preset as a self-contained TOML document: relative paths are made absolute against the preset's own
    directory (its file's, or the working directory for a preset never saved), so the text points at the same
    model and artefacts wherever it is stored. A build directory keeps one of these for unsaved edits."""
    snap = copy.deepcopy(preset)

    def absolute(value: str | None) -> str | None:
        return None if value is None else preset.resolve_path(value).absolute().as_posix()

    snap.model = absolute(snap.model)
    b = snap.builder
    b.engine, b.timing_cache, b.converted_model = (absolute(v) for v in (b.engine, b.timing_cache, b.converted_model))
    if snap.comparison.input_data != "random":
        snap.comparison.input_data = absolute(snap.comparison.input_data)
    return preset_to_toml(snap)


def rebase_paths(preset: Preset, new_dir: Path) -> None:
    """Rewrite the preset's relative paths so they keep naming the same files from `new_dir` (a save elsewhere)."""
    old = preset.base_dir
    preset.model = _rebase(preset.model, old, new_dir)
    b = preset.builder
    b.engine, b.timing_cache, b.converted_model = (_rebase(v, old, new_dir) for v in (b.engine, b.timing_cache, b.converted_model))
    if preset.comparison.input_data != "random":
        preset.comparison.input_data = _rebase(preset.comparison.input_data, old, new_dir)


def _rebase(value: str | None, old_base: Path, new_base: Path) -> str | None:
    """Keep a relative path pointing at the same file when the preset is saved into another directory."""
    if value is None or Path(value).expanduser().is_absolute() or old_base.resolve() == new_base.resolve():
        return value
    return Path(os.path.relpath((old_base / value).resolve(), new_base.resolve())).as_posix()


def save_preset(preset: Preset, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write `preset` to `path` atomically (refusing to replace a file unless `overwrite`); returns the path.

    Relative paths in the preset are rewritten against the new file's directory, and `preset.path` is
    updated, so that the saved file and the object keep pointing at the same model and artefacts.
    """
    target = Path(path).absolute()
    rebase_paths(preset, target.parent)
    text = preset_to_toml(preset)
    atomic_write(target, text, overwrite=overwrite, make_parents=True)  # Save As may name a new folder
    preset.path = target
    return target

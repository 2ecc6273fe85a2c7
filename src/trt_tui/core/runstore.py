"""Kept comparison runs: every comparison the TUI finishes lands in the state directory with its JSON, CSV and a
plot, listed newest first like the build history, reopened from there, and two of them compared tensor by
tensor (which tensors got better or worse between two pin sets).

Layout: STATE/comparisons/<id>/{meta.json, result.json (trt_tui.compare/1), result.jsonl, tensors.csv, drift.png}.
meta.json is small and read for the list; result.json is read only when a run is reopened.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write
from trt_tui.core.parity.metrics import LayerDrift, Tolerance
from trt_tui.core.parity.results import SCHEMA, CompareResult, ShapeDivergence

RUNS_DIR = "comparisons"
META_FILE = "meta.json"
RESULT_FILE = "result.json"
CSV_FILE = "tensors.csv"
PLOT_FILE = "drift.png"
# The same result one tensor a line: reopening parses it line by line, so the reading thread lets go of the
# GIL between tensors (one json.loads of a 10 MB result.json holds it, and the UI, for the whole parse).
LINES_FILE = "result.jsonl"
# load(pace=...) calls it every this many tensors (~3 ms of parsing on the 2-core machine)
PACE_EVERY = 25
BETTER, WORSE = 0.8, 1.25  # rel_rms ratio (b / a) beyond which a tensor counts as better / worse


@dataclass(frozen=True)
class RunRecord:
    """One kept comparison, as the history lists it."""

    id: str
    dir: Path
    created: float
    model: str
    reference: str
    candidate: str
    precision: str | None
    verdict: str  # PASS | FAIL | CANCELLED
    compared: int
    failed: int
    first_divergence: str | None
    pins: int
    label: str = ""

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))


def verdict_of(result: CompareResult) -> str:
    return "PASS" if result.passed else ("CANCELLED" if result.cancelled else "FAIL")


class RunStore:
    def __init__(self, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / RUNS_DIR

    def save(self, result: CompareResult, *, pins: list[str] | None = None, label: str = "") -> RunRecord:
        """Keep `result` (JSON, CSV, plot) under a new id; returns its record."""
        created = time.time()
        run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + f"-{secrets.token_hex(2)}"
        run_dir = self.root / run_id
        try:
            run_dir.mkdir(parents=True)
            result.write_json(run_dir / RESULT_FILE)
            head = {k: v for k, v in result.to_json().items() if k != "tensors"}
            lines = [jsonio.dumps(head)] + [jsonio.dumps(d.to_json()) for d in result.tensors]
            atomic_write(run_dir / LINES_FILE, "\n".join(lines) + "\n")
            atomic_write(run_dir / CSV_FILE, result.to_csv())
            _write_plot(run_dir / PLOT_FILE, result)
            first = result.first_divergence
            meta = {
                "schema": "trt_tui.run/1", "id": run_id, "created": created, "model": result.model,
                "reference": result.reference, "candidate": result.candidate, "precision": result.precision,
                "verdict": verdict_of(result), "compared": len(result.tensors), "failed": len(result.failed),
                "first_divergence": first.name if first is not None else None, "pins": len(pins or []),
                "pinned": sorted(pins or []), "label": label,
            }  # fmt: skip
            atomic_write(run_dir / META_FILE, jsonio.dumps(meta, indent=1) + "\n")  # last: marks the run complete
        except OSError as exc:
            raise UserError(f"cannot keep the comparison: {exc.strerror or exc}", run_dir) from None
        return _record(run_dir, meta)

    def runs(self, limit: int = 500) -> list[RunRecord]:
        """Kept runs, newest first; a run without a readable meta.json (interrupted, foreign) is skipped."""
        if not self.root.is_dir():
            return []
        out = []
        for run_dir in sorted((p for p in self.root.iterdir() if p.is_dir()), reverse=True):
            try:
                meta = json.loads((run_dir / META_FILE).read_text(encoding="utf-8"))
                out.append(_record(run_dir, meta))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if len(out) >= limit:
                break
        # ids order runs by the second only (the suffix is random): two runs kept within one second are
        # ordered by their creation time
        out.sort(key=lambda r: r.created, reverse=True)
        return out

    def get(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs() if r.id == run_id), None)

    def load(self, run_id: str, *, pace: Callable[[], None] | None = None) -> CompareResult:
        """The whole kept result. `pace` is called every PACE_EVERY tensors while reading: the TUI passes one
        that sleeps a moment, so its UI thread gets the GIL while a thread reads 0.7 s of a 5,000-tensor run."""
        lines_path = self.root / run_id / LINES_FILE
        if lines_path.is_file():
            try:
                with lines_path.open(encoding="utf-8") as fh:
                    data = json.loads(fh.readline())
                    data["tensors"] = tensors = []
                    for line in fh:
                        if line.strip():
                            tensors.append(json.loads(line))
                            if pace is not None and len(tensors) % PACE_EVERY == 0:
                                pace()
                return result_from_json(data, lines_path, pace=pace)
            except (OSError, ValueError):
                pass  # damaged: result.json says it in its own words below
        path = self.root / run_id / RESULT_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read the kept comparison: {exc.strerror or exc}", path) from None
        except ValueError as exc:
            raise UserError(f"not a comparison result (invalid JSON: {exc})", path) from None
        return result_from_json(data, path)

    def load_summary(self, run_id: str, *, pace: Callable[[], None] | None = None) -> list[TensorSummary]:
        """What a side-by-side needs of each tensor, read from tensors.csv: 5,000 tensors parse in ~20 ms where
        the whole result (load) takes ~0.7 s of a thread holding the GIL, which the UI thread then waits for
        (bench_tui_responsiveness.py: 160-290 ms stalls with two runs). Falls back to the whole result when
        the CSV is missing or damaged. `pace`: as in load (a CSV row parses ~20 times faster than a tensor)."""
        try:
            with (self.root / run_id / CSV_FILE).open(encoding="utf-8", newline="") as fh:
                out = []
                for row in csv.DictReader(fh):
                    out.append(_summary_row(row))
                    if pace is not None and len(out) % (20 * PACE_EVERY) == 0:
                        pace()
                return out
        except (OSError, ValueError, KeyError, TypeError):
            return [TensorSummary(d.name, d.node, d.op_type, d.topo_index, d.rel_rms, d.passed)
                    for d in self.load(run_id, pace=pace).tensors]  # fmt: skip

    def latest_for(self, model: str | Path) -> RunRecord | None:
        want = str(Path(model).resolve())
        return next((r for r in self.runs() if str(Path(r.model).resolve()) == want), None)


def _record(run_dir: Path, meta: dict) -> RunRecord:
    return RunRecord(
        id=str(meta["id"]), dir=run_dir, created=float(meta["created"]), model=str(meta["model"]),
        reference=str(meta["reference"]), candidate=str(meta["candidate"]), precision=meta.get("precision"),
        verdict=str(meta["verdict"]), compared=int(meta["compared"]), failed=int(meta["failed"]),
        first_divergence=meta.get("first_divergence"), pins=int(meta.get("pins", 0)), label=str(meta.get("label", "")),
    )  # fmt: skip


def _write_plot(path: Path, result: CompareResult) -> None:
    from trt_tui.core.streaming.png import write_png  # numpy only; imported when a run is kept

    if result.tensors:
        write_png(path, [d.rel_rms for d in result.tensors], failed=[not d.passed for d in result.tensors],
                  title=f"{result.candidate} vs {result.reference}: rel_rms per tensor",
                  x_label="tensor (topological order)", y_label="rel_rms")  # fmt: skip


# ---- reading trt_tui.compare/1 back ---------------------------------------------------------------------
_DRIFT_FIELDS = {f.name for f in dataclasses.fields(LayerDrift)}
_RESULT_FIELDS = ("model", "reference", "candidate", "precision", "iterations", "unpaired", "errors", "warnings",
                  "batches", "max_memory", "cancelled", "elapsed_s", "constants_skipped", "nothing_low")  # fmt: skip


def _float(value):
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float(v) for v in value]
    return value


def result_from_json(
    data: dict, source: Path | str = "result", *, pace: Callable[[], None] | None = None
) -> CompareResult:
    """A CompareResult from its trt_tui.compare/1 JSON (the derived keys - verdict, counts, markers - are
    recomputed from the tensors). `pace`: as in RunStore.load."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"not a {SCHEMA} result", source)
    try:
        tensors = []
        for row in data["tensors"]:
            fields = {k: _float(v) for k, v in row.items() if k in _DRIFT_FIELDS}
            fields["tolerance"] = Tolerance(**{k: _float(v) for k, v in row["tolerance"].items()})
            tensors.append(LayerDrift(**fields))
            if pace is not None and len(tensors) % PACE_EVERY == 0:
                pace()
        kwargs = {k: data[k] for k in _RESULT_FIELDS if k in data}
        kwargs["targets"] = [_float(t) for t in data.get("targets") or []]  # they decide the verdict when present
        if data.get("shape_divergence"):  # it fails the run: a kept run that had one must not reopen as PASS
            kwargs["shape_divergence"] = ShapeDivergence(**data["shape_divergence"])
        return CompareResult(tensors=tensors, **kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"damaged {SCHEMA} result ({type(exc).__name__}: {exc})", source) from None


# ---- two runs side by side --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorChange:
    name: str
    node: str | None
    op_type: str | None
    topo_index: int | None
    rel_rms_a: float | None
    rel_rms_b: float | None
    passed_a: bool | None
    passed_b: bool | None

    @property
    def ratio(self) -> float | None:
        a, b = self.rel_rms_a, self.rel_rms_b
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            return None
        if a == 0:
            return 1.0 if b == 0 else math.inf
        return b / a

    @property
    def change(self) -> str:
        """better | worse | same | only in A | only in B (a pass/fail flip decides before the ratio)."""
        if self.rel_rms_a is None:
            return "only in B"
        if self.rel_rms_b is None:
            return "only in A"
        if self.passed_a != self.passed_b:
            return "better" if self.passed_b else "worse"
        r = self.ratio
        if r is None:
            return "same"
        return "better" if r <= BETTER else "worse" if r >= WORSE else "same"


@dataclass(frozen=True)
class TensorSummary:
    """One tensor of a kept run as a side-by-side uses it (the LayerDrift fields of the same names)."""

    name: str
    node: str | None
    op_type: str | None
    topo_index: int | None
    rel_rms: float
    passed: bool


def _summary_row(row: dict) -> TensorSummary:
    """A tensors.csv row (CompareResult.to_csv: None is written empty, floats as repr, bools as True/False)."""
    if row["passed"] not in ("True", "False"):
        raise ValueError(f"passed: {row['passed']!r}")
    topo = row["topo_index"]
    return TensorSummary(row["name"], row["node"] or None, row["op_type"] or None, int(topo) if topo else None,
                         float(row["rel_rms"]), row["passed"] == "True")  # fmt: skip


def compare_runs(a: CompareResult, b: CompareResult) -> list[TensorChange]:
    """Every tensor of either run, in graph order (B's order for tensors only B has)."""
    return compare_tensors(a.tensors, b.tensors)


def compare_tensors(
    a: Sequence[LayerDrift | TensorSummary], b: Sequence[LayerDrift | TensorSummary]
) -> list[TensorChange]:
    """compare_runs on the tensors alone (RunStore.load_summary gives them without reading the whole result)."""
    by_a = {d.name: d for d in a}
    by_b = {d.name: d for d in b}
    names = [d.name for d in a] + [d.name for d in b if d.name not in by_a]
    out = []
    for name in names:
        da, db = by_a.get(name), by_b.get(name)
        ref = da or db
        out.append(TensorChange(
            name, ref.node, ref.op_type, ref.topo_index,
            da.rel_rms if da else None, db.rel_rms if db else None,
            da.passed if da else None, db.passed if db else None,
        ))  # fmt: skip
    return out

"""Reading trtexec's log: the phases as they happen and the performance summary at the end.

Line formats come from TensorRT's samples/common (sampleReporting.cpp, sampleEngines.cpp, trtexec.cpp):
`[MM/DD/YYYY-HH:MM:SS] [I] Engine built in 17.0 sec.`; TensorRT's own messages add `[TRT] `. The parser
is incremental (one line at a time, constant memory) so a 200,000-line log costs nothing extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PREFIX = re.compile(r"^\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] \[([IWEVF])\] (?:\[TRT\] )?")
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*" + _NUM + r"\s*(ms|s|us)?")
# trtexec 11.1+, CONFIRMED in NVIDIA/TensorRT at the 11.1 OSS release (a892d222): validateAccuracy in
# samples/common/sampleInference.cpp logs one [I] line per reference output,
#   "Accuracy loss for tensor <name> (<algorithm>): 0.001234" + " [FAIL: >= threshold 0.001000]" when it fails
# (the loss with std::fixed, setprecision(6), which sticks to the stream: the threshold prints the same way;
# a FAIL only when the threshold is > 0 and loss >= threshold). <algorithm> is getAlgorithmName
# (samples/common/sampleUtils.h): L0, L1, L2, LInf, Cosine, else "Unknown" (the flag spells them l0, l1, l2,
# lInf, cos: sampleOptions.cpp). Any word is accepted so that an algorithm added later still parses. The
# tensor name is printed raw (it may hold spaces or parentheses: the last " (WORD): " splits it). After the
# run trtexec.cpp logs "[E] Accuracy validation FAILED: one or more tensors exceeded the threshold." and
# exits non-zero (kept with the other [E] lines).
_ACCURACY = re.compile(r"^Accuracy loss for tensor (.+) \(([A-Za-z0-9]+)\): (\S+)(?: \[FAIL: >= threshold (\S+?)\])?\s*$")
_VERSION = re.compile(r"^&&&& (RUNNING|PASSED|FAILED|WAIVED) TensorRT\.trtexec \[TensorRT v(\d+)\]")

# (phase name, fraction reached when the phase starts, pattern)
_PHASES: list[tuple[str, float, re.Pattern[str]]] = [
    ("parsing", 0.05, re.compile(r"^Start parsing network model")),
    ("building", 0.10, re.compile(r"^Finished parsing network model\. Parse time: " + _NUM)),
    ("engine built", 0.80, re.compile(r"^Engine built in " + _NUM + r" sec")),
    ("engine loaded", 0.80, re.compile(r"^Engine loaded in " + _NUM + r" sec")),
    ("inference", 0.85, re.compile(r"^Starting inference")),
    ("inference done", 0.99, re.compile(r"^=== Performance summary ===")),
    ("inference skipped", 0.99, re.compile(r"^Skipped inference phase")),
]
_STAT_LINES = {
    "Latency": "latency",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "GPU Compute Time": "gpu_compute",
    "D2H Latency": "d2h",
}


def strip_prefix(line: str) -> tuple[str | None, str]:
    """`[date] [I] [TRT] text` -> ("I", "text"); lines without the prefix -> (None, line)."""
    m = _PREFIX.match(line)
    return (m.group(1), line[m.end():]) if m else (None, line)


def parse_stats(text: str) -> dict[str, float]:
    """`min = 5.3 ms, max = ..., percentile(90%) = 10.2 ms` -> {"min_ms": 5.3, ..., "p90_ms": 10.2}."""
    out: dict[str, float] = {}
    for m in _STAT.finditer(text):
        pct = m.group(2)
        key = m.group(1) if pct is None else "p" + (pct.rstrip("0").rstrip(".") if "." in pct else pct)
        unit = m.group(4) or "ms"
        value = float(m.group(3)) * {"ms": 1.0, "s": 1000.0, "us": 0.001}[unit]
        out[f"{key}_ms"] = value
    return out


@dataclass
class TrtexecLog:
    phases: list[dict[str, Any]] = field(default_factory=list)
    parse_time_s: float | None = None
    build_time_s: float | None = None
    engine_generation_s: float | None = None
    engine_size_mib: float | None = None
    trt_version: str | None = None  # "10.9.0" from "&&&& RUNNING ... [TensorRT v100900]"
    status: str | None = None  # RUNNING / PASSED / FAILED from the &&&& lines
    errors: list[str] = field(default_factory=list)  # the first [E]/[F] lines, for the result message
    performance: dict[str, Any] = field(default_factory=dict)
    # trtexec 11.1+ accuracy checks: tensor -> {"algorithm", "loss", "failed", "threshold"}
    accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)
    _in_summary: bool = False

    def feed(self, line: str, at_s: float = 0.0) -> tuple[str, float] | None:
        """Consume one line; returns (phase, fraction) when a new phase starts."""
        if line.startswith("&&&&"):
            m = _VERSION.match(line)
            if m:
                self.status = m.group(1)
                self.trt_version = self.trt_version or _version_text(m.group(2))
                if m.group(1) in ("PASSED", "FAILED"):
                    return self._phase("passed" if m.group(1) == "PASSED" else "failed", 1.0, at_s)
            return None
        severity, text = strip_prefix(line)
        if severity in ("E", "F") and len(self.errors) < 5:
            self.errors.append(text.strip())
        if text.startswith("Accuracy loss for tensor "):
            self._accuracy_line(text)
        elif text.startswith("TensorRT version: "):
            self.trt_version = text.split(":", 1)[1].strip()
        elif text.startswith("Engine generation completed in "):
            self.engine_generation_s = _first_float(text)
        elif text.startswith("Created engine with size: "):
            self.engine_size_mib = _first_float(text)
        elif self._in_summary or text.startswith(("Throughput:", "Total Host Walltime", "Total GPU Compute")):
            self._summary_line(text)
        for name, fraction, pattern in _PHASES:
            m = pattern.match(text)
            if m:
                if name == "building":
                    self.parse_time_s = float(m.group(1))
                elif name == "engine built":
                    self.build_time_s = float(m.group(1))
                elif name == "inference done":
                    self._in_summary = True
                return self._phase(name, fraction, at_s)
        return None

    def _phase(self, name: str, fraction: float, at_s: float) -> tuple[str, float]:
        self.phases.append({"name": name, "at_s": round(at_s, 3)})
        return name, fraction

    def _summary_line(self, text: str) -> None:
        if text.startswith("Throughput:"):
            value = _first_float(text)
            if value is not None:
                self.performance["throughput_qps"] = value
            return
        if text.startswith("Total Host Walltime:"):
            self.performance["total_host_walltime_s"] = _first_float(text)
            return
        if text.startswith("Total GPU Compute Time:"):
            self.performance["total_gpu_compute_s"] = _first_float(text)
            return
        head, sep, rest = text.partition(":")
        key = _STAT_LINES.get(head.strip())
        if sep and key:
            self.performance[key] = parse_stats(rest)

    def _accuracy_line(self, text: str) -> None:
        m = _ACCURACY.match(text.strip())
        if not m:
            return
        name, algorithm, loss, threshold = m.groups()
        try:
            value = float(loss)
        except ValueError:
            value = None
        self.accuracy[name] = {"algorithm": algorithm, "loss": value, "failed": threshold is not None,
                               "threshold": None if threshold is None else float(threshold)}  # fmt: skip

    def accuracy_summary(self) -> dict[str, Any] | None:
        """{"tensors": {...}, "failed": [names], "passed": bool} when trtexec checked accuracy, else None."""
        if not self.accuracy:
            return None
        failed = [name for name, row in self.accuracy.items() if row["failed"]]
        return {"tensors": dict(self.accuracy), "failed": failed, "passed": not failed}

    def summary(self) -> dict[str, Any]:
        return {
            "trt_version": self.trt_version,
            "status": self.status,
            "parse_time_s": self.parse_time_s,
            "engine_generation_s": self.engine_generation_s,
            "build_time_s": self.build_time_s,
            "engine_size_mib": self.engine_size_mib,
            "performance": self.performance or None,
            "errors": list(self.errors),
            "accuracy": self.accuracy_summary(),
        }


def _first_float(text: str) -> float | None:
    m = re.search(_NUM, text)
    return float(m.group(1)) if m else None


def _version_text(code: str) -> str:
    """`100900` -> `10.9.0`; `110100` -> `11.1.0` (TensorRT's MAJOR*10000 + MINOR*100 + PATCH)."""
    n = int(code)
    return f"{n // 10000}.{n // 100 % 100}.{n % 100}"

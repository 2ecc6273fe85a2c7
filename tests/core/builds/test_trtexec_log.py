"""The trtexec log parser, on the real lines the test double prints (copied from TensorRT 10.9 runs)."""

from __future__ import annotations

import os
import subprocess
import sys

from trt_tui.core.build.trtexec_log import TrtexecLog, parse_stats, strip_prefix

from .conftest import FAKE_TRTEXEC


def _fake_log(mode="ok", version="100900") -> list[str]:
    env = {**os.environ, "FAKE_TRTEXEC_MODE": mode, "FAKE_TRTEXEC_VERSION": version, "FAKE_TRTEXEC_PYTHON": sys.executable}
    out = subprocess.run([str(FAKE_TRTEXEC), "--onnx=m.onnx"], env=env, capture_output=True, text=True)
    return out.stdout.splitlines()


def test_prefix_and_stats():
    assert strip_prefix("[04/08/2025-23:15:47] [I] [TRT] Engine generation completed in 104.604 seconds.") == (
        "I", "Engine generation completed in 104.604 seconds.")
    assert strip_prefix("&&&& PASSED x") == (None, "&&&& PASSED x")
    stats = parse_stats("min = 5.38672 ms, max = 13.3664 ms, mean = 7.60628 ms, median = 7.16092 ms, "
                        "percentile(90%) = 10.2996 ms, percentile(99.9%) = 12.9675 ms")
    assert stats == {"min_ms": 5.38672, "max_ms": 13.3664, "mean_ms": 7.60628, "median_ms": 7.16092,
                     "p90_ms": 10.2996, "p99.9_ms": 12.9675}


def test_successful_run_phases_and_summary():
    log = TrtexecLog()
    phases = [p for line in _fake_log() if (p := log.feed(line))]
    assert [name for name, _ in phases] == ["parsing", "building", "engine built", "inference", "inference done", "passed"]
    fractions = [f for _, f in phases]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    s = log.summary()
    assert s["trt_version"] == "10.9.0" and s["status"] == "PASSED"
    assert s["parse_time_s"] == 0.274727 and s["build_time_s"] == 104.774
    assert s["engine_generation_s"] == 104.604 and s["engine_size_mib"] == 231.019
    perf = s["performance"]
    assert perf["throughput_qps"] == 8.66824
    assert perf["latency"]["median_ms"] == 112.567 and perf["latency"]["p99_ms"] == 115.703
    assert perf["gpu_compute"] == {"min_ms": 109.522, "max_ms": 114.185, "mean_ms": 111.557, "median_ms": 111.208,
                                   "p90_ms": 113.02, "p95_ms": 114.115, "p99_ms": 114.185}
    assert perf["h2d"]["mean_ms"] == 0.771373 and perf["d2h"]["mean_ms"] == 0.61034
    assert perf["total_host_walltime_s"] == 3.34555
    assert s["errors"] == []


def test_failed_run_keeps_the_first_errors():
    log = TrtexecLog()
    for line in _fake_log("fail", version="110100"):
        log.feed(line)
    s = log.summary()
    assert s["status"] == "FAILED" and s["trt_version"] == "11.1.0"
    assert s["errors"][1] == "Failed to parse onnx file" and s["performance"] is None
    assert log.phases[-1]["name"] == "failed"


def test_data_transfers_excluded_read_as_zero_not_missing():
    log = TrtexecLog()
    log.feed("[01/01/2026-00:00:00] [I] === Performance summary ===")
    log.feed("[01/01/2026-00:00:00] [I] H2D Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms")
    assert log.performance["h2d"]["mean_ms"] == 0.0

"""ONNX Runtime refusing a candidate (its CPU build has no bf16 kernels) is one line and exit 2, not a traceback."""

import subprocess
import sys


def test_bf16_mixed_candidate_on_ort_cpu_is_one_line(demo_model):
    proc = subprocess.run(
        [sys.executable, "-m", "trt_tui", "compare", str(demo_model), "--candidate", "mixed", "--precision", "bf16"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "ONNX Runtime cannot run the mixed bf16" in lines[0] and "--candidate emulate" in lines[0]

"""The comparison's `trt` candidate is a build job: a worker child process (with the stand-in `tensorrt` package
of tests/fixtures/fake_trt_site on its PYTHONPATH, a test double), progress, history, artifacts; then the
comparison runs `engine:PATH`. CLI end to end in a subprocess; the engine runner there is a stand-in too
(ONNX Runtime on what the stand-in engine was parsed from): no engine is built or run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.worker_backends import TensorRTBackend
from trt_tui.core.errors import UserError
from trt_tui.core.preset import load_preset
from trt_tui.core.parity.trt_preset import MARKED_ENGINE_WARNING, build_candidate_engine

from tests.fixtures.fake_tensorrt import read_engine

ROOT = Path(__file__).resolve().parents[3]
SITE = ROOT / "tests" / "fixtures" / "fake_trt_site"
PRESET = ROOT / "presets" / "demo_fp16.toml"


@pytest.fixture
def stand_in_site(monkeypatch):
    """Children import the stand-in as `tensorrt`; this process only finds it (find_spec), never imports it."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.syspath_prepend(str(SITE))
    return


def test_candidate_engine_is_a_build_job_with_history(stand_in_site, tmp_path):
    manager = JobManager(tmp_path / "state", backends={"tensorrt": TensorRTBackend()}, event_interval_s=0.05)
    phases = []
    try:
        built = build_candidate_engine(manager, PRESET, on_progress=lambda phase, f: phases.append(phase))
        job = manager.get(built.job_id)
    finally:
        manager.close()
    assert "tensorrt" not in sys.modules or not hasattr(sys.modules["tensorrt"], "calls")
    assert job.state.value == "succeeded" and "for compare (layer-wise" in job.request.label
    assert built.plan.mark_all and built.plan.warnings == [MARKED_ENGINE_WARNING]
    about = read_engine(built.path)
    assert len(about["outputs"]) > 10 and Path(about["onnx"]).samefile(load_preset(PRESET).model_path)  # every tensor marked
    assert job.result.pin_check["counts"] == {"fp32": len(built.plan.spec.pinned_nodes)}
    assert any("not the engine you ship" in n for n in job.result.notes) and phases


def test_a_failed_candidate_build_names_the_job(stand_in_site, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TENSORRT_VERSION", "11.1.0")  # the preset targets 10.x
    manager = JobManager(tmp_path / "state", backends={"tensorrt": TensorRTBackend()})
    try:
        with pytest.raises(UserError, match=r"candidate engine was not built \(failed: .*targets TensorRT 10.x") as err:
            build_candidate_engine(manager, PRESET, outputs_only=True)
    finally:
        manager.close()
    assert "trt-tui builds show " in err.value.one_line()


def test_cli_compare_trt_builds_in_a_job_then_compares_the_engine(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SITE), str(ROOT / "src")]), "FAKE_TRT_ENGINE_RUNNER": "1",
           "TRT_TUI_HOME": str(tmp_path / "state")}  # fmt: skip
    onnx_model = load_preset(PRESET).model_path
    out = tmp_path / "cmp.json"
    proc = subprocess.run(
        [sys.executable, "-m", "trt_tui", "compare", str(onnx_model), "--candidate", f"trt:{PRESET}",
         "--outputs-only", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    # the stand-in engine runs ONNX Runtime FP32, so the comparison honestly finds nothing ran in fp16 (exit 2,
    # "NOTHING CHECKED"): what is checked here is the route, a build job then the engine compared
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    assert "trt10 fp16 +13 pinned (demo-fp16-good, outputs only)" in " ".join(proc.stdout.split())
    if proc.returncode == 2:
        assert "nothing ran in fp16" in proc.stderr and "\n" not in proc.stderr.strip()
    else:
        assert json.loads(out.read_text())["tensors"]
    jobs = list((tmp_path / "state" / "builds").iterdir())
    assert len(jobs) == 1 and (jobs[0] / "engine.plan").is_file()  # the build is in the history

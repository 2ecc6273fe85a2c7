"""The Parity screen's TensorRT-from-preset candidates: the marked-engine warning in the status line, the
one-line refusal without TensorRT, and a run in a subprocess with stand-ins for TensorRT (nothing is built):
the engine is built by a build job, compared in a child process, and TensorRT never enters the app process."""

import importlib.util
from pathlib import Path

import pytest
from textual.widgets import Select, Static

from tests.ui.helpers import SIZE, make_app, settle

PRESET = Path(__file__).resolve().parents[2] / "presets" / "demo_fp16.toml"


def _status(app) -> str:
    return str(app.screen.query_one("#parity-status", Static).content)


async def test_layer_wise_choice_warns_and_missing_tensorrt_is_one_notification(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the refusal cannot be shown")
    app = make_app(preset=PRESET, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        select = app.screen.query_one("#parity-candidate", Select)
        select.value = "trt"
        await pilot.pause()
        assert "marked engine ≠ shipped engine" in _status(app) and "outputs-only" in _status(app)
        select.value = "trt-outputs"
        await pilot.pause()
        assert "press r to run" in _status(app)
        await pilot.press("r")
        await settle(app, pilot)
        assert not app.screen.running
        assert any("TensorRT Python package is not installed" in str(n.message) for n in app._notifications)


APP_SCRIPT = """
import asyncio, json, sys
from textual.widgets import Select, Static
from tests.ui.helpers import SIZE, make_app, settle

async def main(preset, tmp):
    app = make_app(preset=preset, tmp_path=tmp)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        app.screen.query_one("#parity-candidate", Select).value = "trt"
        await pilot.pause()
        await pilot.press("r")
        await settle(app, pilot)
        result = app.screen.result
        jobs = [j.to_json() for j in app.build_manager.jobs()] if app.build_manager else []
        print(json.dumps({"tensorrt_imported": "tensorrt" in sys.modules, "candidate": result and result.candidate,
                          "tensors": len(result.tensors) if result else 0, "jobs": jobs,
                          "status": str(app.screen.query_one("#parity-status", Static).content)}))

from pathlib import Path
asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
"""


def test_trt_candidate_builds_in_a_job_and_tensorrt_never_enters_the_app_process(tmp_path):
    """The app runs in a subprocess whose `import tensorrt` WOULD succeed (the stand-in package of
    tests/fixtures/fake_trt_site, a test double): the candidate's engine is built by a build job's child and
    compared in a child (there with a stand-in engine runner: ONNX Runtime on what the stand-in engine was
    parsed from); the app process itself never imports tensorrt."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    site = root / "tests" / "fixtures" / "fake_trt_site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(root), str(root / "src")]),
           "FAKE_TRT_ENGINE_RUNNER": "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", APP_SCRIPT, str(PRESET), str(tmp_path)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["tensorrt_imported"] is False
    assert seen["candidate"] and seen["candidate"].startswith("trt10 fp16") and seen["tensors"] > 10, seen["status"]
    assert "marked engine ≠ shipped engine" in seen["status"]
    (job,) = seen["jobs"]  # the candidate's build is in the app's build queue and history
    assert job["state"] == "succeeded" and job["backend"] == "tensorrt" and "for compare" in job["label"]

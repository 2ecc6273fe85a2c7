"""The Parity screen's TensorRT-from-preset candidates: the marked-engine warning in the status line, the
one-line refusal without TensorRT, and a run through the stand-in runner (tests/fixtures/stand_in_trt_runner.py:
ONNX Runtime in place of the engine; nothing is built)."""

import importlib.util
from pathlib import Path

import pytest
from textual.widgets import Select, Static

from tests.fixtures.stand_in_trt_runner import stand_in_trt_runner
from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.ui.screens import parity

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
        assert any("TensorRT is not installed" in str(n.message) for n in app._notifications)


async def test_layer_wise_run_through_the_stand_in_keeps_the_warning(tmp_path, monkeypatch):
    calls = stand_in_trt_runner(monkeypatch)
    monkeypatch.setattr(parity, "require_tensorrt", lambda what: None)
    app = make_app(preset=PRESET, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        app.screen.query_one("#parity-candidate", Select).value = "trt"
        await pilot.pause()
        await pilot.press("r")
        await settle(app, pilot)
        assert app.screen.result is not None, _status(app)
        assert "marked engine ≠ shipped engine" in _status(app) and app.screen.result.passed
        spec, plan, same_model = calls[0]
        assert spec.kind == "trt" and spec.preset is app.workspace.preset and plan.mark_all and same_model

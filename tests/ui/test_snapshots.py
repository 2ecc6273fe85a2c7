"""Snapshots of every screen at a fixed size (sync tests: snap_compare runs its own loop).

Deterministic: fixed backends, no keymap file, no timings on screen, relative paths only.
Update with `pytest tests/ui/test_snapshots.py --snapshot-update` and review the SVGs.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.ui.helpers import make_app, settle
from trt_tui.core.parity.engine import BatchUpdate
from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.resources import demo_model_path, demo_preset_path
from trt_tui.ui.messages import ParityBatch

SIZE = (140, 40)
CONTRACTS = Path(__file__).parents[2] / "contracts"


@pytest.fixture
def demo_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


def _app(preset, tmp_path):
    return make_app(preset=preset, tmp_path=tmp_path, build_state_dir=tmp_path / "state")


def _press(*keys):
    async def run_before(pilot):
        await settle(pilot.app, pilot)
        for key in keys:
            await pilot.press(key)
        await settle(pilot.app, pilot)

    return run_before


def test_model_screen(snap_compare, demo_preset, tmp_path):
    assert snap_compare(_app(demo_preset, tmp_path), run_before=_press("down", "down"), terminal_size=SIZE)


def test_model_screen_filtered(snap_compare, demo_preset, tmp_path):
    keys = ("slash", *"norm", "enter")
    assert snap_compare(_app(demo_preset, tmp_path), run_before=_press(*keys), terminal_size=SIZE)


def test_preset_screen(snap_compare, demo_preset, tmp_path):
    assert snap_compare(_app(demo_preset, tmp_path), run_before=_press("2"), terminal_size=SIZE)


def test_builds_screen(snap_compare, demo_preset, tmp_path):
    async def run_before(pilot):
        await _press("3")(pilot)
        # backend availability depends on the machine: show a fixed line
        pilot.app.screen.query_one("#builds-backends").update(" tensorrt ✗ trtexec ✗ emulate ✓")
        await pilot.pause()

    assert snap_compare(_app(demo_preset, tmp_path), run_before=run_before, terminal_size=SIZE)


def test_parity_screen_with_rows(snap_compare, demo_preset, tmp_path):
    async def run_before(pilot):
        await _press("4")(pilot)
        app = pilot.app
        rng = np.random.default_rng(0)
        drifts = []
        for i, node in enumerate(app.workspace.index.nodes[:30]):
            ref = rng.standard_normal((4, 8)).astype(np.float32)
            cand = ref + rng.standard_normal((4, 8)).astype(np.float32) * 10 ** (-4 + i / 10)
            d = tensor_drift(node.outputs[0], ref, cand, Tolerance(atol=1e-3, rtol=1e-3, stat="median"))
            d.node, d.op_type, d.topo_index = node.name, node.op_type, node.topo_index
            drifts.append(d)
        app.screen.post_message(ParityBatch(BatchUpdate(0, 1, drifts, 30, 30, 0.0)))
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()

    assert snap_compare(_app(demo_preset, tmp_path), run_before=run_before, terminal_size=SIZE)


def test_streaming_screen(snap_compare, demo_preset, tmp_path):
    async def run_before(pilot):
        await _press("5")(pilot)
        pilot.app.screen.query_one("#stream-contract").value = "contracts/demo_streaming_encoder.contract.json"
        await pilot.pause()

    assert snap_compare(_app(demo_preset, tmp_path), run_before=run_before, terminal_size=SIZE)


def test_help_screen(snap_compare, demo_preset, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-config")  # the help screen shows the keymap path
    monkeypatch.delenv("TRT_TUI_KEYMAP", raising=False)
    app = make_app(preset=demo_preset, build_state_dir=tmp_path / "state")
    assert snap_compare(app, run_before=_press("question_mark"), terminal_size=SIZE)


# The same screens at the smallest size the TUI supports and at a large one (issue 18 item 8).
SIZES = {"100x30": (100, 30), "160x48": (160, 48)}


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("keys", [("down", "down"), ("2",), ("3",), ("L",)], ids=["model", "preset", "builds", "messages"])
def test_screens_at_sizes(snap_compare, demo_preset, tmp_path, size, keys):
    async def run_before(pilot):
        await _press(*keys)(pilot)
        if keys == ("3",):
            pilot.app.screen.query_one("#builds-backends").update(" tensorrt ✗ trtexec ✗ emulate ✓")
            await pilot.pause()

    assert snap_compare(_app(demo_preset, tmp_path), run_before=run_before, terminal_size=SIZES[size])


@pytest.mark.parametrize("size", sorted(SIZES))
def test_streaming_failure_at_sizes(snap_compare, demo_preset, tmp_path, size, monkeypatch):
    """A failed stream: the error stays in the status line (wrapped, not cut), the bar stops; the chunks
    placeholder is whole."""
    import trt_tui.ui.screens.streaming as streaming
    from trt_tui.core.errors import UserError

    def stream_all(setup, **_kw):
        raise UserError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: "
                        "audio_signal for the following indices index: 2 Got: 9 Expected: 8")  # fmt: skip

    monkeypatch.setattr(streaming, "stream_all", stream_all)

    async def run_before(pilot):
        await _press("5")(pilot)
        pilot.app.screen.query_one("#stream-contract").value = "contracts/demo_streaming_encoder.contract.json"
        shutil.copytree(CONTRACTS, tmp_path / "contracts")
        await _press("r")(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(_app(demo_preset, tmp_path), run_before=run_before, terminal_size=SIZES[size])


@pytest.mark.parametrize("size", sorted(SIZES))
def test_help_screen_at_sizes(snap_compare, demo_preset, tmp_path, size, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-config")  # the help screen shows the keymap path
    monkeypatch.delenv("TRT_TUI_KEYMAP", raising=False)
    assert snap_compare(_app(demo_preset, tmp_path), run_before=_press("question_mark"), terminal_size=SIZES[size])

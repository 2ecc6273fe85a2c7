"""Issue 13 item 3: for the same model, preset, candidate and pins, the Parity screen builds the same
ComparisonRequest as `trt-tui compare MODEL --preset P ...` (compared whole, in its serialised form), so the
TUI honours the preset's profile OPT shapes (a dynamic batch does not fall to 1) and its tolerances."""

from pathlib import Path

import pytest

from tests.ui.helpers import SIZE, make_app, pin_op_type, settle
from trt_tui.cli import build_parser
from trt_tui.commands.compare import request_from_args
from trt_tui.core.backends import BackendStatus
from trt_tui.ui.screens.parity import ParityScreen, parity_request

PRESET = Path(__file__).resolve().parents[2] / "presets" / "demo_fp16.toml"
MODEL = (PRESET.parent / "../src/trt_tui/data/demo_streaming_encoder.onnx").resolve()


def cli_request(*flags: str):
    return request_from_args(build_parser().parse_args(["compare", str(MODEL), "--preset", str(PRESET), *flags]))


async def _tui_request(app, pilot, choice: str):
    await pilot.press("4")
    screen = app.screen
    assert isinstance(screen, ParityScreen)
    screen.query_one("#parity-candidate").value = choice
    await pilot.pause()
    settings = screen.request_settings()
    assert settings is not None
    return parity_request(**settings)


@pytest.mark.parametrize(("choice", "flags"), [("emulate", []), ("mixed", ["--candidate", "mixed"]),
                                                 ("trt", ["--candidate", "trt"]),
                                                 ("trt-outputs", ["--candidate", "trt", "--outputs-only"])])  # fmt: skip
async def test_parity_screen_builds_the_request_compare_builds(choice, flags, tmp_path, monkeypatch):
    import trt_tui.ui.screens.parity as parity

    # a TensorRT candidate asks THE availability probe first; say yes (nothing is built: only the requests)
    monkeypatch.setattr(parity, "tensorrt_status", lambda: BackendStatus("TensorRT", True, "stand-in"))
    app = make_app(preset=PRESET, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        tui = await _tui_request(app, pilot, choice)
    cli = cli_request(*flags)
    assert tui.to_json() == cli.to_json()
    assert tui.candidate == cli.candidate and tui.inputs == cli.inputs and tui.options == cli.options
    assert tui.inputs.shapes["audio_signal"] == (64, 32, 8) and tui.inputs.shapes["length"] == (64,)  # OPT batch, not 1
    assert tui.options.tolerances == cli.resolved.tolerances and len(tui.candidate.pins) == 13
    if choice.startswith("trt"):  # the same engine: EngineSpec of the same preset, marked or not
        assert tui.to_json()["candidate"]["engine"]["mark_all_outputs"] is (choice == "trt")


async def test_pins_edited_in_the_tui_equal_the_pin_flags(tmp_path):
    """No preset: the workspace's pin rules are the --pin-op flags."""
    app = make_app(MODEL, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pin_op_type(app, pilot, "LayerNormalization")
        tui = await _tui_request(app, pilot, "emulate")
    cli = request_from_args(build_parser().parse_args(["compare", str(MODEL), "--pin-op", "LayerNormalization"]))
    assert tui.to_json() == cli.to_json() and len(tui.candidate.pins) == 10


async def test_search_dialog_takes_the_request_search_builds(tmp_path, monkeypatch):
    """`trt-tui search MODEL --preset P --samples 2` and the Parity screen's search dialog (2 samples) search
    on equal requests: the preset's seed, OPT shapes and tolerances (the target when none is typed)."""
    from textual.widgets import Input

    import trt_tui.core.search.session as session
    from trt_tui.cli import main
    from trt_tui.core.errors import UserError
    from trt_tui.ui.screens.search import SearchScreen

    seen = []

    def capture(request, **search):  # stands in for the search itself: only the requests are compared
        seen.append((request, search))
        raise UserError("captured")

    monkeypatch.setattr(session, "search_request", capture)
    assert main(["search", str(MODEL), "--preset", str(PRESET), "--samples", "2"]) == 2
    app = make_app(preset=PRESET, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one("#search-samples", Input).value = "2"
        app.screen.action_start()
        await settle(app, pilot)
    (cli, cli_search), (tui, tui_search) = seen
    assert tui.to_json() == cli.to_json()
    assert [(s["targets"], s["samples"], s["budget"]) for s in (cli_search, tui_search)] == [([], [], None)] * 2
    assert tui.inputs.iterations == 2 and tui.inputs.shapes["audio_signal"] == (64, 32, 8)
    assert session.search_policy(tui) == cli.resolved.tolerances

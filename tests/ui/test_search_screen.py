"""The pin search dialog on the Parity screen: target in, live rows, apply marks the preset unsaved."""

from textual.widgets import Checkbox, DataTable, Input, Static

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.ui.screens.search import SearchScreen


async def run_search(app, pilot, target: str, *, minimal: bool = False) -> SearchScreen:
    """Open the dialog from the Parity screen (4, then s), type the target, start (Enter), wait."""
    await settle(app, pilot)
    await pilot.press("4")
    await pilot.press("s")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    screen.query_one("#search-target", Input).value = target
    screen.query_one("#search-minimal", Checkbox).value = minimal
    screen.query_one("#search-target", Input).focus()
    await pilot.press("enter")
    return screen


async def test_search_dialog_runs_and_applies_to_the_preset(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_search(app, pilot, "log_probs:rel_rms<=2.5e-4")
        await settle(app, pilot)
        result = screen.result
        assert result is not None and result.passed and result.pins
        rows = screen.query_one("#search-log", DataTable).row_count
        assert rows == result.evaluations + 1  # the FP32 check, then one row per evaluation
        assert "found a passing pin set" in str(screen.query_one("#search-status", Static).content)
        assert not app.workspace.dirty
        await pilot.press("a")
        await pilot.pause()
        assert sorted(app.workspace.selection.pinned) == sorted(result.pins)
        assert app.workspace.dirty and app.workspace.preset is not None
        assert app.workspace.preset.comparison.targets == ["log_probs:rel_rms<=2.5e-4"]  # as search -o writes it
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SearchScreen)


async def test_search_dialog_without_target_or_preset_says_so(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#search-target", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert not app.screen.running and app.screen.result is None


async def test_search_dialog_minimal_box_runs_the_one_by_one_pass(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_search(app, pilot, "log_probs:rel_rms<=1.6e-4", minimal=True)
        await settle(app, pilot)
        result = screen.result
        assert result is not None and result.passed
        assert any(e["phase"] == "minimal" for e in result.log)

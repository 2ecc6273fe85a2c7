"""The pin search dialog on the Parity screen: target in, live rows, apply marks the preset unsaved."""

from textual.widgets import Checkbox, DataTable, Input, Static

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.ui.screens.search import SearchScreen


async def open_search(app, pilot) -> SearchScreen:
    """Open the dialog from the Parity screen (4, then s)."""
    await settle(app, pilot)
    await pilot.press("4")
    await pilot.press("s")
    await pilot.pause()
    assert isinstance(app.screen, SearchScreen)
    return app.screen


async def run_search(app, pilot, target: str, *, minimal: bool = False) -> SearchScreen:
    """Open the dialog, type the target, start (Enter); the caller waits (settle)."""
    screen = await open_search(app, pilot)
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
        await open_search(app, pilot)
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


async def test_a_budget_or_sample_count_that_is_no_count_is_refused_in_place(demo_model, tmp_path):
    """The budget Input (type integer) takes a lone '-': int('-') raised in the key handler and the app
    crashed; samples '0' said '--iterations must be at least 1' (a flag of another command)."""
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(app, pilot)
        screen.query_one("#search-target", Input).value = "log_probs:rel_rms<=1e-4"
        for field, text in (("#search-budget", "-"), ("#search-budget", "0"), ("#search-samples", "0")):
            screen.query_one("#search-budget", Input).value = ""
            screen.query_one("#search-samples", Input).value = "1"
            screen.query_one(field, Input).value = text
            screen.query_one("#search-target", Input).focus()
            await pilot.press("enter")
            await settle(app, pilot)
            assert app.screen is screen and not screen.running and screen.result is None
        notes = [str(n.message) for n in app._notifications]
        assert sum("budget is a number of evaluations" in n for n in notes) == 2
        assert any("at least 1 random sample" in n for n in notes) and not any("--iterations" in n for n in notes)


async def test_counts_int_takes_run_and_digits_it_cannot_read_are_no_crash(demo_model, tmp_path):
    """The budget Input (type integer) takes '1_0' and '+5', which int() reads (the search ran with them before
    the check for '-' refused them as 'no number'); a samples text of digits int() cannot read ('²':
    str.isdigit, not isdecimal) raised ValueError in the key handler and the app crashed."""
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_search(app, pilot, "log_probs:rel_rms<=2.5e-4")
        await settle(app, pilot)
        for budget in ("1_0", "+5"):
            screen.query_one("#search-budget", Input).value = budget
            screen.query_one("#search-target", Input).focus()
            await pilot.press("enter")
            await settle(app, pilot)
            assert screen.result is not None and screen.result.budget == int(budget), budget
        screen.query_one("#search-budget", Input).value = ""
        screen.query_one("#search-samples", Input).value = "\u00b2"
        screen.query_one("#search-target", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.is_running and app.screen is screen and not screen.running

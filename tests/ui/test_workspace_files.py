"""The workspace and the preset's file: save keeps comments, outside changes ask, save-as renames, quit asks,
and the app closes the build queue it owns."""

import shutil

from textual.widgets import Input, Select

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.preset import load_preset
from trt_tui.core.resources import demo_model_path, demo_preset_path
from trt_tui.ui.widgets.choice_prompt import ChoicePrompt
from trt_tui.ui.widgets.save_as_prompt import SaveAsPrompt


def _demo_preset(tmp_path):
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


async def _edit_precision(app, pilot, value="bf16"):
    await pilot.press("2")
    await settle(app, pilot)
    app.screen.query_one("#preset-precision", Select).value = value
    await pilot.pause()


async def test_ctrl_s_keeps_comments_and_asks_on_outside_change(tmp_path):
    preset = _demo_preset(tmp_path)
    header = [line for line in preset.read_text().splitlines() if line.startswith("#")]
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await _edit_precision(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = preset.read_text()
        assert header and all(line in text for line in header) and 'mode = "bf16"' in text
        # another program edits the file; our next save asks
        preset.write_text(text.replace('seed = 1', 'seed = 7'))
        await _edit_precision(app, pilot, "fp16")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePrompt) and "seed = 7" in preset.read_text()
        await pilot.press("r")  # reload: the file wins, the edit is dropped
        await settle(app, pilot)
        assert app.workspace.preset.comparison.seed == 7 and not app.workspace.dirty
        await _edit_precision(app, pilot, "fp16")
        preset.write_text(preset.read_text() + "# touched\n")
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("o")  # overwrite
        await pilot.pause()
        assert 'mode = "fp16"' in preset.read_text() and not app.workspace.dirty


async def test_save_as_offers_a_new_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await _edit_precision(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, SaveAsPrompt)
        assert prompt.query_one("#save-name", Input).value == "demo-fp16-good"
        prompt.query_one("#save-path", Input).value = str(tmp_path / "my_bf16.toml")
        await pilot.pause()
        assert prompt.query_one("#save-name", Input).value == "my_bf16"  # follows the file name
        prompt.query_one("#save-path", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        saved = load_preset(tmp_path / "my_bf16.toml")
        assert saved.name == "my_bf16" and saved.precision.mode == "bf16"
        assert (tmp_path / "my_bf16.toml").read_text().startswith("#")  # the header comments came along
        assert app.workspace.preset_path == str(tmp_path / "my_bf16.toml") and not app.workspace.dirty


async def test_quit_with_unsaved_edits_asks(tmp_path):
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await _edit_precision(app, pilot)
        await pilot.press("1")
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePrompt) and app.is_running
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.workspace.dirty
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePrompt)
        await pilot.press("s")  # save, then quit
        await settle(app, pilot)
        assert not app.is_running
    assert load_preset(preset).precision.mode == "bf16"


async def test_quit_without_edits_is_immediate_and_closes_the_build_queue(tmp_path):
    app = make_app(preset=_demo_preset(tmp_path), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")  # the Builds screen opens the app's job manager
        await settle(app, pilot)
        manager = app.build_manager
        assert manager is not None and app.screen.manager is manager
        await pilot.press("q")
        await pilot.pause()
    assert manager._closed

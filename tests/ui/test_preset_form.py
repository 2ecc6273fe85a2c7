"""Every preset field is editable from the Preset screen: dims per profile, target migration, tolerances,
engine path, IO formats, 10.x flags; fields have focus keys; the export is copied or written."""

import shutil
from pathlib import Path

from textual.widgets import Input, Select, Switch

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.preset import load_preset
from trt_tui.core.resources import demo_model_path, demo_preset_path


def _demo_preset(tmp_path):
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


async def _preset_screen(app, pilot):
    await settle(app, pilot)
    await pilot.press("2")
    await settle(app, pilot)
    return app.screen


async def test_fields_edit_the_preset_and_save(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _preset_screen(app, pilot)
        assert not app.workspace.dirty
        dims = list(screen.query(".dim-input"))
        assert dims, "the demo model has dynamic dims: one min,opt,max field each"
        await pilot.press("m")  # focus key of the dims
        assert screen.focused is dims[0]
        dims[0].value = "1,8,16"
        await pilot.pause()
        screen.set_focus(None)  # keys reach the screen only when no input has focus (Tab / a click moves it)
        await pilot.press("g")  # engine path
        assert screen.focused.id == "preset-engine"
        screen.query_one("#preset-engine", Input).value = "out/demo.plan"
        screen.query_one("#preset-atol", Input).value = "0.002"
        screen.query_one("#preset-stat", Select).value = "max"
        screen.query_one("#preset-io_formats", Select).value = "none"
        screen.query_one("#preset-infinities", Switch).value = True  # [comparison] infinities_compare_equal
        await pilot.pause()
        p = app.workspace.preset
        assert p.comparison.infinities_compare_equal and p.comparison.tolerance_policy().default.infinities_equal
        assert app.workspace.dirty and p.builder.engine == "out/demo.plan" and p.io.formats == "none"
        assert p.comparison.default.atol == 0.002 and p.comparison.default.stat == "max"
        assert p.profiles[0].dims[screen._dims_shown[0][0]] == (1, 8, 16)
        screen.query_one("#preset-atol", Input).value = "nan"
        await pilot.pause()
        assert "atol" in str(screen.query_one("#preset-problems").render()) and p.comparison.default.atol == 0.002
        screen.query_one("#preset-atol", Input).value = "0.002"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = load_preset(preset)
        assert saved.builder.engine == "out/demo.plan" and saved.profiles[0].dims and saved.io.formats == "none"
        assert saved.comparison.infinities_compare_equal


async def test_switching_target_migrates_and_says_what_changed(tmp_path):
    app = make_app(preset=_demo_preset(tmp_path), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _preset_screen(app, pilot)
        assert app.workspace.preset.precision.constraints == "obey"
        await pilot.press("t")
        assert screen.focused.id == "preset-trt"
        screen.query_one("#preset-trt", Select).value = 11
        await settle(app, pilot)
        p = app.workspace.preset
        assert p.trt == 11 and p.precision.constraints is None and p.precision.force_low_precision is None
        note = [n for n in app._notifications if "migrated to TensorRT 11" in n.title][-1]
        assert "precision.constraints" in note.message and "force_low_precision" in note.message
        assert "10.x-only" not in str(screen.query_one("#preset-problems").render())
        assert screen.query_one("#preset-constraints", Select).value == "unset"


async def test_export_copy_write_and_no_wrap(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(preset=_demo_preset(tmp_path), tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _preset_screen(app, pilot)
        text = screen._export_text
        assert text and "--onnx=demo_streaming_encoder.onnx" in text  # relative to where the user runs it
        await pilot.press("y")
        assert app.clipboard == text
        await pilot.press("w")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(tmp_path / "build.sh")
        await pilot.press("enter")
        await pilot.pause()
        assert Path(tmp_path / "build.sh").read_text() == text
        longest = max(len(line) for line in text.splitlines())
        assert screen.query_one("#preset-export-text").size.width >= longest  # scrolls sideways, no wrap


async def test_visiting_the_preset_screen_without_a_preset_creates_nothing(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _preset_screen(app, pilot)
        await pilot.pause()
        assert app.workspace.preset is None and not app.workspace.dirty
        app.screen.query_one("#preset-precision", Select).value = "bf16"
        await pilot.pause()
        assert app.workspace.preset is not None and app.workspace.dirty


async def test_preview_paths_match_the_cli_and_are_absolute_outside_the_cwd(tmp_path, monkeypatch, capsys):
    """One rule for the TUI and `trt-tui preset export`: relative inside the current directory, else absolute."""
    from trt_tui.cli import main

    preset = _demo_preset(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the model and preset are outside the cwd
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _preset_screen(app, pilot)
        text = screen._export_text
    assert "../" not in text and f"--onnx={tmp_path / 'demo_streaming_encoder.onnx'}" in text
    assert main(["preset", "export", str(preset), "-f", "trtexec"]) == 0
    assert capsys.readouterr().out == text


async def test_pin_output_types_memory_pools_and_per_output_tolerances(tmp_path, monkeypatch):
    """The last preset fields without a widget: edited, validated like the rest, saved, shown in the export."""
    from textual.widgets import TextArea

    monkeypatch.chdir(tmp_path)
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _preset_screen(app, pilot)
        problems = lambda: str(screen.query_one("#preset-problems").render())  # noqa: E731
        assert screen.query_one("#preset-pin_output_types", Select).value == "yes"  # the demo pins them
        await pilot.press("u")
        assert screen.focused.id == "preset-pin_output_types"
        screen.query_one("#preset-pin_output_types", Select).value = "no"
        await pilot.pause()
        p = app.workspace.preset
        assert p.precision.pin_output_types is False and "--layerOutputTypes" not in screen._export_text

        screen.set_focus(None)
        await pilot.press("b")
        pools = screen.query_one("#preset-memory_pools", Input)
        assert screen.focused is pools
        pools.value = "workspace=abc"
        await pilot.pause()
        assert "memory pools: write POOL=MiB" in problems()
        pools.value = "sram=64"  # syntax fine, unknown pool: the core's validation says so, like a file would
        await pilot.pause()
        assert "builder.memory_pools.sram" in problems() and "unknown pool" in problems()
        pools.value = "workspace=1024"
        await pilot.pause()
        assert p.builder.memory_pools == {"workspace": 1024} and "--memPoolSize=workspace:1024" in screen._export_text

        screen.set_focus(None)
        await pilot.press("v")
        outputs = screen.query_one("#preset-outputs", TextArea)
        assert screen.focused is outputs
        outputs.load_text("^log_probs$ atol=0.01 stat=max\n[ rtol=0.5")
        await pilot.pause()
        assert "comparison.outputs[1].pattern" in problems()  # a bad regex: the core's check
        outputs.load_text("^log_probs$ atol=0.01 stat=max\ncache rtol=x")
        await pilot.pause()
        assert "per-output tolerance line 2: rtol: not a number" in problems()
        outputs.load_text("^log_probs$ atol=0.01 stat=max\ncache rtol=0.5")
        await pilot.pause()
        rules = [(o.pattern, o.tolerance.atol, o.tolerance.rtol, o.tolerance.stat) for o in p.comparison.outputs]
        default = p.comparison.default
        assert rules == [("^log_probs$", 0.01, default.rtol, "max"), ("cache", default.atol, 0.5, default.stat)]
        assert "✗" not in problems()
        await pilot.press("ctrl+s")
        await pilot.pause()
    saved = load_preset(preset)
    assert saved.precision.pin_output_types is False and saved.builder.memory_pools == {"workspace": 1024}
    assert [(o.pattern, o.tolerance.atol, o.tolerance.stat) for o in saved.comparison.outputs] == [
        ("^log_probs$", 0.01, "max"), ("cache", saved.comparison.default.atol, saved.comparison.default.stat)]


async def test_io_and_profile_tables_keep_formats_and_min_opt_max_at_100x30(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(preset=_demo_preset(tmp_path), tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _preset_screen(app, pilot)
        await pilot.pause()
        for table_id, last in (("#preset-io", "fmt"), ("#preset-profiles", "max")):
            table = screen.query_one(table_id)
            widths = table._layout()
            upto = [c.key for c in table.columns].index(last) + 1
            shown = sum(w + table.CELL_GAP for w in widths[:upto] if w)
            assert table.row_count and shown <= table.scrollable_content_region.width, (table_id, widths, table.size)
            assert all(widths[:upto]), (table_id, widths)

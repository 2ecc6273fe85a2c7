import shutil
from pathlib import Path

from textual.widgets import Select

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.resources import demo_model_path, demo_preset_path
from trt_tui.ui.widgets.fast_table import FastTable


def _demo_preset(tmp_path):
    shutil.copy(demo_model_path(), tmp_path / demo_model_path().name)
    return shutil.copy(demo_preset_path(), tmp_path / "demo.toml")


async def test_preset_edit_validates_and_previews_live(tmp_path):
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.workspace.index is not None and len(app.workspace.selection) == 13 and not app.workspace.dirty
        await pilot.press("2")
        await settle(app, pilot)
        screen = app.screen
        preview = lambda: str(screen.query_one("#preset-export-text").render())  # noqa: E731
        assert "--fp16" in preview() and "--builderOptimizationLevel=0" in preview()
        assert screen.query_one("#preset-io", FastTable).row_count == 10
        assert screen.query_one("#preset-profiles", FastTable).row_count == 5
        screen.query_one("#preset-precision", Select).value = "bf16"
        await pilot.pause()
        assert app.workspace.dirty and "--bf16" in preview()
        await pilot.press("e")  # next export format: a script
        assert "trtexec" in preview() and screen.export_format == "script"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not app.workspace.dirty
        assert 'mode = "bf16"' in preset.read_text()


async def test_build_current_preset_with_the_cpu_preview(tmp_path):
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path, build_state_dir=tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen, job_id, job = await _build_with_cpu_preview(app, pilot)
        app.build_manager.hub.flush()
        await settle(app, pilot)
        assert "succeeded" in str(screen.query_one("#jobs", FastTable).get_cell(job_id, "state"))
        assert "succeeded" in str(screen.query_one("#builds-result").render())
        app.build_manager.close()


async def test_diff_vs_file_lists_the_edits(tmp_path):
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        app.screen.query_one("#preset-precision", Select).value = "bf16"
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        last = list(app._notifications)[-1]
        assert last.title == "vs demo.toml"
        assert last.message == "precision.mode: 'fp16' -> 'bf16'"


async def test_build_unsaved_edits_without_saving(tmp_path):
    preset = _demo_preset(tmp_path)
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        app.screen.query_one("#preset-precision", Select).value = "bf16"
        await pilot.pause()
        assert app.workspace.dirty
        screen, job_id, job = await _build_with_cpu_preview(app, pilot)
        assert job.request.unsaved_edits and job.request.settings["precision"] == "bf16"
        assert 'mode = "bf16"' in (Path(job.build_dir) / "preset.toml").read_text()
        assert 'mode = "fp16"' in preset.read_text() and app.workspace.dirty  # building saved nothing
        messages = [n.message for n in app._notifications]
        assert any(m.startswith(f"building unsaved edits of demo.toml: build {job_id} queued") for m in messages)
        app.build_manager.hub.flush()
        await settle(app, pilot)
        assert "unsaved edits of demo.toml" in str(screen.query_one("#builds-result").render())
        assert str(screen.query_one("#jobs", FastTable).get_cell(job_id, "preset")).startswith("● ")
        app.build_manager.close()


async def _build_with_cpu_preview(app, pilot):
    """From the Builds screen, build the current preset with the emulate backend and wait for it to succeed."""
    await pilot.press("3")
    await settle(app, pilot)
    screen = app.screen
    screen.query_one("#builds-backend", Select).value = "emulate"
    await pilot.pause()
    await pilot.press("b")
    await settle(app, pilot)
    job_id = screen.shown_job
    assert job_id is not None
    job = app.build_manager.wait(job_id, timeout=60)
    assert job.state.value == "succeeded", job.result
    return screen, job_id, job


async def test_build_history_shows_progress_in_words_and_files_follow_the_umask(tmp_path):
    import os
    import stat

    from textual.widgets import Log

    preset = _demo_preset(tmp_path)
    old = os.umask(0o022)
    try:
        app = make_app(preset=preset, tmp_path=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen, job_id, job = await _build_with_cpu_preview(app, pilot)
            assert "@@trt_tui" in (Path(job.build_dir) / "build.log").read_text()  # the file keeps them raw
            screen.show_job(job_id)  # reopened from the history, as after a restart
            await pilot.pause()
            shown = "\n".join(screen.query_one("#builds-log", Log).lines)
            assert "@@trt_tui" not in shown and "» " in shown
            made = [p for p in Path(job.build_dir).iterdir() if p.is_file()]
            assert made and all(stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044 for p in made if p.suffix in (".toml", ".json", ".onnx"))
            app.build_manager.close()
    finally:
        os.umask(old)


async def test_a_flood_of_log_lines_reaches_the_log_in_bounded_flushes(tmp_path):
    """10^5 lines/s from a verbose build: the widget gets the newest lines and a note of what was skipped."""
    from textual.widgets import Log

    from trt_tui.core.build import LogLines
    from trt_tui.ui.messages import BuildEvents
    from trt_tui.ui.screens.builds import LOG_FLUSH_MAX

    app = make_app(tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        screen = app.screen
        screen.shown_job = "flood"
        for k in range(5):
            screen.post_message(BuildEvents([LogLines("flood", tuple(f"line {k * 2000 + i}" for i in range(2000)))]))
        await pilot.pause(0.3)
        lines = screen.query_one("#builds-log", Log).lines
        assert lines[-1] == "line 9999" and len(lines) <= LOG_FLUSH_MAX + 1
        assert "arrived faster than shown" in lines[0]

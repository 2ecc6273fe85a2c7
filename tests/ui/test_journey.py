"""The core journey on the demo model, and bad input shown without crashing."""

from trt_tui.core.preset import load_preset
from tests.ui.helpers import SIZE, make_app, pin_op_type, settle
from trt_tui.ui.screens.parity import ParityScreen
from trt_tui.ui.widgets.drift_details import DriftDetails
from trt_tui.ui.widgets.drift_table import DriftTable


async def test_open_pin_save_compare_drill_pin_rerun(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # pin all LayerNormalization from the op table
        await pin_op_type(app, pilot, "LayerNormalization")
        assert len(app.workspace.selection) == 10
        # save a preset
        saved = app.workspace.save_preset(tmp_path / "mine.toml")
        assert saved is not None and not app.workspace.dirty
        assert load_preset(saved).pins.op_types == ("LayerNormalization",)
        # run the emulated comparison
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, ParityScreen)
        await pilot.press("r")
        await settle(app, pilot)
        table = screen.query_one(DriftTable)
        assert table.row_count > 100 and screen.result is not None
        assert all(d.node for d in table.drifts.values())
        # drill down into a tensor whose node is not pinned
        target = next(d for d in table.drifts.values() if d.op_type == "MatMul")
        table.move_to_key(target.name)
        await pilot.pause()
        details = screen.query_one(DriftDetails)
        assert details.drift is target
        # pin its node from the parity table and re-run
        await pilot.press("p")
        await settle(app, pilot)
        assert app.workspace.selection.is_pinned(target.node) and app.workspace.dirty
        assert "+11 pinned" in screen.result.candidate
        assert screen.query_one(DriftTable).row_count > 100


async def test_failing_filter_sort_and_first_divergence(demo_model, tmp_path, monkeypatch):
    from trt_tui.core.parity.constants import DEFAULT_TOLERANCES

    # Polygraphy's 1e-5 elementwise instead of the fp16 default (which the benign demo passes): everything fails
    monkeypatch.setitem(DEFAULT_TOLERANCES, "fp16", (1e-5, 1e-5, "elemwise"))
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4", "r")
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one(DriftTable)
        first = screen.result.first_divergence
        assert first is not None and first.name in table.highlighted_keys
        await pilot.press("end", "n")
        assert table.cursor_key == first.name
        await pilot.press("f")
        assert table.row_count == len(screen.result.failed)
        await pilot.press("o")  # sort by rel_rms, worst first
        rows = [table.drifts[k].rel_rms for k in table.row_keys]
        assert rows == sorted(rows, reverse=True)


async def test_corrupt_model_and_bad_preset_are_notifications(models, tmp_path):
    app = make_app(models["truncated"], tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.is_running
        assert any("truncated" in str(n.message) for n in app._notifications)
        await pilot.press("4", "r")  # no model: a warning, not a crash
        assert app.is_running
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "x.onnx"\n[precision]\nmode = 16\n')
    app = make_app(preset=bad, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.is_running
        assert any("bad.toml" in str(n.message) for n in app._notifications)

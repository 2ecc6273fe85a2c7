from trt_tui.ui.widgets.fast_table import FastTable as DataTable

from trt_tui.ui.app import TrtTuiApp


async def test_app_lists_op_types_and_nodes(demo_model):
    app = TrtTuiApp(model_path=str(demo_model))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#nodes", DataTable).row_count == 147
        assert app.screen.query_one("#op-types", DataTable).row_count == 21  # "(all)" + 20 op types


async def test_app_reports_corrupt_model_without_crashing(models):
    app = TrtTuiApp(model_path=str(models["truncated"]))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert any("truncated" in str(n.message) for n in app._notifications)

from pathlib import Path

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.resources import demo_model_path
from trt_tui.ui.screens.streaming import StreamingScreen

CONTRACT = Path(__file__).parents[2] / "contracts" / "demo_streaming_encoder.contract.json"


async def test_streaming_check_fills_plots_live(tmp_path):
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, StreamingScreen)
        screen.query_one("#stream-contract").value = str(CONTRACT)
        screen.query_one("#stream-chunks").value = "8"
        await pilot.press("r")
        await settle(app, pilot)
        assert screen.report is not None and screen.report.chunks_run == 8
        assert len(screen.results) == 8 and "log_probs" in screen.series
        assert all(len(v) == 8 for v in screen.series.values())
        assert "chunks" in str(screen.query_one("#stream-status").render())


async def test_streaming_bad_contract_is_a_notification(tmp_path):
    bad = tmp_path / "bad.contract.json"
    bad.write_text("{not json")
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        app.screen.query_one("#stream-contract").value = str(bad)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.is_running and not app.screen.running
        assert any("bad.contract.json" in str(n.message) for n in app._notifications), [n.message for n in app._notifications]

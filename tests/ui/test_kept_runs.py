"""Parity results are kept in the state directory, reopened, compared side by side, exported for Model
Explorer, and their drift shows as a sortable column on the Model screen."""

import json

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.runstore import RunStore
from trt_tui.ui.screens.runs import RunDiffScreen, RunHistoryScreen
from trt_tui.ui.widgets.drift_table import DriftTable
from trt_tui.ui.widgets.node_table import NodeTable


async def test_keep_reopen_compare_export_and_drift_column(demo_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4", "r")
        await settle(app, pilot)
        await pilot.press("p")  # pin the node under the cursor and re-run: a second kept run
        await settle(app, pilot)
        store = RunStore(tmp_path / "state")
        runs = store.runs()
        assert len(runs) == 2 and runs[0].pins == runs[1].pins + 1
        screen = app.screen
        await pilot.press("h")
        await settle(app, pilot)
        history = app.screen
        assert isinstance(history, RunHistoryScreen) and history.query_one("#runs-table").row_count == 2
        await pilot.press("down", "space", "up", "c")  # A = the older run, B = the newer one
        await settle(app, pilot)
        diff = app.screen
        assert isinstance(diff, RunDiffScreen) and diff.changes and diff.query_one("#rundiff-table").row_count > 100
        assert {c.change for c in diff.changes} <= {"better", "worse", "same", "only in A", "only in B"}
        await pilot.press("escape")
        await pilot.press("h")
        await settle(app, pilot)
        await pilot.press("down", "enter")  # reopen the older run
        await settle(app, pilot)
        assert app.screen is screen and screen.run_id == runs[1].id
        assert screen.query_one(DriftTable).row_count == runs[1].compared
        assert runs[1].id in str(screen.query_one("#parity-status").render())
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        exported = json.loads((tmp_path / f"{demo_model.stem}.drift.json").read_text())
        assert len(exported["results"]) == runs[1].compared
        await pilot.press("1")
        await settle(app, pilot)
        table = app.screen.query_one(NodeTable)
        assert table.drift and len(table.drift) > 50
        await pilot.press("d")
        await settle(app, pilot)
        table.action_first()
        worst = max(table.drift.values())
        assert table.drift[table.node_at_cursor().name] == worst

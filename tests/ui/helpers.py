"""Shared helpers for the UI tests: a deterministic app and waiting on workers instead of sleeping."""

from __future__ import annotations

from trt_tui.core.backends import BackendStatus
from trt_tui.ui.app import TrtTuiApp

FIXED_BACKENDS = [
    BackendStatus("TensorRT", False, "not installed (test)"),
    BackendStatus("trtexec", False, "not on PATH (test)"),
]
SIZE = (140, 40)


def make_app(model=None, preset=None, tmp_path=None, **kwargs) -> TrtTuiApp:
    keymap = kwargs.pop("keymap_file", None)
    if keymap is None and tmp_path is not None:
        keymap = tmp_path / "no-keymap.toml"  # never read the developer's own keymap in tests
    if tmp_path is not None:
        kwargs.setdefault("build_state_dir", tmp_path / "state")  # never write build state into the checkout
    return TrtTuiApp(
        model_path=None if model is None else str(model),
        preset_path=None if preset is None else str(preset),
        backends=FIXED_BACKENDS,
        keymap_file=keymap,
        **kwargs,
    )


async def settle(app, pilot) -> None:
    """Wait until every worker finished and the resulting messages were handled."""
    for _ in range(20):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return


async def pin_op_type(app, pilot, op_type: str) -> None:
    """Pin every node of `op_type` the way a user does: cursor on its row in the op table, then `o`."""
    from trt_tui.ui.widgets.op_table import OpTypeTable

    ops = app.screen.query_one(OpTypeTable)
    ops.focus()
    ops.move_cursor(ops.get_row_index(op_type))
    await pilot.press("o")

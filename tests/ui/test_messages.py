"""Errors stay (a message log with the full text), progress stops on failure, and nothing from a model, a file
or the user is read as markup or reaches the terminal as a control sequence."""

import io

import onnx
from rich.console import Console
from onnx import TensorProto
from textual.widgets import ProgressBar

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.ui.screens.messages import MessageLogScreen
from trt_tui.ui.widgets.node_details import node_renderable
from trt_tui.ui.widgets.node_table import NodeTable

ORT_ERROR = "[ONNXRuntimeError] : 1 : FAIL : [ShapeInferenceError] (op_type:Reshape, node name: [/]x)"


def _hostile_model(path):
    g = GraphBuilder("hostile")
    x = g.input("x", TensorProto.FLOAT, [2, 8])
    h = g.op("MatMul", [x, g.weight((8, 8))], name="[/]")
    h = g.op("Relu", [h], name="\x1b[2Jclear[bold red]x")
    h = g.op("Add", [h, x], name="[link=http://e.x]l\x07\x9b")
    g.output(h, "y", TensorProto.FLOAT, [2, 8])
    onnx.save(g.build(), path)
    return path



async def test_hostile_names_are_plain_text(tmp_path):
    app = make_app(_hostile_model(tmp_path / "hostile.onnx"), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(NodeTable)
        assert table.row_count >= 3
        for row in range(table.row_count):
            table.move_cursor(row)
            await pilot.pause()
            rendered = [table.render_line(y).text for y in range(1, table.row_count + 1)]
            assert all("\x1b" not in line and "\x07" not in line for line in rendered)
        assert any("[/]" in line for line in rendered) and any("\\x1b[2Jc" in line for line in rendered)
        ws = app.workspace
        node = next(n for n in ws.index.nodes if n.name.startswith("[link"))
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(node_renderable(ws.index, node, ws.selection))
        details = console.file.getvalue()
        assert "[link=http://e.x]l\\x07\\x9b" in details and "\x1b" not in details
        app.notify(f"node \x1b]0;title\x07 {ORT_ERROR}")  # markup=False and escaped, whatever the caller says
        await pilot.pause()
        shown = app._notifications
        assert any(ORT_ERROR in n.message and "\x1b" not in n.message for n in shown)


async def test_failed_comparison_keeps_the_error_and_stops_progress(tmp_path, demo_model, monkeypatch):
    import trt_tui.ui.screens.parity as parity

    def fail(*_a, **_k):
        raise RuntimeError(ORT_ERROR)

    monkeypatch.setattr(parity.ComparisonRequest, "prepare", fail)
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await pilot.press("r")
        await settle(app, pilot)
        screen = app.screen
        for _ in range(50):  # under load the worker's ERROR state can arrive after settle()
            status = str(screen.query_one("#parity-status").render())
            if "failed" in status:
                break
            await pilot.pause(0.1)
        assert "[ONNXRuntimeError]" in status and "[ShapeInferenceError]" in status and "failed" in status
        bar = screen.query_one("#parity-progress", ProgressBar)
        assert bar.total == 100 and not screen.running  # determinate: no animation after a failure
        errors = [e for e in app.messages.entries if e.severity == "error"]
        assert errors and ORT_ERROR in errors[-1].text and "Traceback" in errors[-1].text
        await pilot.press("L")
        await pilot.pause()
        log = app.screen
        assert isinstance(log, MessageLogScreen)
        log.query_one("#messages-table").action_last()
        await pilot.pause()
        assert ORT_ERROR in str(log.query_one("#messages-text").render())
        await pilot.press("y")
        assert ORT_ERROR in app.clipboard
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, MessageLogScreen)


async def test_log_with_10000_entries_opens_and_writes(tmp_path):
    app = make_app(tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for i in range(10_000):
            app.messages.add("warning" if i % 3 else "error", f"t{i}", f"message {i} [x]\nline two")
        await pilot.press("L")
        await pilot.pause()
        log = app.screen
        from trt_tui.ui.screens.messages import SHOWN_MAX

        table = log.query_one("#messages-table")
        assert table.row_count == SHOWN_MAX and table.cursor_key == str(app.messages.entries[-1].seq)  # the newest
        title = str(log.query_one("#messages-title").render())
        assert "Messages: 10000 (3334 errors, 6666 warnings)" in title and f"newest {SHOWN_MAX:,}" in title
        for i in range(30):  # arriving while the log is open: drawn together
            app.messages.add("information", "", f"late {i}")
        assert table.row_count == SHOWN_MAX
        await pilot.pause(0.3)
        assert table.row_count == SHOWN_MAX + 30 and "10030" in str(log.query_one("#messages-title").render())
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(tmp_path / "log.txt")
        await pilot.press("enter")
        await pilot.pause()
        text = (tmp_path / "log.txt").read_text()
        assert "message 9999 [x]\nline two" in text and "message 0 [x]" in text  # all of it, not the listed part


def test_message_log_counts_follow_the_bounded_deque():
    from trt_tui.ui.message_log import MessageLog

    log = MessageLog(max_entries=3)
    for severity in ("error", "error", "warning", "information"):
        log.add(severity, "", "x")
    assert log.counts() == {"error": 1, "warning": 1, "information": 1} and len(log) == 3

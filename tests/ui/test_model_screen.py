from rich.console import Console

from tests.ui.helpers import SIZE, make_app, pin_op_type, settle
from trt_tui.ui.commands import TrtCommands
from trt_tui.ui.screens.help import HelpScreen
from trt_tui.ui.widgets.node_details import NodeDetails, node_renderable
from trt_tui.ui.widgets.node_table import NodeTable
from trt_tui.ui.widgets.op_table import OpTypeTable


def _pinned_cells(table: NodeTable) -> int:
    return sum(1 for key in table.row_keys if str(table.get_cell(key, "pin")) == "FP32")


async def test_pin_all_layernorm_from_the_op_table(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pin_op_type(app, pilot, "LayerNormalization")
        assert len(app.workspace.selection) == 10
        ops = app.screen.query_one(OpTypeTable)
        assert str(ops.get_cell("LayerNormalization", "pinned")) == "all"
        nodes = app.screen.query_one(NodeTable)
        assert _pinned_cells(nodes) == 10
        assert app.workspace.dirty
        # Enter on the op row filters the node table to that op
        await pilot.press("enter")
        await settle(app, pilot)
        assert nodes.row_count == 10
        # unpin one of them from the node table: an exclusion, the op rule stays
        nodes.focus()
        await pilot.press("space")
        assert len(app.workspace.selection) == 9 and app.workspace.selection.rules.op_types == ("LayerNormalization",)
        assert "op:LayerNormalization" not in app.workspace.selection.reasons(nodes.node_at_cursor().name)


async def test_filter_by_regex_and_pin_matches(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"softmax", "enter")
        await settle(app, pilot)
        nodes = app.screen.query_one(NodeTable)
        assert nodes.row_count == 3  # 2 Softmax + 1 LogSoftmax
        await pilot.press("m")
        assert len(app.workspace.selection) == 3 and app.workspace.selection.rules.patterns == ("(?i)softmax",)
        await pilot.press("M")
        assert len(app.workspace.selection) == 0
        await pilot.press("escape")
        await settle(app, pilot)
        assert nodes.row_count == 147


async def test_bad_regex_is_shown_not_raised(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", "(", "enter")
        await settle(app, pilot)
        assert app.is_running
        assert app.screen.query_one("#filter").has_class("bad-regex")
        assert "bad regular expression" in str(app.screen.query_one("#model-summary").render())


async def test_details_panel_shows_io_and_links(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        nodes = app.screen.query_one(NodeTable)
        nodes.move_cursor(1)
        await pilot.pause()
        node = nodes.node_at_cursor()
        assert node.op_type == "MatMul"
        assert app.screen.query_one(NodeDetails).node is node
        console = Console(width=60, record=True)
        console.print(node_renderable(app.workspace.index, node, app.workspace.selection))
        out = console.export_text()
        assert node.name in out and "inputs" in out and "outputs" in out
        assert "float32" in out and "← " in out and "→ " in out and "pinned" in out


async def test_modes_help_and_palette(demo_model, tmp_path):
    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key, mode in (("2", "preset"), ("3", "builds"), ("4", "parity"), ("5", "streaming"), ("1", "model")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        provider = TrtCommands(app.screen)
        titles = [title for title, _, _ in provider._commands()]
        assert "Pin/unpin node" in titles and "Parity" in titles
        assert "Pin/unpin op type: Softmax" in titles
        callback = dict((t, c) for t, _, c in provider._commands())["Pin/unpin op type: Softmax"]
        callback()
        assert len(app.workspace.selection) == 2


async def test_keymap_file_remaps_a_binding(demo_model, tmp_path):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('"model.pin_node" = "p"\n[keymap]\n"app.mode.parity" = "f4"\n')
    app = make_app(demo_model, keymap_file=keymap)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        assert len(app.workspace.selection) == 1
        await pilot.press("f4")
        assert app.current_mode == "parity"


async def test_bad_keymap_is_a_notification(demo_model, tmp_path):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('"model.pin_nod" = "p"\n')
    app = make_app(demo_model, keymap_file=keymap)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.is_running
        assert any("unknown binding id 'model.pin_nod'" in str(n.message) for n in app._notifications)


async def test_node_table_draws_its_cursor_row_focused_or_not(demo_model, tmp_path):
    """Rows of plain cells used to render without the row style: the cursor was invisible on them."""
    from tests.ui.helpers import make_app, settle
    from trt_tui.ui.widgets.node_table import NodeTable
    from trt_tui.ui.widgets.op_table import OpTypeTable

    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "down")
        table = app.screen.query_one(NodeTable)
        assert table.has_focus and table.cursor_row == 2
        base, header, cursor, _ = table._styles()
        bg = lambda y: {seg.style.bgcolor for seg in table.render_line(y) if seg.style and seg.text.strip()}  # noqa: E731
        assert bg(3) == {cursor.bgcolor} and cursor.bgcolor != base.bgcolor  # header is line 0: row 2 is line 3
        assert cursor.bgcolor not in bg(2)
        app.screen.query_one(OpTypeTable).focus()
        await pilot.pause()
        _, _, blurred, _ = table._styles()
        assert bg(3) == {blurred.bgcolor} and blurred.bgcolor not in (base.bgcolor, cursor.bgcolor)


async def test_digits_go_to_a_focused_input_not_to_the_screen_switch(demo_model, tmp_path):
    from tests.ui.helpers import make_app, settle
    from trt_tui.ui.screens.model import ModelScreen

    app = make_app(demo_model, tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", "3", "0", "0")
        assert isinstance(app.screen, ModelScreen) and app.screen.query_one("#filter").value == "300"


async def test_help_screen_says_how_to_close_it_in_view_at_100x30(tmp_path):
    from tests.ui.helpers import make_app, settle

    app = make_app(tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        title = app.screen.query_one("#help-title")
        assert "closes this screen" in str(title.render()) and "esc" in str(title.render()).lower()
        assert title.region.height and app.screen.query_one("#help-body").region.contains_region(title.region)
        await pilot.press("end")  # scroll the table: the hint stays in view
        await pilot.pause()
        assert app.screen.query_one("#help-title").region == title.region
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

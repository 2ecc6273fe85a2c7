"""FastTable's scrollbars: a table with a flex column keeps a stable vertical gutter (FLEX_CSS)."""

from textual.app import App, ComposeResult

from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable


class _FlexTable(FastTable):
    DEFAULT_CSS = "_FlexTable " + FLEX_CSS + " _FlexTable { width: 40; height: 10; border-left: solid red; }"


class _TableApp(App):
    def compose(self) -> ComposeResult:
        yield _FlexTable()

    def on_mount(self) -> None:
        table = self.query_one(_FlexTable)
        table.add_column("name", "name", max_width=40, flex=True, min_width=8)
        for label in ("min", "opt", "max"):
            table.add_column(label, label)
        # wider than the viewport even with the name at its minimum, and fewer rows than the height:
        # a horizontal scrollbar only, beside the (empty) stable vertical gutter
        table.set_rows([(f"r{i}", (f"tensor_{i}", "1x3x224x224", "8x3x224x224", "16x3x224x224")) for i in range(3)])


async def test_horizontal_scrollbar_window_is_the_viewport_whatever_ran_last():
    """Textual (8.2) sizes a horizontal-only scrollbar's window two ways when the vertical gutter is stable: the
    compositor's arrangement (every reflow, and the full map it rebuilds lazily when an off-screen widget's region
    is asked for) took the whole width, the scroll update after a resize the width less the gutter. The thumb
    was one cell longer or shorter depending on which ran last: a timing race the Preset snapshot caught under
    load. The window is the viewport (scrollable_content_region) either way."""
    app = _TableApp()
    async with app.run_test(size=(60, 14)) as pilot:
        await pilot.pause()
        table = app.query_one(_FlexTable)
        bar = table.horizontal_scrollbar
        viewport = table.scrollable_content_region.width
        assert table.show_horizontal_scrollbar and not table.show_vertical_scrollbar
        assert viewport == table.size.width - 1  # less the stable gutter
        assert table.virtual_size.width > viewport
        compositor = app.screen._compositor
        for last in ("reflow", "full map"):
            if last == "reflow":  # arranges, then a resize's scroll update
                app.screen._refresh_layout(app.screen.size)
            else:  # arranges only
                compositor._full_map_invalidated = True
                compositor.full_map  # noqa: B018
            assert (bar.window_size, bar.window_virtual_size) == (viewport, table.virtual_size.width), last
        # scrolled all the way right, the thumb ends at the track's end (a window one too wide pushed it past)
        table.scroll_to(x=table.max_scroll_x, animate=False, immediate=True)
        await pilot.pause()
        compositor._full_map_invalidated = True
        compositor.full_map  # noqa: B018
        assert bar.position / (bar.window_virtual_size - bar.window_size) == 1

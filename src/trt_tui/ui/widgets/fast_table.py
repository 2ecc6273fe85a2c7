"""A virtual table: renders only the visible rows, so 10,000 rows load, filter and sort in milliseconds.

DataTable measures every cell of every new row (1 s for 5,000 rows, 10 s for 10,000 in chunks here);
this table sizes columns from the strings' lengths once per load and draws lines on demand (Line API).
Cells are `str` or `rich.text.Text`. Rows are `(key, cells)`; keys are unique strings.

One column may be `flex`: it takes the width the others leave in the viewport (down to `min_width`, up to its
content), so a long name column neither pushes the metrics off screen nor stays narrow beside free space.
Columns after it marked `keep_visible=False` do not count (they may scroll off to the right). Such tables
want `scrollbar-gutter: stable` (FLEX_CSS): the viewport then keeps its width when the scrollbar appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from trt_tui.ui.plain import has_control, plain_text, printable

Cell = str | Text


@dataclass
class Column:
    key: str
    label: str
    width: int | None = None  # fixed width (0 hides the column); None sizes to the content, capped at max_width
    max_width: int = 60
    content_width: int = 0
    flex: bool = False
    min_width: int = 0  # flex only: never narrower than this
    keep_visible: bool = True  # flex tables: False lets this column scroll off rather than narrow the flex one
    overflow: str = "end"  # "end": "abc…"; "middle": "ab…yz" (names whose distinctive part is the tail)

    @property
    def render_width(self) -> int:
        """The natural width (a flex column's width before the viewport is taken into account)."""
        if self.width is not None:
            return self.width
        return max(len(self.label), min(self.content_width, self.max_width))


# for tables with a flex column: a stable viewport (see above), and a 1-cell scrollbar leaves the name one more
FLEX_CSS = "{ scrollbar-gutter: stable; scrollbar-size-vertical: 1; }"


def _cell_len(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(cell)


def elide_middle(text: Text, width: int) -> Text:
    """Cut the middle out of a too-long cell, a little less than half the width for the head and the rest for
    the tail: exported names carry the block in the head ('/encoder/layers.11/') and the op in the tail
    ('linear1/MatMul_output_0'); what lies between repeats from row to row."""
    if text.cell_len <= width:
        return text
    if width < 5:
        text.truncate(width, overflow="ellipsis")
        return text
    head = (width - 1) * 9 // 20
    tail = width - 1 - head
    n = len(text.plain)
    out = text[:head]
    out.append("…")
    out.append_text(text[n - tail :])
    return out


class FastTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
    ]
    COMPONENT_CLASSES = {"fast-table--header", "fast-table--cursor", "fast-table--highlight"}
    DEFAULT_CSS = """
    FastTable { background: $surface; }
    FastTable > .fast-table--header { text-style: bold; background: $panel; }
    FastTable:focus > .fast-table--header { background: $primary 60%; }
    FastTable > .fast-table--cursor { background: $block-cursor-blurred-background; }
    FastTable:focus > .fast-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    FastTable > .fast-table--highlight { background: $warning 20%; }
    """

    class RowHighlighted(Message):
        def __init__(self, table: FastTable, row: int, key: str | None) -> None:
            super().__init__()
            self.table, self.row, self.key = table, row, key

        @property
        def control(self) -> FastTable:
            return self.table

    class RowSelected(RowHighlighted):
        pass

    class HeaderSelected(Message):
        def __init__(self, table: FastTable, column: str) -> None:
            super().__init__()
            self.table, self.column = table, column

        @property
        def control(self) -> FastTable:
            return self.table

    CELL_GAP = 2  # spaces per column (one before the cell, the rest after): 1 packs more columns in

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = []
        self._widths: list[int] = []  # render widths for the current viewport (see _layout)
        self._viewport = -1
        self._col_index: dict[str, int] = {}
        self._rows: list[tuple[str, tuple[Cell, ...]]] = []
        self._row_index: dict[str, int] = {}
        self.cursor_row = 0
        self._style_cache: tuple[bool, tuple[Style, Style, Style, Style]] | None = None
        self._strips: dict[tuple, Strip] = {}  # rendered rows, keyed by (row key, state, width, scroll x)
        self.highlighted_keys: set[str] = set()  # rows drawn with the highlight style (e.g. first divergence)

    # ---- columns and rows -----------------------------------------------------------------------------
    def add_column(self, label: str, key: str, width: int | None = None, max_width: int = 60, *, flex: bool = False,
                   min_width: int = 0, keep_visible: bool = True, overflow: str = "end") -> None:  # fmt: skip
        self._col_index[key] = len(self.columns)
        self.columns.append(Column(key, label, width, max_width, flex=flex, min_width=min_width,
                                   keep_visible=keep_visible, overflow=overflow))  # fmt: skip

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def row_keys(self) -> list[str]:
        return [k for k, _ in self._rows]

    def __contains__(self, key: str) -> bool:
        return key in self._row_index

    def get_row_index(self, key: str) -> int:
        return self._row_index[key]

    def get_cell(self, key: str, column: str) -> Cell:
        return self._rows[self._row_index[key]][1][self._col_index[column]]

    def get_row(self, key: str) -> tuple[Cell, ...]:
        return self._rows[self._row_index[key]][1]

    @property
    def cursor_key(self) -> str | None:
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)][0]

    def clear(self) -> None:
        self.set_rows([])

    def set_rows(
        self, rows: Iterable[tuple[str, Sequence[Cell]]], *, keep_key: str | None = None, measure: bool = True
    ) -> None:
        """Replace every row; the cursor stays on `keep_key` when that row is still there.

        `measure=False` keeps the current column widths (set them once with `set_content_widths` for the
        full data set, so filtering neither re-measures nor makes columns jump)."""
        self._rows = [(k, c if isinstance(c, tuple) else tuple(c)) for k, c in rows]
        self._row_index = {k: i for i, (k, _) in enumerate(self._rows)}
        self._strips.clear()
        if measure:
            for col in self.columns:
                col.content_width = 0
            self._measure(self._rows)
        target = self._row_index.get(keep_key, 0) if keep_key is not None else 0
        self._resize()
        self.move_cursor(target, force=True)

    def set_column_width(self, key: str, width: int | None) -> None:
        """Change a column's fixed width (0 hides it, e.g. a column with nothing to show yet)."""
        self.columns[self._col_index[key]].width = width
        self._resize()

    def set_content_widths(self, widths: dict[str, int]) -> None:
        for col in self.columns:
            if col.key in widths:
                col.content_width = widths[col.key]
        self._strips.clear()
        self._resize()

    def append_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        new = [(k, c if isinstance(c, tuple) else tuple(c)) for k, c in rows]
        start = len(self._rows)
        for i, (k, _) in enumerate(new):
            self._row_index[k] = start + i
        self._rows.extend(new)
        self._measure(new)
        self._resize()
        if start == 0 and new:
            self.move_cursor(0, force=True)

    def update_cell(self, key: str, column: str, value: Cell) -> None:
        """Change one cell; the column keeps its width (never re-measured on live updates)."""
        index = self._row_index.get(key)
        if index is None:
            return
        key_, cells = self._rows[index]
        ci = self._col_index[column]
        self._rows[index] = (key_, (*cells[:ci], value, *cells[ci + 1 :]))
        self._drop_strips(key_)
        self._refresh_row(index)

    def sort(self, key: Callable[[tuple[str, tuple[Cell, ...]]], object], reverse: bool = False) -> None:
        current = self.cursor_key
        self._rows.sort(key=key, reverse=reverse)
        self._strips.clear()
        self._row_index = {k: i for i, (k, _) in enumerate(self._rows)}
        self.refresh()
        if current is not None:
            self.move_cursor(self._row_index[current], force=True)

    def _measure(self, rows: list[tuple[str, tuple[Cell, ...]]]) -> None:
        for ci, col in enumerate(self.columns):
            if col.width is None and rows:
                widest = max(_cell_len(cells[ci]) if ci < len(cells) else 0 for _, cells in rows)
                col.content_width = max(col.content_width, widest)

    def _layout(self) -> list[int]:
        """Render widths for the current viewport: natural widths, except that a flex column gets what the
        other (kept-visible) columns leave, clamped to [min_width, natural]."""
        gap = self.CELL_GAP
        widths = [c.render_width for c in self.columns]
        flex = next((i for i, c in enumerate(self.columns) if c.flex), None)
        viewport = self.scrollable_content_region.width
        if flex is not None and viewport > 0:
            col = self.columns[flex]
            others = sum(w + gap for i, (w, c) in enumerate(zip(widths, self.columns))
                         if w and i != flex and (i < flex or c.keep_visible))  # fmt: skip
            widths[flex] = max(col.min_width, len(col.label), min(widths[flex], viewport - others - gap))
        return widths

    def _resize(self) -> None:
        self._strips.clear()
        self._widths = self._layout()
        self._viewport = self.scrollable_content_region.width
        width = sum(w + self.CELL_GAP for w in self._widths if w)  # width 0: a hidden column
        self.virtual_size = Size(width, len(self._rows) + 1)
        self.refresh()

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._viewport:
            self._resize()

    def _arrange_scrollbars(self, region: Region) -> Iterable[tuple[Widget, Region]]:
        """Textual's arrangement, with a horizontal-only scrollbar's window the viewport, as the scroll update
        after a resize sets it. With a stable vertical gutter (FLEX_CSS) Textual (8.2) sizes that window two
        ways: here (every reflow, and the full map rebuilt when an off-screen widget's region is asked for) the
        whole width, in `_scroll_update` the width less the gutter. The thumb came out one cell longer or shorter
        depending on which ran last (a snapshot under load caught it), and one too wide is wrong: scrolled to
        the right end, the thumb was drawn past the track's end."""
        arranged = list(super()._arrange_scrollbars(region))
        if self.show_horizontal_scrollbar and not self.show_vertical_scrollbar:
            self.horizontal_scrollbar.window_size = region.width - self.scrollbar_size_vertical
        return arranged

    # ---- cursor ---------------------------------------------------------------------------------------
    def move_cursor(self, row: int, *, force: bool = False) -> None:
        if not self._rows:
            if force:
                self.post_message(self.RowHighlighted(self, -1, None))
            return
        row = max(0, min(row, len(self._rows) - 1))
        changed = row != self.cursor_row
        old = self.cursor_row
        self.cursor_row = row
        if changed or force:
            if 0 <= old < len(self._rows):
                self._refresh_row(old)
            self._refresh_row(row)
            self._scroll_to_cursor()
            self.post_message(self.RowHighlighted(self, row, self._rows[row][0]))

    def move_to_key(self, key: str) -> None:
        if key in self._row_index:
            self.move_cursor(self._row_index[key])

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._page())

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_select(self) -> None:
        if self._rows:
            self.post_message(self.RowSelected(self, self.cursor_row, self._rows[self.cursor_row][0]))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + int(self.scroll_x)
            for col, w in zip(self.columns, self._widths):
                if not w:
                    continue
                x -= w + self.CELL_GAP
                if x < 0:
                    self.post_message(self.HeaderSelected(self, col.key))
                    return
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._rows):
            was = self.cursor_row
            self.move_cursor(row)
            if row == was or event.chain > 1:
                self.action_select()

    # ---- drawing --------------------------------------------------------------------------------------
    def _refresh_row(self, index: int) -> None:
        if 0 <= index - int(self.scroll_y) < self.size.height:
            self.refresh_line(index + 1)  # virtual y: the header takes line 0

    def _styles(self) -> tuple[Style, Style, Style, Style]:
        """(base, header, cursor, highlight): looked up once per style change, not once per line."""
        key = self.has_focus
        if self._style_cache is None or self._style_cache[0] != key:
            base = self.rich_style
            self._style_cache = (
                key,
                (
                    base,
                    self.get_component_rich_style("fast-table--header"),
                    base + self.get_component_rich_style("fast-table--cursor"),
                    base + self.get_component_rich_style("fast-table--highlight"),
                ),
            )
        return self._style_cache[1]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if width != self._viewport:  # a resize whose event has not come yet: lay the columns out for this width
            self._strips.clear()  # (a flex column's width follows the viewport; a snapshot under load caught the
            self._widths = self._layout()  # old widths with the new width: one cell off)
            self._viewport = width
            self.call_after_refresh(self._resize)  # the virtual size too, outside the render
        sx = int(self.scroll_x)
        base, header, cursor, highlight = self._styles()
        if y == 0:
            style = header
            line = self._line([c.label for c in self.columns], style)
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(self._rows):
                return Strip.blank(width, base)
            key, cells = self._rows[index]
            state = 1 if index == self.cursor_row else 2 if key in self.highlighted_keys else 0
            cache_key = (key, state, width, sx, self.has_focus)
            cached = self._strips.get(cache_key)
            if cached is not None:
                return cached
            style = cursor if state == 1 else highlight if state == 2 else base
            line = self._line(cells, style)
            strip = self._strip(line, style).crop_extend(sx, sx + width, style)
            if len(self._strips) > 4000:
                self._strips.clear()
            self._strips[cache_key] = strip
            return strip
        return self._strip(line, style).crop_extend(sx, sx + width, style)

    def _strip(self, line: Text, style: Style) -> Strip:
        # Text.render drops the Text's own style when it has no spans (a row of plain str cells): apply the
        # row style (cursor, highlight) to every segment, or a cursor on such a row is invisible.
        return Strip(Segment.apply_style(line.render(self.app.console), style), line.cell_len)

    def _drop_strips(self, key: str) -> None:
        for cache_key in [k for k in self._strips if k[0] == key]:
            del self._strips[cache_key]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache = None
        self._strips.clear()

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    def _line(self, cells: Sequence[Cell], style: Style) -> Text:
        line = Text(style=style, no_wrap=True, end="")
        if len(self._widths) != len(self.columns):
            self._widths = self._layout()
        after = " " * (self.CELL_GAP - 1)
        for col, w, cell in zip(self.columns, self._widths, cells):
            if not w:
                continue  # hidden (fixed width 0)
            if isinstance(cell, Text):
                text = plain_text(cell.plain, cell.style) if has_control(cell.plain) else cell.copy()
            else:
                text = Text(printable(cell))  # never markup; control characters escaped
            if text.cell_len > w:
                if col.overflow == "middle":
                    text = elide_middle(text, w)
                else:
                    text.truncate(w, overflow="ellipsis")
            else:
                text.pad_right(w - text.cell_len)
            line.append(" ")
            line.append_text(text)
            line.append(after)
        return line

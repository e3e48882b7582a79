"""RowTable: a keyed, virtual table that repaints only the lines that changed.

The owner calls ``show(keys, row)`` at its own pace with the ordered keys and a
function that makes the ``Row`` for a key. Rows are made lazily, only for the
lines on screen, so a table of 100,000 volumes costs what its visible lines
cost. ``show`` compares each visible line with what was painted there last and
refreshes only the lines that differ. Until the user moves the cursor it stays
on the first row (the newest, in a live table); after that it follows its row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cinderblock.tui.model.rows import Column, Row, layout, line

RowMaker = Callable[[str], Row]
TAGS = ("failed", "refused", "running", "done", "faded", "error")


class RowTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-table--header", "row-table--cursor", *(f"row-table--{t}" for t in TAGS)}
    DEFAULT_CSS = """
    RowTable { height: 1fr; scrollbar-size-vertical: 1; }
    RowTable > .row-table--header { text-style: bold; background: $panel; }
    RowTable > .row-table--cursor { background: $block-cursor-blurred-background; }
    RowTable:focus > .row-table--cursor { background: $block-cursor-background; }
    RowTable > .row-table--failed { color: $text-error; background: $error-muted;
                                    text-style: bold; }
    RowTable > .row-table--refused { color: $text-warning; text-style: italic; }
    RowTable > .row-table--error { color: $error; }
    RowTable > .row-table--running { color: $warning; }
    RowTable > .row-table--done { color: $success; }
    RowTable > .row-table--faded { color: $success 45%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000000)", "First", show=False),
        Binding("end", "move(1000000000)", "Last", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class Selected(Message):
        """A double click on a row (owners bind their own keys to ``action_select``)."""

        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    def __init__(self, columns: tuple[Column, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = columns
        self.keys: Sequence[str] = ()
        self.cursor = 0
        self.cursor_key: str | None = None
        self.follow_key = False  # set once the user has moved the cursor
        self._make: RowMaker = lambda key: Row(key, ())
        self._painted: dict[int, Row] = {}  # content line -> the row painted there
        self._strips: LRUCache[tuple[Row, int, bool, bool, tuple[int, ...]], Strip] = \
            LRUCache(1024)
        self._natural = [cell_len(c.label) for c in columns]  # grows with the content
        self._plan: tuple[tuple[int, tuple[int, ...]], list[tuple[int, int]]] | None = None
        self.repaints = 0  # lines refreshed by show(); a statistic for tests

    # ---- feeding ---------------------------------------------------------
    def use_columns(self, columns: tuple[Column, ...]) -> None:
        """Show other columns (another kind of row): from the top, nothing painted."""
        self.columns = columns
        self.keys, self._make = (), lambda key: Row(key, ())
        self.cursor, self.cursor_key, self.follow_key = 0, None, False
        self._painted.clear()
        self._strips.clear()
        self._natural = [cell_len(c.label) for c in columns]
        self._plan = None
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def show(self, keys: Sequence[str], make: RowMaker) -> None:
        self.keys, self._make = keys, make
        before = self.cursor
        self._follow_cursor()
        if self.cursor != before:
            self.refresh_line(before + 1)
            self.refresh_line(self.cursor + 1)
        self.virtual_size = Size(self.scrollable_content_region.width, len(keys) + 1)
        top = int(self.scroll_offset.y)
        grew = False
        for index in range(top, min(len(keys), top + self.size.height)):
            row = make(keys[index])
            grew = self._measure(row) or grew
            if self._painted.get(index) != row:
                self.refresh_line(index + 1)
                self.repaints += 1
        if grew:
            self.refresh()
        for index in [i for i in self._painted if i >= len(keys)]:
            del self._painted[index]
            self.refresh_line(index + 1)

    def _measure(self, row: Row) -> bool:
        """Widen the natural width of columns this row needs more of."""
        grew = False
        for i, cell in enumerate(row.cells[: len(self._natural)]):
            if len(cell) > self._natural[i]:  # len first: cheap, and >= cell_len for ASCII
                width = cell_len(cell)
                if width > self._natural[i]:
                    self._natural[i], grew = width, True
        return grew

    def _follow_cursor(self) -> None:
        if self.follow_key and self.cursor_key is not None and (
            self.cursor >= len(self.keys) or self.keys[self.cursor] != self.cursor_key
        ):
            try:
                self.cursor = list(self.keys).index(self.cursor_key)
            except ValueError:
                self.cursor = min(self.cursor, max(len(self.keys) - 1, 0))
        self.cursor_key = self.keys[self.cursor] if self.keys else None

    def _layout(self, width: int) -> list[tuple[int, int]]:
        key = (width, tuple(self._natural))
        if self._plan is None or self._plan[0] != key:
            self._plan = (key, layout(self.columns, width, self._natural))
        return self._plan[1]

    def row_text(self, key: str) -> tuple[str, ...]:
        """The cells shown for ``key`` (for tests and screen readers)."""
        return self._make(key).cells

    # ---- painting ----------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        plan = self._layout(width)
        if y == 0:
            header = tuple(c.label for c in self.columns)
            style = self.rich_style + self.get_component_rich_style("row-table--header")
            return Strip([Segment(line(self.columns, plan, header, width), style)], width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.keys):
            self._painted.pop(index, None)
            return Strip.blank(width, self.rich_style)
        row = self._make(self.keys[index])
        if self._measure(row):
            plan = self._layout(width)
            self.refresh()
        self._painted[index] = row
        selected = index == self.cursor
        cache_key = (row, width, selected, self.has_focus, tuple(w for _, w in plan))
        strip = self._strips.get(cache_key)
        if strip is None:
            strip = Strip([Segment(line(self.columns, plan, row.cells, width),
                                   self._style(row.tag, selected))], width)
            self._strips[cache_key] = strip
        return strip

    def _style(self, tag: str, selected: bool) -> Style:
        style = self.rich_style
        if tag:
            style += self.get_component_rich_style(f"row-table--{tag}")
        if selected:
            style += self.get_component_rich_style("row-table--cursor")
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # ---- the cursor ----------------------------------------------------------
    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.size.height - 2))

    def move_to(self, index: int) -> None:
        if not self.keys:
            return
        self.follow_key = True
        old, self.cursor = self.cursor, max(0, min(len(self.keys) - 1, index))
        self.cursor_key = self.keys[self.cursor]
        if old != self.cursor:
            self.post_message(self.Highlighted(self, self.cursor_key))
        self.refresh_line(old + 1)
        self.refresh_line(self.cursor + 1)
        self.scroll_to_region(Region(0, self.cursor, 1, 2), animate=False, immediate=True)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self, self.cursor_key))

    def on_click(self, event: Click) -> None:
        index = int(self.scroll_offset.y) + event.y - 1
        if event.y >= 1 and index < len(self.keys):
            self.move_to(index)
            if event.chain >= 2:
                self.action_select()

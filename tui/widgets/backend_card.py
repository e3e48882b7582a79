"""BackendCard: one storage backend in four lines: heading, capacity bar, legend, totals."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widget import Widget

from cinderblock.tui.model.model import BackendRecord
from cinderblock.tui.widgets.capacity_bar import capacity_bar, heading, legend, provisioning


class BackendCard(Widget):
    DEFAULT_CSS = """
    BackendCard { height: 4; margin-bottom: 1; }
    """

    def __init__(self, record: BackendRecord, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.record = record
        self.now = record.last_seen
        self.up = True
        self._key: tuple[object, ...] = ()

    def show(self, record: BackendRecord, now: float, up: bool) -> None:
        """Repaint only when what the card shows would change."""
        key = (record.total_gb, record.free_gb, record.allocated_gb, record.provisioned_gb,
               record.reserved_percentage, record.volumes, up, int(record.age(now)))
        self.record, self.now, self.up = record, now, up
        if key != self._key:
            self._key = key
            self.refresh()

    def render(self) -> RenderableType:
        width = max(10, self.content_size.width)
        bar = Text("▕").append_text(capacity_bar(self.record, width - 2, self.up)).append("▏")
        return Group(heading(self.record, self.now, self.up), bar, legend(self.record),
                     provisioning(self.record))

    def bar_text(self) -> str:
        """The bar as plain text (what tests compare)."""
        return capacity_bar(self.record, max(10, self.content_size.width - 2), self.up).plain

"""FlowsPane: the flows in progress, failed, or recently done."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from cinderblock.tui.model.cells import FLOW_COLUMNS, flow_row
from cinderblock.tui.model.model import FlowRecord, Model
from cinderblock.tui.widgets.row_table import RowTable

MAX_ROWS = 500


class FlowsPane(Vertical):
    DEFAULT_CSS = """
    FlowsPane #flow-detail { height: 1; background: $panel; padding: 0 1;
                             text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Timeline"),
        Binding("x", "dismiss_flow", "Dismiss"),
        Binding("X", "dismiss_all", "Dismiss all", show=False),
    ]

    class Opened(Message):
        """The user asked for a flow's timeline."""

        def __init__(self, flow: FlowRecord) -> None:
            super().__init__()
            self.flow = flow

    def __init__(self, model: Model, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.clock = clock
        self.shown: dict[str, FlowRecord] = {}
        self.border_title = "Flows"

    def compose(self) -> ComposeResult:
        yield RowTable(FLOW_COLUMNS, id="flow-table")
        yield Static(id="flow-detail")

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    def show(self, now: float) -> None:
        book = self.model.flows
        flows = book.ordered(MAX_ROWS)
        self.shown = {f.flow_id: f for f in flows}
        compact = self.size.width < 110
        shown = self.shown
        self.table.show(list(shown), lambda key: flow_row(book, shown[key], now, compact))
        self._show_detail()
        counts = book.counts()
        self.border_subtitle = (f"{counts['running']} running · {counts['failed']} failed · "
                                f"{counts['refused']} refused · {counts['done']} done")

    def _show_detail(self) -> None:
        """One line about the selected flow: for a failed one, where and why."""
        flow = self.selected()
        text = Text(no_wrap=True, overflow="ellipsis")
        if flow is not None and flow.failed:
            text.append(flow.state, style="bold red")
            text.append(f" at {flow.failed_task or '?'}: ")
            text.append(flow.reason or "no reason given", style="red")
        elif flow is not None:
            text.append(f"{flow.flow} of volume {flow.volume_id or '-'} on {flow.actor}: ")
            text.append(flow.state, style="bold")
        self.query_one("#flow-detail", Static).update(text)

    def on_row_table_highlighted(self, event: RowTable.Highlighted) -> None:
        event.stop()
        self._show_detail()

    def selected(self) -> FlowRecord | None:
        key = self.table.cursor_key
        return self.shown.get(key) if key else None

    def action_open(self) -> None:
        flow = self.selected()
        if flow is not None:
            self.post_message(self.Opened(flow))

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        event.stop()
        self.action_open()

    def action_dismiss_flow(self) -> None:
        flow = self.selected()
        if flow is None or not self.model.flows.dismiss(flow.flow_id):
            self.notify("only a failed flow that has finished reverting can be dismissed",
                        severity="warning")
        self.show(self.clock())

    def action_dismiss_all(self) -> None:
        count = self.model.flows.dismiss_failed()
        self.notify(f"dismissed {count} failed flow(s)")
        self.show(self.clock())

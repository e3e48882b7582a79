"""FlowScreen: one flow's tasks as a timeline, kept live while it runs."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import ClassVar

from rich.console import Console
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from cinderblock.tui.model.model import FlowBook, FlowRecord
from cinderblock.tui.widgets.timeline import timeline


class FlowScreen(Screen[None]):
    DEFAULT_CSS = """
    FlowScreen VerticalScroll { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back", show=False),
        Binding("x", "dismiss_flow", "Dismiss"),
    ]

    def __init__(self, flow: FlowRecord, book: FlowBook, clock: Callable[[], float],
                 refresh_s: float = 0.2) -> None:
        super().__init__()
        self.flow = flow
        self.book = book
        self.clock = clock
        self.refresh_s = refresh_s
        self._version = -1

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="timeline")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.show()
        if not self.flow.final:
            self.set_interval(self.refresh_s, self.show)

    def show(self) -> None:
        """Repaint while the flow runs (elapsed time moves) or when it changed."""
        if self.flow.final and self._version == len(self.flow.changes):
            return
        self._version = len(self.flow.changes)
        width = self.size.width or 80
        self.query_one("#timeline", Static).update(timeline(self.flow, self.clock(), width))

    def timeline_text(self) -> str:
        """The timeline as plain text (what tests read)."""
        out = io.StringIO()
        console = Console(width=max(self.size.width, 80), file=out, color_system=None)
        console.print(timeline(self.flow, self.clock(), console.width))
        return out.getvalue()

    def action_dismiss_flow(self) -> None:
        if self.book.dismiss(self.flow.flow_id):
            self.app.pop_screen()
        else:
            self.notify("only a failed flow that has finished reverting can be dismissed",
                        severity="warning")

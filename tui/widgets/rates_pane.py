"""RatesPane: creates per second and create latency, as sparklines over a minute."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Sparkline, Static

from cinderblock.tui.model.cells import fmt_duration
from cinderblock.tui.model.model import Model, RatesView


def _ms(value: float | None) -> str:
    return "-" if value is None else fmt_duration(value)


class RatesPane(VerticalScroll):
    DEFAULT_CSS = """
    RatesPane Sparkline { height: 2; margin-bottom: 1; }
    RatesPane Static { height: 1; }
    """

    def __init__(self, model: Model, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.border_title = "Rates (last minute)"
        self._shown: RatesView | None = None

    def compose(self) -> ComposeResult:
        for name in ("creates", "p50", "p99", "events"):
            yield Static(id=f"{name}-label")
            yield Sparkline([], id=f"{name}-spark")

    def show(self, now: float) -> None:
        view = self.model.rates.series(now)
        if view is self._shown:
            return
        self._shown = view
        labels = {
            "creates": f"creates/s  {view.creates_per_s:,.0f} now · {view.minute_creates:,} "
                       f"in the minute · {view.minute_errors} errors",
            "p50": f"p50 latency  {_ms(view.minute_p50)} over the minute",
            "p99": f"p99 latency  {_ms(view.minute_p99)} over the minute",
            "events": f"events/s  {view.events_per_s:,.0f} now",
        }
        series = {"creates": view.creates, "p50": view.p50, "p99": view.p99,
                  "events": view.events}
        for name, label in labels.items():
            self.query_one(f"#{name}-label", Static).update(label)
            self.query_one(f"#{name}-spark", Sparkline).data = series[name]

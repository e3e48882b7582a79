"""PaneTabs: one line naming the panes, their keys and a count for each."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from cinderblock.tui.model.model import Model

PANES = ("flows", "volumes", "backends", "rates")


class PaneTabs(Static):
    DEFAULT_CSS = """
    PaneTabs { height: 1; padding: 0 1; }
    """

    def __init__(self, model: Model, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self._shown: Text | None = None

    def show(self, active: str, now: float) -> None:
        text = tabs_text(self.model, active, now)
        if text != self._shown:
            self._shown = text
            self.update(text)


def tabs_text(model: Model, active: str, now: float) -> Text:
    flows = model.flows.counts()
    volumes = len(model.volumes.volumes)
    backends = model.backends.ordered()
    up = sum(model.backends.up(b, now) for b in backends)
    rates = model.rates.series(now)
    labels = {
        "flows": f"Flows {flows['running']}▶ {flows['failed']}✖",
        "volumes": f"Volumes {volumes}",
        "backends": f"Backends {up}/{len(backends)} up",
        "rates": f"Rates {rates.creates_per_s:.0f}/s",
    }
    text = Text()
    for i, pane in enumerate(PANES, 1):
        style = "bold reverse" if pane == active else ""
        text.append(f" {i} {labels[pane]} ", style=style)
        text.append(" ")
    return text

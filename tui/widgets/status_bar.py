"""StatusBar: the top line; is the cluster up, how fast are events arriving."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from cinderblock.tui.model.cells import fmt_age
from cinderblock.tui.model.model import Model


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, model: Model, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self._shown: Text | None = None

    def show(self, now: float, paused: bool) -> None:
        text = status_text(self.model, now, paused)
        if text != self._shown:
            self._shown = text
            self.update(text)


def status_text(model: Model, now: float, paused: bool) -> Text:
    link = model.link
    text = Text()
    text.append("cinderblock ", style="bold")
    if link.up is None:
        text.append("◌ connecting to ", style="yellow")
        text.append(link.gateway or "-")
    elif link.up:
        text.append("● up ", style="bold green")
        text.append(link.gateway)
    else:
        text.append(f"✖ CLUSTER DOWN {fmt_age(now - link.since)} ", style="bold white on red")
        text.append(f" {link.gateway} not answering; retrying", style="red")
    rates = model.rates.series(now)
    text.append(f"  │ {model.events_total:,} events {rates.events_per_s:,.0f}/s", style="dim")
    if model.malformed:
        text.append(f" · {model.malformed} malformed", style="yellow")
    _health(model, text)
    if paused:
        text.append("  ⏸ PAUSED", style="bold black on yellow")
    return text


def _health(model: Model, text: Text) -> None:
    """``│ actors 5/5`` (and who is missing, and restarts when the actors report them)."""
    health = model.health
    if health.unavailable:
        text.append(f"  │ actor health {health.unavailable}", style="dim")
        return
    if health.checked_at is None or model.link.up is not True:
        return
    total = len(health.answering) + len(health.missing)
    style = "green" if not health.missing else "bold red"
    text.append(f"  │ actors {len(health.answering)}/{total}", style=style)
    if health.missing:
        text.append(f" ✖ {', '.join(health.missing)}", style="bold red")
    if health.restarts is not None:
        text.append(f" · {health.restarts} restarts", style="yellow" if health.restarts else "dim")

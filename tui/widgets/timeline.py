"""A flow as a timeline (Rich only): its tasks, their state changes, its reverts.

Offsets are from the flow's first event, on the clock of the actor that ran
it; a task's bar spans its execution (and its revert, hatched) to scale.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cinderblock.tui.model.cells import fmt_clock, fmt_duration
from cinderblock.tui.model.model import FlowRecord, TaskRecord

STATE_STYLES = {"SUCCESS": "green", "RUNNING": "yellow", "FAILURE": "bold red",
                "REVERTING": "magenta", "REVERTED": "magenta", "REVERT_FAILURE": "bold red",
                "PENDING": "dim"}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _bar(task: TaskRecord, start: float, span: float, width: int) -> Text:
    cells = [" "] * width
    styles = [""] * width
    for first, char, style in (("RUNNING", "━", "green"), ("REVERTING", "╍", "magenta")):
        run = task.span(first)
        if run is None:
            continue
        a = int((run[0] - start) / span * (width - 1)) if span > 0 else 0
        b = int((run[1] - start) / span * (width - 1)) if span > 0 else 0
        failed = first == "RUNNING" and task.changes and any(
            c.state == "FAILURE" for c in task.changes)
        for i in range(max(a, 0), min(b, width - 1) + 1):
            cells[i], styles[i] = char, ("red" if failed else style)
    text = Text()
    for char, style in zip(cells, styles, strict=True):
        text.append(char, style)
    return text


def _took(task: TaskRecord, state: str) -> str:
    run = task.span(state)
    return fmt_duration(run[1] - run[0]) if run else ""


def _changes(changes: Sequence[tuple[str, float, str | None]], start: float) -> Text:
    text = Text()
    for i, (state, ts, reason) in enumerate(changes):
        if i:
            text.append(" → ", style="dim")
        text.append_text(state_text(state))
        text.append(f" +{fmt_duration(ts - start)}", style="dim")
        if reason:
            text.append(f" ({reason})", style="red")
    return text


def task_table(flow: FlowRecord, bar_width: int) -> Table:
    end = max([flow.last_ts, *(c.ts for t in flow.tasks.values() for c in t.changes)])
    span = end - flow.started
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for name, kw in (("#", {"justify": "right"}), ("Task", {}), ("State", {}),
                     ("Start", {"justify": "right"}), ("Ran", {"justify": "right"}),
                     ("Revert", {"justify": "right"}), ("Timeline", {"no_wrap": True})):
        table.add_column(name, **kw)
    for i, task in enumerate(flow.tasks.values(), 1):
        first = task.changes[0].ts - flow.started if task.changes else None
        table.add_row(str(i), task.name, state_text(task.state),
                      "" if first is None else f"+{fmt_duration(first)}",
                      _took(task, "RUNNING"), _took(task, "REVERTING"),
                      _bar(task, flow.started, span, bar_width))
    return table


def timeline(flow: FlowRecord, now: float, width: int = 80) -> RenderableType:
    head = Text()
    head.append(flow.flow, style="bold")
    head.append(f"  flow {flow.flow_id[:8]} · volume {flow.volume_id or '-'} · on {flow.actor}")
    status = Text("state ")
    status.append_text(state_text(flow.state))
    status.append(f" · elapsed {fmt_duration(flow.elapsed(now))}"
                  f" · started {fmt_clock(flow.started)}")
    if not flow.saw_start:
        status.append(" · joined after it started", style="dim")
    parts: list[RenderableType] = [head, status]
    if flow.reason:
        parts.append(Text(f"reason: {flow.reason}", style="bold red"))
    parts.append(task_table(flow, max(10, width - 80)))
    parts.append(Text("State changes", style="bold underline"))
    flow_changes = [(c.state, c.ts, None) for c in flow.changes]
    parts.append(Text("flow  ").append_text(_changes(flow_changes, flow.started)))
    for task in flow.tasks.values():
        moves = [(c.state, c.ts, c.reason) for c in task.changes]
        parts.append(Text(f"{task.name}  ").append_text(_changes(moves, flow.started)))
    if flow.revert_order:
        order = Text("Revert order (newest first): ", style="bold")
        for i, name in enumerate(flow.revert_order, 1):
            task = flow.tasks[name]
            order.append(f"{'  → ' if i > 1 else ''}{i}. {name} ")
            order.append_text(state_text(task.state))
            order.append(f" {_took(task, 'REVERTING')}", style="dim")
        parts.append(order)
    return Group(*parts)

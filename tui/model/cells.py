"""What the flows, volumes, snapshots, backups and groups tables show: model
records turned into ``Row``s.

Plain strings only; the look of a row is its tag, which the table styles.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from cinderblock.protocol.states import VOLUME_ERRORS, VolumeStatus
from cinderblock.tui.model.items import GROUP_SNAPSHOTS, GROUPS, ItemKind, ItemRecord
from cinderblock.tui.model.model import FlowBook, FlowRecord, VolumeRecord
from cinderblock.tui.model.rows import Column, Row

FLOW_COLUMNS = (
    Column("Flow", 23, min_width=10),
    Column("Volume", 8),
    Column("Actor", 9, min_width=6, drop=1),
    Column("Task", 24, min_width=12),
    Column("State", 14, min_width=9),
    Column("Elapsed", 8, right=True),
    Column("Reason", 20, min_width=12, drop=2, flex=True),
)
# every kind's table: its id, name and status first, its project and age last
ID, NAME, STATUS = (Column("ID", 36, min_width=8), Column("Name", 14, min_width=6, flex=True),
                    Column("Status", 14, min_width=9))
PROJECT, UPDATED = (Column("Project", 10, min_width=6, drop=4),
                    Column("Updated", 8, right=True, drop=1))
SIZE = Column("Size", 5, right=True)
VOLUME_COLUMNS = (ID, NAME, STATUS, SIZE, Column("Type", 12, min_width=8, drop=3),
                  Column("Host", 12, min_width=8, drop=2), PROJECT, UPDATED)
# a snapshot's or a backup's: its volume where a volume's type is
ITEM_COLUMNS = (ID, NAME, STATUS, SIZE, Column("Volume", 36, min_width=8, drop=3), PROJECT,
                UPDATED)
GROUP_COLUMNS = (ID, NAME, STATUS, Column("Volumes", 7, right=True),
                 Column("Host", 24, min_width=8, drop=2), PROJECT, UPDATED)
GROUP_SNAPSHOT_COLUMNS = (ID, NAME, STATUS, Column("Snaps", 5, right=True),
                          Column("Group", 36, min_width=8, drop=3), PROJECT, UPDATED)


def item_columns(kind: ItemKind) -> tuple[Column, ...]:
    return GROUP_COLUMNS if kind is GROUPS else GROUP_SNAPSHOT_COLUMNS \
        if kind is GROUP_SNAPSHOTS else ITEM_COLUMNS


def fmt_duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def fmt_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def fmt_gb(value: float) -> str:
    if value >= 1024:
        return f"{value / 1024:.1f}T"
    return f"{value:.1f}G" if value < 100 else f"{value:.0f}G"


def fmt_clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def compact_flow(name: str) -> str:
    return name.removeprefix("volume_")


def compact_task(name: str) -> str:
    return name.removesuffix("Task")


def flow_row(book: FlowBook, flow: FlowRecord, now: float, compact: bool) -> Row:
    """Flow, volume, actor, current task, its state, elapsed, reason."""
    task_name = flow.failed_task if flow.failed and flow.failed_task else flow.current
    task = flow.tasks.get(task_name) if task_name else None
    state = flow.state if flow.final or flow.failed or task is None else task.state
    tag = ("refused" if flow.refused else "failed" if flow.failed else
           "running" if not flow.final else "faded" if book.fade(flow, now) >= 0.5 else "done")
    return Row(flow.flow_id, (
        compact_flow(flow.flow) if compact else flow.flow,
        flow.volume_id[:8],
        flow.actor,
        (compact_task(task_name) if compact else task_name) if task_name else "",
        state,
        fmt_duration(flow.elapsed(now)),
        flow.reason or "",
    ), tag)


def volume_row_or_gone(volumes: Mapping[str, VolumeRecord], key: str, now: float,
                       compact: bool) -> Row:
    """The row for ``key``; a volume deleted since the keys were chosen shows as gone.

    The table paints lazily, so a row can be asked for after an event removed
    its volume from the book and before the next ``show`` drops the key.
    """
    v = volumes.get(key)
    if v is None:
        return Row(key, (key[:8] if compact else key, "", "deleted", "", "", "", "", ""))
    return volume_row(v, now, compact)


def volume_row(v: VolumeRecord, now: float, compact: bool) -> Row:
    """A migration under way shows beside the status (``available, migrating``)."""
    tag = ("error" if v.status in VOLUME_ERRORS
           else "running" if v.status == VolumeStatus.CREATING or v.migrating else "")
    return Row(v.id, (
        v.id[:8] if compact else v.id,
        v.name or "",
        f"{v.status}, {v.migration}" if v.migrating else v.status,
        f"{v.size}G",
        v.volume_type or "",
        v.host or "",
        v.project_id,
        fmt_age(now - v.updated),
    ), tag)


def item_row_or_gone(kind: ItemKind, items: Mapping[str, ItemRecord], key: str, now: float,
                     compact: bool) -> Row:
    """A snapshot's, backup's, group's or group snapshot's row (as
    ``volume_row_or_gone``)."""
    r = items.get(key)
    short = key[:8] if compact else key
    if r is None:
        return Row(key, (short, "", "deleted", "", "", "", ""))
    tag = "error" if r.status in kind.errors else "running" if r.status in kind.busy else ""
    if kind.count:  # its count of members, else its size
        amount = "" if r.volumes is None else str(r.volumes)
    else:
        amount = "" if r.size is None else f"{r.size}G"
    of = r.volume_id or ""  # what it is of (a volume, a group), else its host
    where = (of[:8] if compact else of) if kind.of else r.host or ""
    return Row(r.id, (short, r.name or "", r.status, amount, where, r.project_id,
                      fmt_age(now - r.updated)), tag)

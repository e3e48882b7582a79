"""Snapshots, backups, groups and group snapshots: folded from their events, caught up
from their lists.

A volume's book (``model_volumes``) is the model of this one; these kinds carry
less (no type, and for snapshots and backups no host: their volume's), so one
book serves all four, told apart by an ``ItemKind``. An item's record names
what it is of: a snapshot's or a backup's volume, a group's count of volumes, a
group snapshot's group and count of snapshots.

Every state change of each kind is an event (``snapshot``, ``backup``,
``group``, ``group_snapshot``: see ``actors/gateway``; a group snapshot's status
is its snapshots'), with ``deleted`` when its row goes. A
catch-up and the live stream can race, and as with volumes the gateway's clock
decides (an event's ``ts``, a listed item's ``updated_at``): the newer wins.

``Selection`` is the filtering both books share: the ids matching a status and
a text, newest first, and the count of each status, cached until the book's
``version`` moves; ``merge_listed`` is their catch-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.groups import Group, GroupSnapshot
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.states import BackupStatus, GroupStatus, SnapshotStatus


@dataclass(frozen=True, slots=True)
class ItemKind:
    name: str  # the event's kind, and what a row is called
    plural: str
    statuses: tuple[str, ...]  # the status filter's first choices, in order
    errors: frozenset[str]  # shown as an error
    busy: frozenset[str]  # shown as running
    of: str | None  # the event's field naming what it is of (None: it names its host)
    count: str | None  # the event's field counting its members (None: it has a size)


def _kind(name: str, plural: str,
          status: type[SnapshotStatus] | type[BackupStatus] | type[GroupStatus],
          of: str | None = "volume_id", count: str | None = None) -> ItemKind:
    errors = frozenset({status.ERROR.value, status.ERROR_DELETING.value})
    return ItemKind(name, plural, (status.CREATING.value, status.AVAILABLE.value,
                                   status.ERROR.value), errors,
                    frozenset({status.CREATING.value, status.DELETING.value}), of, count)


SNAPSHOTS = _kind("snapshot", "snapshots", SnapshotStatus)
BACKUPS = _kind("backup", "backups", BackupStatus)
GROUPS = _kind("group", "groups", GroupStatus, of=None, count="volumes")
# a group snapshot's status is its snapshots' (``actors/gateway/group_snapshots.status_of``)
GROUP_SNAPSHOTS = ItemKind("group_snapshot", "group snapshots",
                           ("creating", "available", "error"),
                           frozenset({"error", "error_deleting"}),
                           frozenset({"creating", "deleting"}), "group_id", "snapshots")
DELETED = "deleted"


@dataclass(slots=True)
class ItemRecord:
    id: str
    project_id: str
    status: str
    name: str | None
    size: int | None  # GiB (a group has none)
    volume_id: str | None  # a snapshot's or a backup's volume; a group snapshot's group
    volumes: int | None  # a group's count of volumes; a group snapshot's of snapshots
    host: str | None
    reason: str | None
    updated: float  # gateway clock
    seen: float  # dashboard clock of the latest change
    created: float  # gateway clock, for the order
    haystack: str = ""

    def index_text(self) -> None:
        parts = (self.id, self.name, self.status, self.volume_id, self.host, self.project_id)
        self.haystack = " ".join(p for p in parts if p).lower()


class Filterable(Protocol):
    status: str
    haystack: str


R = TypeVar("R", bound=Filterable)


class Dated(Protocol):
    id: str
    updated: float  # gateway clock of its latest change
    seen: float  # dashboard clock of the same
    created: float  # gateway clock, for the order


D = TypeVar("D", bound=Dated)


def merge_listed(held: dict[str, D], listed: Iterable[D], asked_at: float, complete: bool
                 ) -> dict[str, D]:
    """A book's records once a list asked for at ``asked_at`` (dashboard clock) is
    merged in, oldest first: of a record held and listed, the newer by the gateway's
    clock (one kept takes the list's ``created``: an event seen late can only guess it).
    When the list is ``complete`` (not cut by a limit), records it lacks that no event
    changed since it was asked for are gone: they are dropped."""
    merged = {} if complete else dict(held)
    for rec in listed:
        old = held.get(rec.id)
        if old is not None and old.updated > rec.updated:
            old.created = rec.created
            rec = old
        merged[rec.id] = rec
    if complete:
        for key, old in held.items():
            if key not in merged and old.seen > asked_at:
                merged[key] = old
    return dict(sorted(merged.items(), key=lambda kv: kv[1].created))


class Selection:
    """The ids of a book's records that match a filter (newest first), and the
    count of each status: worked out once per ``version`` and filter."""

    def __init__(self) -> None:
        self._selected: tuple[tuple[int, str | None, str], list[str]] | None = None
        self._counted: tuple[int, Counter[str]] | None = None

    def select(self, records: dict[str, R], version: int, status: str | None,
               text: str) -> list[str]:
        key = (version, status, text.lower())
        if self._selected is not None and self._selected[0] == key:
            return self._selected[1]
        needle = key[2]
        found = [
            key for key, r in reversed(records.items())
            if (status is None or r.status == status) and (not needle or needle in r.haystack)
        ]
        self._selected = (key, found)
        return found

    def counts(self, records: dict[str, R], version: int) -> Counter[str]:
        if self._counted is None or self._counted[0] != version:
            self._counted = (version, Counter(r.status for r in records.values()))
        return self._counted[1]


class ItemBook:
    def __init__(self, kind: ItemKind, project: str = "demo", admin: bool = True) -> None:
        self.kind = kind
        self.project = project
        self.admin = admin
        self.items: dict[str, ItemRecord] = {}
        self.version = 0
        self.catch_up_truncated = False
        self._selection = Selection()

    def on_event(self, e: Mapping[str, Any], now: float) -> None:
        """Fold one ``snapshot``, ``backup``, ``group`` or ``group_snapshot`` event (this
        book's kind)."""
        project = str(e.get("project_id") or "")
        if not (self.admin or project == self.project):
            return
        item_id, status, ts = str(e[f"{self.kind.name}_id"]), str(e["status"]), float(e["ts"])
        old = self.items.get(item_id)
        if old is not None and old.updated > ts:
            return
        self.version += 1
        if status == DELETED:
            self.items.pop(item_id, None)
            return
        kind = self.kind
        size = e.get("size")
        members = e.get(kind.count) if kind.count else None
        rec = ItemRecord(
            item_id, project, status, _opt(e.get("name")),
            None if size is None else int(size), _opt(e.get(kind.of)) if kind.of else None,
            None if members is None else int(members), _opt(e.get("host")),
            _opt(e.get("reason")), ts, now, old.created if old else ts,
        )
        rec.index_text()
        self.items[item_id] = rec  # in its place; a new one last (its first event: made)

    def load(self, listed: Iterable[ItemRecord], asked_at: float, complete: bool) -> None:
        """Merge a list asked for at ``asked_at`` (``merge_listed``)."""
        self.items = merge_listed(self.items, listed, asked_at, complete)
        self.catch_up_truncated = not complete
        self.version += 1

    def select(self, status: str | None = None, text: str = "") -> list[str]:
        """Ids of the items matching the filter, newest first."""
        return self._selection.select(self.items, self.version, status, text)

    def counts(self) -> Counter[str]:
        return self._selection.counts(self.items, self.version)


def snapshot_record(s: Snapshot, asked_at: float) -> ItemRecord:
    return _indexed(ItemRecord(s.id, s.project_id, str(s.status), s.name, s.size, s.volume_id,
                               None, None, s.reason, s.updated_at or s.created_at, asked_at,
                               s.created_at))


def backup_record(b: Backup, asked_at: float) -> ItemRecord:
    return _indexed(ItemRecord(b.id, b.project_id, str(b.status), b.name, b.size, b.volume_id,
                               None, None, b.fail_reason, b.updated_at or b.created_at,
                               asked_at, b.created_at))


def group_record(g: Group, asked_at: float) -> ItemRecord:
    return _indexed(ItemRecord(g.id, g.project_id, str(g.status), g.name, None, None,
                               len(g.volumes), g.host, g.reason, g.updated_at or g.created_at,
                               asked_at, g.created_at))


def group_snapshot_record(g: GroupSnapshot, asked_at: float) -> ItemRecord:
    """Its list carries no ``updated_at``: its ``created_at`` stands in (an event since
    is newer, and wins)."""
    return _indexed(ItemRecord(g.id, g.project_id, str(g.status), g.name, None, g.group_id,
                               len(g.snapshots), None, None, g.created_at, asked_at,
                               g.created_at))


def _indexed(rec: ItemRecord) -> ItemRecord:
    rec.index_text()
    return rec


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

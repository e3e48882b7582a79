"""Volumes, folded from ``volume`` events and caught up from ``volume.list``.

The book keeps one record per volume, newest last (the gateway publishes a
volume's first event when it is created, so arrival order is creation order;
a catch-up rebuilds that order from ``created_at``). ``select`` answers the
table's question "which volumes, newest first, match this filter" and caches
the answer until a volume or the filter changes (``model_items.Selection``, which
the books of snapshots, backups and groups share).

A catch-up and the live stream can race: a snapshot taken before an event
arrived must not undo it. Both carry the gateway's clock (``updated_at`` and
the event's ``ts``), so the newer of the two wins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import VolumeStatus
from cinderblock.tui.model.items import Selection, merge_listed

# the migration_status words of a migration under way (``actors/gateway/migration_store``)
MIGRATION_RUNNING = frozenset({"migrating", "completing"})


@dataclass(slots=True)
class VolumeRecord:
    id: str
    project_id: str
    status: str
    size: int
    name: str | None
    volume_type: str | None
    host: str | None
    reason: str | None
    updated: float  # gateway clock
    seen: float  # dashboard clock of the latest change
    created: float = 0.0
    migration: str | None = None  # Cinder's migration_status: its latest migration's
    haystack: str = ""

    @property
    def migrating(self) -> bool:
        return self.migration in MIGRATION_RUNNING

    def index_text(self) -> None:
        parts = (self.id, self.name, self.status, self.volume_type, self.host, self.project_id,
                 self.migration if self.migrating else None)
        self.haystack = " ".join(p for p in parts if p).lower()


class VolumeBook:
    def __init__(self, project: str = "demo", admin: bool = True) -> None:
        self.project = project
        self.admin = admin
        self.volumes: dict[str, VolumeRecord] = {}
        self.version = 0
        self.catch_up_truncated = False
        self._selection = Selection()

    def visible(self, project_id: str) -> bool:
        return self.admin or project_id == self.project

    def on_volume(self, e: Mapping[str, Any], now: float) -> str | None:
        """Fold one event; returns the volume's previous status (None if new)."""
        project = str(e.get("project_id") or "")
        if not self.visible(project):
            return None
        volume_id, ts, status = str(e["volume_id"]), float(e["ts"]), str(e["status"])
        old = self.volumes.get(volume_id)
        if old is not None and old.updated > ts:
            return old.status
        if status == VolumeStatus.DELETED:
            self.volumes.pop(volume_id, None)
            self.version += 1
            return old.status if old else None
        rec = VolumeRecord(
            volume_id, project, status, int(e.get("size") or 0),
            _opt(e.get("name")), _opt(e.get("volume_type")), _opt(e.get("host")),
            _opt(e.get("reason")), ts, now, old.created if old else ts,
            _opt(e.get("migration_status")),
        )
        rec.index_text()
        self.volumes[volume_id] = rec
        self.version += 1
        return old.status if old else None

    def load(self, snapshot: Iterable[Volume], asked_at: float, complete: bool) -> None:
        """Merge a ``volume.list`` answer asked for at ``asked_at`` (dashboard clock;
        ``model_items.merge_listed``)."""
        self.volumes = merge_listed(self.volumes, map(partial(_record, asked_at), snapshot),
                                    asked_at, complete)
        self.catch_up_truncated = not complete
        self.version += 1

    def select(self, status: str | None = None, text: str = "") -> list[str]:
        """Ids of the volumes matching the filter, newest first."""
        return self._selection.select(self.volumes, self.version, status, text)

    def counts(self) -> Counter[str]:
        return self._selection.counts(self.volumes, self.version)


def _record(asked_at: float, v: Volume) -> VolumeRecord:
    rec = VolumeRecord(v.id, v.project_id, v.status, v.size, v.name, v.volume_type, v.host,
                       v.reason, v.updated_at, asked_at, v.created_at, v.migration_status)
    rec.index_text()
    return rec


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

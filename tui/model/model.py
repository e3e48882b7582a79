"""The dashboard's model: every event folded into state, with no Textual and no sockets.

The books live in ``model_flows``, ``model_volumes``, ``model_items`` (snapshots,
backups, groups), ``model_backends`` and ``model_rates``; this module ties them
together and is what the rest imports.

``Model.apply`` takes a batch of decoded event maps (the schema in
``actors/events.py``) and the dashboard's clock, and updates the books:
flows and tasks, volumes, snapshots, backups, groups, backends, rates, actors'
heartbeats. ``load_*`` merge what the gateway says when the dashboard (re)connects
(volumes and the rest, backends, types, and the flows every actor remembers), so
nothing shown
depends on having watched from the start. Widgets read the books at their own
pace; each book has a ``version`` that changes when it does.

Events come off the wire: a map that lacks a field or has the wrong type is
counted in ``malformed`` and skipped, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.messages.flows import FlowTrace
from cinderblock.protocol.messages.health import ClusterStats
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.tui.model.backends import BackendBook, BackendRecord
from cinderblock.tui.model.flows import FAILED, FINAL, Change, FlowBook, FlowRecord, TaskRecord
from cinderblock.tui.model.items import (
    BACKUPS,
    GROUP_SNAPSHOTS,
    GROUPS,
    SNAPSHOTS,
    ItemBook,
    ItemRecord,
)
from cinderblock.tui.model.rates import Rates, RatesView, percentile
from cinderblock.tui.model.volumes import VolumeBook, VolumeRecord

__all__ = [
    "FAILED",
    "FINAL",
    "BackendBook",
    "BackendRecord",
    "Change",
    "FlowBook",
    "FlowRecord",
    "ItemBook",
    "ItemRecord",
    "LinkState",
    "Model",
    "Rates",
    "RatesView",
    "TaskRecord",
    "VolumeBook",
    "VolumeRecord",
    "percentile",
]

Handler = Callable[[Mapping[str, Any], float], None]


@dataclass(slots=True)
class LinkState:
    """What the dashboard knows about its connection to the gateway."""

    gateway: str
    events: str
    up: bool | None = None  # None until the first ping answers or fails
    since: float = 0.0
    error: str = ""
    synced_at: float | None = None

    def mark(self, up: bool, now: float, error: str = "") -> bool:
        """Record the gateway as up or down; True if that is a change."""
        changed = self.up is not up
        if changed:
            self.up, self.since = up, now
        self.error = error
        return changed


@dataclass(slots=True)
class HealthState:
    """Every actor's liveness and restarts, as the gateway's ``cluster.stats`` last said."""

    answering: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    restarts: int | None = None  # all actors' restarts added up (None: not reported)
    checked_at: float | None = None
    unavailable: str = ""  # why there is no health to show (e.g. not an admin)

    def load(self, stats: ClusterStats, now: float) -> None:
        self.answering = tuple(a.actor for a in stats.actors)
        self.missing = stats.missing
        counts = [a.restarts for a in stats.actors if a.restarts is not None]
        self.restarts = sum(counts) if counts else None
        self.checked_at, self.unavailable = now, ""


class Model:
    def __init__(self, project: str = "demo", admin: bool = True, gateway: str = "",
                 events: str = "", fade_s: float = 10.0, stale_after_s: float = 2.5) -> None:
        self.flows = FlowBook(fade_s=fade_s)
        self.volumes = VolumeBook(project, admin)
        self.snapshots = ItemBook(SNAPSHOTS, project, admin)
        self.backups = ItemBook(BACKUPS, project, admin)
        self.groups = ItemBook(GROUPS, project, admin)
        self.group_snapshots = ItemBook(GROUP_SNAPSHOTS, project, admin)
        self.project, self.admin = project, admin
        self.backends = BackendBook(stale_after_s)
        self.rates = Rates()
        self.link = LinkState(gateway, events)
        self.health = HealthState()
        self.types: list[str] = []
        self.actors: dict[str, float] = {}  # actor -> dashboard clock of its last event
        self.events_total = 0
        self.malformed = 0
        self.last_problem = ""
        self._handlers: dict[str, Handler] = {
            "flow": self._on_flow,
            "task": self._on_task,
            "volume": self._on_volume,
            "snapshot": self.snapshots.on_event,
            "backup": self.backups.on_event,
            "group": self.groups.on_event,
            "group_snapshot": self.group_snapshots.on_event,
            "backend": self.backends.on_backend,
        }

    def apply(self, events: Iterable[object], now: float) -> None:
        count = 0
        for event in events:
            count += 1
            if not isinstance(event, dict):
                self._problem(f"event is a {type(event).__name__}, not a map")
                continue
            handler = self._handlers.get(str(event.get("kind")))
            try:
                self.actors[str(event["actor"])] = now
                if handler is not None:
                    handler(event, now)
            except (KeyError, TypeError, ValueError) as exc:
                self._problem(f"{event.get('kind')} event: {type(exc).__name__} {exc}")
        self.events_total += count
        self.rates.count_events(count, now)

    def _problem(self, text: str) -> None:
        self.malformed += 1
        self.last_problem = text

    def _mine(self, e: Mapping[str, Any]) -> bool:
        """Whether a flow event is for this dashboard: an admin's sees every project's."""
        return self.admin or e.get("project_id", self.project) == self.project

    def _on_flow(self, e: Mapping[str, Any], now: float) -> None:
        if self._mine(e):
            self.flows.on_flow(e, now)
        if e["flow"] == "volume_create_api" and e["state"] == "PENDING" and e.get("volume_id"):
            self.rates.api_started(str(e["volume_id"]), float(e["ts"]), now)

    def _on_task(self, e: Mapping[str, Any], now: float) -> None:
        if self._mine(e):
            self.flows.on_task(e, now)

    def _on_volume(self, e: Mapping[str, Any], now: float) -> None:
        previous = self.volumes.on_volume(e, now)
        self.rates.volume_status(str(e["volume_id"]), str(e["status"]), previous,
                                 float(e["ts"]), now)

    def tick(self, now: float) -> None:
        self.flows.tick(now)
        self.rates.tick(now)

    # ---- catching up from the gateway -----------------------------------
    def load_volumes(self, volumes: Iterable[Volume], asked_at: float, complete: bool) -> None:
        self.volumes.load(volumes, asked_at, complete)

    def books(self) -> dict[str, ItemBook]:
        """The books of the kinds beside volumes, by their plural."""
        return {b.kind.plural: b for b in (self.snapshots, self.backups, self.groups,
                                           self.group_snapshots)}

    def load_flows(self, traces: Iterable[FlowTrace], asked_at: float) -> None:
        self.flows.load(traces, asked_at)

    def load_backends(self, backends: Iterable[Backend], now: float) -> None:
        self.backends.load(backends, now)

    def load_types(self, types: Iterable[VolumeType]) -> None:
        self.types = sorted(t.name for t in types)

    def actors_alive(self, now: float, within_s: float = 5.0) -> list[str]:
        return sorted(a for a, seen in self.actors.items() if now - seen <= within_s)

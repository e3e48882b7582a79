"""The cluster's Prometheus metrics, folded from events: plain code, no sockets.

``ClusterMetrics.observe`` takes one event map as the actors publish it
(``actors/runtime/events.py``) and moves the metrics; ``set_quota`` takes a project's
quota as the gateway answers it. The exporter process feeds both, so the actors' hot
path does nothing for metrics beyond the events it already publishes to dashboards.

    cinderblock_volume_creates_total{outcome}    available | error (the node or the
                                                 scheduler failed) | refused (the API
                                                 flow failed: bad input, over quota)
    cinderblock_volume_deletes_total{outcome}    deleted | error | refused
    cinderblock_volume_create_seconds            histogram: request (the API flow's
                                                 first event) to ``available``
    cinderblock_flow_changes_total{flow,state}   every flow state change seen
    cinderblock_actor_flows{actor,state}         running / done / failed flows an actor
                                                 remembers (its heartbeat statistics)
    cinderblock_quota_in_use{project,resource}, cinderblock_quota_limit{...},
    cinderblock_quota_reserved{...}
    cinderblock_backend_capacity_gb{backend,kind}  total | free | allocated | provisioned
    cinderblock_backend_volumes{backend}
    cinderblock_actor_up{actor}                  1 while its heartbeats arrive
    cinderblock_actor_uptime_seconds{actor}, cinderblock_actor_restarts{actor} (when the
    actor reports them), cinderblock_actor_handled{actor}
    cinderblock_actor_gc_pause_seconds{actor}    time its loop stood still in the cyclic
                                                 collector since it started
    cinderblock_actor_gc_collected{actor}        objects that collector freed (garbage in
                                                 cycles: near 0 unless something makes them)
    cinderblock_volumes{status}, cinderblock_snapshots{status},
    cinderblock_attachments{status},
    cinderblock_backups{status},
    cinderblock_groups{status}                   how many are in each status, every
                                                 project's (the gateway's file, asked every
                                                 ``metrics_counts_every_s``); 0 for a status none is
                                                 in, so ``cinderblock_volumes{status="error"}
                                                 > 0`` is an alert without ``absent()``
    cinderblock_exporter_events_total            events folded in

A create is timed from the first event of its ``volume_create_api`` flow; the starts of
creates not finished yet are kept (at most ``MAX_OPEN``, the oldest dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cinderblock.protocol.messages.health import StatusCounts
from cinderblock.protocol.states import (
    AttachmentStatus,
    BackupStatus,
    GroupStatus,
    SnapshotStatus,
    VolumeStatus,
)

MAX_OPEN = 100_000
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0)
# (a node's statistics key, the gauge's name after cinderblock_nbd_, its help)
NBD_GAUGES = (
    ("exports", "exports", "volumes exported for attachments on the node"),
    ("nbd_connections", "connections", "NBD clients connected to the node"),
    ("nbd_bytes_read", "bytes_read", "bytes the node's NBD clients read since it started"),
    ("nbd_bytes_written", "bytes_written",
     "bytes the node's NBD clients wrote since it started"),
    ("nbd_throttled", "throttled_requests",
     "requests a back-end QoS held back since the node started"),
    ("nbd_throttled_s", "throttled_seconds", "how long those requests waited, in all"),
)
# what the gateway did about a peer that died, froze or was cut off, since it started:
# cinderblock_gateway_peer_calls{what} (its statistics' key -> the label)
GATEWAY_PEER_CALLS = (
    ("quota_calls_resent", "quota_resent"),  # lost with a dead quota actor, asked again
    ("quota_calls_given_up", "quota_given_up"),  # to a quota actor frozen or cut off
    ("node_calls_given_up", "node_given_up"),  # to a node not heard from
    ("lost_creates_sent_again", "creates_sent_again"),  # taken by a dead scheduler
)
# what cinderblock_<kind>{status} counts: each kind's statuses a row can hold (a deleted
# volume's or snapshot's row is gone)
COUNTED: dict[str, tuple[str, ...]] = {
    kind: tuple(s.value for s in statuses if s.value != "deleted")
    for kind, statuses in (("volumes", VolumeStatus), ("snapshots", SnapshotStatus),
                           ("attachments", AttachmentStatus), ("backups", BackupStatus),
                           ("groups", GroupStatus))
}
CREATE_FLOW = "volume_create_api"
DELETE_FLOW = "volume_delete_api"


class ClusterMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.creates = Counter("cinderblock_volume_creates", "volume creates by outcome",
                               ["outcome"], registry=r)
        self.deletes = Counter("cinderblock_volume_deletes", "volume deletes by outcome",
                               ["outcome"], registry=r)
        self.create_seconds = Histogram("cinderblock_volume_create_seconds",
                                        "from the create request to available",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.flow_changes = Counter("cinderblock_flow_changes", "flow state changes",
                                    ["flow", "state"], registry=r)
        self.actor_flows = Gauge("cinderblock_actor_flows", "flows an actor remembers",
                                 ["actor", "state"], registry=r)
        self.quota = {kind: Gauge(f"cinderblock_quota_{kind}", f"quota {kind} per project",
                                  ["project", "resource"], registry=r)
                      for kind in ("in_use", "limit", "reserved")}
        self.capacity = Gauge("cinderblock_backend_capacity_gb", "backend capacity in GiB",
                              ["backend", "kind"], registry=r)
        self.backend_volumes = Gauge("cinderblock_backend_volumes", "volumes on a backend",
                                     ["backend"], registry=r)
        self.actor_up = Gauge("cinderblock_actor_up", "1 while the actor's heartbeats arrive",
                              ["actor"], registry=r)
        self.uptime = Gauge("cinderblock_actor_uptime_seconds", "seconds since the actor "
                            "started", ["actor"], registry=r)
        self.restarts = Gauge("cinderblock_actor_restarts", "times the actor was restarted",
                              ["actor"], registry=r)
        self.handled = Gauge("cinderblock_actor_handled", "requests and casts the actor "
                             "dispatched since it started", ["actor"], registry=r)
        self.gc_pause = Gauge("cinderblock_actor_gc_pause_seconds", "time the actor's loop "
                              "stood still in the cyclic collector", ["actor"], registry=r)
        self.gc_collected = Gauge("cinderblock_actor_gc_collected", "objects the cyclic "
                                  "collector freed in the actor", ["actor"], registry=r)
        # a storage node's NBD server: what its heartbeats report (storage_node/nbd/)
        self.nbd = {key: Gauge(f"cinderblock_nbd_{name}", text, ["actor"], registry=r)
                    for key, name, text in NBD_GAUGES}
        self.gateway_peer_calls = Gauge(
            "cinderblock_gateway_peer_calls", "calls the gateway asked again or gave up, and "
            "creates it sent again, since it started, as a peer died, froze or was cut off",
            ["what"], registry=r)
        self.events = Counter("cinderblock_exporter_events", "events folded in", registry=r)
        self.reconciled = Counter("cinderblock_reconciled", "records the gateway's reconciler "
                                  "moved on after a crash, by kind and what it did (an "
                                  "export closed: kind export)", ["kind", "action"],
                                  registry=r)
        self.status_counts = {kind: Gauge(f"cinderblock_{kind}", f"{kind} in each status, "
                                          "every project's", ["status"], registry=r)
                              for kind in COUNTED}
        self._creating: OrderedDict[str, float] = OrderedDict()  # volume id -> request time
        self._deleting: set[str] = set()
        self.last_heartbeat: dict[str, float] = {}
        self.projects: set[str] = set()
        self._statuses: dict[str, dict[str, None]] = {}  # kind -> statuses shown, in order

    # ---- events ---------------------------------------------------------------------
    def observe(self, event: Mapping[str, Any]) -> None:
        self.events.inc()
        kind = event.get("kind")
        if kind == "flow":
            self._flow(event)
        elif kind == "volume":
            self._volume(event)
        elif kind == "backend":
            self._backend(event)
        elif kind == "heartbeat":
            self._heartbeat(event)
        elif kind == "reconcile":
            self._reconcile(event)

    def _flow(self, e: Mapping[str, Any]) -> None:
        flow, state, volume = str(e.get("flow")), str(e.get("state")), str(e.get("volume_id"))
        self.flow_changes.labels(flow, state).inc()
        if isinstance(e.get("project_id"), str) and e["project_id"]:
            self.projects.add(e["project_id"])
        if flow == CREATE_FLOW and state == "PENDING":
            self._creating[volume] = float(e.get("ts") or 0.0)
            while len(self._creating) > MAX_OPEN:
                self._creating.popitem(last=False)
        elif flow == CREATE_FLOW and state == "FAILURE":
            self._creating.pop(volume, None)
            self.creates.labels("refused").inc()
        elif flow == DELETE_FLOW and state == "PENDING":
            self._deleting.add(volume)
        elif flow == DELETE_FLOW and state == "FAILURE" and volume in self._deleting:
            self._deleting.discard(volume)
            self.deletes.labels("refused").inc()

    def _reconcile(self, e: Mapping[str, Any]) -> None:
        for done in _list(e.get("actions")):
            if isinstance(done, list) and len(done) == 2 \
                    and all(isinstance(x, str) and 0 < len(x) <= 32 for x in done):
                self.reconciled.labels(*done).inc()
        closed = len(_list(e.get("exports_closed")))
        if closed:
            self.reconciled.labels("export", "close").inc(closed)

    def _volume(self, e: Mapping[str, Any]) -> None:
        volume, status = str(e.get("volume_id")), e.get("status")
        if isinstance(e.get("project_id"), str) and e["project_id"]:
            self.projects.add(e["project_id"])
        if status == "available" and volume in self._creating:
            started = self._creating.pop(volume)
            self.creates.labels("available").inc()
            if started:
                self.create_seconds.observe(max(0.0, float(e.get("ts") or 0.0) - started))
        elif status == "error" and volume in self._creating:
            self._creating.pop(volume)
            self.creates.labels("error").inc()
        elif status == "deleted":
            self._deleting.discard(volume)
            self.deletes.labels("deleted").inc()
        elif status == "error_deleting":
            self._deleting.discard(volume)
            self.deletes.labels("error").inc()

    def _backend(self, e: Mapping[str, Any]) -> None:
        backend = str(e.get("backend"))
        for kind in ("total", "free", "allocated", "provisioned"):
            value = e.get(f"{kind}_capacity_gb")
            if isinstance(value, int | float):
                self.capacity.labels(backend, kind).set(value)
        if isinstance(e.get("volumes"), int):
            self.backend_volumes.labels(backend).set(e["volumes"])

    def _heartbeat(self, e: Mapping[str, Any]) -> None:
        actor, stats = str(e.get("actor")), e.get("statistics") or {}
        self.last_heartbeat[actor] = float(e.get("ts") or 0.0)
        self.actor_up.labels(actor).set(1)
        if isinstance(stats.get("uptime_s"), int | float):
            self.uptime.labels(actor).set(stats["uptime_s"])
        if isinstance(stats.get("restarts"), int):
            self.restarts.labels(actor).set(stats["restarts"])
        if isinstance(stats.get("handled"), int):
            self.handled.labels(actor).set(stats["handled"])
        collector = stats.get("collector") or {}
        if isinstance(collector.get("pause_s"), int | float):
            self.gc_pause.labels(actor).set(collector["pause_s"])
        if isinstance(collector.get("collected"), int):
            self.gc_collected.labels(actor).set(collector["collected"])
        for state, count in (stats.get("flows") or {}).items():
            if isinstance(count, int):
                self.actor_flows.labels(actor, str(state)).set(count)
        for key, gauge in self.nbd.items():
            if isinstance(stats.get(key), int | float) and not isinstance(stats[key], bool):
                gauge.labels(actor).set(stats[key])
        if actor == "gateway":
            for key, what in GATEWAY_PEER_CALLS:
                if isinstance(stats.get(key), int) and not isinstance(stats[key], bool):
                    self.gateway_peer_calls.labels(what).set(stats[key])

    # ---- what the exporter asks for ------------------------------------------------------
    def mark_silent(self, now: float, after_s: float) -> None:
        """Actors whose last heartbeat is older than ``after_s`` are down."""
        for actor, seen in self.last_heartbeat.items():
            self.actor_up.labels(actor).set(1 if now - seen <= after_s else 0)

    def set_status_counts(self, counts: StatusCounts) -> None:
        """Each kind's count in each status; 0 for a status the gateway counted none in
        (a status it names that this exporter does not know is shown too, and 0 once
        none is in it)."""
        for kind, known in COUNTED.items():
            found: Mapping[str, int] = getattr(counts, kind)
            shown = self._statuses.setdefault(kind, dict.fromkeys(known))
            shown.update(dict.fromkeys(found))
            for status in shown:
                self.status_counts[kind].labels(status).set(found.get(status, 0))

    def set_quota(self, project: str, limits: Mapping[str, int], in_use: Mapping[str, int],
                  reserved: Mapping[str, int]) -> None:
        for kind, values in (("limit", limits), ("in_use", in_use), ("reserved", reserved)):
            for resource, value in values.items():
                self.quota[kind].labels(project, resource).set(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []

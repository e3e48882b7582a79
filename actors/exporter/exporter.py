"""The metrics exporter: a small process that serves Prometheus metrics about the cluster.

It subscribes to the event hub like a dashboard and folds every event into
``ClusterMetrics`` (creates, deletes, latencies, flows, backends, the actors' heartbeat
statistics), and every ``POLL_S`` asks the gateway for the quota of each project it
has seen in events, 500 projects a call (``quota.show_many``). Nothing is added to any
actor's hot path: the events are the ones dashboards read (the actors build them while
anybody subscribes) and the
statistics ride on the heartbeats every actor already sends. Restarts come from the
actors' statistics or, under ``cinderblock up``, from its supervisor's ``status.json``.

HTTP (prometheus-client's server, a thread of its own) listens on ``metrics`` from
the cluster file. On loopback it serves plain HTTP; on any other address it refuses
to start unless ``metrics_certfile``/``metrics_keyfile`` and
``metrics_client_cafile`` are set, and then serves HTTPS to clients whose
certificate that CA signed (mutual TLS): no one off this host reads it
unauthenticated.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

import zmq
from prometheus_client import start_http_server

from cinderblock.actors.exporter.metrics import ClusterMetrics
from cinderblock.actors.runtime.actor import Actor
from cinderblock.actors.runtime.config import ClusterConfig, ConfigError
from cinderblock.actors.runtime.keyring import MONITOR_USER, secret_key_file
from cinderblock.actors.runtime.restarts import supervised_restarts
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.events import TOPIC
from cinderblock.protocol.wire.codec import MalformedMessage, unpack
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.keys import client_keys, curve_client
from cinderblock.protocol.wire.transport import Channel, tune

log = logging.getLogger(__name__)
POLL_S = 2.0
SILENT_AFTER_BEATS = 3  # heartbeats missed before an actor counts as down


class MetricsExporter(Actor):
    name = "exporter"

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(None)  # it publishes nothing
        self.cfg = cfg
        self.metrics = ClusterMetrics()
        self.host, self.port = listen_address(cfg)
        self.malformed = 0
        self._counted_at = float("-inf")  # when the counts by status were last read
        self._server: Any = None

    async def on_start(self) -> None:
        key = (secret_key_file(Path(self.cfg.data_dir), MONITOR_USER) if self.cfg.security
               else None)
        sub = self.zctx.socket(zmq.SUB)
        tune(sub)
        keys = client_keys(key)
        if keys is not None:
            curve_client(sub, *keys)
        sub.setsockopt(zmq.SUBSCRIBE, TOPIC)  # every project's: a monitor may
        sub.connect(self.cfg.events)
        self._events = Channel(sub, self._on_events)
        self._gateway = Client(self.cfg.gateway, project="services", user=MONITOR_USER,
                               admin=True, timeout=POLL_S, key=key)
        self._server, _ = start_http_server(self.port, self.host, registry=self.metrics.registry,
                                            **tls_options(self.cfg))
        self.every(POLL_S, self._poll)
        log.info("metrics on %s://%s:%d/metrics", "https" if self.cfg.metrics_certfile
                 else "http", self.host, self.port)

    async def on_stop(self) -> None:
        self._events.close()
        self._gateway.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def statistics(self) -> dict[str, Any]:
        return {**super().statistics(), "malformed_events": self.malformed,
                "projects": len(self.metrics.projects)}

    def _on_events(self, frames: list[bytes]) -> None:
        try:
            if len(frames) != 2 or not frames[0].endswith(b"/"):
                raise MalformedMessage("expected [b'<project>/', events]")
            batch = unpack(frames[1])
            if not isinstance(batch, list):
                raise MalformedMessage("events must be an array")
        except MalformedMessage as exc:
            self.malformed += 1
            log.warning("ignoring a malformed event message: %s", exc)
            return
        for event in batch:
            if isinstance(event, dict):
                self.metrics.observe(event)

    async def _poll(self) -> None:
        self.metrics.mark_silent(time.time(), SILENT_AFTER_BEATS * self.cfg.heartbeat_s + 1.0)
        if time.monotonic() - self._counted_at >= self.cfg.metrics_counts_every_s:
            await self._count()
        for actor, count in supervised_restarts(Path(self.cfg.data_dir)).items():
            self.metrics.restarts.labels(actor).set(count)
        try:  # every project seen, QUOTAS_MAX a call (it was a call a project)
            quotas = await self._gateway.show_quotas(sorted(self.metrics.projects))
        except CinderblockError as exc:
            log.info("quotas not read: %s", exc)
            return
        for quota in quotas:
            self.metrics.set_quota(quota.project, quota.limits, quota.in_use, quota.reserved)

    async def _count(self) -> None:
        try:
            counts = await self._gateway.status_counts()
        except CinderblockError as exc:
            log.info("counts by status not read: %s", exc)
            return
        self._counted_at = time.monotonic()
        self.metrics.set_status_counts(counts)


def listen_address(cfg: ClusterConfig) -> tuple[str, int]:
    """(host, port) of ``metrics``; beyond loopback only with TLS client certificates."""
    host, sep, port = cfg.metrics.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"metrics must be HOST:PORT, got {cfg.metrics!r}")
    if not _loopback(host) and not (cfg.metrics_certfile and cfg.metrics_keyfile
                                    and cfg.metrics_client_cafile):
        raise ConfigError(f"metrics on {host} (beyond loopback) needs metrics_certfile, "
                          "metrics_keyfile and metrics_client_cafile: scrapes from other "
                          "hosts must present a client certificate")
    return host, int(port)


def tls_options(cfg: ClusterConfig) -> dict[str, Any]:
    if not cfg.metrics_certfile:
        return {}
    return {"certfile": cfg.metrics_certfile, "keyfile": cfg.metrics_keyfile,
            "client_cafile": cfg.metrics_client_cafile, "client_auth_required": True}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

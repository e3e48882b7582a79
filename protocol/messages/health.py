"""Liveness, statistics and identity on the wire: every actor's ``stats``, the gateway's
``cluster.stats`` and ``whoami``.

    any peer → any actor   stats          (Empty) → ActorStats: that actor's own snapshot
    client   → gateway     cluster.stats  (Empty) → ClusterStats: the gateway's, the quota
                                          actor's, the scheduler's and every node's, asked
                                          at once; one that does not answer in time is
                                          named in ``missing``
    client   → gateway     cluster.counts (Empty) → StatusCounts: how many volumes,
                                          snapshots, attachments, backups and groups are in
                                          each status,
                                          every project's (the exporter's gauges)
    any user → gateway     whoami         (Empty) → Identity: whom the gateway takes the
                                          caller for (its key's project, user and roles)

The statistics are read-only and answered to admins (and, with the trust model, to the
``monitor`` role); ``cinderblock health`` and the metrics exporter read them. ``restarts`` is
``None`` when nobody told the actor how often it was restarted (the supervisor of
``cinderblock up`` does, through ``CINDERBLOCK_RESTARTS`` in the actor's environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class ActorStats:
    actor: str  # its name: gateway, quota, scheduler, or a node's host
    pid: int
    started_at: float  # epoch seconds
    uptime_s: float
    restarts: int | None = None
    handled: int = 0  # requests and casts dispatched since start
    pending_calls: int = 0  # its own calls still waiting for a reply
    queues: dict[str, int] = field(default_factory=dict)  # outbox depth per socket, tasks
    database: dict[str, Any] = field(default_factory=dict)  # state, path, pending writes
    flows: dict[str, int] = field(default_factory=dict)  # running, done, failed
    details: dict[str, Any] = field(default_factory=dict)  # the actor's statistics()


@message
@dataclass(frozen=True, slots=True)
class ClusterStats:
    actors: tuple[ActorStats, ...] = ()
    missing: tuple[str, ...] = ()  # actors that did not answer in time


@message
@dataclass(frozen=True, slots=True)
class StatusCounts:
    """Every project's volumes, snapshots, attachments, backups and groups by status (a
    status none is in is absent), as the gateway's file holds them."""
    volumes: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)
    attachments: dict[str, int] = field(default_factory=dict)
    backups: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class Identity:
    """Whom a request acts for, as the gateway took it: with security, the key's user
    (nothing the message said); without, what the envelope said."""
    project_id: str
    user_id: str
    roles: tuple[str, ...] = ()

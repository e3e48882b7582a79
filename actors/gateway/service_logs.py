"""The gateway's ``service.log_levels`` and ``service.set_log_levels`` (an admin's):
the log levels of the services a binary and server name, asked of each at once.

Which services a request names is plain code (``services_named``): the gateway itself
(``cinderblock-gateway``), the quota actor (``cinderblock-quota``), the scheduler
(``cinder-scheduler`` on ``scheduler``) and each node (``cinder-volume`` on its
backend, as ``os-services`` lists them). The gateway answers for itself in process; the
quota actor and the scheduler are asked over its DEALERs to them, each node over its
ROUTER, with the admin's context; one that has not answered within ``PEER_TIMEOUT_S`` is
named in ``missing`` (a level set meanwhile on a node that was down is not set there:
a restarted actor logs as its configuration says).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.gateway.cluster_stats import ask_by
from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.runtime.actor import Handler, Link, Request
from cinderblock.actors.runtime.config import NodeConfig
from cinderblock.actors.runtime.log_levels import check_level, check_prefix, levels, set_levels
from cinderblock.protocol.messages.log_levels import (
    BINARIES,
    GATEWAY_BINARY,
    QUOTA_BINARY,
    SCHEDULER_BINARY,
    VOLUME_BINARY,
    ActorLogLevels,
    LogLevelsAsk,
    LogLevelsSet,
    ServiceLogLevels,
    ServiceLogList,
    ServiceLogRequest,
)
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import SchemaError, parse

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 2.0
EVERY = (None, "", "*")


@dataclass(frozen=True, slots=True)
class Service:
    binary: str
    host: str
    peer: str  # "gateway" (itself), "quota", "scheduler", or a node's host name


def services_named(req: ServiceLogRequest, nodes: Sequence[NodeConfig]) -> list[Service]:
    """The services `req`'s binary and server name (the REST front answers for
    ``cinder-api`` itself; ``cinder-backup`` names none here)."""
    if req.binary not in EVERY and req.binary not in BINARIES:
        raise InvalidInput(f"binary {req.binary!r} is none of {', '.join(BINARIES)}, '*' "
                           "or empty", {"field": "binary"})
    every = [Service(GATEWAY_BINARY, "gateway", "gateway"),
             Service(QUOTA_BINARY, "quota", "quota"),
             Service(SCHEDULER_BINARY, "scheduler", "scheduler"),
             *(Service(VOLUME_BINARY, n.backend_id, n.host) for n in nodes)]
    return [s for s in every if (req.binary in EVERY or s.binary == req.binary)
            and (not req.server or req.server in (s.host, s.peer))]


class LogPeers(Protocol):
    name: str
    quota: Link
    scheduler: Link
    router: Link


def service_log_handlers(gw: LogPeers, nodes: Sequence[NodeConfig]) -> dict[str, Handler]:
    async def on_levels(req: Request) -> ServiceLogList:
        require_admin(req.ctx, "read log levels")
        body: ServiceLogRequest = req.body
        check_prefix(body.prefix)
        return await _each(gw, services_named(body, nodes), "log.levels",
                           LogLevelsAsk(body.prefix), req.ctx)

    async def on_set_levels(req: Request) -> ServiceLogList:
        require_admin(req.ctx, "set log levels")
        body: ServiceLogRequest = req.body
        check_level(body.level)
        check_prefix(body.prefix)
        assert body.level is not None  # check_level refuses None
        return await _each(gw, services_named(body, nodes), "log.set_levels",
                           LogLevelsSet(body.level, body.prefix), req.ctx)

    return {"service.log_levels": on_levels, "service.set_log_levels": on_set_levels}


async def _each(gw: LogPeers, services: list[Service], op: str,
                body: LogLevelsAsk | LogLevelsSet, ctx: Context) -> ServiceLogList:
    deadline = time.monotonic() + PEER_TIMEOUT_S
    answers = await asyncio.gather(*(_ask(gw, s, op, body, ctx, deadline) for s in services))
    return ServiceLogList(
        tuple(ServiceLogLevels(s.binary, s.host, a.levels)
              for s, a in zip(services, answers, strict=True) if a is not None),
        tuple(s.host for s, a in zip(services, answers, strict=True) if a is None))


async def _ask(gw: LogPeers, service: Service, op: str, body: LogLevelsAsk | LogLevelsSet,
               ctx: Context, deadline: float) -> ActorLogLevels | None:
    if service.peer == "gateway":  # itself, in process
        if isinstance(body, LogLevelsSet):
            set_levels(body.prefix, body.level)
            log.warning("gateway: loggers of prefix %r set to %s by %s", body.prefix,
                        body.level.upper(), ctx.user_id)
        return ActorLogLevels(gw.name, levels(body.prefix))
    link, to = (gw.quota, b"") if service.peer == "quota" else \
        (gw.scheduler, b"") if service.peer == "scheduler" else \
        (gw.router, service.peer.encode())
    reply = await ask_by(link, op, body, to, deadline, ctx)
    try:
        return None if reply is None else parse(ActorLogLevels, reply, strict=False)
    except SchemaError as exc:
        log.info("%s of %s left out: %s", op, service.host, exc)
        return None

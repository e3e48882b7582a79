"""The gateway's ``cluster.stats``: its own statistics, the quota actor's, the
scheduler's and every node's, asked at once.

The quota actor and the scheduler are asked over the gateway's DEALERs to them,
each node over the gateway's ROUTER (identity = host name); nodes never bind, so
the gateway is the only place a health probe can reach them from. Each peer gets
``PEER_TIMEOUT_S``; a node not connected (yet) is asked again until then. One that
has not answered is named in ``missing``: a dead node never fails the whole call,
and ``cinderblock health`` reports it as down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from cinderblock.actors.runtime.actor import Handler, Link, Request, check_reader
from cinderblock.protocol.messages.health import ActorStats, ClusterStats
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import CinderblockError, Unavailable
from cinderblock.protocol.wire.schema import SchemaError, parse

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 1.5
RETRY_S = 0.1


class StatsPeers(Protocol):
    """What ``cluster.stats`` needs of the gateway."""

    quota: Link
    scheduler: Link
    router: Link

    async def stats_snapshot(self) -> ActorStats: ...


def cluster_stats_handlers(gw: StatsPeers, nodes: tuple[str, ...]) -> dict[str, Handler]:
    async def on_cluster_stats(req: Request) -> ClusterStats:
        check_reader(req.ctx, "cluster.stats")
        return await gather(gw, nodes)

    return {"cluster.stats": on_cluster_stats}


async def gather(gw: StatsPeers, nodes: tuple[str, ...]) -> ClusterStats:
    deadline = time.monotonic() + PEER_TIMEOUT_S
    names = ("quota", "scheduler", *nodes)
    asks = [_ask(gw.quota, b"", deadline), _ask(gw.scheduler, b"", deadline),
            *(_ask(gw.router, host.encode(), deadline) for host in nodes)]
    own = await gw.stats_snapshot()
    answers = await asyncio.gather(*asks)
    found = [own, *(a for a in answers if a is not None)]
    missing = tuple(n for n, a in zip(names, answers, strict=True) if a is None)
    return ClusterStats(tuple(found), missing)


async def _ask(link: Link, to: bytes, deadline: float) -> ActorStats | None:
    """``stats`` from one peer by ``deadline``."""
    reply = await ask_by(link, "stats", Empty(), to, deadline)
    try:
        return None if reply is None else parse(ActorStats, reply, strict=False)
    except SchemaError as exc:
        log.info("stats of %s left out: %s", to.decode() or "a peer", exc)
        return None


async def ask_by(link: Link, op: str, body: object, to: bytes, deadline: float,
                 ctx: Context | None = None) -> Any:
    """A peer's answer to ``op`` by ``deadline``, asked again while the peer is not
    connected (a node says hello within a heartbeat of its start or ours); None if it
    has not answered, or answered an error (logged)."""
    while True:
        left = deadline - time.monotonic()
        try:
            return await link.call(op, body, ctx, to=to, timeout=max(left, 0.01))
        except Unavailable as exc:
            if "peer" not in exc.details or left <= RETRY_S:
                log.info("%s of %s left out: %s", op, to.decode() or "a peer", exc)
                return None
        except CinderblockError as exc:
            log.info("%s of %s left out: %s", op, to.decode() or "a peer", exc)
            return None
        await asyncio.sleep(RETRY_S)

"""The gateway's ``flow.history``: its own recent flows, the scheduler's and every node's.

The gateway asks the scheduler (over its DEALER to it) and every node of the
cluster file (over its ROUTER, identity = host name) for ``flow.recent``, all
at once, each with a short deadline. A node not connected (yet: nodes connect
to the gateway within moments of either side starting) is asked again until
its deadline. An actor that does not answer in time is named in ``missing``;
the others are answered, so one dead node never fails the whole call. The
answers are merged (failed first, then running, then done; newest first in
each) and bounded like any flow reply (``actors/flow_reply.py``).

Visibility, as for ``volume.list``: an admin asking for all projects sees
every flow. Anyone else sees the flows of their project's volumes, and of
volumes the gateway does not know (any more) that their project asked for: a
create refused by quota, a finished delete. Each actor applies ``limit``
before the gateway filters, so others' flows can crowd a project's out of a
busy actor's answer. The gateway's own ``flow.recent`` (every actor has one) is
not filtered, so its ROUTER, which faces clients, answers it to admins only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cinderblock.actors.flow.reply import check_ask, fit, recent_reply
from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.runtime.actor import Handler, Link, Request
from cinderblock.protocol.messages.flows import (
    FlowHistoryRequest,
    FlowRecent,
    FlowTrace,
    FlowTraceList,
)
from cinderblock.protocol.wire.errors import CinderblockError, PeerGone
from cinderblock.protocol.wire.schema import SchemaError, parse

log = logging.getLogger(__name__)
PEER_TIMEOUT_S = 1.5
RETRY_S = 0.1


def flow_handlers(gw: GatewayServices) -> dict[str, Handler]:
    flows = GatewayFlows(gw)
    return {"flow.history": flows.on_history, "flow.recent": flows.on_recent}


class GatewayFlows:
    def __init__(self, gw: GatewayServices) -> None:
        self.gw = gw
        self.nodes = tuple(n.host for n in gw.cfg.nodes)

    async def on_history(self, req: Request) -> FlowTraceList:
        body: FlowHistoryRequest = req.body
        check_ask(body.limit, body.done_within_s)
        ask = FlowRecent(body.limit, body.done_within_s)
        answers = await self._gather(ask)
        everyone = body.all_projects and req.ctx.is_admin
        flows = [t for answer in answers.values() if answer is not None for t in answer.flows
                 if everyone or self._visible(t, req.ctx.project_id)]
        missing = [actor for actor, answer in answers.items() if answer is None]
        reply = fit(merged(flows), body.limit, missing)
        cut = any(answer.truncated for answer in answers.values() if answer is not None)
        return replace(reply, truncated=reply.truncated or cut)

    def on_recent(self, req: Request) -> FlowTraceList:
        require_admin(req.ctx, "read the gateway's flows unfiltered; ask flow.history")
        return self.gw.on_flow_recent(req)

    async def _gather(self, ask: FlowRecent) -> dict[str, FlowTraceList | None]:
        gw = self.gw
        own = recent_reply(gw.flow_history, gw.name, ask, time.time())
        peers = await asyncio.gather(
            self._ask(gw.scheduler, ask, b""),
            *(self._ask(gw.router, ask, host.encode()) for host in self.nodes),
        )
        return {gw.name: own, **dict(zip(("scheduler", *self.nodes), peers, strict=True))}

    async def _ask(self, link: Link, ask: FlowRecent, to: bytes) -> FlowTraceList | None:
        try:
            reply = await ask_by(time.monotonic() + PEER_TIMEOUT_S, link, ask, to)
            return parse(FlowTraceList, reply, strict=False)
        except (CinderblockError, SchemaError) as exc:
            log.info("flow history of %s left out: %s", to.decode() or "the scheduler", exc)
            return None

    def _visible(self, trace: FlowTrace, project_id: str) -> bool:
        volume = self.gw.store.volumes.get(trace.volume_id)
        owner = volume.project_id if volume is not None else trace.project_id
        return bool(owner) and owner == project_id


async def ask_by(deadline: float, link: Link, ask: FlowRecent, to: bytes) -> Any:
    """``flow.recent`` answered by ``deadline``, asking again while the peer is not connected."""
    while True:
        left = deadline - time.monotonic()
        try:
            return await link.call("flow.recent", ask, to=to, timeout=max(left, 0.01))
        except PeerGone:
            if left <= RETRY_S:
                raise
        await asyncio.sleep(RETRY_S)


def merged(traces: Sequence[FlowTrace]) -> list[FlowTrace]:
    """Failed, then running, then done; the most recently changed first in each."""
    return sorted(traces, key=lambda t: (_bucket(t), t.age_s))


def _bucket(trace: FlowTrace) -> int:
    states = [s for t, s in zip(trace.step_tasks, trace.step_states, strict=False) if t is None]
    if "FAILURE" in states:
        return 0
    return 2 if states and states[-1] == "SUCCESS" else 1

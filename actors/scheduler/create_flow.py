"""volume_create_scheduler: ExtractSchedulerSpecTask → ScheduleCreateVolumeTask.

The decision itself is ``CapacityIndex.select`` (plain code). A retried
request (a node's reschedule) excludes the backends already tried, and after
``MAX_ATTEMPTS`` attempts the volume is not placed again: Cinder's
scheduler_max_attempts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.runtime.actor import RECONNECT_POLL_S
from cinderblock.actors.scheduler.capacity import Placement, PlacementRequest
from cinderblock.actors.scheduler.capacity_index import CapacityIndex, NoValidBackend
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import NoValidHost, Unavailable

MAX_ATTEMPTS = 3


class SchedulerServices(Protocol):
    index: CapacityIndex
    connect_grace_s: float  # how long a create waits for a node not connected

    def cast_to_node(self, host: str, body: NodeCreateVolume, ctx: Context) -> None: ...


@dataclass(slots=True)
class ScheduleContext:
    request: ScheduleRequest
    ctx: Context
    placement_request: PlacementRequest | None = None
    placement: Placement | None = None


class ExtractSchedulerSpecTask(Task[ScheduleContext]):
    requires = ("request",)
    provides = ("placement_request",)

    async def execute(self, c: ScheduleContext) -> None:
        r = c.request
        if r.attempts >= MAX_ATTEMPTS:
            raise NoValidHost(
                f"Exceeded max scheduling attempts {MAX_ATTEMPTS} for volume {r.volume_id}; "
                f"last error: {r.last_error or 'unknown'}",
                {"attempts": r.attempts, "tried": list(r.tried_backends)},
            )
        c.placement_request = PlacementRequest(
            size_gb=r.size, availability_zone=r.availability_zone,
            extra_specs=r.extra_specs, excluded_backends=frozenset(r.tried_backends),
            avoid_backends=frozenset(r.avoid_backends),
            only_backends=None if r.only_backends is None else frozenset(r.only_backends),
        )


class Unreached:
    """The backends whose node was not connected when a create was cast there, and
    when: a create that finds no backend left waits for those lost within the grace
    and not back in the index since (a node started again, or connected again, says
    hello and reports within a heartbeat or two)."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def lost(self, backend: str, now: float) -> None:
        self._at.pop(backend, None)
        self._at[backend] = now  # in the order lost

    def awaited(self, now: float, grace_s: float, index: CapacityIndex) -> list[str]:
        """Those lost less than ``grace_s`` ago and not reported again since."""
        for backend, at in list(self._at.items()):
            if now - at >= grace_s or backend in index:
                del self._at[backend]
        return list(self._at)


class ScheduleCreateVolumeTask(Task[ScheduleContext]):
    """Pick a backend and cast the create to its node. A node that is not connected
    (its process just died, or it is connecting again) has its backend forgotten until
    it reports again, and another takes the create. When none is left while a backend
    was lost that way within the node's grace (``connect_grace_s``, as the gateway's
    casts to nodes wait), by this create or another, the pick is made again every
    ``RECONNECT_POLL_S`` until that node is back or the grace is over (for the create
    too: a node that reports but is never reached does not hold it longer): a create
    only it can take (a restore of its backup into a new volume, a hint, a cluster of
    one node) is made there rather than failed. Then the error names the backends not
    reached."""

    requires = ("placement_request",)
    provides = ("placement",)

    def __init__(self, services: SchedulerServices) -> None:
        self.s = services
        self.unreached = Unreached()

    async def execute(self, c: ScheduleContext) -> None:
        assert c.placement_request is not None
        unreachable: list[str] = []  # named in the error, in the order met
        deadline: float | None = None  # this create waits no longer than the grace
        while True:
            try:
                c.placement = self._pick(c.placement_request, c, unreachable)
                return
            except NoValidBackend as exc:
                now = time.monotonic()
                awaited = self.unreached.awaited(now, self.s.connect_grace_s, self.s.index)
                unreachable += [b for b in awaited if b not in unreachable]
                deadline = now + self.s.connect_grace_s if deadline is None else deadline
                if not awaited or now >= deadline:
                    raise self._no_valid_host(exc, c, unreachable) from exc
            await asyncio.sleep(RECONNECT_POLL_S)

    def _pick(self, want: PlacementRequest, c: ScheduleContext,
              unreachable: list[str]) -> Placement:
        """The backend the create was cast to (``NoValidBackend`` when none is left)."""
        while True:
            placement = self.s.index.select(want, time.monotonic())
            if self._cast(placement, c):
                return placement
            self.s.index.remove(placement.backend)  # until its node reports again
            self.unreached.lost(placement.backend, time.monotonic())
            if placement.backend not in unreachable:
                unreachable.append(placement.backend)
            want = _excluding(want, placement.backend)

    def _cast(self, placement: Placement, c: ScheduleContext) -> bool:
        """Cast the create to ``placement``'s node; False if it is not connected."""
        body = NodeCreateVolume(
            request=c.request, backend=placement.backend,
            sched_epoch=self.s.index.epoch, sched_seq=placement.sched_seq,
        )
        try:
            self.s.cast_to_node(placement.host, body, c.ctx)
        except Unavailable:
            return False
        return True

    @staticmethod
    def _no_valid_host(exc: NoValidBackend, c: ScheduleContext,
                       unreachable: list[str]) -> NoValidHost:
        reason = str(exc)
        if unreachable:
            reason += f" Not connected: {', '.join(unreachable)}."
        if c.request.last_error:
            reason += f" Last error: {c.request.last_error}"
        return NoValidHost(reason, {"volume_id": c.request.volume_id})


def _excluding(want: PlacementRequest, backend: str) -> PlacementRequest:
    return dataclasses.replace(want, excluded_backends=want.excluded_backends | {backend})


def volume_create_scheduler(services: SchedulerServices) -> LinearFlow[ScheduleContext]:
    return LinearFlow(
        "volume_create_scheduler",
        [ExtractSchedulerSpecTask(), ScheduleCreateVolumeTask(services)],
        given=("request", "ctx"),
    )

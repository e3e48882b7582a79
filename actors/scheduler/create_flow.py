"""volume_create_scheduler: ExtractSchedulerSpecTask → ScheduleCreateVolumeTask.

The decision itself is ``CapacityIndex.select`` (plain code). A retried
request (a node's reschedule) excludes the backends already tried, and after
``MAX_ATTEMPTS`` attempts the volume is not placed again: Cinder's
scheduler_max_attempts.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.scheduler.capacity import Placement, PlacementRequest
from cinderblock.actors.scheduler.capacity_index import CapacityIndex, NoValidBackend
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import NoValidHost, Unavailable

MAX_ATTEMPTS = 3


class SchedulerServices(Protocol):
    index: CapacityIndex

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


class ScheduleCreateVolumeTask(Task[ScheduleContext]):
    requires = ("placement_request",)
    provides = ("placement",)

    def __init__(self, services: SchedulerServices) -> None:
        self.s = services

    async def execute(self, c: ScheduleContext) -> None:
        assert c.placement_request is not None
        want = c.placement_request
        unreachable: list[str] = []
        while True:
            placement = self._select(want, c, unreachable)
            body = NodeCreateVolume(
                request=c.request, backend=placement.backend,
                sched_epoch=self.s.index.epoch, sched_seq=placement.sched_seq,
            )
            try:
                self.s.cast_to_node(placement.host, body, c.ctx)
            except Unavailable:  # the node left: never pick it again for this volume
                self.s.index.remove(placement.backend)
                unreachable.append(placement.backend)
                want = _excluding(want, placement.backend)
                continue
            c.placement = placement
            return

    def _select(self, want: PlacementRequest, c: ScheduleContext,
                unreachable: list[str]) -> Placement:
        try:
            return self.s.index.select(want, time.monotonic())
        except NoValidBackend as exc:
            reason = str(exc)
            if unreachable:
                reason += f" Not connected: {', '.join(unreachable)}."
            if c.request.last_error:
                reason += f" Last error: {c.request.last_error}"
            raise NoValidHost(reason, {"volume_id": c.request.volume_id}) from exc


def _excluding(want: PlacementRequest, backend: str) -> PlacementRequest:
    return dataclasses.replace(want, excluded_backends=want.excluded_backends | {backend})


def volume_create_scheduler(services: SchedulerServices) -> LinearFlow[ScheduleContext]:
    return LinearFlow(
        "volume_create_scheduler",
        [ExtractSchedulerSpecTask(), ScheduleCreateVolumeTask(services)],
        given=("request", "ctx"),
    )

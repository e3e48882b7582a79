"""volume_create_api: the gateway's create flow, task for task as Cinder's.

    ExtractVolumeRequestTask → QuotaReserveTask → EntryCreateTask
        → QuotaCommitTask → VolumeCastTask

A volume created from a snapshot or a source volume takes its size (by
default), type and zone from the source, and VolumeCastTask sends it straight
to the node that holds the source instead of to the scheduler.

Reverts, newest first, as Cinder's: the cast has nothing to undo; a committed
reservation is given back (``quota.release``); the entry is destroyed; an
uncommitted reservation is rolled back. The client's reply goes out when the
flow succeeds (Cinder's 202): status ``creating``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    VolumeSource,
    claim_volume,
    current_source,
    resolve_source,
)
from cinderblock.actors.gateway.volume_request import (
    TypeCatalog,
    VolumeSpec,
    normalize_create,
    validate_create,
)
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.protocol.messages.quota import (
    QuotaRelease,
    QuotaReserve,
    Reservation,
    ReservationRef,
)
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.messages.volumes import VolumeCreate
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.schema import parse


class ApiServices(Protocol):
    """What the tasks need from the gateway (the seam tests can fill in memory)."""

    store: GatewayStore
    types: TypeCatalog
    zones: Collection[str]
    default_zone: str
    default_type: str

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...

    def schedule(self, request: ScheduleRequest, ctx: Context) -> None: ...

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...


@dataclass(slots=True)
class CreateApiContext:
    body: VolumeCreate
    ctx: Context
    volume_id: str
    fingerprint: str
    spec: VolumeSpec | None = None
    reservation_id: str | None = None
    record: VolumeRecord | None = None
    committed: bool = False
    source: VolumeSource | None = None  # a snapshot or a volume to copy, on its node
    claimed: str | None = None  # the source volume this flow claimed (a clone)

    @property
    def deltas(self) -> dict[str, int]:
        assert self.spec is not None
        return {"volumes": 1, "gigabytes": self.spec.size}


class _ApiTask(Task[CreateApiContext]):
    def __init__(self, services: ApiServices) -> None:
        self.s = services


class ExtractVolumeRequestTask(_ApiTask):
    requires = ("body",)
    provides = ("spec",)

    async def execute(self, c: CreateApiContext) -> None:
        s = self.s
        body, c.source = resolve_source(normalize_create(c.body), s.store, s.types, c.ctx)
        c.spec = validate_create(body, s.types, s.zones, s.default_zone, s.default_type)
        # a private type is found only by the projects given access (and admins)
        s.types.find_for(body.volume_type or s.default_type, c.ctx.project_id, c.ctx.is_admin)
        if c.source is not None and c.source.source_volid is not None:
            c.claimed = claim_volume(s.store, s.store.volumes[c.source.source_volid], "cloning")


class QuotaReserveTask(_ApiTask):
    requires = ("spec",)
    provides = ("reservation_id",)

    async def execute(self, c: CreateApiContext) -> None:
        reply = await self.s.quota_call(
            "quota.reserve", QuotaReserve(c.ctx.project_id, c.deltas), c.ctx
        )
        c.reservation_id = parse(Reservation, reply, strict=False).reservation_id

    async def revert(self, c: CreateApiContext, failure: BaseException) -> None:
        if c.reservation_id is not None and not c.committed:
            await self.s.quota_call("quota.rollback", ReservationRef(c.reservation_id), c.ctx)


class EntryCreateTask(_ApiTask):
    requires = ("spec",)
    provides = ("record",)

    async def execute(self, c: CreateApiContext) -> None:
        spec = c.spec
        assert spec is not None
        record = VolumeRecord(
            id=c.volume_id, project_id=c.ctx.project_id, user_id=c.ctx.user_id, size=spec.size,
            status=VolumeStatus.CREATING, volume_type=spec.volume_type,
            availability_zone=spec.availability_zone, name=spec.name,
            description=spec.description, metadata=spec.metadata,
            request_id=c.ctx.request_id, request_fp=c.fingerprint,
            snapshot_id=c.source.snapshot_id if c.source else None,
            source_volid=c.source.source_volid if c.source else None,
        )
        await self.s.store.add_volume(record)
        c.record = record

    async def revert(self, c: CreateApiContext, failure: BaseException) -> None:
        if c.record is not None:
            await self.s.store.remove_volume(c.record)


class QuotaCommitTask(_ApiTask):
    requires = ("reservation_id",)
    provides = ("committed",)

    async def execute(self, c: CreateApiContext) -> None:
        assert c.reservation_id is not None
        await self.s.quota_call("quota.commit", ReservationRef(c.reservation_id), c.ctx)
        c.committed = True

    async def revert(self, c: CreateApiContext, failure: BaseException) -> None:
        if c.committed:
            await self.s.quota_call(
                "quota.release", QuotaRelease(c.ctx.project_id, c.deltas), c.ctx
            )


class VolumeCastTask(_ApiTask):
    requires = ("record", "spec")

    async def execute(self, c: CreateApiContext) -> None:
        spec, src = c.spec, c.source
        assert spec is not None
        request = ScheduleRequest(
            volume_id=c.volume_id, project_id=c.ctx.project_id, size=spec.size,
            availability_zone=spec.availability_zone, volume_type_id=spec.volume_type.id,
            extra_specs=spec.volume_type.extra_specs,
            snapshot_id=src.snapshot_id if src else None,
            source_volid=src.source_volid if src else None,
        )
        if src is None:
            self.s.schedule(request, c.ctx)
            return
        # Straight to the node that holds the source, bypassing the scheduler; the
        # source is judged again: it may have changed while quota was reserved.
        current_source(src.snapshot_id, src.source_volid, self.s.store, self.s.types, c.ctx)
        body = NodeCreateVolume(request, src.host, sched_epoch="", sched_seq=0)
        self.s.cast_to_node(src.host, "node.create_volume", body, c.ctx)


def volume_create_api(services: ApiServices) -> LinearFlow[CreateApiContext]:
    return LinearFlow(
        "volume_create_api",
        [
            ExtractVolumeRequestTask(services),
            QuotaReserveTask(services),
            EntryCreateTask(services),
            QuotaCommitTask(services),
            VolumeCastTask(services),
        ],
        given=("body", "ctx", "volume_id", "fingerprint"),
    )

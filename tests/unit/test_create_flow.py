"""The gateway's create flow (``volume_create_api``) in memory: a real store on a
temporary SQLite file and a real ``QuotaBook`` answering the quota calls. What its
reverts undo, in which order: a committed reservation is released, the entry
destroyed, an uncommitted reservation rolled back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest

from cinderblock.actors.gateway.create_flow import CreateApiContext, volume_create_api
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.quota.book import QuotaBook
from cinderblock.protocol.messages.quota import QuotaRelease, QuotaReserve, ReservationRef
from cinderblock.protocol.messages.scheduling import ScheduleRequest
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import OverQuota, PeerGone
from cinderblock.protocol.wire.schema import dump
from tests.conftest import EventRecorder, open_gateway_store

ME = Context("demo", "demo", ("member",), "req-1")


class Gateway:
    """``ApiServices`` over a real store and a real quota book."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        self.types.add(VolumeType("type-1", "__DEFAULT__"))
        self.zones: Collection[str] = ("nova",)
        self.default_zone = "nova"
        self.default_type = "__DEFAULT__"
        self.book = QuotaBook()
        self.quota_ops: list[str] = []
        self.scheduled: list[ScheduleRequest] = []
        self.scheduler_up = True
        self.refuse: str | None = None

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        self.quota_ops.append(op)
        if op == self.refuse:
            raise OverQuota(f"{op} refused", {})
        if isinstance(body, QuotaReserve):
            res, _ = self.book.reserve(body.project, body.deltas, time.time())
            return {"reservation_id": res.id, "expires_at": res.expires_at}
        if isinstance(body, ReservationRef):
            (self.book.commit if op == "quota.commit" else self.book.rollback)(
                body.reservation_id)
        elif isinstance(body, QuotaRelease):
            self.book.release(body.project, body.deltas)
        return {}

    def schedule(self, request: ScheduleRequest, ctx: Context) -> None:
        if not self.scheduler_up:
            raise PeerGone("peer 'scheduler' is not connected", {"peer": "scheduler"})
        self.scheduled.append(request)

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        raise AssertionError("a create without a source goes to the scheduler")

    def usage(self) -> tuple[int, int, int, int]:
        """(volumes in use, reserved; gigabytes in use, reserved) of the project."""
        u = self.book.usage("demo")
        return (u["volumes"].in_use, u["volumes"].reserved,
                u["gigabytes"].in_use, u["gigabytes"].reserved)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        yield Gateway(store)


async def create(gw: Gateway, events: EventRecorder, size: int = 3) -> CreateApiContext:
    body = VolumeCreate(size, name="v")
    c = CreateApiContext(body, ME, "vol-1", str(dump(body)))
    await volume_create_api(gw).run(c, events, "vol-1")
    return c


def reverted(events: EventRecorder) -> list[str]:
    return [t for t, s in events.tasks("volume_create_api") if s == "REVERTED"]


async def test_a_create_reserves_commits_records_and_schedules(gw: Gateway) -> None:
    c = await create(gw, EventRecorder())
    assert gw.quota_ops == ["quota.reserve", "quota.commit"]
    assert gw.usage() == (1, 0, 3, 0)
    assert c.record is not None and gw.store.volumes["vol-1"].status is VolumeStatus.CREATING
    assert [r.volume_id for r in gw.scheduled] == ["vol-1"]


async def test_a_failed_cast_releases_the_committed_quota_then_destroys_the_entry(
    gw: Gateway,
) -> None:
    gw.scheduler_up = False
    events = EventRecorder()
    with pytest.raises(PeerGone):
        await create(gw, events)
    assert gw.quota_ops == ["quota.reserve", "quota.commit", "quota.release"]
    assert gw.usage() == (0, 0, 0, 0)  # the committed reservation was given back
    assert "vol-1" not in gw.store.volumes
    assert reverted(events) == ["VolumeCastTask", "QuotaCommitTask", "EntryCreateTask",
                                "QuotaReserveTask", "ExtractVolumeRequestTask"]


async def test_a_failed_commit_rolls_the_reservation_back_and_releases_nothing(
    gw: Gateway,
) -> None:
    gw.refuse = "quota.commit"
    events = EventRecorder()
    with pytest.raises(OverQuota):
        await create(gw, events)
    assert gw.quota_ops == ["quota.reserve", "quota.commit", "quota.rollback"]
    assert gw.usage() == (0, 0, 0, 0)
    assert "vol-1" not in gw.store.volumes and gw.scheduled == []


async def test_a_refused_reservation_leaves_nothing_to_undo(gw: Gateway) -> None:
    gw.refuse = "quota.reserve"
    with pytest.raises(OverQuota):
        await create(gw, EventRecorder())
    assert gw.quota_ops == ["quota.reserve"]
    assert gw.usage() == (0, 0, 0, 0) and "vol-1" not in gw.store.volumes

"""The gateway's create flow (``volume_create_api``) in memory: a real store on a
temporary SQLite file and a real ``QuotaBook`` answering the quota calls and taking
what the quota journal owes. What its reverts undo, in which order: the entry is
destroyed and its release owed after the commit it owed; a reservation with no
entry is rolled back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest

from cinderblock.actors.gateway.create_flow import CreateApiContext, volume_create_api
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.quota.book import QuotaBook
from cinderblock.protocol.messages.quota import QuotaReserve
from cinderblock.protocol.messages.scheduling import ScheduleRequest
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import OverQuota, PeerGone, Timeout
from cinderblock.protocol.wire.schema import dump
from tests.conftest import EventRecorder, open_gateway_store
from tests.unit.journal_delivery import deliver

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
        self.book_first = False

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        self.quota_ops.append(op)
        if op == self.refuse:
            raise OverQuota(f"{op} refused", {})
        assert isinstance(body, QuotaReserve)
        res, _ = self.book.reserve(body.project, body.deltas, time.time(), 86400.0,
                                   body.reservation_id)
        if self.book_first:  # saved, then the answer is lost
            raise Timeout("quota.reserve timed out", {})
        return {"reservation_id": res.id, "expires_at": res.expires_at}

    def schedule(self, request: ScheduleRequest, ctx: Context) -> None:
        if not self.scheduler_up:
            raise PeerGone("peer 'scheduler' is not connected", {"peer": "scheduler"})
        self.scheduled.append(request)

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        raise AssertionError("a create without a source goes to the scheduler")

    def owed(self) -> list[str]:
        return [op.kind for op in self.store.journal.owed()]

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


async def test_a_create_reserves_then_records_its_entry_with_the_commit_it_owes(
    gw: Gateway,
) -> None:
    c = await create(gw, EventRecorder())
    assert gw.quota_ops == ["quota.reserve"]  # one round trip: the commit is journaled
    assert gw.owed() == ["commit"]
    rows = await gw.store.db.fetchall("SELECT kind, reservation_id FROM quota_journal")
    assert rows == [("commit", c.reservation_id)]  # durable with the entry
    assert gw.usage() == (0, 1, 0, 3)
    assert await deliver(gw.store.journal, gw.book) == ["done"]
    assert gw.usage() == (1, 0, 3, 0)
    assert c.record is not None and gw.store.volumes["vol-1"].status is VolumeStatus.CREATING
    assert [r.volume_id for r in gw.scheduled] == ["vol-1"]
    assert await gw.store.db.fetchall("SELECT * FROM quota_journal") == []


async def test_the_reservation_id_names_the_gateways_incarnation(gw: Gateway) -> None:
    c = await create(gw, EventRecorder())
    assert c.reservation_id is not None
    assert c.reservation_id.partition(".")[0] == gw.store.journal.incarnation


async def test_a_failed_cast_destroys_the_entry_and_owes_its_release_after_its_commit(
    gw: Gateway,
) -> None:
    gw.scheduler_up = False
    events = EventRecorder()
    with pytest.raises(PeerGone):
        await create(gw, events)
    assert gw.quota_ops == ["quota.reserve"]
    assert gw.owed() == ["commit", "release"]
    assert await deliver(gw.store.journal, gw.book) == ["done", "done"]
    assert gw.usage() == (0, 0, 0, 0)  # committed, then given back
    assert "vol-1" not in gw.store.volumes
    assert reverted(events) == ["VolumeCastTask", "EntryCreateTask",
                                "QuotaReserveTask", "ExtractVolumeRequestTask"]


async def test_a_refused_reservation_leaves_nothing_to_undo(gw: Gateway) -> None:
    gw.refuse = "quota.reserve"
    with pytest.raises(OverQuota):
        await create(gw, EventRecorder())
    assert gw.quota_ops == ["quota.reserve"] and gw.owed() == []
    assert gw.usage() == (0, 0, 0, 0) and "vol-1" not in gw.store.volumes


async def test_a_reserve_left_unanswered_owes_the_rollback_of_the_id_it_asked_for(
    gw: Gateway,
) -> None:
    """The quota actor died after saving the reservation, before answering it."""
    gw.book_first = True
    with pytest.raises(Timeout):
        await create(gw, EventRecorder())
    (owed,) = gw.store.journal.owed()
    assert owed.kind == "rollback" and gw.usage() == (0, 1, 0, 3)
    assert await deliver(gw.store.journal, gw.book) == ["done"]
    assert gw.usage() == (0, 0, 0, 0)

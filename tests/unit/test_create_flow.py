"""The gateway's create flow (``volume_create_api``) in memory: a real store on a
temporary SQLite file and a real ``QuotaBook`` answering the quota calls and taking
what the quota journal owes. What its reverts undo, in which order: the entry is
destroyed and its release owed after the commit it owed; a reservation with no
entry is rolled back."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest

from cinderblock.actors.gateway.create_flow import CreateApiContext, volume_create_api
from cinderblock.actors.gateway.create_routes import SAVE_CREATE_ROUTE
from cinderblock.actors.gateway.lost_casts import CreateRoute, request_again
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION, GatewayStore, VolumeRecord
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


async def test_the_cast_of_a_create_left_creating_is_rebuilt_as_it_was_after_a_restart(
    tmp_path: Path,
) -> None:
    """What a gateway started again sends for a create its last process may have died
    before casting (``lost_casts.request_again``): the scheduler's request as the flow
    cast it, affinity hints included (``create_routes``, a row only for a create that
    names any, dropped with the write that takes its volume out of ``creating``, by the
    process that wrote it or the next one; one left, whose write failed or by an older
    gateway, is dropped at the next start)."""
    path = tmp_path / "gateway.db"
    default = VolumeType("type-1", "__DEFAULT__")
    near_id = "5a0c3e8e-35a7-4b5e-9d2b-7e0f2f6c1a01"
    async with open_gateway_store(path) as store:
        gw = Gateway(store)
        await store.add_volume(VolumeRecord(
            id=near_id, project_id="demo", user_id="demo", size=1,
            status=VolumeStatus.AVAILABLE, volume_type=default, availability_zone="nova",
            host="node-1@file"))
        asked = {"vol-1": VolumeCreate(2, name="plain"),
                 "vol-2": VolumeCreate(3, name="near", same_host=[near_id]),
                 "vol-3": VolumeCreate(1, name="far", different_host=[near_id])}
        for n, (vid, body) in enumerate(asked.items()):
            ctx = Context("demo", "demo", ("member",), f"req-{n}")
            await volume_create_api(gw).run(CreateApiContext(body, ctx, vid, f"fp-{n}"),
                                            EventRecorder(), vid)
        cast = {r.volume_id: r for r in gw.scheduled}
        assert cast["vol-2"].only_backends == ("node-1@file",)
        assert cast["vol-3"].avoid_backends == ("node-1@file",)
        placed = store.volumes["vol-3"]  # its node made it: its route is not needed
        placed.status, placed.host = VolumeStatus.AVAILABLE, "node-2@file"
        await store.queue_status(placed)
        assert await store.db.fetchall("SELECT id FROM create_routes") == [
            ("vol-2",)]  # the plain create has none, the placed one's is dropped
        await store.db.write(SAVE_CREATE_ROUTE, (near_id, "{}"))  # left by a process before
    async with open_gateway_store(path) as store:
        await store.load_volumes({"type-1": default})
        for n, vid in enumerate(("vol-1", "vol-2")):
            left = store.create_left(vid)
            assert left is not None and left[0] == f"req-{n}"
            assert request_again(store.volumes[vid], CreateRoute.from_row(left[1])) \
                == cast[vid]
        await store.db.settled()  # the start's drop of the settled creates' routes
        assert await store.db.fetchall("SELECT id FROM create_routes") == [("vol-2",)]
        sent_again = store.volumes["vol-2"]  # made by its node after this start
        sent_again.status, sent_again.host = VolumeStatus.AVAILABLE, "node-1@file"
        await store.queue_status(sent_again)
        assert await store.db.fetchall("SELECT id FROM create_routes") == []


async def test_a_file_from_before_create_routes_gets_the_table_and_its_creates_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await create(Gateway(store), EventRecorder())
    conn = sqlite3.connect(path)  # the file as version 22 left it
    conn.executescript("DROP TABLE create_routes; PRAGMA user_version=22;")
    conn.commit()
    conn.close()
    async with open_gateway_store(path) as migrated:
        await migrated.load_volumes({"type-1": VolumeType("type-1", "__DEFAULT__")})
        version = migrated.read_only().execute("PRAGMA user_version").fetchone()[0]
        assert (version, migrated.create_left("vol-1")) == (SCHEMA_VERSION, ("req-1", None))


def test_a_copy_or_a_manage_is_rebuilt_with_its_source_or_what_it_adopts() -> None:
    rec = VolumeRecord(id="v", project_id="demo", user_id="demo", size=1,
                       status=VolumeStatus.CREATING, volume_type=VolumeType("t", "t"),
                       availability_zone="nova")
    managed = request_again(rec, CreateRoute(manage_ref="lv-1", manage_backend="node-1@lvm"))
    assert (managed.manage_ref, managed.snapshot_id) == ("lv-1", None)
    for source in ({"snapshot_id": "s"}, {"source_volid": "w"}):
        copy = VolumeRecord(**{**{f: getattr(rec, f) for f in (
            "id", "project_id", "user_id", "size", "status", "volume_type",
            "availability_zone")}, **source})
        again = request_again(copy, CreateRoute())
        assert (again.snapshot_id, again.source_volid, again.manage_ref) == (
            source.get("snapshot_id"), source.get("source_volid"), None)
    route = CreateRoute(("a@b",), ("c@d",), "backup-1", "lv-2", "node-2@lvm")
    assert CreateRoute.from_row(route.to_row()) == route
    assert CreateRoute().to_row() is None and CreateRoute.from_row(None) == CreateRoute()

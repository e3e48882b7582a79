"""The gateway's lifecycle flows driven in memory: a real store, quota and nodes faked.

What is checked is the flows' contract: the casts they make, the quota calls
and what they owe the quota journal, in order, and that a failure reverts every
change, newest first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cinderblock.actors.gateway.lifecycle_flows import (
    DeleteContext,
    ExtendContext,
    SnapshotCreateContext,
    snapshot_create_api,
    volume_delete_api,
    volume_extend_api,
)
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.protocol.messages.lifecycle import SnapshotCreate
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import OverQuota, Unavailable
from tests.conftest import EventRecorder, open_gateway_store

V = VolumeStatus
ME = Context("demo", "demo", request_id="req-1")


class FakeGateway:
    """LifecycleServices over a real store; quota and nodes are lists of calls."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.quota: list[str] = []
        self.casts: list[tuple[str, str, object]] = []
        self.refuse_quota: str | None = None
        self.nodes_up = True
        self.events = EventRecorder()

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        if op == self.refuse_quota:
            raise OverQuota("over", {"resource": "gigabytes"})
        self.quota.append(op)
        return {"reservation_id": getattr(body, "reservation_id", None) or "res-1"}

    def owed(self) -> list[str]:
        return [op.kind for op in self.store.journal.owed()]

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        if not self.nodes_up:
            raise Unavailable(f"{host} is not connected")
        self.casts.append((host, op, body))

    async def save_volume(self, rec: VolumeRecord) -> None:
        await self.store.save_status(rec)

    async def save_snapshot(self, rec: SnapshotRecord) -> None:
        await self.store.snapshots.save_status(rec)

    def publish_snapshot(self, rec: SnapshotRecord) -> None:
        pass

    def publish_volume(self, rec: VolumeRecord) -> None:
        pass

    async def end_extend(self, rec: VolumeRecord, outcome: str) -> None:
        await self.store.end_extend(rec, rec.id, outcome)

    async def finish_volume_delete(self, rec: VolumeRecord, ctx: Context) -> None:
        rec.status = V.DELETED
        await self.store.remove_volume(rec)

    async def finish_snapshot_delete(self, rec: SnapshotRecord, ctx: Context) -> None:
        await self.store.snapshots.remove(rec)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[FakeGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        yield FakeGateway(store)


async def add_volume(gw: FakeGateway, status: VolumeStatus = V.AVAILABLE,
                     host: str | None = "node-1@file") -> VolumeRecord:
    rec = VolumeRecord(id="vol-1", project_id="demo", user_id="demo", size=2, status=status,
                       volume_type=VolumeType("t", "__DEFAULT__"), availability_zone="nova",
                       host=host)
    await gw.store.add_volume(rec)
    return rec


def reverted_tasks(gw: FakeGateway) -> list[str]:
    return [e["task"] for e in gw.events.events if e["kind"] == "task"
            and e["state"] == "REVERTED"]


async def test_delete_marks_the_volume_deleting_and_casts_to_its_node(gw: FakeGateway) -> None:
    rec = await add_volume(gw)

    await volume_delete_api(gw).run(DeleteContext("vol-1", ME), gw.events, "vol-1")

    assert rec.status is V.DELETING
    assert [(h, op) for h, op, _ in gw.casts] == [("node-1@file", "node.delete_volume")]
    rows = await gw.store.db.fetchall("SELECT status FROM volumes WHERE id='vol-1'")
    assert rows == [("deleting",)]


async def test_delete_of_a_volume_without_a_host_needs_no_node(gw: FakeGateway) -> None:
    await add_volume(gw, V.ERROR, host=None)

    await volume_delete_api(gw).run(DeleteContext("vol-1", ME), gw.events, "vol-1")

    assert gw.casts == [] and gw.quota == [] and gw.owed() == ["release"]
    assert "vol-1" not in gw.store.volumes


async def test_delete_puts_the_status_back_when_the_node_cannot_be_reached(
    gw: FakeGateway,
) -> None:
    rec = await add_volume(gw, V.ERROR_DELETING)
    gw.nodes_up = False

    with pytest.raises(Unavailable):
        await volume_delete_api(gw).run(DeleteContext("vol-1", ME), gw.events, "vol-1")

    assert rec.status is V.ERROR_DELETING
    assert reverted_tasks(gw) == [
        "VolumeDeleteCastTask", "MarkVolumeDeletingTask", "ExtractDeleteRequestTask"]


async def test_extend_reserves_the_difference_and_hands_the_reservation_to_the_node(
    gw: FakeGateway,
) -> None:
    rec = await add_volume(gw)

    await volume_extend_api(gw).run(ExtendContext("vol-1", 5, ME), gw.events, "vol-1")

    assert rec.status is V.EXTENDING and rec.size == 2
    assert gw.quota == ["quota.reserve"] and gw.owed() == []
    (_, op, body), = gw.casts
    assert op == "node.extend_volume"
    rid = gw.store.extends["vol-1"]  # the volume's record holds the reservation
    assert (body.size, body.new_size, body.reservation_id) == (2, 5, rid)  # type: ignore[attr-defined]
    rows = await gw.store.db.fetchall("SELECT volume_id, reservation_id FROM pending_extends")
    assert rows == [("vol-1", rid)]


async def test_an_extend_that_cannot_be_cast_rolls_its_reservation_back(gw: FakeGateway) -> None:
    rec = await add_volume(gw)
    gw.nodes_up = False

    with pytest.raises(Unavailable):
        await volume_extend_api(gw).run(ExtendContext("vol-1", 5, ME), gw.events, "vol-1")

    assert rec.status is V.AVAILABLE
    assert gw.quota == ["quota.reserve"] and gw.owed() == ["rollback"]
    assert gw.store.extends == {}
    assert await gw.store.db.fetchall("SELECT * FROM pending_extends") == []


async def test_an_extend_over_quota_changes_nothing(gw: FakeGateway) -> None:
    rec = await add_volume(gw)
    gw.refuse_quota = "quota.reserve"

    with pytest.raises(OverQuota):
        await volume_extend_api(gw).run(ExtendContext("vol-1", 5, ME), gw.events, "vol-1")

    assert (rec.status, gw.quota, gw.casts, gw.owed()) == (V.AVAILABLE, [], [], [])


async def test_a_snapshot_that_cannot_be_cast_is_destroyed_and_its_release_owed(
    gw: FakeGateway,
) -> None:
    await add_volume(gw)
    gw.nodes_up = False
    c = SnapshotCreateContext(SnapshotCreate("vol-1"), ME, "snap-1", "fp")

    with pytest.raises(Unavailable):
        await snapshot_create_api(gw).run(c, gw.events, "vol-1")

    assert gw.quota == ["quota.reserve"] and gw.owed() == ["commit", "release"]
    assert gw.store.snapshots.get("snap-1") is None
    assert await gw.store.db.fetchall("SELECT id FROM snapshots") == []


async def test_a_snapshot_is_recorded_creating_with_its_volumes_size_and_host(
    gw: FakeGateway,
) -> None:
    await add_volume(gw)
    c = SnapshotCreateContext(SnapshotCreate("vol-1", name="s"), ME, "snap-1", "fp")

    await snapshot_create_api(gw).run(c, gw.events, "vol-1")

    snap = gw.store.snapshots["snap-1"]
    assert (snap.status.value, snap.size, snap.host, snap.name) == (
        "creating", 2, "node-1@file", "s")
    assert [op for _, op, _ in gw.casts] == ["node.create_snapshot"]
    assert gw.store.snapshots.of_volume("vol-1") == [snap]

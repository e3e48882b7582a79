"""The retype flow driven in memory over a real store (the scheduler's backend list
faked): the new type written to the volume's row; a type deleted or changed while the
flow looked at the backend ends it with nothing written; and from the write on, the
type counts as in use, so it cannot be deleted before its row is committed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.retype import RetypeContext, volume_retype_api
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.protocol.messages.quota import QuotaReserve
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidState, OverQuota
from tests.conftest import EventRecorder, open_gateway_store

ME = Context("demo", "demo", request_id="req-1")
PLAIN = VolumeType("t-plain", "__DEFAULT__")
GOLD = VolumeType("t-gold", "Gold", extra_specs={"volume_backend_name": "file"})
NODE_1 = Backend("node-1@file", "node-1", "nova", 100.0, 90.0, 10.0, 10.0,
                 capabilities={"volume_backend_name": "file"})


class FakeGateway:
    """RetypeServices over a real store; ``lookup`` holds the backend lookup open."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        for t in (PLAIN, GOLD):
            self.types.add(t)
        self.zones: Collection[str] = ("nova",)
        self.lookup = asyncio.Event()
        self.lookup.set()
        self.events = EventRecorder()
        self.reserved: list[QuotaReserve] = []
        self.refuse: OverQuota | None = None

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        assert isinstance(body, QuotaReserve)
        self.reserved.append(body)
        if self.refuse is not None:
            raise self.refuse
        return {"reservation_id": body.reservation_id}

    async def backends_seen(self, ctx: Context) -> list[Backend]:
        await self.lookup.wait()
        return [NODE_1]

    def publish(self, rec: VolumeRecord, push: bool = True) -> None:
        pass

    async def run_flow(self, flow: LinearFlow[RetypeContext], c: RetypeContext,
                       volume_id: str, ctx: Context) -> None:
        await flow.run(c, self.events, volume_id)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[FakeGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        gw = FakeGateway(store)
        await store.add_volume(VolumeRecord(
            id="vol-1", project_id="demo", user_id="demo", size=1,
            status=VolumeStatus.AVAILABLE, volume_type=PLAIN, availability_zone="nova",
            host="node-1@file"))
        yield gw


async def type_in_row(gw: FakeGateway) -> Any:
    return (await gw.store.db.fetchall(
        "SELECT volume_type_id FROM volumes WHERE id='vol-1'"))[0][0]


async def test_the_new_type_is_written_to_the_volume_s_row(gw: FakeGateway) -> None:
    c = RetypeContext("vol-1", "Gold", "never", ME)
    await gw.run_flow(volume_retype_api(gw), c, "vol-1", ME)
    assert c.volume is not None and c.volume.volume_type is GOLD
    assert await type_in_row(gw) == GOLD.id
    assert gw.store.volumes.retyping == {}
    # the new type's own quota reserved, committed with the row; the old type's given back
    (reserve,) = gw.reserved
    assert (reserve.project, reserve.deltas) == ("demo", {"volumes_t-gold": 1,
                                                          "gigabytes_t-gold": 1})
    owed = [(op.kind, op.reservation_id, op.deltas) for op in gw.store.journal.owed()]
    assert owed == [("commit", reserve.reservation_id, {}),
                    ("release", "", {"volumes_t-plain": 1, "gigabytes_t-plain": 1})]


async def test_the_volume_s_snapshots_take_its_new_type_and_their_quota_moves(
    gw: FakeGateway,
) -> None:
    await gw.store.snapshots.add(SnapshotRecord(
        "snap-1", "demo", "demo", "vol-1", 1, SnapshotStatus.AVAILABLE, volume_type_id=PLAIN.id))
    await gw.store.snapshots.add(SnapshotRecord(  # another project's keeps its type
        "snap-2", "other", "o", "vol-1", 1, SnapshotStatus.AVAILABLE, volume_type_id=PLAIN.id))
    c = RetypeContext("vol-1", "Gold", "never", ME)
    await gw.run_flow(volume_retype_api(gw), c, "vol-1", ME)
    assert gw.reserved[0].deltas == {"volumes_t-gold": 1, "gigabytes_t-gold": 2,
                                     "snapshots_t-gold": 1}
    assert gw.store.journal.owed()[1].deltas == {"volumes_t-plain": 1, "gigabytes_t-plain": 2,
                                                 "snapshots_t-plain": 1}
    rows = await gw.store.db.fetchall("SELECT id, volume_type_id FROM snapshots ORDER BY id")
    assert [tuple(r) for r in rows] == [("snap-1", GOLD.id), ("snap-2", PLAIN.id)]


async def test_a_retype_over_the_new_type_s_quota_changes_nothing(gw: FakeGateway) -> None:
    gw.refuse = OverQuota("Quota exceeded for resources: volumes_t-gold.",
                          {"resource": "volumes_t-gold"})
    c = RetypeContext("vol-1", "Gold", "never", ME)
    with pytest.raises(OverQuota):
        await gw.run_flow(volume_retype_api(gw), c, "vol-1", ME)
    assert c.volume is not None and c.volume.volume_type is PLAIN
    assert await type_in_row(gw) == PLAIN.id
    assert gw.store.journal.owed() == []  # nothing reserved, so nothing to roll back


@pytest.mark.parametrize("meanwhile", ["deleted", "changed"])
async def test_a_type_deleted_or_changed_during_the_lookup_ends_the_retype(
    gw: FakeGateway, meanwhile: str,
) -> None:
    gw.lookup.clear()
    c = RetypeContext("vol-1", "Gold", "never", ME)
    running = asyncio.ensure_future(gw.run_flow(volume_retype_api(gw), c, "vol-1", ME))
    await asyncio.sleep(0.01)  # the flow waits in the backend lookup
    gw.types.remove(GOLD)
    if meanwhile == "changed":  # as VolumeTypes' update installs a changed type
        gw.types.add(dataclasses.replace(GOLD, extra_specs={"volume_backend_name": "lvm"}))
    gw.lookup.set()
    with pytest.raises(InvalidState, match="changed or deleted while the retype"):
        await running
    assert c.volume is not None and c.volume.volume_type is PLAIN
    assert await type_in_row(gw) == PLAIN.id


async def test_a_type_being_written_to_a_volume_counts_as_in_use_until_committed(
    gw: FakeGateway,
) -> None:
    assert gw.store.volumes.of_type(GOLD.id) == 0
    rec = gw.store.volumes.get("vol-1")
    assert rec is not None
    rec.volume_type = GOLD
    saving = asyncio.ensure_future(gw.store.save_retype(rec, [], "res-1", {}))
    await asyncio.sleep(0)  # queued, not committed: a type delete now must see it
    assert gw.store.volumes.of_type(GOLD.id) >= 1
    await saving
    assert gw.store.volumes.of_type(GOLD.id) == 1 and gw.store.volumes.retyping == {}

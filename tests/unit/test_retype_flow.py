"""The retype flow driven in memory over a real store (the scheduler's backend list
and the nodes faked): the new type written to the volume's row; a type deleted or
changed while the flow looked at the backend ends it with nothing written; and from the
write on, the type counts as in use, so it cannot be deleted before its row is
committed. Under ``on-demand`` a type the volume's backend does not satisfy moves it
(a migration holding the new type's reservation): the destination's report gives it
the type and commits the reservation, in the transaction that moves it; a failed copy
leaves the old type and rolls the reservation back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.migration import GatewayMigrations
from cinderblock.actors.gateway.migration_store import RetypeTerms
from cinderblock.actors.gateway.retype import RetypeContext, VolumeRetyper, volume_retype_api
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.protocol.messages.lifecycle import VolumeRetype
from cinderblock.protocol.messages.migration import VolumeReceived
from cinderblock.protocol.messages.quota import QuotaReserve
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, OverQuota
from tests.conftest import EventRecorder, open_gateway_store

ME = Context("demo", "demo", request_id="req-1")
PLAIN = VolumeType("t-plain", "__DEFAULT__")
GOLD = VolumeType("t-gold", "Gold", extra_specs={"volume_backend_name": "file"})
NODE_1 = Backend("node-1@file", "node-1", "nova", 100.0, 90.0, 10.0, 10.0,
                 capabilities={"volume_backend_name": "file"})
FAST = VolumeType("t-fast", "Fast", extra_specs={"volume_backend_name": "fast"})
NODE_2 = Backend("node-2@null", "node-2", "nova", 100.0, 80.0, 20.0, 20.0,
                 capabilities={"volume_backend_name": "fast"})  # null: no export to make


class FakeGateway:
    """RetypeServices over a real store; ``lookup`` holds the backend lookup open."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        for t in (PLAIN, GOLD, FAST):
            self.types.add(t)
        self.zones: Collection[str] = ("nova",)
        self.lookup = asyncio.Event()
        self.lookup.set()
        self.events = EventRecorder()
        self.reserved: list[QuotaReserve] = []
        self.refuse: OverQuota | None = None
        self.backends = [NODE_1]
        self.router = cast(Link, object())
        self.node_hosts = frozenset({"node-1", "node-2"})
        self.sent: list[tuple[str, str, Any]] = []  # (node or backend, op, body)
        self.migrations = GatewayMigrations(self)

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        assert isinstance(body, QuotaReserve)
        self.reserved.append(body)
        if self.refuse is not None:
            raise self.refuse
        return {"reservation_id": body.reservation_id}

    async def backends_seen(self, ctx: Context) -> list[Backend]:
        await self.lookup.wait()
        return self.backends

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.sent.append((host, op, body))

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.sent.append((host, op, body))

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]:
        self.sent.append((host, op, body))
        return {"host": "127.0.0.1", "port": 10809, "export_name": "volume-vol-1.m",
                "ca_cert": "ca", "client_cert": "cert", "client_key": "key"} \
            if op == "node.export" else {}

    def publish(self, rec: VolumeRecord, push: bool = True) -> None:
        pass

    async def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                       ) -> None:
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


async def volume_row(gw: FakeGateway) -> tuple[Any, ...]:
    rows = await gw.store.db.fetchall(
        "SELECT v.status, v.host, v.volume_type_id, m.status, m.new_type_id FROM volumes v "
        "LEFT JOIN volume_migrations m ON m.volume_id = v.id WHERE v.id='vol-1'")
    return tuple(rows[0])


async def retype(gw: FakeGateway, new_type: str, policy: str) -> Volume:
    """The ``volume.retype`` op, as the gateway runs it (its claim released at the end)."""
    return await VolumeRetyper(gw).on_retype(Request(
        Envelope("r", 1, "volume.retype", None, ME), VolumeRetype("vol-1", new_type, policy),
        cast(Link, object()), b"", "demo"))


async def retype_on_demand(gw: FakeGateway) -> str:
    """Retype vol-1 to Fast, which only node-2 satisfies; the migration's id."""
    gw.backends = [NODE_1, NODE_2]
    answer = await retype(gw, "Fast", "on-demand")
    assert (answer.status, answer.volume_type, answer.migration_status) == (
        "maintenance", PLAIN.name, "migrating")
    assert gw.store.claims == {}
    migration = gw.store.migrations.of_volume("vol-1")
    assert migration is not None
    return migration.migration_id


async def test_on_demand_moves_the_volume_and_its_end_gives_it_the_type(
    gw: FakeGateway,
) -> None:
    mid = await retype_on_demand(gw)
    (reserve,) = gw.reserved
    assert reserve.deltas == {"volumes_t-fast": 1, "gigabytes_t-fast": 1}
    assert reserve.reservation_id is not None
    # moving: the old type kept, the reservation held by the migration (no restart rolls
    # it back, nothing owed yet), and the new type in use
    assert await volume_row(gw) == ("maintenance", "node-1@file", PLAIN.id, "migrating",
                                    FAST.id)
    migration = gw.store.migrations.of_volume("vol-1")
    assert migration is not None and migration.retype == RetypeTerms(
        FAST.id, reserve.reservation_id, {"volumes_t-plain": 1, "gigabytes_t-plain": 1})
    assert gw.store.migrations.reservations() == [reserve.reservation_id]
    assert gw.store.journal.owed() == [] and gw.store.type_users(FAST.id) == 1
    assert [(h, op) for h, op, _ in gw.sent] == [("node-1", "node.export"),
                                                 ("node-2@null", "node.receive_volume")]
    await gw.store.migrations.load()  # as a restarted gateway reads it
    assert gw.store.migrations.of_volume("vol-1") == migration

    report = Request(Envelope("r", 1, "volume.received", None, ME),
                     VolumeReceived("vol-1", mid), gw.router, b"", "node-2")
    await gw.migrations.on_received(report)
    assert await volume_row(gw) == ("available", "node-2@null", FAST.id, "success", FAST.id)
    vol = gw.store.volumes.get("vol-1")
    assert vol is not None and vol.volume_type is FAST
    owed = [(op.kind, op.reservation_id, op.deltas) for op in gw.store.journal.owed()]
    assert owed == [("commit", reserve.reservation_id, {}),
                    ("release", "", {"volumes_t-plain": 1, "gigabytes_t-plain": 1})]
    assert gw.store.migrations.reservations() == []


async def test_a_failed_copy_keeps_the_old_type_and_rolls_the_reservation_back(
    gw: FakeGateway,
) -> None:
    mid = await retype_on_demand(gw)
    report = Request(Envelope("r", 1, "volume.received", None, ME),
                     VolumeReceived("vol-1", mid, "disk full"), gw.router, b"", "node-2")
    await gw.migrations.on_received(report)
    assert await volume_row(gw) == ("available", "node-1@file", PLAIN.id, "error", FAST.id)
    owed = [(op.kind, op.reservation_id) for op in gw.store.journal.owed()]
    assert owed == [("rollback", gw.reserved[0].reservation_id)]
    assert gw.store.type_users(FAST.id) == 0


async def test_on_demand_refuses_what_cannot_move_and_changes_nothing(
    gw: FakeGateway,
) -> None:
    with pytest.raises(InvalidInput, match="No valid backend to migrate volume vol-1 to "
                                           "for its retype to type Fast"):
        await retype(gw, "Fast", "on-demand")  # no other backend satisfies it
    gw.backends = [NODE_1, NODE_2]
    await gw.store.snapshots.add(SnapshotRecord(
        "snap-1", "demo", "demo", "vol-1", 1, SnapshotStatus.AVAILABLE, volume_type_id=PLAIN.id))
    with pytest.raises(InvalidState, match="must not have snapshots to migrate"):
        await retype(gw, "Fast", "on-demand")
    with pytest.raises(InvalidInput, match="migration not allowed"):
        await retype(gw, "Fast", "never")
    assert await volume_row(gw) == ("available", "node-1@file", PLAIN.id, None, None)
    assert gw.reserved == [] and gw.store.journal.owed() == [] and gw.store.claims == {}

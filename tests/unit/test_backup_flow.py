"""The gateway's backup flows and the nodes' reports, driven in memory: a real store (its
SQLite file), quota and nodes faked.

What is checked: what each request changes, in memory and in the file, and what it owes
the quota journal; that a refusal or a failure changes nothing (or reverts everything);
that a node speaks only of backups it made; and what the reconciler sends again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.backup_records import BACKUP_SERVICE, export_record
from cinderblock.actors.gateway.backup_store import BackupRecord, VolumeMeta
from cinderblock.actors.gateway.backups import GatewayBackups, restored_details
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION, GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.backups import (
    BackupCreate,
    BackupDeleted,
    BackupMade,
    BackupModify,
    BackupRef,
    BackupResetState,
    BackupRestore,
    BackupRestored,
    ExportedBackup,
)
from cinderblock.protocol.messages.volumes import Volume, VolumeCreate, VolumeType
from cinderblock.protocol.states import BackupStatus, SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import (
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    Unavailable,
)
from tests.conftest import EventRecorder, open_gateway_store

B, V, P = BackupStatus, VolumeStatus, SnapshotStatus
ME = Context("demo", "demo")
ADMIN = Context("admin", "admin", roles=("admin",))
NODE = "node-1@file"


class FakeGateway:
    """What ``GatewayBackups`` uses of the gateway, over a real store; the quota actor and
    the nodes are lists of calls, the attachments a status per volume."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.events = EventRecorder()
        self.router = object()
        self.node_hosts = frozenset({"node-1", "node-2"})
        self.node_backends = frozenset({"node-1@file", "node-2@file"})
        self.casts: list[tuple[str, str, Any]] = []
        self.nodes_up = True
        self.attached: dict[str, VolumeStatus] = {}
        self.published: list[tuple[str, str]] = []
        self.calls: list[tuple[str, str, Any]] = []
        self.repository: int | Exception = 3  # node.check_backup's answer

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]:
        return {"reservation_id": getattr(body, "reservation_id", None) or "res-1"}

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        if not self.nodes_up:
            raise Unavailable(f"{host} is not connected")
        self.casts.append((host, op, body))

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.casts.append((host, op, body))

    def publish(self, rec: VolumeRecord, push: bool = True) -> None:
        self.published.append((rec.id, rec.status.value))

    def publish_snapshot(self, rec: SnapshotRecord) -> None:
        self.published.append((rec.id, rec.status.value))

    def publish_backup(self, rec: BackupRecord) -> None:
        self.published.append((rec.id, rec.status.value))

    def attachment_status(self, volume_id: str) -> VolumeStatus:
        return self.attached.get(volume_id, V.AVAILABLE)

    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]:
        return flow.run(c, self.events, volume_id, project_id=ctx.project_id)

    async def create_volume(self, req: Request, body: VolumeCreate) -> Volume:
        raise AssertionError("no volume create in these tests")

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]:
        self.calls.append((host, op, body))
        if isinstance(self.repository, Exception):
            raise self.repository
        return {"object_count": self.repository}

    def owed(self) -> list[str]:
        return [op.kind for op in self.store.journal.owed()]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[FakeGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        yield FakeGateway(store)


def backups(gw: FakeGateway) -> GatewayBackups:
    return GatewayBackups(cast(Any, gw))


def request(op: str, body: Any, ctx: Context = ME, link: object = None,
            peer: str = "") -> Request:
    return Request(Envelope("req", 1, op, None, ctx), body, cast(Any, link), b"", peer)


def report(gw: FakeGateway, op: str, body: Any, peer: str = "node-1") -> Request:
    return request(op, body, ADMIN, gw.router, peer)


async def add_volume(gw: FakeGateway, vid: str = "vol-1", size: int = 2,
                     status: VolumeStatus = V.AVAILABLE) -> VolumeRecord:
    rec = VolumeRecord(id=vid, project_id="demo", user_id="demo", size=size, status=status,
                       volume_type=VolumeType("t", "__DEFAULT__"), availability_zone="nova",
                       host=NODE)
    await gw.store.add_volume(rec)
    return rec


def status(gw: FakeGateway, vid: str = "vol-1") -> VolumeStatus:
    return gw.store.volumes[vid].status


async def row(gw: FakeGateway, table: str, object_id: str) -> tuple[Any, ...] | None:
    rows = await gw.store.db.fetchall(f"SELECT status FROM {table} WHERE id=?", (object_id,))
    return rows[0] if rows else None


async def made(gw: FakeGateway, g: GatewayBackups, vid: str = "vol-1", **kw: Any) -> str:
    backup = await g.on_create(request("backup.create", BackupCreate(vid, **kw)))
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 3)))
    return backup.id


# ---- create ---------------------------------------------------------------------------
async def test_a_backup_holds_its_volume_backing_up_until_its_node_reports(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    backup = await g.on_create(request("backup.create", BackupCreate("vol-1", name="n")))

    assert (backup.status, backup.size, vol.status) == (B.CREATING, 2, V.BACKING_UP)
    assert await row(gw, "backups", backup.id) == ("creating",)
    assert await row(gw, "volumes", "vol-1") == ("backing-up",)
    assert gw.owed() == ["commit"]  # written with the row
    ((host, op, body),) = gw.casts
    assert (host, op, body.volume_id, body.size) == (NODE, "node.create_backup", "vol-1", 2)

    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 7)))
    shown = g.on_show(request("backup.show", BackupRef(backup.id)))
    assert (shown.status, shown.object_count, vol.status) == (B.AVAILABLE, 7, V.AVAILABLE)
    assert await row(gw, "volumes", "vol-1") == ("available",)


async def test_an_in_use_volume_needs_force_and_ends_as_its_attachments_make_it(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw, status=V.IN_USE)
    with pytest.raises(InvalidState, match="force flag"):
        await g.on_create(request("backup.create", BackupCreate("vol-1")))
    assert status(gw) is V.IN_USE and gw.casts == []

    backup = await g.on_create(request("backup.create", BackupCreate("vol-1", force=True)))
    assert status(gw) is V.BACKING_UP
    gw.attached["vol-1"] = V.IN_USE
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 1)))
    assert status(gw) is V.IN_USE

    backup = await g.on_create(request("backup.create", BackupCreate("vol-1", force=True)))
    gw.attached["vol-1"] = V.AVAILABLE  # its attachment was deleted meanwhile
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 1)))
    assert status(gw) is V.AVAILABLE


async def test_a_node_that_cannot_be_reached_leaves_nothing_and_quota_given_back(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    gw.nodes_up = False
    with pytest.raises(Unavailable):
        await g.on_create(request("backup.create", BackupCreate("vol-1")))
    assert vol.status is V.AVAILABLE and await row(gw, "volumes", "vol-1") == ("available",)
    assert await gw.store.db.fetchall("SELECT id FROM backups") == []
    assert gw.owed() == ["commit", "release"]  # what the row owed, then its removal


async def test_a_failed_backup_is_error_with_its_reason_and_frees_its_volume(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    backup = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, reason="disk full")))
    shown = g.on_show(request("backup.show", BackupRef(backup.id)))
    assert (shown.status, shown.fail_reason, vol.status) == (B.ERROR, "disk full", V.AVAILABLE)
    assert gw.owed() == ["commit"]  # a failed backup counts until it is deleted


async def test_a_snapshot_s_backup_holds_the_snapshot_not_the_volume(gw: FakeGateway) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    snap = SnapshotRecord("snap-1", "demo", "demo", "vol-1", 2, P.AVAILABLE, host=NODE)
    await gw.store.snapshots.add(snap)
    backup = await g.on_create(request("backup.create", BackupCreate(
        "vol-1", snapshot_id="snap-1")))
    assert (snap.status, vol.status) == (P.BACKING_UP, V.AVAILABLE)
    assert gw.casts[-1][2].snapshot_id == "snap-1"
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 1)))
    assert snap.status is P.AVAILABLE


@pytest.mark.parametrize(("body", "error", "words"), [
    (BackupCreate("vol-1", incremental=True), InvalidState,
     "No backups available to do an incremental backup"),
    (BackupCreate("vol-1", name="x" * 256), InvalidInput, "more than 255"),
    (BackupCreate("vol-1", snapshot_id="snap-2"), InvalidInput, "does not match"),
    (BackupCreate("vol-1", availability_zone="elsewhere"), InvalidInput, "zone"),
    (BackupCreate("no-such-volume"), NotFound, "could not be found"),
])
async def test_what_is_refused_changes_nothing(gw: FakeGateway, body: BackupCreate,
                                               error: type[Exception], words: str) -> None:
    g = backups(gw)
    await add_volume(gw)
    await add_volume(gw, "vol-2")
    await gw.store.snapshots.add(SnapshotRecord("snap-2", "demo", "demo", "vol-2", 2,
                                                P.AVAILABLE, host=NODE))
    with pytest.raises(error, match=words):
        await g.on_create(request("backup.create", body))
    assert gw.casts == [] and gw.owed() == []
    assert gw.store.volumes["vol-1"].status is V.AVAILABLE


async def test_a_node_speaks_only_of_the_backups_it_made(gw: FakeGateway) -> None:
    g = backups(gw)
    await add_volume(gw)
    backup = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    with pytest.raises(Forbidden, match="its own backend"):
        await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 1), peer="node-2"))
    with pytest.raises(Forbidden):  # not a node at all
        await g.on_made(request("backup.made", BackupMade(backup.id, 1), ADMIN, object(),
                                "node-1"))
    assert g.on_show(request("backup.show", BackupRef(backup.id))).status is B.CREATING


# ---- delete -----------------------------------------------------------------------------
async def test_a_delete_removes_the_row_once_its_node_deleted_the_data(gw: FakeGateway) -> None:
    g = backups(gw)
    await add_volume(gw)
    bid = await made(gw, g)
    deleting = await g.on_delete(request("backup.delete", BackupRef(bid)))
    assert deleting.status is B.DELETING and gw.casts[-1][1] == "node.delete_backup"
    with pytest.raises(InvalidState, match="available or error"):
        await g.on_delete(request("backup.delete", BackupRef(bid)))

    await g.on_deleted(report(gw, "backup.deleted", BackupDeleted(bid, "busy disk")))
    assert g.on_show(request("backup.show", BackupRef(bid))).status is B.ERROR_DELETING
    await g.on_delete(request("backup.delete", BackupRef(bid)))  # again, from error_deleting
    await g.on_deleted(report(gw, "backup.deleted", BackupDeleted(bid)))
    with pytest.raises(NotFound):
        g.on_show(request("backup.show", BackupRef(bid)))
    assert await row(gw, "backups", bid) is None
    assert gw.owed() == ["commit", "release"]


# ---- restore ------------------------------------------------------------------------------
async def test_a_restore_holds_both_until_the_volume_s_node_reports(gw: FakeGateway) -> None:
    g = backups(gw)
    await add_volume(gw)
    target = await add_volume(gw, "vol-2", size=3)
    bid = await made(gw, g)
    info = await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-2")))
    assert info.volume_id == "vol-2" and target.status is V.RESTORING_BACKUP
    assert gw.store.backups.restoring == {"vol-2": bid}
    assert (await row(gw, "backups", bid), await row(gw, "volumes", "vol-2")) == (
        ("restoring",), ("restoring-backup",))
    assert gw.casts[-1][:2] == (NODE, "node.restore_backup")
    with pytest.raises(InvalidState, match="must be available"):  # one at a time
        await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-1")))

    await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-2",
                                                                     "chunk damaged")))
    after = g.on_show(request("backup.show", BackupRef(bid)))
    assert (after.status, target.status) == (B.AVAILABLE, V.AVAILABLE)
    assert "volume vol-2 failed: chunk damaged" in (after.fail_reason or "")
    assert gw.store.backups.restoring == {}

    await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-2")))
    await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-2")))
    assert g.on_show(request("backup.show", BackupRef(bid))).fail_reason is None


async def test_a_restore_needs_an_available_volume_of_the_backup_s_size(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw, size=2)
    await add_volume(gw, "small", size=1)
    await add_volume(gw, "busy", size=2, status=V.IN_USE)
    bid = await made(gw, g)
    casts = len(gw.casts)
    with pytest.raises(InvalidInput, match="too small to restore backup of size 2"):
        await g.on_restore(request("backup.restore", BackupRestore(bid, "small")))
    with pytest.raises(InvalidState, match="must be available"):
        await g.on_restore(request("backup.restore", BackupRestore(bid, "busy")))
    assert len(gw.casts) == casts
    assert g.on_show(request("backup.show", BackupRef(bid))).status is B.AVAILABLE


async def test_a_restore_s_report_after_the_backup_was_reset_frees_the_volume(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    target = await add_volume(gw, "vol-2")
    bid = await made(gw, g)
    await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-2")))
    await g.on_reset_state(request("backup.reset_state", BackupResetState(bid, "error"),
                                   ADMIN))
    assert gw.store.backups.restoring == {}
    await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-2")))
    assert target.status is V.AVAILABLE
    assert g.on_show(request("backup.show", BackupRef(bid))).status is B.ERROR


async def test_a_reset_of_a_backup_being_made_gives_its_volume_back(gw: FakeGateway) -> None:
    """Its node's report is ignored after the reset (the backup is no longer creating):
    the volume had stayed backing-up for good (found by the REST fuzz)."""
    g = backups(gw)
    await add_volume(gw)
    backup = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    assert status(gw) is V.BACKING_UP
    await g.on_reset_state(request("backup.reset_state", BackupResetState(backup.id,
                                                                          "error"), ADMIN))
    assert status(gw) is V.AVAILABLE
    assert await row(gw, "volumes", "vol-1") == ("available",)
    await g.on_made(report(gw, "backup.made", BackupMade(backup.id, 1)))  # ignored
    assert g.on_show(request("backup.show", BackupRef(backup.id))).status is B.ERROR


async def test_a_reset_is_an_admin_s_to_available_or_error(gw: FakeGateway) -> None:
    g = backups(gw)
    await add_volume(gw)
    bid = await made(gw, g)
    with pytest.raises(Forbidden):
        await g.on_reset_state(request("backup.reset_state", BackupResetState(bid, "error")))
    with pytest.raises(InvalidInput, match="available or error"):
        await g.on_reset_state(request("backup.reset_state",
                                       BackupResetState(bid, "creating"), ADMIN))


# ---- the reconciler ----------------------------------------------------------------------
async def test_the_reconciler_asks_again_only_what_a_node_is_not_working_on(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    await add_volume(gw, "vol-2")
    first = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    second = await g.on_create(request("backup.create", BackupCreate("vol-2")))
    gw.casts.clear()
    asked: list[tuple[str, list[str]]] = []

    async def busy(node: str, ids: list[str]) -> set[str]:
        asked.append((node, sorted(ids)))
        return {second.id}

    acted = await g.mend(float("inf"), busy)
    assert asked == [(NODE, sorted([first.id, second.id]))]
    assert acted == [first.id]
    assert [(op, body.backup_id) for _, op, body in gw.casts] == [
        ("node.create_backup", first.id)]
    assert await g.mend(0.0, busy) == []  # nothing stuck that long


async def test_the_reconciler_frees_a_backup_whose_restore_volume_moved_on(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    target = await add_volume(gw, "vol-2")
    bid = await made(gw, g)
    await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-2")))
    target.status = V.ERROR  # an admin's reset of the volume
    await gw.store.save_status(target)

    async def idle(node: str, ids: list[str]) -> set[str]:
        return set()

    assert await g.mend(float("inf"), idle) == [bid]
    assert g.on_show(request("backup.show", BackupRef(bid))).status is B.AVAILABLE
    assert gw.store.backups.restoring == {}


async def test_a_create_sent_again_with_its_request_id_answers_the_same_backup(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    await add_volume(gw, "vol-2")
    asked = Context("demo", "demo", request_id="req-backup-1")
    body = BackupCreate("vol-1", name="nightly")
    both = await asyncio.gather(*(g.on_create(request("backup.create", body, asked))
                                  for _ in range(2)))  # the second while the first runs
    assert both[0].id == both[1].id and len(gw.casts) == 1
    again = await g.on_create(request("backup.create", body, asked))  # from its row now
    assert again.id == both[0].id and len(gw.casts) == 1
    with pytest.raises(InvalidInput, match="already used for a different request"):
        await g.on_create(request("backup.create", BackupCreate("vol-2"), asked))
    rows = await gw.store.db.fetchall("SELECT id, request_id FROM backups")
    assert rows == [(both[0].id, "req-backup-1")]


# ---- what a backup keeps of its volume besides its bytes ------------------------------
def volume(name: str | None = None, description: str | None = None,
           metadata: dict[str, str] | None = None) -> VolumeRecord:
    return VolumeRecord(id="v", project_id="demo", user_id="demo", size=1, status=V.AVAILABLE,
                        volume_type=VolumeType("t", "__DEFAULT__"), availability_zone="nova",
                        name=name, description=description, metadata=metadata or {})


def test_a_restored_volume_takes_its_backup_s_details_as_cinder_s_drivers_give_them() -> None:
    kept = VolumeMeta("db", "the database", {"tier": "gold"}, {"image_id": "img-1"})

    named = volume("mine", "my words", {"mine": "yes"})
    assert restored_details(named, kept)
    assert (named.name, named.description) == ("mine", "my words")  # a name of its own stays
    assert named.metadata == {"tier": "gold"}  # replaced whole, as Cinder's delete=True
    assert (named.image_metadata, named.bootable) == ({"image_id": "img-1"}, True)

    for untitled in (volume(None), volume(""), volume("restore_backup_b-1", "auto")):
        assert restored_details(untitled, kept)
        assert (untitled.name, untitled.description) == ("db", "the database")

    bare = volume("mine", "my words", {"mine": "yes"})
    assert not restored_details(bare, VolumeMeta(None, "unnamed", {}, {}))  # nothing kept
    assert (bare.name, bare.description, bare.metadata, bare.bootable) == (
        "mine", "my words", {"mine": "yes"}, False)
    same = volume("db", "the database", {"tier": "gold"})
    assert not restored_details(same, VolumeMeta("db", "the database", {"tier": "gold"}, {}))


async def details_row(gw: FakeGateway, vid: str) -> tuple[Any, ...]:
    ((name, description, metadata),) = await gw.store.db.fetchall(
        "SELECT name, description, metadata FROM volumes WHERE id=?", (vid,))
    image = await gw.store.db.fetchall(
        "SELECT metadata FROM volume_image_metadata WHERE id=?", (vid,))
    flags = await gw.store.db.fetchall("SELECT bootable FROM volume_flags WHERE id=?", (vid,))
    return (name, description, json.loads(metadata), json.loads(image[0][0]) if image else {},
            bool(flags and flags[0][0]))


async def test_a_restore_gives_the_volume_back_what_its_backup_kept_in_memory_and_file(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    vol.name, vol.description, vol.metadata = "db", "the database", {"tier": "gold"}
    vol.image_metadata = {"image_id": "img-1"}
    await gw.store.save_details(vol)
    bid = await made(gw, g)
    vol.name, vol.metadata, vol.image_metadata = "renamed", {"tier": "lead"}, {}
    await gw.store.save_details(vol)

    await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-1")))
    await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-1", "disk full")))
    assert await details_row(gw, "vol-1") == (  # a failed restore changes nothing
        "renamed", "the database", {"tier": "lead"}, {}, False)

    await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-1")))
    await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-1")))
    expected = ("renamed", "the database", {"tier": "gold"}, {"image_id": "img-1"}, True)
    assert (vol.name, vol.description, vol.metadata, vol.image_metadata, vol.bootable
            ) == expected
    assert await details_row(gw, "vol-1") == expected
    assert await row(gw, "volumes", "vol-1") == ("available",)

    await g.on_delete(request("backup.delete", BackupRef(bid)))
    await g.on_deleted(report(gw, "backup.deleted", BackupDeleted(bid)))
    assert await gw.store.db.fetchall("SELECT * FROM backup_volume_meta") == []


async def test_a_volume_made_from_a_backup_takes_its_details_when_it_is_available(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    vol.name, vol.metadata = "db", {"tier": "gold"}
    await gw.store.save_details(vol)
    bid = await made(gw, g)
    new = await add_volume(gw, "vol-2", status=V.CREATING)
    new.name = f"restore_backup_{bid}"
    await gw.store.save_details(new)
    backup = gw.store.backups.get(bid)
    assert backup is not None
    backup.move(B.RESTORING)
    backup.restore_volume_id = "vol-2"
    await gw.store.backups.queue_status(backup)

    new.status = V.AVAILABLE
    written = gw.store.queue_status(new)
    g.volume_made(new)
    await written
    await gw.store.db.settled()
    assert (new.name, new.metadata, backup.status) == ("db", {"tier": "gold"}, B.AVAILABLE)
    assert (await details_row(gw, "vol-2"))[:3] == ("db", None, {"tier": "gold"})


async def test_a_backup_from_before_volume_details_were_kept_restores_its_bytes_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        gw = FakeGateway(store)
        g = backups(gw)
        vol = await add_volume(gw)
        vol.name, vol.metadata = "db", {"tier": "gold"}
        await store.save_details(vol)
        bid = await made(gw, g)
        vol.metadata = {"tier": "lead"}
        await store.save_details(vol)
    conn = sqlite3.connect(path)  # the file as version 15 left it: no details kept
    conn.executescript("DROP TABLE backup_volume_meta; PRAGMA user_version=15;")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as migrated:
        version = migrated.read_only().execute("PRAGMA user_version").fetchone()[0]
        assert (version, migrated.backups.volume_meta(bid)) == (SCHEMA_VERSION, None)
        gw = FakeGateway(migrated)
        g = backups(gw)
        await g.on_restore(request("backup.restore", BackupRestore(bid, "vol-1")))
        await g.on_restored(report(gw, "backup.restored", BackupRestored(bid, "vol-1")))
        assert await details_row(gw, "vol-1") == ("db", None, {"tier": "lead"}, {}, False)
        assert await row(gw, "volumes", "vol-1") == ("available",)



# ---- incremental backups ---------------------------------------------------------------
async def test_an_incremental_backup_has_the_latest_available_backup_for_parent(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw)
    first = await made(gw, g)
    second = await made(gw, g, incremental=True)
    assert gw.casts[-1][2].parent_id == first
    failed = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    await g.on_made(report(gw, "backup.made", BackupMade(failed.id, reason="disk full")))

    third = await g.on_create(request("backup.create", BackupCreate("vol-1",
                                                                    incremental=True)))
    assert gw.casts[-1][2].parent_id == second  # the errored one is no parent
    await g.on_made(report(gw, "backup.made", BackupMade(third.id, 2)))
    shown = {b: g.on_show(request("backup.show", BackupRef(b)))
             for b in (first, second, third.id)}
    assert [(v.is_incremental, v.has_dependent_backups) for v in shown.values()] == [
        (False, True), (True, True), (True, False)]
    assert vol.status is V.AVAILABLE


async def test_a_backup_with_dependents_is_not_deleted_until_they_are(
    gw: FakeGateway, tmp_path: Path,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    parent = await made(gw, g)
    child = await made(gw, g, incremental=True)
    with pytest.raises(InvalidState, match="Incremental backups exist for this backup"):
        await g.on_delete(request("backup.delete", BackupRef(parent)))
    assert g.on_show(request("backup.show", BackupRef(parent))).status is B.AVAILABLE

    await g.on_delete(request("backup.delete", BackupRef(child)))
    await g.on_deleted(report(gw, "backup.deleted", BackupDeleted(child)))
    assert not g.on_show(request("backup.show", BackupRef(parent))).has_dependent_backups
    await g.on_delete(request("backup.delete", BackupRef(parent)))
    await g.on_deleted(report(gw, "backup.deleted", BackupDeleted(parent)))
    assert await gw.store.db.fetchall("SELECT * FROM backup_parents") == []


async def test_a_backup_s_parent_and_dependents_are_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        gw = FakeGateway(store)
        g = backups(gw)
        await add_volume(gw)
        parent = await made(gw, g)
        child = await made(gw, g, incremental=True)
    async with open_gateway_store(path) as again:
        g = backups(FakeGateway(again))
        assert g.on_show(request("backup.show", BackupRef(child))).is_incremental
        assert g.on_show(request("backup.show", BackupRef(parent))).has_dependent_backups
        with pytest.raises(InvalidState, match="Incremental backups exist"):
            await g.on_delete(request("backup.delete", BackupRef(parent)))


async def test_a_snapshot_s_incremental_backup_has_a_parent_of_older_data(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    older = await made(gw, g)
    taken = time.time()
    await gw.store.snapshots.add(SnapshotRecord("snap-1", "demo", "demo", "vol-1", 2,
                                                P.AVAILABLE, host=NODE, created_at=taken))
    await asyncio.sleep(0.01)
    await made(gw, g)  # newer than the snapshot: not its parent
    await g.on_create(request("backup.create", BackupCreate(
        "vol-1", snapshot_id="snap-1", incremental=True)))
    assert gw.casts[-1][2].parent_id == older


async def test_a_parent_deleted_before_the_child_s_entry_refuses_the_child(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    parent = await made(gw, g)
    reserved = asyncio.Event()
    proceed = asyncio.Event()
    quota_call = gw.quota_call

    async def slow_quota(op: str, body: object, ctx: Context) -> dict[str, object]:
        reserved.set()
        await proceed.wait()
        return await quota_call(op, body, ctx)

    gw.quota_call = slow_quota  # type: ignore[method-assign]
    child = asyncio.create_task(g.on_create(request("backup.create", BackupCreate(
        "vol-1", incremental=True))))
    await reserved.wait()
    await g.on_delete(request("backup.delete", BackupRef(parent)))  # no dependent yet
    proceed.set()
    with pytest.raises(InvalidState, match="No backups available"):
        await child
    assert gw.store.volumes["vol-1"].status is V.AVAILABLE


async def test_an_update_changes_what_it_names_and_clears_what_it_is_told(
    gw: FakeGateway,
) -> None:
    g = backups(gw)
    await add_volume(gw)
    bid = await made(gw, g, name="nightly", description="kept")
    renamed = await g.on_update(request("backup.update", BackupModify(bid, name="weekly")))
    assert (renamed.name, renamed.description) == ("weekly", "kept")
    cleared = await g.on_update(request("backup.update", BackupModify(
        bid, cleared=("name", "description"))))
    assert (cleared.name, cleared.description) == (None, None)
    rows = await gw.store.db.fetchall("SELECT name, description FROM backups WHERE id=?",
                                      (bid,))
    assert rows == [(None, None)]
    with pytest.raises(InvalidInput, match="only name and description may be cleared"):
        await g.on_update(request("backup.update", BackupModify(bid, cleared=("size",))))



# ---- export and import of a backup's record ------------------------------------------------
async def test_a_record_exported_here_is_imported_by_another_gateway_as_it_was(
    gw: FakeGateway, tmp_path: Path,
) -> None:
    g = backups(gw)
    vol = await add_volume(gw, VOLUME_ID)  # ids are UUIDs, as the gateway makes them
    vol.name, vol.metadata = "db", {"tier": "gold"}
    await gw.store.save_details(vol)
    bid = await made(gw, g, VOLUME_ID, name="nightly", metadata={"k": "v"})
    with pytest.raises(Forbidden):
        g.on_export_record(request("backup.export_record", BackupRef(bid)))
    record = g.on_export_record(request("backup.export_record", BackupRef(bid), ADMIN))
    assert record.backup_service == BACKUP_SERVICE

    async with open_gateway_store(tmp_path / "other.db") as other_store:
        other = FakeGateway(other_store)
        h = backups(other)
        imported = await h.on_import_record(request("backup.import_record", record, ADMIN))
        assert (imported.id, imported.status, imported.project_id, imported.name) == (
            bid, B.AVAILABLE, "admin", "nightly")
        assert (imported.volume_id, imported.size, imported.metadata,
                imported.object_count) == (VOLUME_ID, 2, {"k": "v"}, 3)
        ((host, op, body),) = other.calls
        assert (host, op, body.backup_id, body.volume_id, body.size) == (
            "node-1", "node.check_backup", bid, VOLUME_ID, 2)
        assert other.owed() == ["commit"]  # written with the row
        assert await row(other, "backups", bid) == ("available",)
        meta = other_store.backups.volume_meta(bid)
        assert meta is not None and (meta.name, meta.metadata) == ("db", {"tier": "gold"})

        with pytest.raises(InvalidState, match="Backup already exists in database"):
            await h.on_import_record(request("backup.import_record", record, ADMIN))
        assert other.owed() == ["commit"]


async def test_an_import_the_node_cannot_vouch_for_writes_nothing_and_gives_quota_back(
    gw: FakeGateway,
) -> None:
    record = export_record(BackupRecord("b0c5b3ec-2f4c-4a5e-9d0b-5d1f3c1f6a11", "demo", "demo",
                                        "8e7f8c63-54a4-4b8e-8f43-8a5f0c2e3b11", 1, B.AVAILABLE,
                                        host=NODE), None)
    gw.repository = InvalidInput("backup b0c5... is not in the backup repository")
    with pytest.raises(InvalidInput, match="is not in the backup repository"):
        await backups(gw).on_import_record(request("backup.import_record", record, ADMIN))
    assert gw.owed() == ["rollback"] and gw.store.backups.get(
        "b0c5b3ec-2f4c-4a5e-9d0b-5d1f3c1f6a11") is None
    gw.repository = 0  # and the same record goes in once the node finds it
    done = await backups(gw).on_import_record(request("backup.import_record", record, ADMIN))
    assert done.status is B.AVAILABLE


VOLUME_ID = "8e7f8c63-54a4-4b8e-8f43-8a5f0c2e3b11"


def _url(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


GOOD = {"id": "b0c5b3ec-2f4c-4a5e-9d0b-5d1f3c1f6a11", "size": 1, "host": NODE,
        "volume_id": "8e7f8c63-54a4-4b8e-8f43-8a5f0c2e3b11"}


@pytest.mark.parametrize(("record", "words"), [
    (ExportedBackup("cinder.backup.drivers.posix", _url(GOOD)), "is not this cluster's"),
    (ExportedBackup(BACKUP_SERVICE, "not base64!"), "not base64 of a JSON"),
    (ExportedBackup(BACKUP_SERVICE, base64.b64encode(b"[1]").decode()), "not a JSON object"),
    (ExportedBackup(BACKUP_SERVICE, base64.b64encode(b"[" * 100_000).decode()),
     "not base64 of a JSON"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "id": None} | {})), "id is not a string"),
    (ExportedBackup(BACKUP_SERVICE, _url({k: v for k, v in GOOD.items() if k != "id"})),
     "missing an id"),
    (ExportedBackup(BACKUP_SERVICE, _url({k: v for k, v in GOOD.items() if k != "size"})),
     "missing size attribute"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "size": 0})), "whole number of GiB"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "volume_id": "../x"})), "is not a 'uuid'"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "host": "node-9@file"})),
     "not a storage node's backend in this cluster"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "host": "node-1@lvm"})),
     "backend node-1@lvm is not"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "host": 5})), "host@backend"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "metadata": {"k": 5}})), "metadata"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "created_at": "yesterday"})),
     "created_at is not a time"),
    (ExportedBackup(BACKUP_SERVICE, _url({**GOOD, "volume_meta": []})),
     "volume_meta is not a JSON object"),
])
async def test_a_record_that_is_not_right_is_refused_saying_why(
    gw: FakeGateway, record: ExportedBackup, words: str,
) -> None:
    with pytest.raises(InvalidInput, match=words):
        await backups(gw).on_import_record(request("backup.import_record", record, ADMIN))
    assert gw.owed() == [] and gw.calls == []


async def test_only_an_available_backup_s_record_is_exported(gw: FakeGateway) -> None:
    g = backups(gw)
    await add_volume(gw)
    backup = await g.on_create(request("backup.create", BackupCreate("vol-1")))
    with pytest.raises(InvalidState, match="must be available and not creating"):
        g.on_export_record(request("backup.export_record", BackupRef(backup.id), ADMIN))
    with pytest.raises(Forbidden):
        await g.on_import_record(request("backup.import_record",
                                         ExportedBackup(BACKUP_SERVICE, _url(GOOD))))

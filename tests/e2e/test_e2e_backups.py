"""Volume backups end to end: real actor processes, file backends, the backup repository
on disk (the cluster's ``backups`` directory, which both nodes share as ``cinderblock up``'s
do), through the client library.

A backup copies its volume's bytes (sparse: holes stay holes); a restore replaces a
volume's bytes with them, or makes a new volume holding them; quota counts backups and
their GiB on their own; what is refused says why and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.protocol.client.backups import BackupFailed
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import (
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    OverQuota,
)
from tests.conftest import GIB, E2ECluster, eventually
from tests.e2e.test_e2e_attach import _restart as restart
from tests.e2e.test_e2e_attach import attach
from tests.lifecycle_helpers import file_of, read, same_bytes, usage, write_pattern

PATTERN = [(0, b"first block " * 100), (GIB // 2 - 5, b"across the middle"),
           (GIB - 7, b"the end")]


def repository(cluster: E2ECluster) -> Path:
    return Path(cluster.cfg.data_dir) / "backups"


async def backups_usage(admin: Client, project: str) -> tuple[int, int]:
    q = await admin.show_quota(project)
    return q.in_use.get("backups", 0), q.in_use.get("backup_gigabytes", 0)


async def test_a_backup_holds_the_volume_s_bytes_and_a_restore_gives_them_back(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
) -> None:
    vol = await client.create_volume(1, name="source", wait=True)
    write_pattern(file_of(cluster, vol), PATTERN)

    backup = await client.create_backup(vol.id, name="nightly", wait=True,
                                        metadata={"tier": "gold"})
    assert (backup.status, backup.size, backup.volume_id) == ("available", 1, vol.id)
    assert backup.object_count == 4  # the first, two across the middle, the last (8 MiB
    # chunks): the rest is holes
    assert (await client.show_volume(vol.id)).status == "available"
    stored = repository(cluster) / backup.id
    manifest = json.loads((stored / "manifest.json").read_text())
    assert len(manifest["chunks"]) == 4 and manifest["volume_id"] == vol.id
    assert [b.id for b in await client.list_backups(volume_id=vol.id)] == [backup.id]
    assert await backups_usage(admin, project) == (1, 1)

    # the volume changes; a restore gives it its backed-up bytes again, whole
    write_pattern(file_of(cluster, vol), [(0, b"overwritten!"), (4096, b"new data")])
    info = await client.restore_backup(backup.id, volume_id=vol.id, wait=True)
    assert info.volume_id == vol.id
    restored = await client.show_volume(vol.id)
    assert restored.status == "available"
    assert read(file_of(cluster, vol), 0, 12) == b"first block "
    assert read(file_of(cluster, vol), 4096, 8) == bytes(8)  # "new data" gone
    for offset, data in PATTERN:
        assert read(file_of(cluster, vol), offset, len(data)) == data

    # into a new volume (openstack volume backup restore BACKUP): its size, its bytes
    info = await client.restore_backup(backup.id, wait=True)
    assert info.volume_id != vol.id and info.volume_name == f"restore_backup_{backup.id}"
    new = await client.wait_for_status(info.volume_id, "available", timeout=30)
    assert new.size == 1 and same_bytes(file_of(cluster, new), file_of(cluster, vol))
    assert (await client.show_backup(backup.id)).status == "available"

    # a volume created from the backup (3.47), larger than it
    grown = await client.create_volume(2, backup_id=backup.id, wait=True)
    assert grown.size == 2
    assert same_bytes(file_of(cluster, grown), file_of(cluster, vol), length=GIB)
    assert read(file_of(cluster, grown), GIB, 4096) == bytes(4096)

    await client.delete_backup(backup.id, wait=True)
    assert not stored.exists()
    assert await backups_usage(admin, project) == (0, 0)
    with pytest.raises(NotFound, match=f"Backup {backup.id} could not be found"):
        await client.show_backup(backup.id)


async def test_an_incremental_backup_stores_what_changed_and_restores_the_volume_whole(
    cluster: E2ECluster, client: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    write_pattern(file_of(cluster, vol), PATTERN)
    full = await client.create_backup(vol.id, name="full", wait=True)
    write_pattern(file_of(cluster, vol), [(0, b"changed first block")])

    delta = await client.create_backup(vol.id, name="delta", incremental=True, wait=True)
    assert (delta.is_incremental, delta.object_count) == (True, 4)
    first, parent = repository(cluster) / delta.id, repository(cluster) / full.id
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["parent_id"] == full.id
    linked = [c["name"] for c in manifest["chunks"]
              if (first / c["name"]).stat().st_ino == (parent / c["name"]).stat().st_ino]
    assert len(linked) == 3  # all but the changed first chunk share the parent's files
    assert (await client.show_backup(full.id)).has_dependent_backups

    write_pattern(file_of(cluster, vol), [(0, b"overwritten again!!"), (4096, b"junk")])
    await client.restore_backup(delta.id, volume_id=vol.id, wait=True)
    assert read(file_of(cluster, vol), 0, 19) == b"changed first block"
    assert read(file_of(cluster, vol), 4096, 4) == bytes(4)
    for offset, data in PATTERN[1:]:
        assert read(file_of(cluster, vol), offset, len(data)) == data

    with pytest.raises(InvalidState, match="Incremental backups exist for this backup"):
        await client.delete_backup(full.id)
    await client.delete_backup(delta.id, wait=True)
    await client.delete_backup(full.id, wait=True)
    assert not parent.exists() and not first.exists()


async def test_a_record_exported_here_is_imported_and_restored_by_a_cluster_sharing_the_repository(
    cluster: E2ECluster, client: Client, admin: Client,
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    vol = await client.create_volume(1, name="db", metadata={"tier": "gold"}, wait=True)
    write_pattern(file_of(cluster, vol), PATTERN)
    backup = await client.create_backup(vol.id, name="nightly", wait=True)
    with pytest.raises(Forbidden):
        await client.export_backup_record(backup.id)
    record = await admin.export_backup_record(backup.id)

    shared = {"backup_path": str(repository(cluster))}  # a mount both clusters' nodes read
    other = await asyncio.to_thread(cluster_factory, node_overrides={
        "node-1": shared, "node-2": shared})
    async with other.client("admin", admin=True) as theirs:
        forged = json.loads(base64.b64decode(record.backup_url))
        forged["id"] = str(uuid.uuid4())  # a backup the repository does not hold
        with pytest.raises(InvalidInput, match="is not in the backup repository"):
            await theirs.import_backup_record(record.backup_service, base64.b64encode(
                json.dumps(forged).encode()).decode())
        assert await theirs.list_backups(all_projects=True) == []
        assert (await theirs.show_quota("admin")).reserved.get("backups", 0) == 0

        imported = await theirs.import_backup_record(record.backup_service, record.backup_url)
        assert (imported.id, imported.status, imported.name, imported.object_count) == (
            backup.id, "available", "nightly", 4)
        assert (await theirs.show_quota("admin")).in_use["backups"] == 1
        info = await theirs.restore_backup(backup.id, wait=True)
        new = await theirs.wait_for_status(info.volume_id, "available", timeout=30)
        assert (new.name, new.metadata) == ("db", {"tier": "gold"})
        assert same_bytes(file_of(other, new), file_of(cluster, vol))
    assert (await client.show_backup(backup.id)).status == "available"  # still this one's


async def test_a_restore_gives_back_the_volume_s_metadata_and_names_a_new_volume_as_it(
    cluster: E2ECluster, client: Client, project: str,
) -> None:
    vol = await client.create_volume(1, name="db", description="the database",
                                     metadata={"tier": "gold"}, wait=True)
    await client.modify_volume(vol.id, image_metadata={"image_id": "img-1",
                                                       "os_distro": "debian"})
    backup = await client.create_backup(vol.id, wait=True)
    await client.modify_volume(vol.id, name="db-old", metadata={"tier": "lead"},
                               replace_metadata=True, bootable=False,
                               delete_image_metadata=["image_id", "os_distro"])

    await client.restore_backup(backup.id, volume_id=vol.id, wait=True)
    restored = await client.show_volume(vol.id)
    assert (restored.name, restored.metadata) == ("db-old", {"tier": "gold"})  # its own name
    assert restored.image_metadata == {"image_id": "img-1", "os_distro": "debian"}
    assert restored.bootable

    info = await client.restore_backup(backup.id, wait=True)
    new = await client.wait_for_status(info.volume_id, "available", timeout=30)
    assert (new.name, new.description, new.metadata) == ("db", "the database",
                                                         {"tier": "gold"})
    assert new.bootable and new.image_metadata["image_id"] == "img-1"

    await asyncio.to_thread(restart, cluster, "gateway")  # the restores' gifts are in gateway.db
    async with cluster.client(project) as again:
        assert (await again.show_volume(new.id)).name == "db"
        assert (await again.show_volume(vol.id)).metadata == {"tier": "gold"}


@pytest.fixture(scope="module")
def slow_restores(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, node_overrides={"node-1": {
        "faults": ("delay:restore_volume",)}})  # each restore takes 2 s more


async def test_a_restore_into_a_new_volume_sent_again_under_its_request_id_makes_one_volume(
    slow_restores: E2ECluster,
) -> None:
    """A client that lost the answer sends the restore again under the same request id:
    while the backup is still restoring into the new volume (which refused the retry
    before, "Backup status must be available") and after, it is answered with that
    volume; the same id for another restore is refused; nothing more is made."""
    async with slow_restores.client("restorer") as client:
        await _restored_once(client)


async def _restored_once(client: Client) -> None:
    vol = await client.create_volume(1, wait=True)
    backup = await client.create_backup(vol.id, wait=True)
    rid = f"restore-{uuid.uuid4()}"
    first = await client.restore_backup(backup.id, name="again", request_id=rid)
    assert (await client.show_backup(backup.id)).status == "restoring"
    retried = await client.restore_backup(backup.id, name="again", request_id=rid)
    assert (retried.volume_id, retried.volume_name) == (first.volume_id, "again")
    await client.wait_for_backup(backup.id, timeout=30)
    made = await client.wait_for_status(first.volume_id, "available", timeout=30)
    later = await client.restore_backup(backup.id, name="again", request_id=rid)
    assert later.volume_id == made.id
    with pytest.raises(InvalidInput, match="already used for a different request"):
        await client.restore_backup(backup.id, name="another", request_id=rid)
    assert [v.id for v in await client.list_volumes(name="again")] == [made.id]


async def test_an_in_use_volume_is_backed_up_with_force_and_stays_in_use(
    cluster: E2ECluster, client: Client,
) -> None:
    """Its node backs up a copy made while the guest's writes wait (no reflinks here)."""
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    write_pattern(file_of(cluster, vol), [(0, b"written by a guest")])
    with pytest.raises(InvalidState, match="force flag"):
        await client.create_backup(vol.id)
    backup = await client.create_backup(vol.id, force=True, wait=True)
    assert backup.status == "available"
    assert (await client.show_volume(vol.id)).status == "in-use"
    assert not [p for p in file_of(cluster, vol).parent.iterdir() if ".tmp-" in p.name]
    info = await client.restore_backup(backup.id, wait=True)
    new = await client.wait_for_status(info.volume_id, "available", timeout=30)
    assert read(file_of(cluster, new), 0, 18) == b"written by a guest"
    await client.delete_attachment(att.id)
    await client.delete_backup(backup.id, wait=True)


async def test_a_snapshot_s_backup_holds_the_snapshot_s_bytes(
    cluster: E2ECluster, client: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    write_pattern(file_of(cluster, vol), [(0, b"before the snapshot")])
    snap = await client.create_snapshot(vol.id, wait=True)
    write_pattern(file_of(cluster, vol), [(0, b"after the snapshot!")])
    backup = await client.create_backup(vol.id, snapshot_id=snap.id, wait=True)
    assert backup.snapshot_id == snap.id
    assert (await client.show_snapshot(snap.id)).status == "available"
    info = await client.restore_backup(backup.id, wait=True)
    new = await client.wait_for_status(info.volume_id, "available", timeout=30)
    assert read(file_of(cluster, new), 0, 19) == b"before the snapshot"
    await client.delete_backup(backup.id, wait=True)


async def test_a_restore_from_a_damaged_backup_fails_and_leaves_the_volume_as_it_was(
    cluster: E2ECluster, client: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    write_pattern(file_of(cluster, vol), [(0, b"backed up")])
    backup = await client.create_backup(vol.id, wait=True)
    target = await client.create_volume(1, wait=True)
    write_pattern(file_of(cluster, target), [(0, b"the target's own")])
    (chunk,) = (repository(cluster) / backup.id).glob("chunk-*")
    damaged = bytearray(chunk.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    chunk.write_bytes(bytes(damaged))
    with pytest.raises(BackupFailed, match=r"damaged|sha256|decompress"):
        await client.restore_backup(backup.id, volume_id=target.id, wait=True)
    assert (await client.show_volume(target.id)).status == "available"
    assert read(file_of(cluster, target), 0, 16) == b"the target's own"
    after = await client.show_backup(backup.id)
    assert after.status == "available" and f"volume {target.id} failed" in (
        after.fail_reason or "")
    await client.delete_backup(backup.id, wait=True)


async def test_what_is_refused_says_why_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
) -> None:
    vol = await client.create_volume(2, wait=True)
    small = await client.create_volume(1, wait=True)
    with pytest.raises(InvalidState, match="No backups available to do an incremental"):
        await client.create_backup(vol.id, incremental=True)
    with pytest.raises(NotFound):
        await client.create_backup(str(uuid.uuid4()))
    other = await admin.create_volume(1, wait=True)
    with pytest.raises(NotFound):  # another project's volume is not found
        await client.create_backup(other.id)
    assert await client.list_backups() == []

    backup = await client.create_backup(vol.id, wait=True)
    with pytest.raises(InvalidInput, match="too small to restore backup of size 2"):
        await client.restore_backup(backup.id, volume_id=small.id)
    with pytest.raises(InvalidInput, match="too small to restore backup of size 2"):
        await client.create_volume(1, backup_id=backup.id)
    assert (await client.show_volume(small.id)).status == "available"
    assert (await client.show_backup(backup.id)).status == "available"
    with pytest.raises(InvalidInput, match="status may be reset to available or error"):
        await admin.reset_backup_state(backup.id, "creating")

    # a backup another project names is not found; an admin sees it
    async with cluster.client(f"{project}-other") as stranger:
        with pytest.raises(NotFound):
            await stranger.show_backup(backup.id)
        with pytest.raises(NotFound):
            await stranger.delete_backup(backup.id)
    assert (await admin.show_backup(backup.id)).project_id == project

    # quota: backups and their GiB on their own
    await admin.set_quota(project, backups=1)
    with pytest.raises(OverQuota, match="backups"):
        await client.create_backup(small.id)
    assert (await client.show_volume(small.id)).status == "available"
    await admin.set_quota(project, backups=10)
    await client.delete_backup(backup.id, wait=True)
    before = await usage(admin, project)
    assert before["gigabytes"] == (3, 0)  # backups never count in gigabytes


@pytest.fixture(scope="module")
def faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, node_overrides={"node-1": {"faults": ("backup_source",)}})


async def test_a_failed_backup_is_error_counts_until_deleted_and_the_volume_is_free(
    faulty: E2ECluster,
) -> None:
    async with faulty.client("failing") as client, \
            faulty.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        with pytest.raises(BackupFailed, match="injected fault"):
            await client.create_backup(vol.id, wait=True)
        (failed,) = await client.list_backups()
        assert failed.status == "error" and "injected fault" in (failed.fail_reason or "")
        assert (await client.show_volume(vol.id)).status == "available"
        assert await backups_usage(admin, "failing") == (1, 1)
        with pytest.raises(InvalidState, match="Backup status must be available"):
            await client.restore_backup(failed.id, volume_id=vol.id)
        await client.delete_backup(failed.id, wait=True)
        await eventually(lambda: _no_backups_counted(admin, "failing"), timeout=10)


async def _no_backups_counted(admin: Client, project: str) -> bool:
    return await backups_usage(admin, project) == (0, 0)

"""Volume and snapshot manage and unmanage (Cinder's, an admin's), end to end on file
nodes: a file put in a node's directory becomes a volume (or a snapshot of a volume
there) with its bytes, charged to quota; unmanaged, it leaves cinderblock and stays on
the node, renamed, manageable again; what is not safe to manage, or not allowed, is
refused and nothing moves."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.manage import ManageableVolume
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, InvalidState, NotFound
from tests.conftest import E2ECluster, EventTap, eventually
from tests.e2e.test_e2e_reconcile import FAST, kill_and_restart_nodes, left_alone, stalling
from tests.lifecycle_helpers import gone, snapshot_gone
from tests.unit.test_backend_file import read_at

GIB = 1 << 30


def put_file(cluster: E2ECluster, name: str, data: bytes, size: int | None = None,
             host: str = "node-1") -> Path:
    """A file in a node's directory, as an operator copies an image there."""
    path = cluster.node_dir(host) / name
    with open(path, "wb") as f:
        f.write(data)
        if size is not None:
            f.truncate(size)
    return path


def listed(volumes: list[ManageableVolume], name: str) -> ManageableVolume:
    (found,) = [m for m in volumes if m.reference == name]
    return found


async def test_a_file_is_managed_with_its_bytes_and_unmanaged_back_to_a_file(
    cluster: E2ECluster, admin: Client,
) -> None:
    data = b"an operator's disk image"
    source = put_file(cluster, "imported-disk.raw", data, size=GIB + 4096)  # 2 GiB rounded up
    before = (await admin.show_quota()).in_use
    found = listed(await admin.list_manageable("node-1@file#file"), "imported-disk.raw")
    assert (found.size, found.safe_to_manage, found.reason_not_safe) == (2, True, None)

    vol = await admin.manage_volume("node-1@file", "imported-disk.raw", name="imported",
                                    metadata={"origin": "copied"}, bootable=True, wait=True)
    assert (vol.status, vol.size, vol.name, vol.host) == ("available", 2, "imported",
                                                          "node-1@file")
    assert vol.bootable and vol.metadata == {"origin": "copied"}
    path = cluster.volume_file("node-1", vol.id)
    assert not source.exists() and read_at(path, 0, len(data)) == data
    assert path.stat().st_size == 2 * GIB  # grown to its whole GiB, sparse
    after = (await admin.show_quota()).in_use
    assert (after["volumes"], after["gigabytes"]) == (before["volumes"] + 1,
                                                      before["gigabytes"] + 2)
    managed = listed(await admin.list_manageable("node-1"), f"volume-{vol.id}")
    assert (managed.safe_to_manage, managed.cinder_id) == (False, vol.id)

    # A managed volume is a volume: a snapshot of it holds its bytes.
    snap = await admin.create_snapshot(vol.id, wait=True)
    with pytest.raises(InvalidState, match="dependent snapshot"):
        await admin.unmanage_volume(vol.id)
    await admin.delete_snapshot(snap.id, wait=True)

    gone = await admin.unmanage_volume(vol.id, wait=True)
    assert gone.status == "deleted"
    kept = cluster.node_dir("node-1") / f"unmanaged-volume-{vol.id}"
    assert not path.exists() and read_at(kept, 0, len(data)) == data
    with pytest.raises(NotFound):
        await admin.show_volume(vol.id)
    assert (await admin.show_quota()).in_use == before
    again = listed(await admin.list_manageable("node-1"), kept.name)
    assert again.safe_to_manage and again.size == 2

    # ... and manageable again, as another volume.
    second = await admin.manage_volume("node-1", kept.name, wait=True)
    assert read_at(cluster.volume_file("node-1", second.id), 0, len(data)) == data
    await admin.delete_volume(second.id, wait=True)
    assert not cluster.volume_file("node-1", second.id).exists()


async def test_a_file_is_managed_as_a_snapshot_and_unmanaged_back_to_a_file(
    cluster: E2ECluster, admin: Client,
) -> None:
    vol = await admin.create_volume(2, name="db", wait=True)
    assert vol.host is not None
    home = vol.host.partition("@")[0]
    data = b"the volume as it was before the upgrade"
    source = put_file(cluster, "before-upgrade.raw", data, size=GIB, host=home)
    before = (await admin.show_quota()).in_use
    names = await admin.list_manageable(home, snapshots=True)
    found = listed(names, "before-upgrade.raw")
    assert (found.size, found.safe_to_manage) == (1, True)
    assert f"volume-{vol.id}" not in {m.reference for m in names}  # a volume's, not listed

    snap = await admin.manage_snapshot(vol.id, "before-upgrade.raw", name="before",
                                       metadata={"why": "upgrade"}, wait=True)
    assert (snap.status, snap.volume_id, snap.size, snap.name) == ("available", vol.id, 2,
                                                                   "before")
    assert snap.metadata == {"why": "upgrade"}
    path = cluster.node_dir(home) / f"snapshot-{snap.id}"
    assert not source.exists() and read_at(path, 0, len(data)) == data
    assert path.stat().st_size == 2 * GIB  # grown to its volume's size, sparse
    after = (await admin.show_quota()).in_use
    assert (after["snapshots"], after["gigabytes"]) == (before["snapshots"] + 1,
                                                        before["gigabytes"] + 2)
    managed = listed(await admin.list_manageable(home, snapshots=True), path.name)
    assert (managed.safe_to_manage, managed.cinder_id) == (False, snap.id)

    # A managed snapshot is a snapshot: a volume made from it, and a revert to it, hold
    # its bytes; its volume cannot be deleted or unmanaged while it has it.
    copy = await admin.create_volume(None, snapshot_id=snap.id, wait=True)
    assert read_at(cluster.volume_file(home, copy.id), 0, len(data)) == data
    await admin.delete_volume(copy.id, wait=True)
    await admin.revert_volume(vol.id, snap.id, wait=True)
    assert read_at(cluster.volume_file(home, vol.id), 0, len(data)) == data
    with pytest.raises(InvalidState, match="dependent snapshot"):
        await admin.unmanage_volume(vol.id)

    gone_snap = await admin.unmanage_snapshot(snap.id, wait=True)
    assert gone_snap.status == "deleted"
    kept = cluster.node_dir(home) / f"unmanaged-snapshot-{snap.id}"
    assert not path.exists() and read_at(kept, 0, len(data)) == data
    with pytest.raises(NotFound):
        await admin.show_snapshot(snap.id)
    assert (await admin.show_quota()).in_use == before
    assert listed(await admin.list_manageable(home, snapshots=True), kept.name).safe_to_manage
    await admin.delete_volume(vol.id, wait=True)
    assert kept.exists()  # no longer cinderblock's: a delete of its volume leaves it


async def test_a_snapshot_manage_that_cannot_be_is_refused_and_nothing_moves(
    cluster: E2ECluster, admin: Client, client: Client,
) -> None:
    vol = await admin.create_volume(1, wait=True)
    assert vol.host is not None
    home = vol.host.partition("@")[0]
    other = "node-2" if home == "node-1" else "node-1"
    put_file(cluster, "big.raw", b"big", size=2 * GIB, host=home)
    put_file(cluster, "elsewhere.raw", b"elsewhere", host=other)
    theirs = await client.create_volume(1, wait=True)
    before_files = cluster.all_files()
    before_quota = (await admin.show_quota()).in_use

    with pytest.raises(Forbidden, match=r"only an admin may send snapshot\.manage "):
        await client.manage_snapshot(theirs.id, "big.raw")
    with pytest.raises(Forbidden, match=r"only an admin may send snapshot\.manageable "):
        await client.list_manageable(home, snapshots=True)
    with pytest.raises(NotFound, match="volume no-such-volume could not be found"):
        await admin.manage_snapshot("no-such-volume", "big.raw")
    with pytest.raises(InvalidInput, match=r"more than volume .* a snapshot of it cannot be "
                       r"larger"):
        await admin.manage_snapshot(vol.id, "big.raw")
    with pytest.raises(InvalidInput, match=r"holds nothing named 'elsewhere\.raw'"):
        await admin.manage_snapshot(vol.id, "elsewhere.raw")  # not on the volume's node
    with pytest.raises(InvalidInput, match="cannot be managed: a volume's data"):
        await admin.manage_snapshot(vol.id, f"volume-{vol.id}")
    for name in ("../gateway.db", "..", "a/b", ".tmp-x"):
        with pytest.raises(InvalidInput):
            await admin.manage_snapshot(vol.id, name)
    snap = await admin.create_snapshot(vol.id, wait=True)
    with pytest.raises(Forbidden, match=r"only an admin may send snapshot\.unmanage "):
        await client.unmanage_snapshot(snap.id)
    await admin.delete_snapshot(snap.id, wait=True)

    assert cluster.all_files() == before_files  # every refusal left the files as they were
    assert (await admin.show_quota()).in_use == before_quota
    await admin.delete_volume(vol.id, wait=True)
    await client.delete_volume(theirs.id, wait=True)


async def test_what_is_not_safe_or_not_allowed_is_refused_and_nothing_moves(
    cluster: E2ECluster, admin: Client, client: Client,
) -> None:
    put_file(cluster, "image.raw", b"keep me")
    os.symlink("/etc/hostname", cluster.node_dir("node-1") / "a-link")
    (cluster.node_dir("node-1") / "a-directory").mkdir()
    vol = await admin.create_volume(1, wait=True)
    assert vol.host is not None
    home = vol.host.partition("@")[0]
    before_files = cluster.all_files()
    before_quota = (await admin.show_quota()).in_use
    names = await admin.list_manageable("node-1")
    assert listed(names, "a-link").reason_not_safe == "a symbolic link, not the data itself"
    assert listed(names, "a-directory").reason_not_safe == "not a regular file"

    with pytest.raises(Forbidden, match=r"only an admin may send volume\.manage "):
        await client.manage_volume("node-1", "image.raw")
    with pytest.raises(Forbidden, match=r"only an admin may send volume\.manageable "):
        await client.list_manageable("node-1")
    with pytest.raises(Forbidden, match=r"only an admin may send volume\.unmanage "):
        await client.unmanage_volume(vol.id)
    with pytest.raises(NotFound, match="host 'node-9@file' is no storage node here"):
        await admin.manage_volume("node-9@file", "image.raw")
    with pytest.raises(InvalidInput, match="holds nothing named 'no-such-file'"):
        await admin.manage_volume("node-1", "no-such-file")
    with pytest.raises(InvalidInput, match="cannot be managed: a symbolic link"):
        await admin.manage_volume("node-1", "a-link")
    with pytest.raises(InvalidInput, match="cannot be managed: not a regular file"):
        await admin.manage_volume("node-1", "a-directory")
    with pytest.raises(InvalidInput, match="cannot be managed: already managed"):
        await admin.manage_volume(home, f"volume-{vol.id}")
    for name in ("../gateway.db", "..", "a/b", ".tmp-x"):
        with pytest.raises(InvalidInput):
            await admin.manage_volume("node-1", name)
    with pytest.raises(InvalidInput, match="Availability zone 'elsewhere' is invalid"):
        await admin.manage_volume("node-1", "image.raw", availability_zone="elsewhere")
    with pytest.raises(NotFound, match="Volume type with name no-such-type"):
        await admin.manage_volume("node-1", "image.raw", volume_type="no-such-type")
    attachment = await admin.create_attachment(vol.id, "vm-1")
    with pytest.raises(InvalidState, match="cannot be unmanaged while it is reserved"):
        await admin.unmanage_volume(vol.id)
    await admin.delete_attachment(attachment.id)

    assert cluster.all_files() == before_files  # every refusal left the files as they were
    assert (await admin.show_quota()).in_use == before_quota
    assert (await admin.show_volume(vol.id)).status == "available"
    await admin.delete_volume(vol.id, wait=True)


async def test_a_type_whose_specs_the_backend_lacks_is_refused(
    cluster: E2ECluster, admin: Client,
) -> None:
    put_file(cluster, "typed.raw", b"typed")
    await admin.create_type("only-null", extra_specs={"volume_backend_name": "null"})
    with pytest.raises(InvalidInput, match="asks for what node-1@file does not have"):
        await admin.manage_volume("node-1", "typed.raw", volume_type="only-null")
    await admin.create_type("file-only", extra_specs={"volume_backend_name": "file"})
    vol = await admin.manage_volume("node-1", "typed.raw", volume_type="file-only", wait=True)
    assert vol.volume_type == "file-only"
    await admin.unmanage_volume(vol.id, wait=True)


@pytest.fixture
def failing_manages(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides={
        "node-1": {"faults": ("manage_existing", "manage_existing_snapshot")},
        "node-2": {"faults": ("unmanage_volume", "unmanage_snapshot")}}, **FAST)


async def test_a_manage_or_unmanage_the_backend_fails_leaves_the_data_where_it_was(
    failing_manages: E2ECluster,
) -> None:
    c = failing_manages
    async with c.client("admin", admin=True) as admin, EventTap(c) as tap:
        put_file(c, "refused.raw", b"still here")
        before = (await admin.show_quota()).in_use
        vol = await admin.manage_volume("node-1", "refused.raw")
        failed = await admin.wait_for_status(vol.id, "error")
        assert failed.reason is not None and "injected fault: manage_existing" in failed.reason
        assert read_at(c.node_dir("node-1") / "refused.raw", 0, 10) == b"still here"
        await admin.delete_volume(vol.id, wait=True)  # nothing on the node to delete
        assert read_at(c.node_dir("node-1") / "refused.raw", 0, 10) == b"still here"
        await eventually(lambda: _quota_back(admin, before))

        put_file(c, "kept.raw", b"node two", host="node-2")
        vol = await admin.manage_volume("node-2", "kept.raw", wait=True)
        await admin.unmanage_volume(vol.id)
        failed = await admin.wait_for_status(vol.id, "error")
        assert failed.reason is not None and "injected fault: unmanage_volume" in failed.reason
        path = c.volume_file("node-2", vol.id)
        assert read_at(path, 0, 8) == b"node two"  # still the volume's, still here
        await tap.caught_up()
        events = {e["event"] for e in tap.of_volume(vol.id) if e["kind"] == "notify"}
        assert "volume.unmanage.start" in events and "volume.unmanage.end" not in events

        # A snapshot's: the manage fails on node-1 (the file stays as it was), the
        # unmanage on node-2 (the snapshot stays, in error, and may be deleted).
        for home, fault in (("node-1", "manage_existing_snapshot"),
                            ("node-2", "unmanage_snapshot")):
            one = await volume_on(admin, home)
            put_file(c, "snap.raw", b"snapshot", host=home)
            snap = await admin.manage_snapshot(one.id, "snap.raw")
            if home == "node-1":
                end = await admin.wait_for_snapshot_status(snap.id, "error")
                assert read_at(c.node_dir(home) / "snap.raw", 0, 8) == b"snapshot"
            else:
                await admin.wait_for_snapshot_status(snap.id, "available")
                await admin.unmanage_snapshot(snap.id)
                end = await admin.wait_for_snapshot_status(snap.id, "error")
                assert read_at(c.node_dir(home) / f"snapshot-{snap.id}", 0, 8) == b"snapshot"
            assert end.reason is not None and f"injected fault: {fault}" in end.reason
            await admin.delete_snapshot(snap.id, wait=True)
            await admin.delete_volume(one.id, wait=True)
        await admin.delete_volume(vol.id, wait=True)  # an error volume may be deleted
        assert not path.exists()


async def volume_on(admin: Client, host: str) -> Volume:
    """A new 1 GiB volume on ``host``, one of the cluster's two nodes: the scheduler's
    first choice if it chose ``host``, else one more asked to go where that one is not
    (Cinder's ``different_host`` hint), and the first deleted. (Creating and deleting
    until the scheduler chose ``host`` relied on its spreading them, which nothing
    promises: under CI's command once all eight went to the other node.)"""
    first = await admin.create_volume(1, wait=True)
    if (first.host or "").partition("@")[0] == host:
        return first
    vol = await admin.create_volume(1, different_host=[first.id], wait=True)
    await admin.delete_volume(first.id, wait=True)
    assert (vol.host or "").partition("@")[0] == host, (vol.host, host)
    return vol


async def _quota_back(admin: Client, before: dict[str, int]) -> bool:
    return (await admin.show_quota()).in_use == before


@pytest.fixture
def stalls_unmanages(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides=stalling("unmanage_volume", "unmanage_snapshot"),
                           **FAST)


async def test_an_unmanage_lost_with_its_node_is_sent_again_and_never_deletes(
    stalls_unmanages: E2ECluster,
) -> None:
    c = stalls_unmanages
    async with c.client("admin", admin=True) as admin, EventTap(c) as tap:
        put_file(c, "precious.raw", b"precious")
        put_file(c, "base.raw", b"base")
        put_file(c, "snapped.raw", b"snapped")
        vol = await admin.manage_volume("node-1", "precious.raw", wait=True)
        base = await admin.manage_volume("node-1", "base.raw", wait=True)
        snap = await admin.manage_snapshot(base.id, "snapped.raw", wait=True)
        await admin.unmanage_volume(vol.id)
        await admin.unmanage_snapshot(snap.id)
        # past reconcile_after_s, but node-1 is working on them
        await left_alone(tap, vol.id, snap.id)
        assert (await admin.show_volume(vol.id)).status == "unmanaging"
        assert (await admin.show_snapshot(snap.id)).status == "unmanaging"
        kill_and_restart_nodes(c)
        await eventually(lambda: gone(admin, vol.id), timeout=20)
        await eventually(lambda: snapshot_gone(admin, snap.id), timeout=20)
        kept = c.node_dir("node-1") / f"unmanaged-volume-{vol.id}"
        assert read_at(kept, 0, 8) == b"precious"  # sent again as an unmanage: kept
        assert not c.volume_file("node-1", vol.id).exists()
        kept = c.node_dir("node-1") / f"unmanaged-snapshot-{snap.id}"
        assert read_at(kept, 0, 7) == b"snapped"  # the snapshot's too
        assert not (c.node_dir("node-1") / f"snapshot-{snap.id}").exists()
        await admin.delete_volume(base.id, wait=True)


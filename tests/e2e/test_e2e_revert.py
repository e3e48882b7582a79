"""Reverting a volume to its latest snapshot (Cinder's 3.40), end to end on file nodes:
the volume's file holds the snapshot's bytes again, what Cinder refuses is refused and
changes nothing, and a revert whose node is killed mid-way is sent again by the
reconciler (or, reset by an admin, gives its snapshot back)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from tests.conftest import E2ECluster, EventTap, eventually
from tests.e2e.test_e2e_reconcile import FAST, kill_and_restart_nodes, left_alone, stalling
from tests.unit.test_backend_file import read_at, write_pattern


async def available_volume(c: E2ECluster, client: Client, data: bytes) -> tuple[Volume, Path]:
    vol = await client.create_volume(1, wait=True)
    assert vol.host is not None
    path = c.volume_file(vol.host, vol.id)
    write_pattern(path, [(0, data)])
    return vol, path


async def test_a_volume_reverts_to_its_latest_snapshot_and_holds_its_bytes_again(
    cluster: E2ECluster, client: Client,
) -> None:
    vol, path = await available_volume(cluster, client, b"as snapshotted")
    older = await client.create_snapshot(vol.id, name="older", wait=True)
    write_pattern(path, [(0, b"between the two")])
    snap = await client.create_snapshot(vol.id, name="newest", wait=True)
    write_pattern(path, [(0, b"written after!!")])
    write_pattern(path, [(512 << 20, b"far in")])
    quota_before = (await client.show_quota()).in_use

    reverted = await client.revert_volume(vol.id, snap.id, wait=True)
    assert (reverted.status, reverted.size) == ("available", 1)
    assert read_at(path, 0, 15) == b"between the two"
    assert read_at(path, 512 << 20, 6) == bytes(6)  # written after the snapshot: gone
    assert (await client.show_snapshot(snap.id)).status == "available"
    assert (await client.show_quota()).in_use == quota_before  # a revert costs no quota

    with pytest.raises(InvalidInput, match="not the latest one"):
        await client.revert_volume(vol.id, older.id)
    await client.extend_volume(vol.id, 2, wait=True)
    with pytest.raises(InvalidInput, match="size must be equal"):
        await client.revert_volume(vol.id, snap.id)
    other, _ = await available_volume(cluster, client, b"other")
    with pytest.raises(InvalidInput, match="not the latest one"):
        await client.revert_volume(other.id, snap.id)  # a snapshot of another volume
    mine = await client.create_snapshot(other.id, wait=True)
    attachment = await client.create_attachment(other.id, "vm-1")
    with pytest.raises(InvalidState, match="Volume's status must be 'available'"):
        await client.revert_volume(other.id, mine.id)  # reserved for an attachment
    await client.delete_attachment(attachment.id)
    async with cluster.client("someone-else") as stranger:
        with pytest.raises(NotFound):
            await stranger.revert_volume(other.id, mine.id)
    assert (await client.show_volume(other.id)).status == "available"
    assert read_at(path, 0, 15) == b"between the two"  # the refusals changed nothing


@pytest.fixture
def stalls_reverts(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides=stalling("revert_to_snapshot"), **FAST)


async def test_a_revert_lost_with_its_node_is_sent_again_and_an_admin_s_reset_frees_its_snapshot(
    stalls_reverts: E2ECluster,
) -> None:
    c = stalls_reverts
    async with c.client("lost-revert") as client, c.client("admin", admin=True) as admin, \
            EventTap(c) as tap:
        vol, path = await available_volume(c, client, b"snapshotted")
        snap = await client.create_snapshot(vol.id, wait=True)
        write_pattern(path, [(0, b"overwritten")])
        reset, _ = await available_volume(c, client, b"to be reset")
        reset_snap = await client.create_snapshot(reset.id, wait=True)
        for volume_id, snapshot_id in ((vol.id, snap.id), (reset.id, reset_snap.id)):
            assert (await client.revert_volume(volume_id, snapshot_id)).status == "reverting"
        await left_alone(tap, vol.id, reset.id)  # stuck, but a node works on them
        assert (await client.show_snapshot(snap.id)).status == "restoring"
        with pytest.raises(InvalidState):
            await client.delete_snapshot(snap.id)
        with pytest.raises(InvalidState):
            await client.create_attachment(vol.id, "vm-1")
        with pytest.raises(InvalidState, match="reset the volume"):
            await admin.reset_snapshot_state(snap.id, "error")  # its volume's revert's

        await admin.reset_volume_state(reset.id, "error")
        assert (await client.show_snapshot(reset_snap.id)).status == "available"
        kill_and_restart_nodes(c)
        done = await eventually(lambda: _status(client, vol.id, "available"), timeout=30)
        assert done.reason is None
        assert read_at(path, 0, 11) == b"snapshotted"
        assert (await client.show_snapshot(snap.id)).status == "available"
        assert (await client.show_volume(reset.id)).status == "error"  # not reverted again


async def _status(client: Client, volume_id: str, status: str) -> Volume | None:
    vol = await client.show_volume(volume_id)
    return vol if vol.status == status else None

"""Delete, snapshots, clones and extend when a node is slow, failing or full.

Each scenario has a dedicated one-node cluster (``cluster_factory``):

- ``single``: a healthy node that the tests freeze (SIGSTOP, always followed by
  SIGCONT) to hold a volume in ``creating``, as a long copy would;
- ``faulty``: a node whose driver fails every delete; the test restarts it
  without the fault, as an operator would after fixing the backend;
- ``small``: a 4 GiB backend that may not over-subscribe, for extends that do
  not fit.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from cinderblock.protocol.client.client import Client, VolumeError
from cinderblock.protocol.client.lifecycle import SnapshotError
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import InvalidState, Unavailable
from tests.conftest import E2ECluster, eventually
from tests.lifecycle_helpers import usage

GIB = 1 << 30


@pytest.fixture(scope="module")
def single(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1)


@pytest.fixture(scope="module")
def faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, node_overrides={
        "node-1": {"faults": ("delete_volume", "delete_snapshot")}})


@pytest.fixture(scope="module")
def small(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, capacity_gb=4.0, node_overrides={
        "node-1": {"max_over_subscription_ratio": 1.0}})


@contextlib.contextmanager
def frozen(cluster: E2ECluster, host: str = "node-1") -> Iterator[None]:
    """Stop a node process of this cluster (it keeps its connections) until the block ends."""
    pid = cluster.cluster.procs[host].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def restart_without_faults(cluster: E2ECluster, host: str = "node-1") -> None:
    c = cluster.cluster
    c.stop_actor(host)
    c.cfg = replace(c.cfg, nodes=tuple(
        replace(n, faults=()) if n.host == host else n for n in c.cfg.nodes))
    c.cfg.save(c.config_path)
    c.spawn("node", host)


async def state(cluster: E2ECluster, client: Client, admin: Client, project: str) -> object:
    """Everything a refused request could have changed."""
    vols = sorted((v.id, v.status, v.size) for v in await client.list_volumes())
    snaps = sorted((s.id, s.status) for s in await client.list_snapshots())
    return vols, snaps, await usage(admin, project), cluster.all_files()


# ---- a volume held in creating --------------------------------------------------------
async def test_a_creating_volume_cannot_be_deleted_snapshotted_or_extended(
    single: E2ECluster, project: str
) -> None:
    async with single.client(project) as client, single.client("admin", admin=True) as admin:
        with frozen(single):
            vol = await client.create_volume(1)
            assert vol.status == "creating"
            before = await state(single, client, admin, project)

            with pytest.raises(InvalidState, match="cannot be deleted while it is creating"):
                await client.delete_volume(vol.id)
            with pytest.raises(InvalidState, match=r"cannot snapshot volume .* creating"):
                await client.create_snapshot(vol.id)
            with pytest.raises(InvalidState, match="cannot be extended while it is creating"):
                await client.extend_volume(vol.id, 2)

            assert await state(single, client, admin, project) == before
        assert (await client.wait_for_status(vol.id, "available")).size == 1
        assert (await client.delete_volume(vol.id, wait=True)).status == "deleted"


async def test_a_source_cannot_be_deleted_while_a_volume_is_copied_from_it(
    single: E2ECluster, project: str
) -> None:
    async with single.client(project) as client:
        source = await client.create_volume(1, wait=True)
        holder = await client.create_volume(1, wait=True)
        snap = await client.create_snapshot(holder.id, wait=True)
        with frozen(single):
            clone = await client.create_volume(None, source_volid=source.id)
            restored = await client.create_volume(None, snapshot_id=snap.id)

            with pytest.raises(InvalidState, match="being created from it") as refused:
                await client.delete_volume(source.id)
            assert refused.value.details["copying"] == [clone.id]
            with pytest.raises(InvalidState, match="being created from it"):
                await client.delete_snapshot(snap.id)

        for vol in (clone, restored):
            assert (await client.wait_for_status(vol.id, "available")).status == "available"
        assert (await client.delete_snapshot(snap.id, wait=True)).status == "deleted"
        assert (await client.delete_volume(source.id, wait=True)).status == "deleted"


# ---- a driver that fails to delete ----------------------------------------------------
async def _delete_when_reachable(client: Client, volume_id: str) -> Volume | None:
    try:
        return await client.delete_volume(volume_id, wait=True)
    except Unavailable:  # the restarted node has not connected yet
        return None


async def _delete_snapshot_when_reachable(client: Client, snapshot_id: str) -> Snapshot | None:
    try:
        return await client.delete_snapshot(snapshot_id, wait=True)
    except Unavailable:
        return None


async def test_a_failed_backend_delete_leaves_error_deleting_and_a_retry_succeeds(
    faulty: E2ECluster, project: str
) -> None:
    async with faulty.client(project) as client, faulty.client("admin", admin=True) as admin:
        vol = await client.create_volume(2, wait=True)
        keeper = await client.create_volume(1, wait=True)
        snap = await client.create_snapshot(keeper.id, wait=True)

        with pytest.raises(VolumeError) as failed:
            await client.delete_volume(vol.id, wait=True)
        assert failed.value.volume.status == "error_deleting"
        assert "injected fault: delete_volume" in (failed.value.volume.reason or "")
        with pytest.raises(SnapshotError, match="error_deleting"):
            await client.delete_snapshot(snap.id, wait=True)
        with pytest.raises(VolumeError):  # retried while still failing: error_deleting again
            await client.delete_volume(vol.id, wait=True)
        assert await usage(admin, project) == {
            "volumes": (2, 0), "gigabytes": (4, 0), "snapshots": (1, 0)}
        assert len(faulty.all_files()) == 3

        restart_without_faults(faulty)

        assert (await eventually(lambda: _delete_when_reachable(client, vol.id))).status \
            == "deleted"
        assert (await client.delete_snapshot(snap.id, wait=True)).status == "deleted"
        assert (await client.delete_volume(keeper.id, wait=True)).status == "deleted"
        assert await usage(admin, project) == {
            "volumes": (0, 0), "gigabytes": (0, 0), "snapshots": (0, 0)}
        assert faulty.all_files() == set()


# ---- a full backend ------------------------------------------------------------------
async def test_an_extend_the_backend_has_no_room_for_is_refused_on_the_node(
    small: E2ECluster, project: str
) -> None:
    async with small.client(project) as client, small.client("admin", admin=True) as admin:
        vol = await client.create_volume(2, wait=True)

        with pytest.raises(VolumeError) as refused:
            await client.extend_volume(vol.id, 10, wait=True)

        after = refused.value.volume
        assert (after.status, after.size) == ("available", 2)
        assert "no room" in (after.reason or "")
        assert await usage(admin, project) == {
            "volumes": (1, 0), "gigabytes": (2, 0), "snapshots": (0, 0)}
        assert small.volume_file("node-1", vol.id).stat().st_size == 2 * GIB

        grown = await client.extend_volume(vol.id, 4, wait=True)  # exactly what is left

        assert (grown.status, grown.size, grown.reason) == ("available", 4, None)
        assert (await usage(admin, project))["gigabytes"] == (4, 0)

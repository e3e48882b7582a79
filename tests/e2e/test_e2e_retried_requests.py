"""A request retried with its request id while its first attempt still runs is answered
with what that attempt ends in: a client is never told of a delete that the first
attempt's failure then undoes (found by the kill suite, bench.chaos; the create case is
tests/unit/test_retried_create.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput, Unavailable
from tests.conftest import (
    E2ECluster,
    eventually,
    make_config,
    peers_let_go,
    running_cluster,
    tcp_connections,
)
from tests.lifecycle_helpers import gone


def test_a_delete_retried_while_its_first_attempt_runs_is_not_acknowledged_when_the_first_fails(
    tmp_path: Path,
) -> None:
    with running_cluster(make_config(tmp_path, nodes=1)) as cluster:
        answers, after = asyncio.run(_delete_twice_with_the_node_gone(cluster))
    assert after.status is VolumeStatus.AVAILABLE  # the delete did not happen ...
    assert all(isinstance(a, Unavailable) for a in answers), answers  # ... and none says so


async def _stop_node(cluster: E2ECluster, host: str = "node-1") -> None:
    """Stop the node, and return once the gateway knows it is gone."""
    connections = tcp_connections(cluster.cluster.procs[host].pid)
    cluster.cluster.stop_actor(host)
    await peers_let_go(connections)


async def _delete_twice_with_the_node_gone(cluster: E2ECluster
                                           ) -> tuple[list[Volume | BaseException], Volume]:
    async with cluster.client("retry") as client:
        vol = await client.create_volume(1, wait=True)
        await _stop_node(cluster)
        # Both attempts in one go: the second arrives while the first, its volume
        # marked deleting, is about to find that the node cannot be reached.
        answers = await asyncio.gather(
            *(client.delete_volume(vol.id, request_id="req-retried-delete")
              for _ in range(2)), return_exceptions=True)
        return answers, await client.show_volume(vol.id)


def restart_gateway(cluster: E2ECluster) -> None:
    cluster.cluster.stop_actor("gateway")
    cluster.cluster.spawn("gateway")


async def answers(client: Client) -> bool:
    try:
        await client.ping(timeout=1.0)
    except CinderblockError:
        return False
    return True


@pytest.mark.parametrize("node_faults", [(), ("stall:delete_volume",)],
                         ids=["deleted", "still-deleting"])
def test_a_delete_retried_with_its_request_id_after_a_gateway_restart_is_reported_done(
    tmp_path: Path, node_faults: tuple[str, ...],
) -> None:
    cfg = make_config(tmp_path, nodes=1, node_overrides={"node-1": {"faults": node_faults}})
    with running_cluster(cfg) as cluster:
        vol_id, first_status = asyncio.run(_delete(cluster, "req-delete-once",
                                                    finishes=not node_faults))
        restart_gateway(cluster)
        again, listed = asyncio.run(_delete_again(cluster, vol_id, "req-delete-once"))
    assert first_status is VolumeStatus.DELETING
    assert again.id == vol_id
    if node_faults:  # the node never finishes: the volume is still being deleted
        assert again.status is VolumeStatus.DELETING and [v.id for v in listed] == [vol_id]
    else:
        assert again.status is VolumeStatus.DELETED and listed == []


async def _delete(cluster: E2ECluster, rid: str, finishes: bool) -> tuple[str, VolumeStatus]:
    async with cluster.client("retry") as client:
        vol = await client.create_volume(1, wait=True)
        deleting = await client.delete_volume(vol.id, request_id=rid)
        if finishes:
            await eventually(lambda: gone(client, vol.id), timeout=10)
        return vol.id, deleting.status




async def _delete_again(cluster: E2ECluster, volume_id: str, rid: str
                        ) -> tuple[Volume, list[Volume]]:
    async with cluster.client("retry") as client:
        await eventually(lambda: answers(client), timeout=20)
        again = await client.delete_volume(volume_id, request_id=rid)
        return again, await client.list_volumes()


def test_an_attachment_create_retried_with_its_request_id_answers_the_first_even_after_a_restart(
    tmp_path: Path,
) -> None:
    """Nothing attaches a volume twice for one request: a retry of ``attachment.create``
    (the first's reply lost, the gateway restarted meanwhile) is answered the attachment
    the first made; the same request id for another request is refused."""
    cfg = make_config(tmp_path, nodes=1)
    with running_cluster(cfg) as cluster:
        vol_id, first = asyncio.run(_attach_once(cluster))
        restart_gateway(cluster)
        asyncio.run(_attach_again(cluster, vol_id, first))


async def _attach_once(cluster: E2ECluster) -> tuple[str, str]:
    async with cluster.client("retry") as client:
        vol = await client.create_volume(1, wait=True)
        att = await client.create_attachment(vol.id, "vm-1", request_id="req-attach-once")
        again = await client.create_attachment(vol.id, "vm-1", request_id="req-attach-once")
        assert again.id == att.id
        return vol.id, att.id


async def _attach_again(cluster: E2ECluster, volume_id: str, first: str) -> None:
    async with cluster.client("retry") as client:
        await eventually(lambda: answers(client), timeout=20)
        again = await client.create_attachment(volume_id, "vm-1", request_id="req-attach-once")
        assert again.id == first and again.status == "reserved"
        with pytest.raises(InvalidInput, match="already used for a different request"):
            await client.create_attachment(volume_id, "vm-2", request_id="req-attach-once")
        assert [a.id for a in await client.list_attachments(volume_id)] == [first]
        await client.delete_attachment(first)
        made = await client.create_attachment(volume_id, "vm-1", request_id="req-attach-once")
        assert made.id != first  # the first is gone: the retry makes one
        await client.delete_attachment(made.id)


def test_a_group_snapshot_its_node_cannot_be_told_of_leaves_nothing_and_gives_quota_back(
    tmp_path: Path,
) -> None:
    """Its node gone, a group snapshot's create fails, both attempts under its request
    id saying why; no group snapshot or snapshot is left ``creating`` for the reconciler,
    and the quota it took is given back."""
    with running_cluster(make_config(tmp_path, nodes=1)) as cluster:
        answers, listed, snapshots, in_use = asyncio.run(_group_snapshot_node_gone(cluster))
    assert all(isinstance(a, CinderblockError) for a in answers), answers
    assert (listed, snapshots, in_use) == ([], [], 0)


async def _group_snapshot_node_gone(cluster: E2ECluster
                                    ) -> tuple[list[object], list[str], list[str], int]:
    async with cluster.client("group-gone") as client, \
            cluster.client("admin", admin=True) as admin:
        await admin.create_group_type("cg")
        group = await client.create_group("cg", ["__DEFAULT__"])
        await client.create_volume(1, group_id=group.id, wait=True)
        await _stop_node(cluster)
        answers = await asyncio.gather(
            *(client.create_group_snapshot(group.id, request_id="req-gs-node-gone")
              for _ in range(2)), return_exceptions=True)
        listed = [s.id for s in await client.list_group_snapshots()]
        snapshots = [s.id for s in await client.list_snapshots()]
        await eventually(lambda: _nothing_reserved(client), timeout=10)
        return list(answers), listed, snapshots, (await client.show_quota()).in_use["snapshots"]


async def _nothing_reserved(client: Client) -> bool:
    return not any((await client.show_quota()).reserved.values())

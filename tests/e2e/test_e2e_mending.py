"""Every transitional status is mended: an extend interrupted with its node (sent
again and finished, its quota reservation committed), a volume left ``deleting``
without a host, and attachments left ``attaching`` or ``detaching`` by a gateway
that stopped mid-flow. The crashed states are made for real (a node killed while
it extends) or written into gateway.db as a crash leaves them, with the cluster
stopped, and the cluster is started over them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.actors.runtime import failpoints
from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.storage_node.lifecycle_flows import EXTEND_BEFORE_REPORT
from tests.conftest import E2ECluster, eventually, make_config, running_cluster
from tests.e2e.test_e2e_reconcile import FAST, kill_and_restart_nodes, stalling
from tests.lifecycle_helpers import gone, usage

GIB = 1024**3
HUGE_GB = 100_000_000  # no backend holds it: the volume ends in error without a host


def fast_config(data_dir: Path) -> ClusterConfig:
    return make_config(data_dir, reconcile_after_s=1.0, reconcile_every_s=0.25)


@pytest.fixture
def stalls_extends(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides=stalling("extend_volume"), **FAST)


async def test_an_extend_lost_with_its_node_is_sent_again_and_finished(
    stalls_extends: E2ECluster,
) -> None:
    """The node is killed while it extends (before it grows the file): started again,
    the reconciler sends the extend again with its reservation, and the volume is
    ``available`` at its new size with the reservation committed."""
    c = stalls_extends
    async with c.client("lost-extend") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        await client.extend_volume(vol.id, 3)
        await asyncio.sleep(2.0)  # past reconcile_after_s, but the node is working on it
        assert (await client.show_volume(vol.id)).status == "extending"
        assert (await usage(admin, "lost-extend"))["gigabytes"] == (1, 2)
        kill_and_restart_nodes(c)
        shown = await client.wait_for_status(vol.id, "available", timeout=20)
        assert (shown.size, shown.reason) == (3, None)
        assert c.volume_file(_node_of(shown), vol.id).stat().st_size == 3 * GIB
        await eventually(lambda: _reserved_none(admin, "lost-extend"), timeout=10)
        assert (await usage(admin, "lost-extend"))["gigabytes"] == (3, 0)
        await client.delete_volume(vol.id, wait=True)
        await eventually(lambda: _gigabytes(admin, "lost-extend", (0, 0)), timeout=10)


@pytest.fixture
def small_node(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """One node with 4 GiB, not oversubscribed."""
    return cluster_factory(nodes=1, capacity_gb=4.0, node_overrides={
        "node-1": {"max_over_subscription_ratio": 1.0}}, **FAST)


async def test_an_extend_whose_node_died_after_growing_the_file_is_finished(
    small_node: E2ECluster, tmp_path: Path,
) -> None:
    """The node is killed after it grew the file (to all the backend has) and before it
    reported: the extend sent again finds the volume grown already and asks no more
    room (the backend has none left), and the volume is ``available`` at its new size,
    the reservation committed."""
    marks = tmp_path / "marks"
    marks.mkdir()
    c = small_node
    async with c.client("grown-extend") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        c.cluster.env.update({failpoints.ENV: EXTEND_BEFORE_REPORT.name,
                              failpoints.ENV_DIR: str(marks)})
        _node_again(c)
        await client.extend_volume(vol.id, 4)
        await eventually((marks / EXTEND_BEFORE_REPORT.name).exists, timeout=20)
        assert c.volume_file("node-1", vol.id).stat().st_size == 4 * GIB
        del c.cluster.env[failpoints.ENV], c.cluster.env[failpoints.ENV_DIR]
        _node_again(c)
        shown = await client.wait_for_status(vol.id, "available", timeout=20)
        assert (shown.size, shown.reason) == (4, None)
        await eventually(lambda: _reserved_none(admin, "grown-extend"), timeout=10)
        assert (await usage(admin, "grown-extend"))["gigabytes"] == (4, 0)
        await client.delete_volume(vol.id, wait=True)


def _node_again(c: E2ECluster) -> None:
    """node-1 started again (with the cluster's env), running or dead at a failpoint."""
    proc = c.cluster.procs.pop("node-1")
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    c.cluster.spawn("node", "node-1")


def _node_of(vol: Volume) -> str:
    assert vol.host is not None
    return vol.host.partition("@")[0]


async def _gigabytes(admin: Client, project: str, expected: tuple[int, int]) -> bool:
    return (await usage(admin, project))["gigabytes"] == expected


async def _reserved_none(admin: Client, project: str) -> bool:
    return all(reserved == 0 for _, reserved in (await usage(admin, project)).values())


def _crash_state(cfg: ClusterConfig, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Write into the stopped cluster's gateway.db what a crash mid-flow leaves there
    (and old enough for the reconciler to look into at once)."""
    conn = sqlite3.connect(Path(cfg.data_dir) / "gateway.db")
    try:
        for sql, params in statements:
            assert conn.execute(sql, params).rowcount == 1, sql
        conn.commit()
    finally:
        conn.close()


def test_a_volume_left_deleting_without_a_host_is_removed_and_its_quota_given_back(
    tmp_path: Path,
) -> None:
    cfg = fast_config(tmp_path / "data")
    with running_cluster(cfg) as c:
        errored = asyncio.run(_create_unplaceable(c))
    _crash_state(cfg, ("UPDATE volumes SET status='deleting', updated_at=0 WHERE id=?",
                       (errored.id,)))
    with running_cluster(cfg) as c:
        asyncio.run(_wait_removed_and_released(c, errored))


async def _create_unplaceable(c: E2ECluster) -> Volume:
    async with c.client("hostless", admin=True) as client:
        await client.set_quota("hostless", gigabytes=-1)
        vol = await client.create_volume(HUGE_GB)
        failed = await eventually(lambda: _volume_in(client, vol.id, "error"), timeout=20)
        assert isinstance(failed, Volume) and failed.host is None
        return failed


async def _volume_in(client: Client, volume_id: str, status: str) -> Volume | None:
    vol = await client.show_volume(volume_id)
    return vol if vol.status == status else None


async def _wait_removed_and_released(c: E2ECluster, vol: Volume) -> None:
    async with c.client("hostless", admin=True) as client:
        await eventually(lambda: gone(client, vol.id), timeout=20)
        # the release was owed with the removal; the quota journal hands it over soon
        await eventually(lambda: _released(client), timeout=10)


async def _released(client: Client) -> bool:
    found = await usage(client, "hostless")
    return found["volumes"] == (0, 0) and found["gigabytes"] == (0, 0)


def test_an_attachment_left_attaching_is_reserved_again_with_its_export_closed(
    tmp_path: Path,
) -> None:
    """An update cut short after its export, before its connection was saved."""
    cfg = fast_config(tmp_path / "data")
    with running_cluster(cfg) as c:
        vol, attachment_id, exports = asyncio.run(_attach(c))
    assert attachment_id in exports.read_text()
    _crash_state(
        cfg,
        ("UPDATE attachments SET status='attaching', connection_info='{}', updated_at=0 "
         "WHERE id=?", (attachment_id,)),
        ("UPDATE volumes SET status='attaching', updated_at=0 WHERE id=?", (vol.id,)),
    )
    with running_cluster(cfg) as c:
        asyncio.run(_wait_mended(c, vol, {attachment_id: "reserved"}, "reserved"))
        assert attachment_id not in exports.read_text()
        asyncio.run(_attach_again(c, attachment_id, vol))


def test_an_attachment_waiting_for_its_host_is_left_attaching_however_long_it_waits(
    tmp_path: Path,
) -> None:
    """Its update ended (the connection saved): the host's ``complete`` may come late, as
    it may to Cinder's, and the reconciler's rounds leave it and its export be."""
    cfg = fast_config(tmp_path / "data")  # a status 1 s old is looked into, every 0.25 s
    with running_cluster(cfg) as c:
        asyncio.run(_waits_for_its_host(c))


async def _waits_for_its_host(c: E2ECluster) -> None:
    async with c.client("attached") as client:
        vol = await client.create_volume(1, wait=True)
        att = await client.create_attachment(vol.id, "instance-1")
        att = await client.update_attachment(att.id, {"host": "compute-1"})
        assert vol.host is not None
        exports = Path(c.cfg.data_dir) / "nodes" / f"{vol.host.partition('@')[0]}.exports.json"
        await asyncio.sleep(2.5)  # ten rounds past reconcile_after_s
        shown = await client.show_attachment(att.id)
        assert (shown.status, shown.connection_info) == ("attaching", att.connection_info)
        assert (await client.show_volume(vol.id)).status == "attaching"
        assert att.id in exports.read_text()
        await client.complete_attachment(att.id)
        assert (await client.show_volume(vol.id)).status == "in-use"
        await client.delete_attachment(att.id)


def test_an_attachment_left_detaching_ends_in_error_detaching_and_a_delete_finishes_it(
    tmp_path: Path,
) -> None:
    cfg = fast_config(tmp_path / "data")
    with running_cluster(cfg) as c:
        vol, attachment_id, exports = asyncio.run(_attach(c))
    _crash_state(
        cfg,
        ("UPDATE attachments SET status='detaching', updated_at=0 WHERE id=?", (attachment_id,)),
        ("UPDATE volumes SET status='detaching', updated_at=0 WHERE id=?", (vol.id,)),
    )
    with running_cluster(cfg) as c:
        asyncio.run(_wait_mended(c, vol, {attachment_id: "error_detaching"}, "in-use"))
        asyncio.run(_detach(c, attachment_id, vol))
    assert attachment_id not in exports.read_text()


async def _attach_again(c: E2ECluster, attachment_id: str, vol: Volume) -> None:
    async with c.client("attached") as client:
        await client.update_attachment(attachment_id, {"host": "compute-1"})
        await client.complete_attachment(attachment_id)
        assert (await client.show_volume(vol.id)).status == "in-use"


async def _detach(c: E2ECluster, attachment_id: str, vol: Volume) -> None:
    async with c.client("attached") as client:
        await client.delete_attachment(attachment_id)
        assert (await client.show_volume(vol.id)).status == "available"


async def _attach(c: E2ECluster) -> tuple[Volume, str, Path]:
    async with c.client("attached") as client:
        vol = await client.create_volume(1, wait=True)
        att = await client.create_attachment(vol.id, "instance-1")
        att = await client.update_attachment(att.id, {"host": "compute-1"})
        await client.complete_attachment(att.id)
        assert (await client.show_volume(vol.id)).status == "in-use"
        assert vol.host is not None
        host = vol.host.partition("@")[0]
        return vol, att.id, Path(c.cfg.data_dir) / "nodes" / f"{host}.exports.json"


async def _wait_mended(c: E2ECluster, vol: Volume, attachments: dict[str, str],
                       volume_status: str) -> None:
    async with c.client("attached") as client:
        await eventually(lambda: _volume_in(client, vol.id, volume_status), timeout=20)
        found = {a.id: a.status for a in await client.list_attachments(volume_id=vol.id)}
        assert found == attachments

"""Every transitional status is mended: an extend interrupted with its node (its
quota reservation rolled back at once, not after a day), a volume left ``deleting``
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

from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.client.status_waits import VolumeError
from cinderblock.protocol.messages.volumes import Volume
from tests.conftest import E2ECluster, eventually, make_config, running_cluster
from tests.e2e.test_e2e_reconcile import FAST, kill_and_restart_nodes, stalling
from tests.lifecycle_helpers import gone, usage

HUGE_GB = 100_000_000  # no backend holds it: the volume ends in error without a host


def fast_config(data_dir: Path) -> ClusterConfig:
    return make_config(data_dir, reconcile_after_s=1.0, reconcile_every_s=0.25)


@pytest.fixture
def stalls_extends(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides=stalling("extend_volume"), **FAST)


async def test_an_extend_lost_with_its_node_is_error_extending_and_its_reservation_released(
    stalls_extends: E2ECluster,
) -> None:
    c = stalls_extends
    async with c.client("lost-extend") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        await client.extend_volume(vol.id, 3)
        await asyncio.sleep(2.0)  # past reconcile_after_s, but the node is working on it
        assert (await client.show_volume(vol.id)).status == "extending"
        assert (await usage(admin, "lost-extend"))["gigabytes"] == (1, 2)
        kill_and_restart_nodes(c)
        with pytest.raises(VolumeError, match="extend was interrupted"):
            await client.wait_for_status(vol.id, "available", timeout=20)
        shown = await client.show_volume(vol.id)
        assert (shown.status, shown.size) == ("error_extending", 1)
        await eventually(lambda: _reserved_none(admin, "lost-extend"), timeout=10)
        assert (await usage(admin, "lost-extend"))["gigabytes"] == (1, 0)
        await client.delete_volume(vol.id, wait=True)
        await eventually(lambda: _gigabytes(admin, "lost-extend", (0, 0)), timeout=10)


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

"""Volume migration end to end: real actor processes, two file backends, the data copied
by the destination node with nbdcopy from the source node's TLS export, through the
client library.

A migrated volume keeps its id and its bytes and lives on its new backend (its old file
gone); what is refused says why and changes nothing; a copy that fails leaves the volume
available where it was, with its bytes, and nothing on the destination.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.protocol.client.attachments import CREDENTIAL_FILES
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.client.lifecycle import MigrationError
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, InvalidState
from tests.cluster_invariants import settled_violations
from tests.conftest import GIB, E2ECluster, EventTap, eventually, run_cli
from tests.e2e.test_e2e_attach import CONNECTOR, Keys, run_ok
from tests.e2e.test_e2e_reconcile import FAST, kill_and_restart_nodes
from tests.lifecycle_helpers import file_of, read, write_pattern
from tests.nbd_tls import NBD_TOOLS, requires

pytestmark = requires(*NBD_TOOLS)
PATTERN = [(0, b"first block " * 100), (GIB // 2 - 5, b"across the middle"),
           (GIB - 7, b"the end")]


def other_backend(cluster: E2ECluster, vol: Volume) -> str:
    (other,) = [n.backend_id for n in cluster.cfg.nodes if n.backend_id != vol.host]
    return other


def volume_files(cluster: E2ECluster, volume_id: str) -> list[Path]:
    """The files named for the volume on every node."""
    return [f for n in cluster.cfg.nodes
            if (f := cluster.volume_file(n.backend_id, volume_id)).exists()]


async def patterned_on_node_1(c: E2ECluster, client: Client) -> Volume:
    """A new volume on node-1 (node-2 is the one these clusters' tests move to), with
    ``PATTERN`` written into its file."""
    vol = await client.create_volume(1, wait=True)
    while vol.host != "node-1@file":
        await client.delete_volume(vol.id, wait=True)
        vol = await client.create_volume(1, wait=True)
    write_pattern(file_of(c, vol), PATTERN)
    return vol


async def moved_whole_to_node_2(c: E2ECluster, admin: Client, vol: Volume) -> None:
    """Until ``vol`` is ``available`` on node-2, its migration ``success`` (its old copy
    dropped) and ``PATTERN`` read back from its new file."""
    moved = await admin.wait_for_status(vol.id, "available", timeout=30)
    assert moved.host == "node-2@file"
    await eventually(lambda: _migration_status(admin, vol.id, "success"), timeout=15)
    for offset, data in PATTERN:
        assert read(c.volume_file("node-2", vol.id), offset, len(data)) == data


def killed(c: E2ECluster, host: str) -> None:
    proc = c.cluster.procs.pop(host)
    proc.kill()
    proc.wait(timeout=10)


async def _migration_status(admin: Client, volume_id: str, status: str) -> bool:
    return (await admin.show_volume(volume_id)).migration_status == status


async def test_a_migrated_volume_keeps_its_id_and_bytes_on_its_new_backend(
    cluster: E2ECluster, client: Client, admin: Client, tmp_path: Path,
) -> None:
    vol = await client.create_volume(1, name="moving", metadata={"k": "v"}, wait=True)
    source = file_of(cluster, vol)
    write_pattern(source, PATTERN)
    destination = other_backend(cluster, vol)

    async with EventTap(cluster) as tap:
        moved = await admin.migrate_volume(vol.id, f"{destination}#pool", wait=True,
                                           timeout=60)
        # each step told, for a dashboard to show (``available, migrating``)
        await tap.wait_until(lambda evs: [e["migration_status"] for e in evs
                                          if e["kind"] == "volume" and e["volume_id"] == vol.id
                                          ][-1:] == ["success"], timeout=10)
    told = [e["migration_status"] for e in tap.events
            if e["kind"] == "volume" and e["volume_id"] == vol.id]
    assert [m for n, m in enumerate(told) if n == 0 or m != told[n - 1]] == [
        "migrating", "completing", "success"]
    assert (moved.id, moved.host, moved.status) == (vol.id, destination, "available")
    assert moved.migration_status == "success" and moved.reason is None
    for status, listed in (("success", True), ("migrating", False), ("error", False)):
        found = await admin.list_volumes(all_projects=True, migration_status=status)
        assert (vol.id in {v.id for v in found}) is listed, status
        assert await admin.count_volumes(all_projects=True, migration_status=status) == \
            len(found)
    assert (moved.name, moved.metadata, moved.size) == ("moving", {"k": "v"}, 1)
    await eventually(lambda: not source.exists(), timeout=10)  # the old copy is dropped
    (new_file,) = volume_files(cluster, vol.id)
    assert new_file == file_of(cluster, moved) and new_file.stat().st_size == GIB
    for offset, data in PATTERN:
        assert read(new_file, offset, len(data)) == data
    assert new_file.stat().st_blocks * 512 < 64 << 20  # the holes stayed holes

    # it works where it is now: attached and read over its new node's export, extended,
    # snapshotted, deleted
    att = await client.create_attachment(vol.id, instance_id="vm-1")
    att = await client.update_attachment(att.id, CONNECTOR)
    assert att.connection_info["data"]["export_name"].startswith(f"volume-{vol.id}")
    copy = tmp_path / "read-back.img"
    await run_ok("nbdcopy", Keys(tmp_path / "keys").uri(att), str(copy))
    assert read(copy, GIB // 2 - 5, 17) == b"across the middle"
    await client.delete_attachment(att.id)
    await client.wait_for_status(vol.id, "available", timeout=10)
    assert (await client.extend_volume(vol.id, 2, wait=True)).size == 2
    snap = await client.create_snapshot(vol.id, wait=True)
    await client.delete_snapshot(snap.id, wait=True)
    await client.delete_volume(vol.id, wait=True)
    assert volume_files(cluster, vol.id) == []


async def test_a_volume_migrates_back_and_the_cli_moves_it(
    cluster: E2ECluster, client: Client, admin: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    write_pattern(file_of(cluster, vol), [(4096, b"round trip")])
    home = vol.host
    assert home is not None
    away = await admin.migrate_volume(vol.id, other_backend(cluster, vol), wait=True)
    assert away.host != home and away.migration_status == "success"
    done = await asyncio.to_thread(
        run_cli, "volume", "migrate", vol.id, home, "--wait", "--json", "--gateway",
        cluster.gateway, "--admin", env={"CINDERBLOCK_KEY": str(cluster.user_key("admin", True))})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["host"], shown["status"], shown["migration_status"]) == \
        (home, "available", "success")
    listed = await asyncio.to_thread(
        run_cli, "volume", "list", "--all-projects", "--migration-status", "success", "--json",
        "--gateway", cluster.gateway, "--admin",
        env={"CINDERBLOCK_KEY": str(cluster.user_key("admin", True))})
    assert listed.returncode == 0 and vol.id in {v["id"] for v in json.loads(listed.stdout)}, \
        listed.stderr
    back = await client.show_volume(vol.id)
    assert read(file_of(cluster, back), 4096, 10) == b"round trip"
    assert len(volume_files(cluster, vol.id)) == 1


async def test_what_is_refused_says_why_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    destination = other_backend(cluster, vol)
    with pytest.raises(Forbidden, match=r"only an admin may send volume\.migrate"):
        await client.migrate_volume(vol.id, destination)
    with pytest.raises(InvalidInput, match="Destination host must be different"):
        await admin.migrate_volume(vol.id, f"{vol.host}#pool")
    with pytest.raises(InvalidInput, match="No available service named 'node-9@file'"):
        await admin.migrate_volume(vol.id, "node-9@file")
    with pytest.raises(InvalidInput, match="names no backend: give it as host@backend"):
        await admin.migrate_volume(vol.id, "node-2")
    snap = await client.create_snapshot(vol.id, wait=True)
    with pytest.raises(InvalidState, match="must not have snapshots"):
        await admin.migrate_volume(vol.id, destination)
    await client.delete_snapshot(snap.id, wait=True)
    att = await client.create_attachment(vol.id, instance_id="vm-2")
    with pytest.raises(InvalidState, match="status must be available to migrate, not reserved"):
        await admin.migrate_volume(vol.id, destination)
    await client.delete_attachment(att.id)
    after = await admin.show_volume(vol.id)
    assert (after.status, after.host, after.migration_status) == ("available", vol.host, None)
    assert len(volume_files(cluster, vol.id)) == 1


@pytest.fixture(scope="module")
def faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=2, node_overrides={"node-2": {"faults": ("receive_volume",)}})


async def test_a_failed_copy_leaves_the_volume_where_it_was_and_says_why(
    faulty: E2ECluster,
) -> None:
    async with faulty.client("failing") as client, \
            faulty.client("admin", admin=True) as admin:
        vol = await patterned_on_node_1(faulty, client)  # the failing node receives
        with pytest.raises(MigrationError, match="injected fault: receive_volume"):
            await admin.migrate_volume(vol.id, "node-2@file", wait=True, timeout=30)
        after = await admin.show_volume(vol.id)
        assert (after.status, after.host, after.migration_status) == \
            ("available", "node-1@file", "error")
        assert "migration to node-2@file failed" in (after.reason or "")
        assert volume_files(faulty, vol.id) == [file_of(faulty, vol)]
        for offset, data in PATTERN:
            assert read(file_of(faulty, vol), offset, len(data)) == data
        await client.delete_volume(vol.id, wait=True)


@pytest.fixture
def slow_receiver(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2 waits 2 s before it copies a volume it receives."""
    return cluster_factory(nodes=2, node_overrides={
        "node-2": {"faults": ("delay:receive_volume",)}})


async def test_a_copy_cut_short_by_the_source_node_s_restart_is_made_again_and_ends_whole(
    slow_receiver: E2ECluster,
) -> None:
    """The source node is killed once it exports the volume and before the destination
    copies it (the copy fails: nothing listens), then started again: it serves its
    exports again, the destination copies again, and the migration ends ``success``
    with the volume's bytes on its new backend."""
    c = slow_receiver
    async with c.client("cut-short") as client, c.client("admin", admin=True) as admin:
        vol = await patterned_on_node_1(c, client)
        await admin.migrate_volume(vol.id, "node-2@file")  # exported, the copy cast
        killed(c, "node-1")
        await asyncio.sleep(3.0)  # node-2's first copy has failed: node-1 is gone
        assert (await admin.show_volume(vol.id)).migration_status == "migrating"
        c.cluster.spawn("node", "node-1")
        await moved_whole_to_node_2(c, admin, vol)
        await eventually(lambda: volume_files(c, vol.id) == [
            c.volume_file("node-2", vol.id)], timeout=15)
        await client.delete_volume(vol.id, wait=True)


@pytest.fixture
def slow_receiver_reconciled(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """As ``slow_receiver``; the reconciler looks after 1 s."""
    return cluster_factory(nodes=2, node_overrides={
        "node-2": {"faults": ("delay:receive_volume",)}}, **FAST)


async def test_a_copy_s_credentials_are_its_node_s_alone_and_a_kill_leaves_none_behind(
    slow_receiver_reconciled: E2ECluster,
) -> None:
    """While node-2 copies (its source, node-1, killed: node-2 waits to copy again), the
    certificates and key that open node-1's export are in a directory of node-2's own,
    its owner's only. node-2 killed then leaves them; its next process removes them as
    it starts, the reconciler asks for the copy again, and once the migration ends whole
    nothing is left there."""
    c = slow_receiver_reconciled
    scratch = c.cluster.cfg.path("nodes", "node-2.copies")
    async with c.client("copier") as client, c.client("admin", admin=True) as admin:
        vol = await patterned_on_node_1(c, client)
        await admin.migrate_volume(vol.id, "node-2@file")
        killed(c, "node-1")  # node-2's copy fails: it waits to copy again
        held = await eventually(lambda: next(scratch.iterdir(), None), timeout=10)
        # the key is written to a temporary name and renamed: seen between, it is not yet
        await eventually(lambda: sorted(f.name for f in held.iterdir())
                         == sorted(CREDENTIAL_FILES.values()), timeout=5)
        assert [stat.S_IMODE(d.stat().st_mode) for d in (scratch, held)] == [0o700, 0o700]
        assert stat.S_IMODE((held / CREDENTIAL_FILES["client_key"]).stat().st_mode) == 0o600
        killed(c, "node-2")
        assert held.exists()
        for host in ("node-1", "node-2"):
            c.cluster.spawn("node", host)
        await eventually(lambda: not held.exists(), timeout=15)
        await moved_whole_to_node_2(c, admin, vol)
        assert list(scratch.iterdir()) == []
        await client.delete_volume(vol.id, wait=True)


@pytest.fixture
def stalled_receiver(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2 hangs in every copy it receives; the reconciler looks after 1 s."""
    return cluster_factory(nodes=2, node_overrides={
        "node-2": {"faults": ("stall:receive_volume",)}}, **FAST)


async def test_a_copy_cut_short_by_the_destination_s_restart_is_asked_for_again(
    stalled_receiver: E2ECluster,
) -> None:
    """Both nodes are killed while the destination copies (it hangs there) and started
    again without the stall: the new destination process knows nothing of the copy,
    so the reconciler asks for it again (the source's export, then the cast), and the
    migration ends ``success`` with the volume's bytes on its new backend."""
    c = stalled_receiver
    async with c.client("cut-short") as client, c.client("admin", admin=True) as admin:
        vol = await patterned_on_node_1(c, client)
        await admin.migrate_volume(vol.id, "node-2@file")
        await asyncio.sleep(2.0)  # past reconcile_after_s, but node-2 is copying it
        assert (await admin.show_volume(vol.id)).migration_status == "migrating"
        kill_and_restart_nodes(c)
        await moved_whole_to_node_2(c, admin, vol)
        await client.delete_volume(vol.id, wait=True)


@pytest.fixture(scope="module")
def named(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2's backend named ``fast`` (its volume_backend_name); node-1 fails to receive."""
    return cluster_factory(nodes=2, node_overrides={
        "node-1": {"faults": ("receive_volume",)}, "node-2": {"volume_backend_name": "fast"}})


async def test_a_retype_on_demand_moves_the_volume_to_a_backend_of_its_new_type(
    named: E2ECluster,
) -> None:
    """``os-retype`` under ``on-demand`` to a type only the other backend satisfies
    (had been refused, "a retype here does not migrate volumes between backends"): the
    volume moves with its bytes and takes the type; the type's own quota follows it; a
    move that fails leaves type, backend, bytes and quota as they were."""
    async with named.client("retyping") as client, named.client("admin", admin=True) as admin:
        fast = await admin.create_type("Fast", extra_specs={"volume_backend_name": "fast"})
        vol = await client.create_volume(1, volume_type="FCVolumeType", wait=True)
        assert vol.host == "node-1@file"  # FCVolumeType asks for a backend named file
        write_pattern(file_of(named, vol), PATTERN)
        with pytest.raises(InvalidInput, match=r"Current backend not valid .* migration not "
                                               "allowed: its backend node-1@file has no "
                                               "capabilities matching"):
            await client.retype_volume(vol.id, fast.name)

        started = await client.retype_volume(vol.id, fast.name, "on-demand")
        assert (started.status, started.volume_type) == ("maintenance", "FCVolumeType")
        with pytest.raises(InvalidInput, match="deletion is not allowed with volumes present"):
            await admin.delete_type(fast.id)  # the volume is to take it
        await eventually(lambda: _migrated(client, vol.id), timeout=60)
        moved = await client.show_volume(vol.id)
        assert (moved.host, moved.volume_type, moved.status, moved.migration_status) == (
            "node-2@file", "Fast", "available", "success")
        for offset, data in PATTERN:
            assert read(file_of(named, moved), offset, len(data)) == data
        await eventually(lambda: _in_use(client, {"volumes_Fast": 1, "gigabytes_Fast": 1,
                                                  "volumes_FCVolumeType": 0, "volumes": 1}))

        # back to FCVolumeType: only node-1 is named file, and it fails to receive
        done = await asyncio.to_thread(
            run_cli, "volume", "set", vol.id, "--type", "FCVolumeType", "--retype-policy",
            "on-demand", "--wait", "--timeout", "30", "--gateway", named.gateway,
            env={"CINDERBLOCK_KEY": str(named.user_key("retyping"))})
        assert done.returncode == 1 and "injected fault: receive_volume" in done.stderr, \
            done.stderr
        stayed = await client.show_volume(vol.id)
        assert (stayed.host, stayed.volume_type, stayed.status) == (
            "node-2@file", "Fast", "available")
        assert "migration to node-1@file failed" in (stayed.reason or "")
        assert volume_files(named, vol.id) == [file_of(named, stayed)]
        await eventually(lambda: _in_use(client, {"volumes_Fast": 1, "volumes_FCVolumeType": 0}))
        await client.delete_volume(vol.id, wait=True)
        await admin.delete_type(fast.id)


async def _in_use(client: Client, expected: dict[str, int]) -> bool:
    in_use = (await client.show_quota()).in_use
    return all(in_use.get(r) == n for r, n in expected.items())


async def _migrated(client: Client, volume_id: str) -> bool:
    return (await client.show_volume(volume_id)).migration_status in ("success", "error")


@pytest.fixture
def restarting(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory()


async def test_right_after_the_scheduler_restarts_every_backend_is_listed_and_taken(
    restarting: E2ECluster,
) -> None:
    """A scheduler (re)started knows no backend until the nodes report; its backend list
    (what a migration's and a retype's checks read) waits for them, as a create does,
    instead of leaving a live backend out: a migration asked at once had been refused,
    "No available service named ... (no such backend has reported)" (now, for a node
    truly not heard from, "node ... has not reported to the scheduler")."""
    c = restarting

    async def restart_scheduler() -> None:
        await asyncio.to_thread(c.cluster.stop_actor, "scheduler")
        await asyncio.to_thread(c.cluster.respawn, "scheduler")

    async with c.client("restarting") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        for _ in range(2):
            await restart_scheduler()
            assert sorted(b.backend for b in await admin.list_backends()) == sorted(
                n.backend_id for n in c.cfg.nodes)
        await restart_scheduler()
        moved = await admin.migrate_volume(vol.id, other_backend(c, vol), wait=True,
                                           timeout=30)
        assert moved.migration_status == "success"


@pytest.fixture(scope="module")
def slow_fast(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2's backend named ``fast``, and each copy it receives 2 s slower."""
    return cluster_factory(nodes=2, node_overrides={
        "node-2": {"volume_backend_name": "fast", "faults": ("delay:receive_volume",)}})


async def test_a_retype_s_migration_outlives_a_gateway_restart_and_its_quota_stays_exact(
    slow_fast: E2ECluster,
) -> None:
    """The gateway restarts while a retype's migration copies: the reservation its row
    holds is not rolled back with the dead gateway's others, the destination's report
    reaches the new gateway, and the volume takes the type with its quota committed:
    in use where it is, nothing reserved, the old type's given back."""
    c, project = slow_fast, "restarted-retype"
    async with c.client(project) as client, c.client("admin", admin=True) as admin:
        fast = await admin.create_type("Fast", extra_specs={"volume_backend_name": "fast"})
        vol = await client.create_volume(1, volume_type="FCVolumeType", wait=True)
        started = await client.retype_volume(vol.id, fast.name, "on-demand")
        assert started.status == "maintenance"
        await asyncio.to_thread(c.cluster.stop_actor, "gateway")
        await asyncio.to_thread(c.cluster.respawn, "gateway")
        await eventually(lambda: _migrated(client, vol.id), timeout=60)
        moved = await client.show_volume(vol.id)
        assert (moved.host, moved.volume_type, moved.status, moved.migration_status) == (
            "node-2@file", "Fast", "available", "success")
        await eventually(lambda: _in_use(client, {"volumes_Fast": 1, "gigabytes_Fast": 1,
                                                  "volumes_FCVolumeType": 0,
                                                  "gigabytes_FCVolumeType": 0}))
        assert await settled_violations(c, admin, [project]) == []
        await client.delete_volume(vol.id, wait=True)
        await admin.delete_type(fast.id)

"""Work a crash left half-done is mended: storage nodes are killed (SIGKILL) in the
middle of a create, a delete and a snapshot, and come back; the gateway's
reconciler, finding the records stuck and no node working on them, moves them
on (``actors.reconcile``). While a node is still working, nothing is touched."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cinderblock.actors.gateway.create_flow import CAST_BEFORE_SEND
from cinderblock.actors.gateway.gateway import VOLUME_UPDATE_BEFORE_COMMIT
from cinderblock.actors.gateway.group_snapshots import CAST_BEFORE_SEND as GROUP_SNAPSHOT_CAST
from cinderblock.actors.gateway.group_snapshots import DELETE_MARK_AFTER_COMMIT
from cinderblock.actors.gateway.lifecycle import SNAPSHOT_UPDATE_BEFORE_COMMIT
from cinderblock.actors.gateway.lifecycle_flows import (
    DELETE_CAST_BEFORE_SEND,
    EXTEND_CAST_BEFORE_SEND,
    SNAPSHOT_CAST_BEFORE_SEND,
    SNAPSHOT_DELETE_CAST_BEFORE_SEND,
)
from cinderblock.actors.gateway.revert import REVERT_CAST_BEFORE_SEND
from cinderblock.actors.runtime import failpoints
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.client.status_waits import VolumeError
from cinderblock.protocol.messages.groups import GroupSnapshot
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError, InvalidState, PeerGone
from tests.conftest import E2ECluster, EventTap, eventually
from tests.lifecycle_helpers import gone, group_snapshot_gone, read, snapshot_gone, write_pattern

T = TypeVar("T")

NODES = ("node-1", "node-2")
FAST = {"reconcile_after_s": 1.0, "reconcile_every_s": 0.25}


def stalling(*operations: str) -> dict[str, dict[str, tuple[str, ...]]]:
    return {host: {"faults": tuple(f"stall:{op}" for op in operations)} for host in NODES}


async def left_alone(tap: EventTap, *ids: str) -> None:
    """Until a reconcile round found these records stuck (past reconcile_after_s) and,
    a node still working on them, left them as they were."""
    def seen(events: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == "reconcile" and set(ids) <= set(e["stuck"])
                   and not set(ids) & set(e["acted"]) for e in events)

    await tap.wait_until(seen, timeout=20)


def kill_and_restart_nodes(c: E2ECluster) -> None:
    """SIGKILL every node, then start them again without the injected stalls."""
    for host in NODES:
        proc = c.cluster.procs.pop(host)
        proc.kill()
        proc.wait(timeout=10)
    cfg = c.cluster.cfg
    c.cluster.cfg = replace(cfg, nodes=tuple(replace(n, faults=()) for n in cfg.nodes))
    c.cluster.cfg.save(c.cluster.config_path)
    for host in NODES:
        c.cluster.spawn("node", host)


@pytest.fixture
def stalls_creates(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(backend="null", node_overrides=stalling("create_volume"), **FAST)


@pytest.fixture
def stalls_deletes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides=stalling("delete_volume", "create_snapshot"), **FAST)


async def test_a_create_lost_with_its_node_ends_in_error_and_deletes_cleanly(
    stalls_creates: E2ECluster,
) -> None:
    c = stalls_creates
    async with c.client("lost-create") as client, EventTap(c) as tap:
        vol = await client.create_volume(1, name="interrupted")
        await left_alone(tap, vol.id)  # past reconcile_after_s, but a node is working on it
        assert (await client.show_volume(vol.id)).status == "creating"
        before = _incarnations(tap.events)
        assert len(before) == len(NODES)  # every node has reported from its first process
        kill_and_restart_nodes(c)
        with pytest.raises(VolumeError, match="lost"):
            await client.wait_for_status(vol.id, "available", timeout=20)
        # Judged lost by the scheduler (its host is the backend it was cast to) or by the
        # reconciler (a host only if a node holds a copy): either way its delete leaves
        # no file behind on any node.
        await client.delete_volume(vol.id, wait=True)
        assert not [f for f in c.all_files() if vol.id in f]
        await eventually(lambda: _no_volumes_in_use(client), timeout=10)  # the journal
        # Up, and reporting from their new processes: until then the scheduler still
        # takes the killed ones' last stats as fresh (stale_after_s), and a create cast
        # into the gap is lost with them (and failed as lost, which is right, but not
        # what this step is about).
        await tap.wait_until(lambda evs: _reporting_anew(evs, before), timeout=20)
        await eventually(lambda: _nodes_up(client), timeout=20)
        assert (await client.create_volume(1, wait=True)).status == "available"


def _incarnations(events: list[dict[str, Any]]) -> set[str]:
    return {e["incarnation"] for e in events if e["kind"] == "backend"}


def _reporting_anew(events: list[dict[str, Any]], before: set[str]) -> bool:
    """Every node's stats have come from a process other than those of ``before``."""
    return {e["host"] for e in events if e["kind"] == "backend"
            and e["incarnation"] not in before} >= set(NODES)


async def _no_volumes_in_use(client: Client) -> bool:
    return (await client.show_quota()).in_use["volumes"] == 0


async def _nodes_up(client: Client) -> bool:
    return {b.backend for b in await client.list_backends() if b.up} >= {
        f"{host}@null" for host in NODES}


async def test_a_delete_and_a_snapshot_lost_with_their_node_are_finished_or_failed(
    stalls_deletes: E2ECluster,
) -> None:
    c = stalls_deletes
    async with c.client("lost-delete") as client, EventTap(c) as tap:
        doomed = await client.create_volume(1, name="doomed", wait=True)
        kept = await client.create_volume(1, name="kept", wait=True)
        await client.delete_volume(doomed.id)
        snap = await client.create_snapshot(kept.id)
        await left_alone(tap, doomed.id, snap.id)
        assert (await client.show_volume(doomed.id)).status == "deleting"
        assert (await client.show_snapshot(snap.id)).status == "creating"
        kill_and_restart_nodes(c)
        await eventually(lambda: gone(client, doomed.id), timeout=20)
        assert doomed.host is not None
        assert not c.volume_file(doomed.host, doomed.id).exists()
        failed = await eventually(lambda: _snapshot_in(client, snap.id, "error"), timeout=20)
        assert "lost: node-" in (failed.reason or "")
        # each verdict told with what it was (the exporter counts them)
        await tap.wait_until(lambda evs: {("volume", "redo_delete"), ("snapshot", "error")}
                             <= {tuple(pair) for e in evs if e["kind"] == "reconcile"
                                 for pair in e["actions"]}, timeout=10)
        await client.delete_snapshot(snap.id, wait=True)
        await client.delete_volume(kept.id, wait=True)
        quota = await client.show_quota()
        assert (quota.in_use["volumes"], quota.in_use["snapshots"], quota.in_use["gigabytes"]) \
            == (0, 0, 0)
        node_files = [p.name for host in NODES for p in c.node_dir(host).iterdir()]
        assert not [n for n in node_files if kept.id in n or snap.id in n]


async def _snapshot_in(client: Client, snapshot_id: str, status: str) -> Snapshot | None:
    snap = await client.show_snapshot(snapshot_id)
    return snap if snap.status == status else None


@pytest.fixture
def slow_creates(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides={h: {"faults": ("delay:create_volume",)}
                                           for h in NODES})


async def test_a_create_that_finishes_after_its_volume_was_failed_is_cleaned_by_the_delete(
    slow_creates: E2ECluster,
) -> None:
    c = slow_creates
    async with c.client("late") as client, c.client("late", admin=True) as admin:
        vol = await client.create_volume(1, name="late")
        await admin.reset_volume_state(vol.id, "error")  # as the reconciler would judge it
        late = await eventually(lambda: _with_host(client, vol.id), timeout=15)
        assert late.status == "error"  # the late "available" does not undo the error
        assert late.host is not None and c.volume_file(late.host, vol.id).exists()
        await client.delete_volume(vol.id, wait=True)
        assert not c.volume_file(late.host, vol.id).exists()
        assert (await client.show_quota()).in_use["volumes"] == 0


async def _with_host(client: Client, volume_id: str) -> Volume | None:
    vol = await client.show_volume(volume_id)
    return vol if vol.host else None


@pytest.fixture
def one_node(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """The rounds look only at what has been stuck for 10 minutes: what a test sees
    mended is the restarted gateway's own look at what its previous process left."""
    return cluster_factory(nodes=1, reconcile_after_s=600.0)


async def test_a_volume_a_snapshot_and_a_restore_whose_reports_died_with_the_gateway_are_available(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed as it takes each one's report from the node, before it
    writes it; started again, it finds each still ``creating``, its node holding it
    whole and working on nothing, and makes it ``available`` there within seconds
    (``Reconciler.finish_previous``), readable and deletable, where the reconciler's
    rounds made it ``error`` after ``reconcile_after_s`` (for an admin to reset). A
    volume made from a backup too (the node names it only once the backup's data is in
    it), and its backup is ``available`` again with it."""
    c = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    points = (VOLUME_UPDATE_BEFORE_COMMIT.name, SNAPSHOT_UPDATE_BEFORE_COMMIT.name)
    _gateway_armed(c, marks, *points)
    make_vol = partial(Client.create_volume, size=1, name="made", request_id="lost-made")
    vol = await _answered(c, make_vol)
    await eventually(lambda: (marks / points[0]).exists(), timeout=20)
    _gateway_again(c)  # past the marked point: the snapshot's report is the next
    async with c.client("lost-report") as client:
        vol = vol or await make_vol(client)
        made = await client.wait_for_status(vol.id, "available", timeout=30)
        assert made.host == "node-1@file" and made.reason is None
        write_pattern(c.volume_file("node-1", vol.id), [(0, b"still whole")])
    take = partial(Client.create_snapshot, volume_id=vol.id, request_id="lost-snap")
    snap = await _answered(c, take)
    await _again_once_killed_at(c, marks / points[1])
    async with c.client("lost-report") as client:
        snap = snap or await take(client)
        taken = await client.wait_for_snapshot_status(snap.id, "available", timeout=30)
        assert taken.reason is None
        copy = await client.create_volume(1, snapshot_id=snap.id, wait=True)
        assert read(c.volume_file("node-1", copy.id), 0, 11) == b"still whole"
        backup = await client.create_backup(vol.id, wait=True)
    (marks / points[0]).unlink()  # the volume's report point again, for the restore
    _gateway_armed(c, marks, points[0])
    make_restore = partial(Client.create_volume, size=1, backup_id=backup.id,
                           request_id="lost-restore")
    restore = await _answered(c, make_restore)
    await _again_once_killed_at(c, marks / points[0])
    async with c.client("lost-report") as client:
        restore = restore or await make_restore(client)
        restored = await client.wait_for_status(restore.id, "available", timeout=30)
        assert restored.reason is None
        assert read(c.volume_file("node-1", restore.id), 0, 11) == b"still whole"
        assert (await client.show_backup(backup.id)).status == "available"
        await client.delete_backup(backup.id, wait=True)
        for made_here in (restore, copy):
            await client.delete_volume(made_here.id, wait=True)
        await client.delete_snapshot(snap.id, wait=True)
        await client.delete_volume(vol.id, wait=True)
        assert (await client.show_quota()).in_use["volumes"] == 0


async def test_what_a_gateway_died_before_sending_is_sent_by_the_next_one(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed after it marked a volume ``extending``, then ``reverting``,
    a snapshot, then a volume, ``deleting`` and before it sent each to the node: started
    again, it sends them within seconds (``Reconciler.finish_previous``: an extend, a
    revert or a delete sent again is idempotent), where they waited
    ``reconcile_after_s`` (here 10 minutes) for the rounds."""
    c = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    async with c.client("lost-delete") as client:
        kept = await client.create_volume(1, name="kept", wait=True)
        write_pattern(c.volume_file("node-1", kept.id), [(0, b"as snapped")])
        snap = await client.create_snapshot(kept.id, wait=True)
        write_pattern(c.volume_file("node-1", kept.id), [(0, b"written on")])
        doomed = await client.create_volume(1, name="doomed", wait=True)
        grown = await client.create_volume(1, name="grown", wait=True)
    _gateway_armed(c, marks, EXTEND_CAST_BEFORE_SEND.name)
    async with c.client("lost-delete", timeout=5.0) as client:
        with contextlib.suppress(CinderblockError):  # the gateway dies as it sends
            await client.extend_volume(grown.id, 2)
    await _again_once_killed_at(c, marks / EXTEND_CAST_BEFORE_SEND.name)
    async with c.client("lost-delete") as client:
        extended = await client.wait_for_status(grown.id, "available", timeout=15)
        assert extended.size == 2
        assert c.volume_file("node-1", grown.id).stat().st_size == 2 * 1024**3
        assert (await client.show_quota()).in_use["gigabytes"] == 5  # and the snapshot's 1
    _gateway_armed(c, marks, REVERT_CAST_BEFORE_SEND.name)
    async with c.client("lost-delete", timeout=5.0) as client:
        with contextlib.suppress(CinderblockError):  # the gateway dies as it sends
            await client.revert_volume(kept.id, snap.id)
    await _again_once_killed_at(c, marks / REVERT_CAST_BEFORE_SEND.name)
    async with c.client("lost-delete") as client:
        await client.wait_for_status(kept.id, "available", timeout=15)
        assert read(c.volume_file("node-1", kept.id), 0, 10) == b"as snapped"
        assert (await client.show_snapshot(snap.id)).status == "available"
    points = (SNAPSHOT_DELETE_CAST_BEFORE_SEND.name, DELETE_CAST_BEFORE_SEND.name)
    _gateway_armed(c, marks, *points)
    async with c.client("lost-delete", timeout=5.0) as client:
        with contextlib.suppress(CinderblockError):  # the gateway dies as it sends
            await client.delete_snapshot(snap.id)
    await eventually((marks / points[0]).exists, timeout=20)
    _gateway_again(c)  # still armed: the volume's point is the next
    async with c.client("lost-delete", timeout=5.0) as client:
        with contextlib.suppress(CinderblockError):
            await client.delete_volume(doomed.id)
    await _again_once_killed_at(c, marks / points[1])
    async with c.client("lost-delete") as client:
        await eventually(partial(snapshot_gone, client, snap.id), timeout=15)
        await eventually(partial(gone, client, doomed.id), timeout=15)
        assert not c.volume_file("node-1", doomed.id).exists()
        await client.delete_volume(kept.id, wait=True)
        await client.delete_volume(grown.id, wait=True)
        assert (await client.show_quota()).in_use["volumes"] == 0


@pytest.fixture
def two_nodes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """As ``one_node``, with a second node for the hint to rule out."""
    return cluster_factory(reconcile_after_s=600.0)


async def test_a_create_a_gateway_died_before_casting_is_cast_by_the_next_one(
    two_nodes: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed after it wrote a volume's row ``creating`` and before it
    cast the create: a plain create, one with an affinity hint, then a clone (which goes
    to its source's node without the scheduler). Started again, it finds each still
    ``creating`` with no host, every node saying it neither holds it nor works on it,
    fences it on the nodes and sends it again within seconds (``lost_casts.py``), where
    it waited ``reconcile_after_s`` (here 10 minutes) to be made ``error``. The hint
    holds (kept in ``create_routes``), the clone has its source's data, and each is made
    once."""
    c = two_nodes
    marks = tmp_path / "marks"
    marks.mkdir()
    async with c.client("lost-report") as client:
        near = await client.create_volume(1, name="near", wait=True)
    assert near.host is not None
    near_node = near.host.partition("@")[0]
    write_pattern(c.volume_file(near_node, near.id), [(0, b"near's data")])
    asks = [partial(Client.create_volume, size=1, name="plain", request_id="left-plain"),
            partial(Client.create_volume, size=1, name="hinted", request_id="left-hinted",
                    different_host=[near.id]),
            partial(Client.create_volume, size=1, name="clone", request_id="left-clone",
                    source_volid=near.id)]
    made: list[Volume] = []
    for ask in asks:
        vol = await _made_across_a_kill(c, marks, CAST_BEFORE_SEND.name, ask)
        async with c.client("lost-report") as client:
            made.append(await client.wait_for_status(vol.id, "available", timeout=30))
    _, hinted, clone = made
    assert hinted.host != near.host  # different_host, after the restart too
    assert clone.host == near.host
    assert read(c.volume_file(near_node, clone.id), 0, 11) == b"near's data"
    async with c.client("lost-report") as client:
        assert (await client.show_quota()).in_use["volumes"] == 4
        for vol in made:
            assert len([f for f in c.all_files() if vol.id in f]) == 1  # made once
            await client.delete_volume(vol.id, wait=True)
        await client.delete_volume(near.id, wait=True)
        assert not [f for f in c.all_files() if near.id in f]


async def test_a_manage_a_gateway_died_before_casting_is_sent_to_its_node_by_the_next_one(
    two_nodes: E2ECluster, tmp_path: Path,
) -> None:
    """An admin's manage of a file on the second node, the gateway killed after the
    volume's row and before the cast: started again, it sends the manage to the node
    the admin named (its backend and the name it adopts kept in ``create_routes``), not
    to the scheduler's choice, and the volume holds the file's bytes, once."""
    c = two_nodes
    marks = tmp_path / "marks"
    marks.mkdir()
    data = b"an operator's disk"
    source = _disk_on(c, "node-2", "left-disk.raw", data)
    ask = partial(Client.manage_volume, host="node-2@file", source_name=source.name,
                  name="adopted", request_id="left-manage")
    vol = await _made_across_a_kill(c, marks, CAST_BEFORE_SEND.name, ask, admin=True)
    async with c.client("admin", admin=True) as admin:
        managed = await admin.wait_for_status(vol.id, "available", timeout=30)
        assert (managed.host, managed.size, managed.name) == ("node-2@file", 1, "adopted")
        assert not source.exists()
        assert read(c.volume_file("node-2", vol.id), 0, len(data)) == data
        assert len([f for f in c.all_files() if vol.id in f]) == 1  # made once
        await admin.delete_volume(vol.id, wait=True)


async def test_a_snapshot_manage_a_gateway_died_before_sending_is_sent_by_the_next_one(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """An admin's manage of a file as a snapshot of a volume, the gateway killed after
    the snapshot's row and before the cast: started again, it sends the manage again
    with the name it adopts (kept in ``create_routes``), and the snapshot holds the
    file's bytes, once."""
    c = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    async with c.client("admin", admin=True) as admin:
        vol = await admin.create_volume(1, wait=True)
    data = b"the volume before the upgrade"
    source = _disk_on(c, "node-1", "left-snapshot.raw", data)
    ask = partial(Client.manage_snapshot, volume_id=vol.id, source_name=source.name,
                  name="adopted", request_id="left-snapshot-manage")
    snap = await _made_across_a_kill(c, marks, SNAPSHOT_CAST_BEFORE_SEND.name, ask, admin=True)
    async with c.client("admin", admin=True) as admin:
        managed = await admin.wait_for_snapshot_status(snap.id, "available", timeout=30)
        assert (managed.name, managed.volume_id) == ("adopted", vol.id)
        assert not source.exists()
        assert len([f for f in c.all_files() if snap.id in f]) == 1  # made once
        copy = await admin.create_volume(1, snapshot_id=snap.id, wait=True)
        assert read(c.volume_file("node-1", copy.id), 0, len(data)) == data
        await admin.delete_volume(copy.id, wait=True)
        await admin.delete_snapshot(snap.id, wait=True)
        await admin.delete_volume(vol.id, wait=True)


async def test_a_snapshot_a_gateway_died_before_sending_is_sent_by_the_next_one(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed after it wrote a snapshot's row ``creating`` and before it
    sent the create to the volume's node: started again, it fences the snapshot there
    and sends it again within seconds, where it waited ``reconcile_after_s`` (here 10
    minutes) to be made ``error``. The snapshot holds the volume's data, once."""
    c = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    async with c.client("lost-report") as client:
        vol = await client.create_volume(1, name="snapped", wait=True)
    write_pattern(c.volume_file("node-1", vol.id), [(0, b"at the snap")])
    take = partial(Client.create_snapshot, volume_id=vol.id, request_id="left-snap")
    snap = await _made_across_a_kill(c, marks, SNAPSHOT_CAST_BEFORE_SEND.name, take)
    async with c.client("lost-report") as client:
        taken = await client.wait_for_snapshot_status(snap.id, "available", timeout=30)
        assert taken.reason is None
        assert len([f for f in c.all_files() if snap.id in f]) == 1  # made once
        copy = await client.create_volume(1, snapshot_id=snap.id, wait=True)
        assert read(c.volume_file("node-1", copy.id), 0, 11) == b"at the snap"
        await client.delete_volume(copy.id, wait=True)
        await client.delete_snapshot(snap.id, wait=True)
        await client.delete_volume(vol.id, wait=True)
        assert (await client.show_quota()).in_use["volumes"] == 0


async def test_a_group_snapshot_a_gateway_died_before_sending_is_sent_by_the_next_one(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed after it wrote a group snapshot's row and its snapshots
    ``creating`` and before it sent the create to the group's node: started again, it
    fences the snapshots there and sends the group snapshot again, whole, within
    seconds, where it waited ``reconcile_after_s`` (here 10 minutes) to be made
    ``error``. Each snapshot is made once and holds its volume's data."""
    c = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    group_id, volumes = await _group_of_two(c, "cg-left")
    for vol in volumes:
        write_pattern(c.volume_file("node-1", vol.id), [(0, vol.id[:8].encode())])
    take = partial(Client.create_group_snapshot, group_id=group_id, request_id="left-gs")
    gs_id = (await _made_across_a_kill(c, marks, GROUP_SNAPSHOT_CAST.name, take)).id
    async with c.client("lost-report") as client:

        async def settled() -> bool:
            return (await client.show_group_snapshot(gs_id)).status != "creating"

        await eventually(settled, timeout=30)
        gs = await client.show_group_snapshot(gs_id)
        assert gs.status == "available"
        assert len(gs.snapshots) == 2
        for sid in gs.snapshots:
            assert len([f for f in c.all_files() if sid in f]) == 1  # made once
            snap = await client.show_snapshot(sid)
            copy = await client.create_volume(1, snapshot_id=sid, wait=True)
            assert read(c.volume_file("node-1", copy.id), 0, 8) == snap.volume_id[:8].encode()
            await client.delete_volume(copy.id, wait=True)
        await client.delete_group_snapshot(gs.id)
        await eventually(partial(group_snapshot_gone, client, gs.id), timeout=30)
        await client.delete_group(group_id, delete_volumes=True)
        await eventually(lambda: _no_volumes_in_use(client), timeout=30)


async def test_nothing_is_made_from_a_snapshot_of_a_group_snapshot_marked_deleting(
    one_node: E2ECluster, tmp_path: Path,
) -> None:
    """A group snapshot whose delete a crash cut short after its mark: until the round
    finishes that delete (here after 10 minutes), its snapshots are being deleted, and
    neither a volume nor a backup is made from one (either would hold the delete up);
    nothing is reserved. An admin's reset ends the delete; then a volume is made from it."""
    c = one_node
    group_id, gs = await _group_snapshot_of_two(c, "cg-marked")
    await _delete_cut_after_its_mark(c, tmp_path, gs.id)
    async with c.client("lost-report") as client, c.client("admin", admin=True) as admin:
        assert (await client.show_group_snapshot(gs.id)).status == "deleting"
        snap = await client.show_snapshot(gs.snapshots[0])
        before = (await client.show_quota()).in_use
        with pytest.raises(InvalidState, match="being deleted with its group snapshot"):
            await client.create_volume(1, snapshot_id=snap.id)
        with pytest.raises(InvalidState, match="being deleted with its group snapshot"):
            await client.create_backup(snap.volume_id, snapshot_id=snap.id)
        assert (await client.show_quota()).in_use == before
        await admin.reset_group_snapshot_status(gs.id, "available")
        copy = await client.create_volume(1, snapshot_id=snap.id, wait=True)
        await client.delete_volume(copy.id, wait=True)
        await client.delete_group_snapshot(gs.id)
        await eventually(partial(group_snapshot_gone, client, gs.id), timeout=30)
        await client.delete_group(group_id, delete_volumes=True)
        await eventually(lambda: _no_volumes_in_use(client), timeout=30)


@pytest.fixture
def mends_fast(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, **FAST)


async def test_a_group_snapshot_delete_cut_short_after_its_mark_is_finished(
    mends_fast: E2ECluster, tmp_path: Path,
) -> None:
    """The gateway is killed after it marked a group snapshot ``deleting`` and before it
    asked its snapshots to be deleted: the reconciler's round finishes the delete the
    mark committed (its snapshots deleted, then the group snapshot), with no second
    delete asked, where it made the group snapshot ``available`` again for its owner to
    ask once more."""
    c = mends_fast
    group_id, gs = await _group_snapshot_of_two(c, "cg-mend")
    assert len(gs.snapshots) == 2
    await _delete_cut_after_its_mark(c, tmp_path, gs.id)
    async with c.client("lost-report") as client:
        await eventually(partial(group_snapshot_gone, client, gs.id), timeout=30)
        for sid in gs.snapshots:
            assert await snapshot_gone(client, sid)
        assert not [f for f in c.node_files()["node-1"] if f.startswith("snapshot-")]
        await client.delete_group(group_id, delete_volumes=True)
        await eventually(lambda: _no_volumes_in_use(client), timeout=30)


def _disk_on(c: E2ECluster, host: str, name: str, data: bytes) -> Path:
    """A 1 GiB file that begins with ``data`` in a node's directory, as an operator
    copies a disk there to be managed."""
    path = c.node_dir(host) / name
    path.write_bytes(data)
    os.truncate(path, 1 << 30)
    return path


async def _group_of_two(c: E2ECluster, type_name: str) -> tuple[str, list[Volume]]:
    """A group of two volumes of the project's (of the group type ``type_name``, an
    admin's): the group's id and its volumes, ``available``."""
    async with c.client("lost-report") as client, c.client("admin", admin=True) as admin:
        gtype = await admin.create_group_type(type_name)
        group = await client.create_group(gtype.id, ["__DEFAULT__"])
        return group.id, [await client.create_volume(1, group_id=group.id, wait=True)
                          for _ in range(2)]


async def _group_snapshot_of_two(c: E2ECluster, type_name: str) -> tuple[str, GroupSnapshot]:
    """``_group_of_two`` and a group snapshot of it, ``available``."""
    group_id, _ = await _group_of_two(c, type_name)
    async with c.client("lost-report") as client:
        return group_id, await client.create_group_snapshot(group_id, wait=True)


async def _delete_cut_after_its_mark(c: E2ECluster, tmp_path: Path, group_snapshot_id: str
                                     ) -> None:
    """The group snapshot's delete asked of a gateway armed to die just after it marked
    the group snapshot ``deleting``; the gateway started again, disarmed."""
    marks = tmp_path / "marks"
    marks.mkdir()
    _gateway_armed(c, marks, DELETE_MARK_AFTER_COMMIT.name)
    async with c.client("lost-report", timeout=5.0) as client:
        with contextlib.suppress(CinderblockError):  # the gateway dies after the mark
            await client.delete_group_snapshot(group_snapshot_id)
    await _again_once_killed_at(c, marks / DELETE_MARK_AFTER_COMMIT.name)


async def _made_across_a_kill(c: E2ECluster, marks: Path, point: str,
                              ask: Callable[[Client], Awaitable[T]], admin: bool = False) -> T:
    """What ``ask`` made, asked of a gateway armed to kill itself at ``point`` and, if
    that one died before its answer, asked again under the same request id of the one
    started after it (disarmed), which answers with what the first made."""
    (marks / point).unlink(missing_ok=True)
    _gateway_armed(c, marks, point)
    made = await _answered(c, ask, admin)
    await _again_once_killed_at(c, marks / point)
    if made is not None:
        return made
    async with c.client("admin" if admin else "lost-report", admin=admin) as client:
        return await ask(client)


async def _answered(c: E2ECluster, ask: Callable[[Client], Awaitable[T]],
                    admin: bool = False) -> T | None:
    """``ask`` of the gateway as the project (or its admin); None if the gateway died
    before its answer left (the report it kills itself at came first): asked again,
    under the same request id, of the gateway started again, it answers with what it
    made."""
    async with c.client("admin" if admin else "lost-report", admin=admin) as client:
        try:
            return await ask(client)
        except PeerGone:
            return None


async def _again_once_killed_at(c: E2ECluster, mark: Path) -> None:
    """Once the gateway has killed itself at the point ``mark`` names: the points
    disarmed, and the gateway started again."""
    await eventually(mark.exists, timeout=20)
    del c.cluster.env[failpoints.ENV], c.cluster.env[failpoints.ENV_DIR]
    _gateway_again(c)


def _gateway_armed(c: E2ECluster, marks: Path, *points: str) -> None:
    """The gateway started again with these failpoints armed (each kills it once, and
    leaves its mark in ``marks``)."""
    c.cluster.env.update({failpoints.ENV: ",".join(points), failpoints.ENV_DIR: str(marks)})
    _gateway_again(c)


def _gateway_again(c: E2ECluster) -> None:
    """The gateway started again (with the cluster's env), whether it was running or
    had killed itself at a failpoint."""
    proc = c.cluster.procs.pop("gateway")
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)
    c.cluster.spawn("gateway")

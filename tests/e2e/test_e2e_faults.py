"""Faults end to end: drivers that fail on purpose, and a node that goes away.

Each scenario has a dedicated cluster (``cluster_factory``), started once per
scenario and shared by the tests of that scenario (separate projects).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from cinderblock.actors.gateway.groups import COPIES_AFTER_ONE
from cinderblock.actors.runtime import failpoints
from cinderblock.protocol.client.client import Client, SyncClient, VolumeError
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.wire.codec import pack
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput, PeerGone
from cinderblock.protocol.wire.keys import load_secret
from cinderblock.protocol.wire.schema import dump
from tests.attack.peers import Peer, server_key
from tests.conftest import (
    E2ECluster,
    EventTap,
    eventually,
    flow_events,
    flow_states,
    peers_let_go,
    tcp_connections,
)

MANAGER_TASKS = ["ExtractVolumeRefTask", "OnFailureRescheduleTask", "ExtractVolumeSpecTask",
                 "NotifyVolumeActionTask", "CreateVolumeFromSpecTask",
                 "CreateVolumeOnFinishTask"]
FAULTY = {"faults": ("create_volume",)}


@pytest.fixture(scope="module")
def first_node_faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-1 fails every create; it is also much larger, so it is always tried first."""
    return cluster_factory(node_overrides={
        "node-1": {**FAULTY, "capacity_gb": 1000.0},
        "node-2": {"capacity_gb": 100.0},
    })


@pytest.fixture(scope="module")
def every_node_faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """Four nodes that all fail: more nodes than the scheduler's three attempts."""
    return cluster_factory(nodes=4, node_overrides={
        f"node-{i}": FAULTY for i in range(1, 5)
    })


def _manager_runs(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The volume_create_manager runs in the events, in the order they started.

    Events of one actor arrive in order, but the hub interleaves actors as they
    come: a node's events can overtake those of a node that ran earlier, so
    runs are ordered by their first event's timestamp, not by arrival.
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    for e in flow_events(events, "volume_create_manager"):
        runs.setdefault(e["flow_id"], []).append(e)
    return sorted(runs.values(), key=lambda run: run[0]["ts"])


def _count(events: list[dict[str, Any]], volume_id: str, flow: str, state: str) -> int:
    return sum(1 for e in events if e["kind"] == "flow" and e["volume_id"] == volume_id
               and e["flow"] == flow and e["state"] == state)


def _sequence(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["kind"], e.get("task", ""), e["state"]) for e in events]


def _failed_create_sequence() -> list[tuple[str, str, str]]:
    """A manager flow whose driver create failed: reverts newest first, the failed task too."""
    ran = MANAGER_TASKS[:5]
    seq = [("flow", "", "PENDING"), ("flow", "", "RUNNING")]
    for t in ran:
        failed = t == "CreateVolumeFromSpecTask"
        seq += [("task", t, "RUNNING"), ("task", t, "FAILURE" if failed else "SUCCESS")]
    seq += [("flow", "", "FAILURE"), ("flow", "", "REVERTING")]
    for t in reversed(ran):
        seq += [("task", t, "REVERTING"), ("task", t, "REVERTED")]
    return [*seq, ("flow", "", "REVERTED")]


# ---- one node fails: rescheduled ------------------------------------------------------
async def test_a_volume_whose_node_fails_is_rescheduled_and_becomes_available_on_the_other(
    first_node_faulty: E2ECluster, project: str
) -> None:
    cluster = first_node_faulty
    async with cluster.client(project) as c, EventTap(cluster) as tap:
        vol = await c.create_volume(1, name="rescheduled", wait=True)

        assert vol.status == "available"
        assert vol.host == "node-2@file"
        await tap.wait_until(lambda evs: (
            _count(evs, vol.id, "volume_create_manager", "REVERTED") == 1
            and _count(evs, vol.id, "volume_create_manager", "SUCCESS") == 1
            and _count(evs, vol.id, "volume_create_scheduler", "SUCCESS") == 2))
        events = tap.of_volume(vol.id)
        quota = await c.show_quota()

    runs = _manager_runs(events)
    assert len(runs) == 2
    failed, succeeded = runs
    assert {e["actor"] for e in failed} == {"node-1"}
    assert _sequence(failed) == _failed_create_sequence()
    failure = next(e for e in failed if e["kind"] == "flow" and e["state"] == "FAILURE")
    assert "injected fault: create_volume" in failure["reason"]
    assert {e["actor"] for e in succeeded} == {"node-2"}
    assert flow_states(succeeded) == ["PENDING", "RUNNING", "SUCCESS"]
    scheduler = flow_events(events, "volume_create_scheduler")
    assert flow_states(scheduler) == ["PENDING", "RUNNING", "SUCCESS"] * 2
    assert cluster.node_files()["node-1"] == set()
    assert cluster.volume_file("node-2", vol.id).exists()
    assert (quota.in_use["volumes"], quota.in_use["gigabytes"]) == (1, 1)


async def test_several_creates_with_a_failing_node_all_end_on_the_healthy_node(
    first_node_faulty: E2ECluster, project: str
) -> None:
    cluster = first_node_faulty
    async with cluster.client(project) as c:
        vols = await asyncio.gather(*(c.create_volume(1, wait=True) for _ in range(8)))
        quota = await c.show_quota()

    assert {(v.status, v.host) for v in vols} == {("available", "node-2@file")}
    assert cluster.node_files()["node-1"] == set()
    assert {f"volume-{v.id}" for v in vols} <= cluster.node_files()["node-2"]
    assert (quota.in_use["volumes"], quota.reserved["volumes"]) == (8, 0)


# ---- every node fails: error after at most three attempts --------------------------------
async def test_when_every_node_fails_the_volume_ends_in_error_after_three_attempts(
    every_node_faulty: E2ECluster, project: str
) -> None:
    cluster = every_node_faulty
    async with cluster.client(project) as c, EventTap(cluster) as tap:
        with pytest.raises(VolumeError) as err:
            await c.create_volume(1, name="doomed", wait=True)
        vol = err.value.volume
        await tap.wait_until(lambda evs: (
            _count(evs, vol.id, "volume_create_scheduler", "REVERTED") == 1
            and _count(evs, vol.id, "volume_create_manager", "REVERTED") >= 3
            and any(e["kind"] == "volume" and e["volume_id"] == vol.id
                    and e["status"] == "error" for e in evs)))
        await tap.caught_up()  # a fourth attempt, if there were one, would show up now
        events = tap.of_volume(vol.id)
        shown = await c.show_volume(vol.id)

    assert vol.status == "error" and shown.status == "error" and shown.host is None
    assert vol.reason is not None
    assert "injected fault: create_volume" in vol.reason
    assert "attempts 3" in vol.reason
    runs = _manager_runs(events)
    assert len(runs) == 3, "the scheduler tries at most three times"
    assert len({run[0]["actor"] for run in runs}) == 3, "each attempt on another node"
    for run in runs:
        assert _sequence(run) == _failed_create_sequence()
    scheduler = flow_events(events, "volume_create_scheduler")
    assert flow_states(scheduler) == ["PENDING", "RUNNING", "SUCCESS"] * 3 + [
        "PENDING", "RUNNING", "FAILURE", "REVERTING", "REVERTED"]
    assert [e["status"] for e in events if e["kind"] == "volume"] == ["creating", "error"]
    assert cluster.all_files() == set(), "no volume files may be left on the nodes"


async def test_failed_creates_on_every_node_leave_no_files_and_keep_quota_like_cinder(
    every_node_faulty: E2ECluster, project: str
) -> None:
    cluster = every_node_faulty
    async with cluster.client(project) as c:
        results = await asyncio.gather(
            *(c.create_volume(2, wait=True) for _ in range(5)), return_exceptions=True)
        quota = await c.show_quota()
        listed = await c.list_volumes()

    assert all(isinstance(r, VolumeError) for r in results), results
    assert {v.status for v in listed} == {"error"} and len(listed) == 5
    assert cluster.all_files() == set()
    # The errored volumes keep their quota until deleted, as in Cinder.
    assert (quota.in_use["volumes"], quota.in_use["gigabytes"]) == (5, 10)
    assert (quota.reserved["volumes"], quota.reserved["gigabytes"]) == (0, 0)


# ---- a node goes away -------------------------------------------------------------------
@pytest.fixture(scope="module")
def node_1_stopped(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """A healthy two-node cluster whose node-1 process was then stopped, and whose
    scheduler and gateway have seen it go."""
    cluster = cluster_factory()
    connections = tcp_connections(cluster.cluster.procs["node-1"].pid)
    cluster.cluster.stop_actor("node-1")
    asyncio.run(peers_let_go(connections))
    return cluster


async def test_creates_go_to_the_remaining_node_when_a_node_has_stopped(
    node_1_stopped: E2ECluster, project: str
) -> None:
    cluster = node_1_stopped
    async with cluster.client(project) as c:
        vols = await asyncio.gather(*(c.create_volume(1, wait=True, timeout=10)
                                      for _ in range(4)))
        backends = {b.backend for b in await c.list_backends()}

    assert {(v.status, v.host) for v in vols} == {("available", "node-2@file")}
    assert backends == {"node-2@file"}, "the scheduler forgets a node it cannot reach"


async def _node_listed(admin: Client, backend: str) -> bool:
    return backend in {b.backend for b in await admin.list_backends()}


def _publish(pub: Peer, stats: BackendStatsMsg, for_s: float) -> None:
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        pub.sock.send_multipart([b"stats", pack(dump(stats))])
        time.sleep(0.05)


@pytest.fixture
def node_2_gone_scheduler_new(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2 stopped, then the scheduler restarted: it never heard from node-2."""
    c = cluster_factory()
    c.cluster.stop_actor("node-2")
    c.cluster.stop_actor("scheduler")
    c.cluster.spawn("scheduler")
    return c


async def test_a_nodes_stats_count_only_once_its_hello_says_where_to_reach_it(
    node_2_gone_scheduler_new: E2ECluster, project: str,
) -> None:
    """A node's stats and its hello come on two connections, either first. A (re)started
    scheduler that took stats from a node it has no way to yet would place a create
    it cannot send (the node forgotten, the create failed): the stats wait for the
    hello. Here node-2's key speaks for a node-2 that is gone, to a fresh scheduler."""
    c = node_2_gone_scheduler_new
    keys = Path(c.cfg.data_dir, "keys")
    own = load_secret(keys / "node-2.key_secret")
    stats = BackendStatsMsg("node-2@file", "node-2", "nova", 5000.0, 5000.0, 0.0, 0.0,
                            timestamp=time.time())
    pub = Peer(zmq.PUB, c.cfg.stats, own=own, server=server_key(c.cfg.data_dir, "scheduler"))
    node = Peer(zmq.DEALER, c.cfg.scheduler, own=own, identity=b"node-2/hello-test",
                server=server_key(c.cfg.data_dir, "scheduler"))
    try:
        async with c.client("admin", admin=True) as admin, c.client(project) as client:
            await eventually(lambda: _node_listed(admin, "node-1@file"), timeout=10)
            await asyncio.to_thread(_publish, pub, stats, 1.5)
            assert not await _node_listed(admin, "node-2@file"), "stats taken before a hello"
            node.envelope("ping", {}, kind="cast")
            await asyncio.to_thread(_publish, pub, stats, 0.5)
            assert await _node_listed(admin, "node-2@file")
            vol = await client.create_volume(1)  # node-2 has the room: the create is cast
            cast = await asyncio.to_thread(node.reply)  # to where the hello came from
            assert cast[4] == "node.create_volume" and cast[6]["request"]["volume_id"] == vol.id
    finally:
        pub.close()
        node.close()


# ---- the gateway restarts ------------------------------------------------------------------
@pytest.fixture(scope="module")
def restartable(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory()


def _restart_gateway(cluster: E2ECluster) -> None:
    cluster.cluster.stop_actor("gateway")
    cluster.cluster.spawn("gateway")
    deadline = time.monotonic() + 20
    while True:
        try:
            with SyncClient(cluster.gateway, key=cluster.user_key(), timeout=0.5) as c:
                c.ping()
                return
        except CinderblockError:
            assert time.monotonic() < deadline, "the gateway did not come back"


def test_volumes_and_request_ids_survive_a_gateway_restart(
    restartable: E2ECluster, project: str
) -> None:
    cluster = restartable
    with SyncClient(cluster.gateway, project=project,
                    key=cluster.user_key(project), timeout=10.0) as c:
        vol = c.create_volume(2, name="durable", request_id="rid-durable", wait=True)

    _restart_gateway(cluster)

    with SyncClient(cluster.gateway, project=project,

                    key=cluster.user_key(project), timeout=10.0) as c:
        again = c.create_volume(2, name="durable", request_id="rid-durable", wait=True)
        shown = c.show_volume(vol.id)
        listed = c.list_volumes()
        quota = c.show_quota()
        fresh = c.create_volume(1, wait=True)
    assert again.id == vol.id
    assert (shown.status, shown.host, shown.name) == ("available", vol.host, "durable")
    assert [v.id for v in listed] == [vol.id]
    assert (quota.in_use["volumes"], quota.in_use["gigabytes"]) == (1, 2)
    assert fresh.status == "available"


async def test_group_and_group_snapshot_request_ids_survive_a_gateway_restart(
    restartable: E2ECluster, project: str
) -> None:
    """A group's create, a group snapshot's and a create-from-src, each sent again under
    its request id after the gateway restarted, answer what the first made; the same id
    with another request is refused; nothing more is made or counted."""
    cluster, tag = restartable, uuid.uuid4().hex[:8]
    async with cluster.client("admin", admin=True) as admin, cluster.client(project) as c:
        await admin.create_group_type(f"g-{tag}")
        await admin.create_type(f"t-{tag}")
        group = await c.create_group(f"g-{tag}", [f"t-{tag}"], request_id=f"g-{tag}")
        await c.create_volume(1, volume_type=f"t-{tag}", group_id=group.id, wait=True)
        snap = await c.create_group_snapshot(group.id, request_id=f"gs-{tag}", wait=True)
        copy = await c.create_group_from_src(group_snapshot_id=snap.id,
                                             request_id=f"src-{tag}")
        before = await c.show_quota()

    await asyncio.to_thread(_restart_gateway, cluster)

    async with cluster.client(project) as c:
        again = await c.create_group(f"g-{tag}", [f"t-{tag}"], request_id=f"g-{tag}")
        snap_again = await c.create_group_snapshot(group.id, request_id=f"gs-{tag}")
        copy_again = await c.create_group_from_src(group_snapshot_id=snap.id,
                                                   request_id=f"src-{tag}")
        with pytest.raises(InvalidInput, match="already used for a different request"):
            await c.create_group(f"g-{tag}", [f"t-{tag}"], name="other", request_id=f"g-{tag}")
        assert (again.id, snap_again.id, copy_again.id) == (group.id, snap.id, copy.id)
        assert snap_again.status == "available"
        assert sorted(g.id for g in await c.list_groups()) == sorted([group.id, copy.id])
        assert [s.id for s in await c.list_group_snapshots()] == [snap.id]
        after = await c.show_quota()
        assert (after.in_use["groups"], after.in_use["snapshots"]) == (
            before.in_use["groups"], before.in_use["snapshots"])


async def test_a_create_from_src_a_gateway_kill_cut_short_is_finished_by_its_retry(
    restartable: E2ECluster, project: str, tmp_path: Path
) -> None:
    """The gateway is killed after the first of three copies; sent again under its
    request id after the restart, the create-from-src makes the two still missing (the
    first is answered, not made again) and the group is ``available``, counted once."""
    cluster, tag, point = restartable, uuid.uuid4().hex[:8], COPIES_AFTER_ONE.name
    async with cluster.client("admin", admin=True) as admin, cluster.client(project) as c:
        await admin.create_group_type(f"g-{tag}")
        await admin.create_type(f"t-{tag}")
        group = await c.create_group(f"g-{tag}", [f"t-{tag}"])
        for _ in range(3):
            await c.create_volume(1, volume_type=f"t-{tag}", group_id=group.id, wait=True)
        snap = await c.create_group_snapshot(group.id, wait=True)
        before = await c.show_quota()
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.cluster.env.update({failpoints.ENV: point, failpoints.ENV_DIR: str(marks)})
    try:
        await asyncio.to_thread(_restart_gateway, cluster)
        async with cluster.client(project) as c:
            with pytest.raises(PeerGone):
                await c.create_group_from_src(group_snapshot_id=snap.id,
                                              request_id=f"src-{tag}")
    finally:
        del cluster.cluster.env[failpoints.ENV], cluster.cluster.env[failpoints.ENV_DIR]
    assert (marks / point).exists()
    await asyncio.to_thread(_restart_gateway, cluster)

    async with cluster.client(project) as c:
        (cut,) = [g for g in await c.list_groups() if g.id != group.id]
        assert (cut.status, len(cut.volumes)) == ("creating", 1)
        copy = await c.create_group_from_src(group_snapshot_id=snap.id, request_id=f"src-{tag}")
        assert (copy.id, copy.status, len(copy.volumes)) == (cut.id, "available", 3)
        assert cut.volumes[0] in copy.volumes
        for volume_id in copy.volumes:
            if volume_id == cut.volumes[0]:  # its node may have reported to the dead gateway
                made = await c.show_volume(volume_id)  # (the reconciler's to mend, later)
                assert made.status in ("creating", "available")
            else:
                made = await c.wait_for_status(volume_id, timeout=30)
            assert made.group_id == copy.id
        assert len(await c.list_volumes()) == 6  # three and their three copies, once each
        after = await c.show_quota()
        assert (after.in_use["groups"], after.in_use["volumes"]) == (
            before.in_use["groups"] + 1, before.in_use["volumes"] + 3)
        again = await c.create_group_from_src(group_snapshot_id=snap.id,
                                              request_id=f"src-{tag}")
        assert (again.id, again.status, again.volumes) == (copy.id, "available", copy.volumes)


def test_a_call_the_gateway_dies_before_answering_fails_within_seconds_and_the_next_goes_on(
    restartable: E2ECluster, project: str
) -> None:
    """The real gateway (CURVE) takes a call while frozen and is killed: the client hears
    its connection close long before its 30 s deadline, and its next call reaches the
    gateway started again."""
    cluster = restartable
    gateway = cluster.cluster.procs["gateway"]
    with SyncClient(cluster.gateway, project=project,
                    key=cluster.user_key(project), timeout=30.0) as c:
        c.ping()  # connected: the handshake is done
        os.kill(gateway.pid, signal.SIGSTOP)
        killer = threading.Timer(0.5, os.kill, (gateway.pid, signal.SIGKILL))
        killer.start()
        began = time.monotonic()
        try:
            with pytest.raises(PeerGone, match="closed before it answered"):
                c.list_volumes()
        finally:
            killer.join()
            gateway.wait()
        assert time.monotonic() - began < 10.0
        _restart_gateway(cluster)
        assert c.list_volumes() == []


def test_a_delete_right_after_a_gateway_restart_waits_for_its_node_to_say_hello(
    restartable: E2ECluster, project: str
) -> None:
    """A restarted gateway answers before its nodes said hello on its new socket (they
    do within a heartbeat): a delete that comes first waits for its node instead of
    failing with "peer 'node-1' is not connected" (it did, about one time in four)."""
    cluster = restartable
    with SyncClient(cluster.gateway, project=project,
                    key=cluster.user_key(project), timeout=10.0) as c:
        vols = [c.create_volume(1, wait=True) for _ in range(4)]
    for vol in vols:
        _restart_gateway(cluster)
        with SyncClient(cluster.gateway, project=project,
                        key=cluster.user_key(project), timeout=10.0) as c:
            gone = c.delete_volume(vol.id, wait=True)
        assert gone.status == "deleted"

"""Liveness from heartbeats, on one machine: a node frozen (SIGSTOP) with a create in
hand is down within 5 s, gets no new work, its create ends in ``error`` with the
reason, and it is up again within seconds of SIGCONT; while quota or the scheduler
is frozen, a create fails at once with ``unavailable``. (tests/e2e/test_e2e_multihost.py
does the same across network namespaces, cutting links instead.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from cinderblock.actors.runtime.config import ClusterConfig, free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.client.status_waits import VolumeError
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError, Timeout, Unavailable
from cinderblock.storage_node.node import HELLO_WAIT_S
from tests.conftest import E2ECluster, EventTap, eventually, every_actor_answers
from tests.e2e.test_e2e_attach import CONNECTOR
from tests.nbd_tls import requires

DOWN_WITHIN_S = 5.0
BACK_WITHIN_S = 5.0
HEARTBEAT_S = ClusterConfig.heartbeat_s  # the defaults, not the e2e suite's quicker ones


@contextlib.contextmanager
def frozen(c: E2ECluster, name: str) -> Iterator[None]:
    pid = c.cluster.procs[name].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def backend_state(client: Client, backend: str) -> bool | None:
    """Whether ``backend list`` shows it up (None: not listed)."""
    for b in await client.list_backends():
        if b.backend == backend:
            return b.up
    return None


@pytest.fixture(scope="module")
def two_nodes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-1 is the heavier (creates go there first) and never finishes a create."""
    return cluster_factory(heartbeat_s=HEARTBEAT_S, node_overrides={
        "node-1": {"faults": ("stall:create_volume",), "capacity_gb": 1000.0},
        "node-2": {"capacity_gb": 100.0}})


async def test_a_frozen_node_is_down_within_5s_its_create_fails_and_it_comes_back(
    two_nodes: E2ECluster,
) -> None:
    c = two_nodes
    async with c.client("liveness", timeout=10.0) as client, \
            c.client("admin", admin=True) as admin:
        stuck = await client.create_volume(1, name="in-hand")
        await asyncio.sleep(1.0)  # node-1 has it, stalled
        assert (await client.show_volume(stuck.id)).status == "creating"
        with frozen(c, "node-1"):
            stopped = time.monotonic()
            await eventually(lambda: _is(admin, "node-1@file", False), timeout=DOWN_WITHIN_S)
            assert time.monotonic() - stopped < DOWN_WITHIN_S
            with pytest.raises(VolumeError, match="node-1@file stopped reporting") as failed:
                await client.wait_for_status(stuck.id, "available", timeout=5)
            assert failed.value.volume.status == "error"
            for _ in range(3):  # no new work for the frozen node
                vol = await client.create_volume(1, wait=True, timeout=10)
                assert vol.host == "node-2@file"
        thawed = time.monotonic()
        await eventually(lambda: _is(admin, "node-1@file", True), timeout=BACK_WITHIN_S)
        assert time.monotonic() - thawed < BACK_WITHIN_S
        later = await client.create_volume(1, name="after")
        await asyncio.sleep(1.0)
        # node-1 is picked again (it stalls, as configured): the create sits there
        assert (await client.show_volume(later.id)).status == "creating"
        assert (await client.show_volume(stuck.id)).status == "error"


async def _stalled_on_node_1(client: Client, admin: Client, name: str) -> Volume:
    """A create that node-1 holds, stalled (the fixture's node-1 stalls its creates)."""
    await eventually(lambda: _is(admin, "node-1@file", True), timeout=BACK_WITHIN_S)
    stuck = await client.create_volume(1, name=name)
    await asyncio.sleep(1.0)  # node-1 has it, stalled
    return stuck


def _kill_node_1(c: E2ECluster) -> None:
    """SIGKILL node-1, outside ``up``'s supervision (the test starts it again)."""
    proc = c.cluster.procs.pop("node-1")
    proc.kill()
    proc.wait(timeout=10)


def _start_node_1_unheard(c: E2ECluster) -> None:
    """node-1 started again without its faults, and its stats published where nobody
    listens: what the scheduler learns of the new process comes on the connection its
    hellos come from."""
    cfg = c.cluster.cfg
    c.cluster.cfg = replace(cfg, stats=f"tcp://127.0.0.1:{free_port()}",
                            nodes=tuple(replace(n, faults=()) for n in cfg.nodes))
    c.cluster.cfg.save(c.cluster.config_path)
    c.cluster.spawn("node", "node-1")


async def _is(admin: Client, backend: str, up: bool) -> bool:
    try:
        return await backend_state(admin, backend) is up
    except Unavailable:  # the scheduler was frozen and the gateway has not heard it since
        return False


@pytest.mark.parametrize("service", ["quota", "scheduler"])
async def test_while_quota_or_the_scheduler_is_frozen_creates_fail_at_once_with_unavailable(
    two_nodes: E2ECluster, service: str,
) -> None:
    c = two_nodes
    async with c.client(f"peer-{service}", timeout=20.0) as client:
        with frozen(c, service):
            await asyncio.sleep(ClusterConfig.stale_after_s + 2 * HEARTBEAT_S)
            asked = time.monotonic()
            with pytest.raises(Unavailable, match=r"has not answered for .* until it is back"):
                await client.create_volume(1, volume_type="FCVolumeType")
            assert time.monotonic() - asked < 1.0
            assert await client.list_volumes() == []  # nothing half-made
        async def created() -> bool:
            try:
                vol = await client.create_volume(1, name="after", wait=False)
            except Unavailable:
                return False
            return vol.status == "creating"
        await eventually(created, timeout=BACK_WITHIN_S, every=0.2)


async def test_a_create_waiting_on_a_frozen_quota_fails_once_quota_is_judged_down(
    two_nodes: E2ECluster,
) -> None:
    """A create asked just after quota froze (not yet judged down) waits for its
    reserve until the gateway judges quota down with its connection open: then it
    fails, saying so, within ``stale_after_s`` and a few heartbeats, not at the quota
    call's 10 s deadline. Thawed, quota takes the late reserve, and the create's revert
    gives it back: nothing is left made or reserved."""
    c = two_nodes
    async with c.client("peer-quota-frozen", timeout=20.0) as client:
        with frozen(c, "quota"):
            asked = time.monotonic()
            with pytest.raises(CinderblockError, match=r"quota service has not answered "
                                                       r"for 2\.5s, its connection open"):
                await client.create_volume(1, name="waiting", request_id="frozen-quota")
            assert time.monotonic() - asked < ClusterConfig.stale_after_s + 3.0  # not 10 s
            assert await client.list_volumes() == []
        async def nothing_reserved() -> bool:
            try:
                quota = await client.show_quota()
            except Unavailable:  # quota is down until its next ping's answer
                return False
            return quota.in_use["volumes"] == 0 and quota.reserved["volumes"] == 0
        await eventually(nothing_reserved, timeout=15.0, every=0.2)
        assert await client.list_volumes() == []
    async with c.client("admin") as admin:
        stats = await admin.cluster_stats(timeout=10)
    gateway = next(a for a in stats.actors if a.actor == "gateway")
    assert gateway.details["quota_calls_given_up"] >= 1  # the create's reserve, at least


async def test_a_crashed_node_is_down_within_5s_its_create_fails_and_its_restart_rejoins(
    two_nodes: E2ECluster,
) -> None:
    """Its create fails naming the node, so that its delete removes what the node made
    (found by the state machine, test_e2e_stateful.py: the volume was in ``error`` with
    no host, its delete removed the record only, and the file stayed for good)."""
    c = two_nodes
    async with c.client("crash", timeout=10.0) as client, \
            c.client("admin", admin=True) as admin:
        stuck = await _stalled_on_node_1(client, admin, "in-hand")
        # the moment a node dies in: its driver made the volume's file (a sparse file of
        # the volume's size, as the file backend makes it), the report is not sent yet
        made = c.volume_file("node-1", stuck.id)
        with open(made, "wb") as f:
            f.truncate(1 << 30)
        _kill_node_1(c)
        crashed = time.monotonic()
        await eventually(lambda: _is(admin, "node-1@file", False), timeout=DOWN_WITHIN_S)
        assert time.monotonic() - crashed < DOWN_WITHIN_S
        with pytest.raises(VolumeError, match="node-1@file stopped reporting"):
            await client.wait_for_status(stuck.id, "available", timeout=5)
        assert (await client.show_volume(stuck.id)).host == "node-1@file"
        c.cluster.spawn("node", "node-1")
        await eventually(lambda: _is(admin, "node-1@file", True), timeout=20.0)
        assert (await client.show_volume(stuck.id)).status == "error"
        await client.delete_volume(stuck.id, wait=True)
        assert not made.exists()


@pytest.fixture
def one_node_stalled(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, stale_after_s=60.0,
                           node_overrides={"node-1": {"faults": ("stall:create_volume",)}})


async def test_a_restarted_node_is_known_from_its_first_hello_not_its_first_stats(
    one_node_stalled: E2ECluster,
) -> None:
    """The hello of a node's new process is the moment its casts start going to that
    process: what the previous one held fails then, and what is cast after it is the
    new one's to finish. Here the new process's published stats never reach the
    scheduler (only its first report, which comes behind its hello), so only the hello
    can tell, and stale_after_s is long. The scheduler asks the new process about
    them: the one whose file the old process had made (it died before its report) is
    ``available``, as that report would have made it; the other was lost."""
    c = one_node_stalled
    async with c.client("hello", timeout=15.0) as client, EventTap(c) as tap:
        stuck = await client.create_volume(1, name="held-by-the-old-process")
        made = await client.create_volume(1, name="made-by-the-old-process")
        await tap.wait_until(lambda evs: {stuck.id, made.id} <= {  # the old process has both
            e.get("volume_id") for e in evs if e["actor"] == "node-1"})
        with open(c.volume_file("node-1", made.id), "wb") as f:  # its driver made it whole
            f.truncate(1 << 30)
        _kill_node_1(c)
        _start_node_1_unheard(c)
        with pytest.raises(VolumeError, match="node-1@file was restarted"):
            await client.wait_for_status(stuck.id, "available", timeout=15)
        finished = await client.wait_for_status(made.id, "available", timeout=15)
        assert finished.host == "node-1@file"
        later = await client.create_volume(1, name="cast-to-the-new-process", wait=True)
        assert later.status == "available" and later.host == "node-1@file"


@pytest.fixture
def one_small_node_stalled(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, stale_after_s=60.0, node_overrides={
        "node-1": {"faults": ("stall:create_volume",), "capacity_gb": 2.0}})


async def test_a_restarted_nodes_lost_creates_no_longer_count_against_its_room(
    one_small_node_stalled: E2ECluster,
) -> None:
    """A node with room for two volumes holds two creates (stalled) and is killed: the
    new process has them not, and its room is whole again as soon as the scheduler
    knows them lost. The new process's first report comes behind its hello, on the
    same connection (its published stats lead nowhere here): it is in the scheduler's
    index before the scheduler asks the process about the lost creates. The scheduler
    had counted those creates' placements against the node until their expiry (5
    minutes), so that the first create after the restart found no room (the kill suite
    found it: a node killed with a burst in flight refused the restores of its
    backups); and it placed with the old process's last figures, which may count them
    as work in flight, until the new process's first published stats (CI asked then)."""
    c = one_small_node_stalled
    async with c.client("room", timeout=15.0) as client, \
            c.client("admin", admin=True) as admin:
        held = [await client.create_volume(1, name=f"held-{i}") for i in range(2)]
        with pytest.raises(VolumeError, match="No backend has capacity for 1 GiB"):
            await client.create_volume(1, name="no-room", wait=True, timeout=15)
        _kill_node_1(c)
        _start_node_1_unheard(c)
        for vol in held:
            with pytest.raises(VolumeError, match="node-1@file was restarted"):
                await client.wait_for_status(vol.id, "available", timeout=15)
        (node,) = [b for b in await admin.list_backends() if b.backend == "node-1@file"]
        assert node.free_capacity_gb >= 2.0  # as the scheduler counts it, placements too
        after = await client.create_volume(1, name="after-the-restart", wait=True,
                                           timeout=15)
        assert after.status == "available" and after.host == "node-1@file"


@pytest.fixture
def one_node(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, backend="null")


@pytest.fixture
def one_file_node(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1)


async def test_a_node_started_while_the_scheduler_is_away_reports_once_it_is_back(
    one_node: E2ECluster,
) -> None:
    """A node's first stats wait for the scheduler to answer its hello, but not for
    ever (``HELLO_WAIT_S``): started while the scheduler is frozen, it is up once the
    scheduler is back (down meanwhile: its last stats are older than stale_after_s)."""
    c = one_node
    async with c.client("admin", admin=True) as admin:
        with frozen(c, "scheduler"):
            old = c.cluster.procs.pop("node-1")
            old.kill()
            old.wait(timeout=10)
            c.cluster.spawn("node", "node-1")
            await asyncio.sleep(HELLO_WAIT_S + 1.0)  # its wait for an answer is over
        await eventually(lambda: _is(admin, "node-1@null", True), timeout=10.0)


async def test_a_create_only_a_node_just_restarted_can_take_waits_for_its_new_process(
    one_node: E2ECluster,
) -> None:
    """The node's process dies and is started again at once. A create that comes before
    the new process's hello has nowhere else to go: the scheduler's index still has the
    node (its last stats are fresh), and its route leads to the dead process. The create
    waits for the new process (the node's 5 s grace, as the gateway's casts to nodes
    wait) and is made there. Before, it failed at once ("Not connected: node-1@null"):
    the kill suite found it, a backup's restore into a new volume, which only the
    backup's node can make, asked just after that node was killed."""
    c = one_node
    async with c.client("restarted", timeout=15.0) as client:
        await client.create_volume(1, wait=True)  # the node is known, and reached
        _kill_node_1(c)
        c.cluster.spawn("node", "node-1")
        vol = await client.create_volume(1, wait=True, timeout=15)
    assert vol.status == "available" and vol.host == "node-1@null"


async def _node_stats(admin: Client, host: str) -> dict[str, Any]:
    stats = await admin.cluster_stats(timeout=10)
    return next(a.details for a in stats.actors if a.actor == host)


@requires("openssl")
async def test_an_attach_to_a_frozen_node_is_given_up_once_it_is_silent_and_leaves_no_export(
    one_file_node: E2ECluster,
) -> None:
    """The gateway hears every node's hello each heartbeat: an attachment's export asked
    of a node that froze is given up once the node has been silent for stale_after_s,
    not at the call's 15 s deadline, and the attachment is left as it was. What was
    asked still reached the node: thawed, it makes the export and then closes it (the
    flow's revert asked it to), and the next attach works."""
    c = one_file_node
    async with c.client("attacher", timeout=30.0) as client, \
            c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        att = await client.create_attachment(vol.id)
        with frozen(c, "node-1"):
            started = time.monotonic()
            with pytest.raises(Timeout, match=r"no reply to node\.export: storage node "
                                              r"node-1 has not been heard from for"):
                await client.update_attachment(att.id, CONNECTOR)
            took = time.monotonic() - started
        assert took < 10.0  # stale_after_s (2.5 s) and a heartbeat, not the call's 15 s
        assert (await client.show_attachment(att.id)).status == "reserved"
        gateway = await _node_stats(admin, "gateway")
        assert gateway["node_calls_given_up"] >= 2  # the export, and its revert's unexport
        await eventually(lambda: _exports_on_node_1(admin, 0), timeout=10.0)
        attached = await client.update_attachment(att.id, CONNECTOR)
        assert attached.status == "attaching" and attached.connection_info["data"]["tls"]
        assert await _exports_on_node_1(admin, 1)
        await client.delete_attachment(att.id)
        await client.delete_volume(vol.id, wait=True)


async def _exports_on_node_1(admin: Client, count: int) -> bool:
    exports: int = (await _node_stats(admin, "node-1"))["exports"]
    return exports == count


@pytest.fixture
def one_file_node_never_stale(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, stale_after_s=60.0)


@requires("openssl")
async def test_a_call_to_a_node_started_again_goes_to_its_new_process_at_its_hello(
    one_file_node_never_stale: E2ECluster,
) -> None:
    """An attachment's export is asked of node-1's process, which froze; a new node-1
    process starts (its key, another routing id). Its first message ends the old one for
    the gateway: the export asked of it fails then (``PeerGone``) and is asked again of
    the new process, which makes it, instead of the attach waiting out its 15 s
    deadline (the node is never judged silent here: stale_after_s is 60 s)."""
    c = one_file_node_never_stale
    async with c.client("attacher", timeout=30.0) as client:
        vol = await client.create_volume(1, wait=True)
        att = await client.create_attachment(vol.id)
        old = c.cluster.procs.pop("node-1")
        os.kill(old.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            update = asyncio.create_task(client.update_attachment(att.id, CONNECTOR))
            await asyncio.sleep(0.3)  # asked of the old process
            assert not update.done()
            c.cluster.spawn("node", "node-1")
            attached = await update
            took = time.monotonic() - started
        finally:
            old.kill()
            os.kill(old.pid, signal.SIGCONT)
            old.wait(timeout=10)
        assert attached.status == "attaching" and attached.connection_info["data"]["tls"]
        assert took < 10.0  # the new process's start, not the call's 15 s
        await client.delete_attachment(att.id)
        await client.delete_volume(vol.id, wait=True)


async def test_a_backend_list_asked_of_a_frozen_scheduler_is_given_up_once_it_is_silent(
    one_node: E2ECluster,
) -> None:
    """As quota's calls are: the list asked of a scheduler that froze fails once the
    gateway judges it silent with its connection open, not at the call's 10 s; the next
    is refused at once; thawed, it answers again."""
    c = one_node
    async with c.client("admin", admin=True, timeout=20.0) as admin:
        await every_actor_answers(c, admin)
        with frozen(c, "scheduler"):
            started = time.monotonic()
            with pytest.raises(Timeout, match=r"no reply to backend\.list: the scheduler has "
                                              r"not answered for .*, its connection open"):
                await admin.list_backends()
            assert time.monotonic() - started < 6.0  # stale_after_s and a heartbeat
            asked = time.monotonic()
            with pytest.raises(Unavailable, match=r"the scheduler has not answered for .*: "
                                                  r"a backend\.list call is refused"):
                await admin.list_backends()
            assert time.monotonic() - asked < 1.0
        await eventually(lambda: _is(admin, "node-1@null", True), timeout=10.0)


async def test_a_backend_list_asked_of_a_scheduler_that_dies_is_answered_by_the_next(
    one_node: E2ECluster,
) -> None:
    """The list is asked of a scheduler that then dies (frozen first, so that it holds
    the question, then killed) and is started again: the call, lost with its connection,
    is asked again of the new process, which answers it (it waited out its 10 s)."""
    c = one_node
    async with c.client("admin", admin=True, timeout=20.0) as admin:
        await every_actor_answers(c, admin)
        old = c.cluster.procs.pop("scheduler")
        os.kill(old.pid, signal.SIGSTOP)
        try:
            listed = asyncio.create_task(admin.list_backends())
            await asyncio.sleep(0.5)  # asked of the frozen process
            assert not listed.done()
        finally:
            old.kill()
            os.kill(old.pid, signal.SIGCONT)
            old.wait(timeout=10)
        started = time.monotonic()
        c.cluster.respawn("scheduler")
        backends = await listed
        assert [b.backend for b in backends] == ["node-1@null"]
        assert time.monotonic() - started < 8.0  # the new process, not the call's 10 s

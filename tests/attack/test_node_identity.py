"""A storage node acts only as itself: another process that takes its host name (with a
user's key, or another node's) neither receives its work nor speaks for it, whether
the node is up or away; the node itself, restarted with its key, is reachable at
once, even while its old process still holds its old connection."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.keys import load_secret
from cinderblock.protocol.wire.schema import dump
from tests.attack.peers import Peer, server_key, stranger
from tests.conftest import E2ECluster, make_config, running_cluster


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[E2ECluster]:
    with running_cluster(make_config(tmp_path)) as cluster:
        yield cluster


def impostors(cluster: E2ECluster) -> list[Peer]:
    """node-1's name with a user's key, and with node-2's key (a node under another name)."""
    node2 = load_secret(Path(cluster.cfg.data_dir, "keys", "node-2.key_secret"))
    gateway = server_key(cluster.cfg.data_dir, "gateway")
    return [Peer(zmq.DEALER, cluster.gateway, user_key=cluster.user_key("mallory"),
                 identity=b"node-1"),
            Peer(zmq.DEALER, cluster.gateway, own=node2, server=gateway, identity=b"node-1"),
            Peer(zmq.DEALER, cluster.gateway, own=node2, server=gateway,
                 identity=b"node-1/0123456789abcdef")]


def on_node_1(c: SyncClient, count: int) -> list[Volume]:
    made: list[Volume] = []
    while len(made) < count:
        vol = c.create_volume(1, wait=True)
        if vol.host == "node-1@file":
            made.append(vol)
        else:
            c.delete_volume(vol.id, wait=True)
    return made


def wait_started(cluster: E2ECluster, host: str, times: int, timeout: float = 20.0) -> None:
    """Until the node's log says it started ``times`` times (its first casts are out)."""
    log = cluster.cfg.path("logs", f"{host}.log")
    deadline = time.monotonic() + timeout
    while log.read_text().count(f"{host} started") < times:
        assert time.monotonic() < deadline, f"{host} did not start again"
        time.sleep(0.05)
    time.sleep(0.3)  # its hello crosses the loopback


def speak_for_node_1(peers: list[Peer], victim: Volume) -> None:
    for peer in peers:
        peer.envelope("ping", {}, kind="cast")
        for status in ("error", "deleting"):
            peer.envelope("volume.update", {"volume_id": victim.id, "status": status,
                                            "reason": "impostor"}, kind="cast")
        peer.envelope("volume.deleted", {"volume_id": victim.id}, kind="cast")


def test_an_impostor_of_a_running_node_gets_none_of_its_work_and_changes_nothing(
    two_nodes: E2ECluster,
) -> None:
    project = "tenant"
    with SyncClient(two_nodes.gateway, key=two_nodes.user_key(project), timeout=30.0) as c:
        victim, doomed = on_node_1(c, 2)
        peers = impostors(two_nodes)
        try:
            speak_for_node_1(peers, victim)
            time.sleep(0.5)
            c.delete_volume(doomed.id, wait=True)  # the real node-1 gets the cast

            assert all(peer.nothing(500) for peer in peers)
            assert c.show_volume(victim.id).status == "available"
            assert two_nodes.volume_file("node-1", victim.id).exists()
            assert not two_nodes.volume_file("node-1", doomed.id).exists()
        finally:
            for peer in peers:
                peer.close()


def test_an_impostor_of_a_node_that_is_away_gets_nothing_and_the_node_comes_back_at_once(
    two_nodes: E2ECluster,
) -> None:
    project = "tenant"
    cluster = two_nodes.cluster
    with SyncClient(two_nodes.gateway, key=two_nodes.user_key(project), timeout=30.0) as c:
        victim, doomed = on_node_1(c, 2)
        old = cluster.procs.pop("node-1")
        os.kill(old.pid, signal.SIGSTOP)  # away, but its connections stay open
        peers = impostors(two_nodes)
        replacement: subprocess.Popen[bytes] | None = None
        try:
            speak_for_node_1(peers, victim)
            time.sleep(0.5)
            assert all(peer.nothing(500) for peer in peers)
            assert c.show_volume(victim.id).status == "available"

            replacement = cluster.spawn("node", "node-1")  # the same key, a new process
            wait_started(two_nodes, "node-1", times=2)
            started = time.monotonic()
            c.delete_volume(doomed.id, wait=True, timeout=20.0)
            reachable_after = time.monotonic() - started

            assert all(peer.nothing(200) for peer in peers)
            assert not two_nodes.volume_file("node-1", doomed.id).exists()
            assert c.show_volume(victim.id).status == "available"
            assert reachable_after < 5.0  # not after the old connection times out
        finally:
            for peer in peers:
                peer.close()
            old.kill()
            os.kill(old.pid, signal.SIGCONT)
            old.wait()
        assert replacement is not None and replacement.poll() is None


def test_a_node_s_first_report_for_another_node_is_refused_and_changes_nothing(
    two_nodes: E2ECluster,
) -> None:
    """``node.hello`` (a node process's first report, on the connection its hellos come
    from) is taken for the sender's own host only: node-2's key reporting node-1 out of
    room is told why, and node-1's figures stay; with no key, an unknown one or a
    user's, nothing at all comes back."""
    admin_key = two_nodes.user_key("admin", admin=True)
    with SyncClient(two_nodes.gateway, key=admin_key, timeout=10.0) as admin:
        real = {b.backend: b for b in admin.list_backends()}["node-1@file"]
    fake = dump(BackendStatsMsg(real.backend, real.host, real.availability_zone, 0.0, 0.0,
                                0.0, 0.0, timestamp=time.time(), incarnation="forged"))
    scheduler = server_key(two_nodes.cfg.data_dir, "scheduler")
    node2 = load_secret(Path(two_nodes.cfg.data_dir, "keys", "node-2.key_secret"))
    liar = Peer(zmq.DEALER, two_nodes.cfg.scheduler, own=node2, server=scheduler,
                identity=b"node-2/" + os.urandom(4).hex().encode())
    strangers = [Peer(zmq.DEALER, two_nodes.cfg.scheduler, **way) for way in (
        {}, {"own": stranger(), "server": scheduler},
        {"user_key": two_nodes.user_key("mallory")})]
    try:
        liar.envelope("node.hello", fake)
        error = liar.reply()[7]
        assert error["code"] == "forbidden"
        assert "a node reports for its own host only" in error["message"]
        for peer in strangers:
            peer.envelope("node.hello", fake)
        assert all(peer.nothing() for peer in strangers)
    finally:
        for peer in (liar, *strangers):
            peer.close()
    with SyncClient(two_nodes.gateway, key=admin_key, timeout=10.0) as admin:
        now = {b.backend: b for b in admin.list_backends()}["node-1@file"]
    assert now.total_capacity_gb == real.total_capacity_gb > 0

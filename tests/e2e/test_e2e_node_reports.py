"""A storage node speaks only for what its own backend holds: a node's key admits it to
the gateway, but its reports about another node's volumes and snapshots (fail it,
delete it, finish an extend or a revert) are refused, while its reports about its own
are applied as before; and a report of a revert ends only the revert it names. The
node here is a forger holding node-2's real key."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import msgpack
import pytest
import zmq

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.codec import PROTOCOL_VERSION
from cinderblock.protocol.wire.keys import client_keys, curve_client
from tests.conftest import E2ECluster, eventually
from tests.e2e.test_e2e_reconcile import stalling


class ForgedNode:
    """A DEALER holding a node's key, under that node's name (as its routing id must
    be), casting reports by hand."""

    def __init__(self, c: E2ECluster, node: str) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, f"{node}/forger".encode())
        keys = client_keys(c.cluster.key(node))
        assert keys is not None, "the cluster runs with security"
        curve_client(self.sock, *keys)
        self.sock.connect(c.gateway)
        self.ids = iter(range(1, 1 << 30))

    def cast(self, op: str, body: dict[str, Any]) -> None:
        ctx = {"project_id": "forged", "user_id": "forged", "roles": [],
               "request_id": f"req-{uuid.uuid4()}"}
        self.sock.send_multipart([msgpack.packb(
            [PROTOCOL_VERSION, "cast", next(self.ids), None, op, ctx, body, None])])

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def forger(cluster_factory: Callable[..., E2ECluster]) -> Iterator[tuple[E2ECluster,
                                                                          ForgedNode]]:
    c = cluster_factory()
    peer = ForgedNode(c, "node-2")
    yield c, peer
    peer.close()


@pytest.fixture
def stalled_forger(cluster_factory: Callable[..., E2ECluster]
                   ) -> Iterator[tuple[E2ECluster, ForgedNode]]:
    """As ``forger``, on nodes whose reverts never end (so only the forger reports)."""
    c = cluster_factory(node_overrides=stalling("revert_to_snapshot"))
    peer = ForgedNode(c, "node-2")
    yield c, peer
    peer.close()


async def one_on_each_node(client: Client) -> dict[str, Volume]:
    """Volumes until each node holds one: node name -> a volume it holds."""
    held: dict[str, Volume] = {}
    for _ in range(20):
        vol = await client.create_volume(1, wait=True)
        assert vol.host is not None
        held.setdefault(vol.host.partition("@")[0], vol)
        if len(held) == 2:
            return held
    raise AssertionError(f"every volume went to {sorted(held)}")


async def test_a_node_s_reports_about_another_node_s_volumes_are_refused(
    forger: tuple[E2ECluster, ForgedNode],
) -> None:
    c, node2 = forger
    async with c.client("reports") as client:
        held = await one_on_each_node(client)
        theirs, mine = held["node-1"], held["node-2"]
        snap = await client.create_snapshot(theirs.id, wait=True)

        node2.cast("volume.update", {"volume_id": theirs.id, "status": "error",
                                     "reason": "forged"})
        node2.cast("snapshot.update", {"snapshot_id": snap.id, "status": "error",
                                       "reason": "forged"})
        node2.cast("volume.update", {"volume_id": mine.id, "status": "error",
                                     "host": "node-1@file", "reason": "claims node-1's"})
        # the control: node-2's report about its own volume is applied, after the others
        node2.cast("volume.update", {"volume_id": mine.id, "status": "error",
                                     "reason": "its own report"})
        failed = await eventually(lambda: _with_status(client, mine.id, "error"), timeout=10)
        assert failed.reason == "its own report" and failed.host == mine.host
        await asyncio.sleep(0.5)  # the snapshot's handler runs as a task: let it end
        assert (await client.show_volume(theirs.id)).status == "available"
        assert (await client.show_snapshot(snap.id)).status == "available"

        await client.delete_snapshot(snap.id, wait=True)
        await client.delete_volume(theirs.id, wait=True)  # node-1 still answers its own
    log = c.cluster.log_path("gateway").read_text()
    assert log.count("a node reports on its own backend only") >= 3, log[-2000:]


async def test_a_report_of_a_revert_ends_only_the_revert_it_names(
    stalled_forger: tuple[E2ECluster, ForgedNode],
) -> None:
    """A late second report of an earlier revert (the reconciler sent it again) must not
    end the revert in progress: the volume would be ``available`` while its node still
    replaces its bytes. Only the report naming the current revert's id ends it."""
    c, node2 = stalled_forger
    async with c.client("reverts") as client:
        mine = (await one_on_each_node(client))["node-2"]
        snap = await client.create_snapshot(mine.id, wait=True)
        assert (await client.revert_volume(mine.id, snap.id)).status == "reverting"
        revert_id = _revert_id(c, mine.id)

        report = {"volume_id": mine.id, "snapshot_id": snap.id, "status": "available"}
        node2.cast("volume.reverted", {**report, "revert_id": "an-earlier-revert"})
        await asyncio.sleep(0.5)
        assert (await client.show_volume(mine.id)).status == "reverting"
        assert (await client.show_snapshot(snap.id)).status == "restoring"

        node2.cast("volume.reverted", {**report, "revert_id": revert_id})
        done = await eventually(lambda: _with_status(client, mine.id, "available"),
                                timeout=10)
        assert done.reason is None
        assert (await client.show_snapshot(snap.id)).status == "available"
        assert _revert_id(c, mine.id) is None  # ended with the revert, in its transaction
    log = c.cluster.log_path("gateway").read_text()
    assert "volume.reverted for %s, which is not reverting (or not by that revert)" \
        .replace("%s", mine.id) in log, log[-2000:]


def _revert_id(c: E2ECluster, volume_id: str) -> str | None:
    """The id gateway.db keeps for the volume's revert in progress (read only)."""
    path = c.cfg.path("gateway.db")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT revert_id FROM pending_reverts WHERE volume_id=?",
                         (volume_id,)).fetchone()
    return None if row is None else str(row[0])


async def _with_status(client: Client, volume_id: str, status: str) -> Volume | None:
    vol = await client.show_volume(volume_id)
    return vol if vol.status == status else None

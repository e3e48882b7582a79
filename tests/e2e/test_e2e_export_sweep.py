"""A node serves no export the gateway has no attachment for: an admin's force-detach
forgets an attachment whose node is down (as Cinder's does), and once the node is back
and serves its table of exports again, the gateway closes that export as soon as the
node connects (``Gateway.peer_connected``) or, the same process, is heard from again
after its silence (``Gateway.on_ping``), and the reconciler's sweep would in its next
round."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.bench.netcut import break_connections, connections
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import Forbidden, Timeout, Unavailable
from tests.conftest import E2ECluster, eventually, require_root


@pytest.fixture
def swept(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """Rounds every 0.25 s, but nothing stuck for less than 10 minutes is mended: only
    the sweep may close an export here."""
    return cluster_factory(reconcile_every_s=0.25, reconcile_after_s=600.0)


def exported(table: Path) -> set[str]:
    """The attachment ids in a node's table of exports (what it serves after a start)."""
    if not table.exists():
        return set()
    return {e["attachment_id"] for e in json.loads(table.read_text())["exports"].values()}


@pytest.fixture
def no_rounds(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """No reconciler rounds at all: only the node's connection may close an export."""
    return cluster_factory(reconcile_every_s=0)


async def test_a_force_detach_with_its_node_down_forgets_it_and_the_export_is_closed_later(
    swept: E2ECluster,
) -> None:
    await _forgotten_export_closed(swept)


async def test_a_forgotten_export_is_closed_when_its_node_connects_without_a_round(
    no_rounds: E2ECluster,
) -> None:
    """The window in which the host that had the attachment may still reach the volume
    (with its certificate, which the node honours until the export is closed) is the
    node's start to its first message to the gateway, not up to a round."""
    await _forgotten_export_closed(no_rounds)


async def _served(client: Client, volume_id: str, instance: str) -> Attachment:
    """An attachment of the volume, attached and completed: its node serves it."""
    att = await client.create_attachment(volume_id, instance)
    await client.update_attachment(att.id, {"host": "compute-1"})
    await client.complete_attachment(att.id)
    return att


def _node_and_table(c: E2ECluster, vol: Volume) -> tuple[str, Path]:
    """The volume's node and that node's table of exports."""
    assert vol.host is not None
    host = vol.host.partition("@")[0]
    return host, Path(c.cfg.path("nodes", f"{host}.exports.json"))


async def _forgotten_export_closed(c: E2ECluster) -> None:
    async with c.client("attached") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        kept = await client.create_volume(1, wait=True)
        assert vol.host is not None and kept.host is not None
        host, table = _node_and_table(c, vol)
        att = await _served(client, vol.id, "instance-1")
        assert att.id in exported(table)

        proc = c.cluster.procs.pop(host)
        proc.kill()
        proc.wait(timeout=10)
        # a plain delete needs the node: refused at once once the gateway's socket has
        # seen the connection close, or, should the unexport have left before that (a
        # loaded machine), after the node call's timeout; either way error_detaching
        with pytest.raises((Unavailable, Timeout)):
            await client.delete_attachment(att.id)
        assert (await client.show_attachment(att.id)).status == "error_detaching"
        with pytest.raises(Forbidden):
            await client.force_delete_attachment(att.id)

        gone = await admin.force_delete_attachment(att.id)
        assert gone.status == "detached"
        assert (await client.show_volume(vol.id)).status == "available"
        assert att.id in exported(table)  # the node is down: its table still has it

        c.cluster.spawn("node", host)
        await eventually(lambda: att.id not in exported(table), timeout=20)
        assert (await client.show_volume(vol.id)).status == "available"
        # a new attachment of the same volume is served, and left alone by the sweep
        again = await _served(client, vol.id, "instance-2")
        assert again.id in exported(table)
        await client.delete_attachment(again.id)


@pytest.mark.tools("ss")
async def test_a_forgotten_export_is_closed_when_its_node_is_heard_from_again(
    no_rounds: E2ECluster,
) -> None:
    """The node was not started again but cut off: frozen, its connection to the gateway
    broken (as a partition long enough for TCP to give up breaks it), and an admin
    force-detached meanwhile: the unexport has no connection to go on. The same process
    comes back on a new connection under its old routing id: no ``peer_connected``, no
    rounds here; the gateway closes the export because the node is heard from again."""
    require_root("break a node's TCP connection (ss -K)")
    c = no_rounds
    async with c.client("attached") as client, c.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        host, table = _node_and_table(c, vol)
        att = await _served(client, vol.id, "instance-1")
        assert att.id in exported(table)

        pid = c.cluster.procs[host].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            gateway_port = int(c.cfg.gateway.rpartition(":")[2])
            assert break_connections(pid, gateway_port) >= 1
            assert not [r for _, r in connections(pid) if r == gateway_port]
            gone = await admin.force_delete_attachment(att.id)
            assert gone.status == "detached"
            assert att.id in exported(table)
        finally:
            os.kill(pid, signal.SIGCONT)
        await eventually(lambda: att.id not in exported(table), timeout=10)
        assert (await client.show_volume(vol.id)).status == "available"


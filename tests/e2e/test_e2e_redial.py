"""The gateway's own connections dial again (``actors.runtime.redial``), made to need it
on one host: the gateway's side of its connection to the quota actor, or to the
scheduler, is broken (``ss -K``) while the resets that would tell that actor are
dropped (an nftables table of the test's own, on that actor's port only, removed
afterwards). Its ROUTER then still holds the old connection under the gateway's routing
id when the gateway connects again under it, and, with keys (no ``ROUTER_HANDOVER``),
takes the new connection for none of its peers. On the code before, what the gateway
sent that actor went unheard from then on, and no create succeeded (refused while the
quota service "has not answered", or never placed) until an actor was restarted by
hand; now the gateway's pings, unanswered on a connection made since the last answer,
have it dial again under a new routing id of its process, and creates go on within
seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from cinderblock.bench.netcut import break_dialling_sides, resets_dropped
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.client.status_waits import VolumeError
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError
from tests.conftest import E2ECluster, eventually, require_root

BACK_WITHIN_S = 20.0  # the ping's 2.5 s, the dial, the quota call sent again; and slack


async def created(client: Client) -> Volume | None:
    """A volume made, or None if the create was refused or failed."""
    try:
        return await client.create_volume(1, wait=True, timeout=10)
    except (CinderblockError, VolumeError):
        return None


@pytest.fixture
def one_node(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1)


@pytest.mark.tools("ss", "nft")
@pytest.mark.parametrize("server", ["quota", "scheduler"])
async def test_the_gateway_dials_again_when_its_new_connection_goes_unheard(
    one_node: E2ECluster, server: str,
) -> None:
    require_root("drop resets (nft) and break the gateway's connection (ss -K)")
    c = one_node
    port = int(getattr(c.cfg, server).rsplit(":", 1)[1])
    async with c.client("redial") as client, c.client("admin", admin=True) as admin:
        assert await created(client) is not None
        with resets_dropped([port]):
            cut = time.monotonic()
            assert break_dialling_sides(port) >= 1  # the gateway's side
            vol = await eventually(lambda: created(client), timeout=BACK_WITHIN_S,
                                   every=0.2)
            back_after = time.monotonic() - cut
        assert vol.status == "available"
        stats = await admin.cluster_stats(timeout=10.0)
    gateway = next(a for a in stats.actors if a.actor == "gateway")
    assert gateway.details["dialled_again"] >= 1  # it was the gateway's dial
    print(f"creates went on {back_after:.1f}s after the gateway's side of its connection "
          f"to the {server} broke")

"""An operator takes a backend out of placement (Cinder's service disable): no new
volume lands there while its volumes go on being served; the state, with its reason,
outlives a scheduler restart; enabled, the backend takes volumes again. Only an admin
may; every backend disabled is a create's clear error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cinderblock.protocol.client.client import Client, VolumeError
from cinderblock.protocol.wire.errors import Forbidden, NotFound
from tests.conftest import E2ECluster, eventually, every_actor_answers


@pytest.fixture
def two_nodes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(backend="null")


async def hosts_of_new_volumes(client: Client, count: int) -> set[str]:
    found = set()
    for _ in range(count):
        vol = await client.create_volume(1, wait=True)
        assert vol.host is not None
        found.add(vol.host)
    return found


async def test_a_disabled_backend_gets_no_new_volume_until_it_is_enabled(
    two_nodes: E2ECluster,
) -> None:
    c = two_nodes
    async with c.client("disable") as member, c.client("admin", admin=True) as admin:
        await every_actor_answers(c, admin)
        await admin.set_quota("disable", volumes=100)
        first, second = sorted(b.backend for b in await admin.list_backends())
        kept = await member.create_volume(1, wait=True)
        with pytest.raises(Forbidden):
            await member.set_backend_enabled(first, False)
        with pytest.raises(NotFound, match="could not be found"):
            await admin.set_backend_enabled("nowhere@null", False)

        state = await admin.set_backend_enabled(first, False, "  disk swap  ")
        assert (state.enabled, state.reason) == (False, "disk swap")
        listed = {b.backend: b for b in await admin.list_backends()}
        assert (listed[first].disabled, listed[first].disabled_reason) == (True, "disk swap")
        assert not listed[second].disabled
        assert await hosts_of_new_volumes(member, 6) == {second}
        assert (await member.show_volume(kept.id)).status == "available"

        c.cluster.stop_actor("scheduler")  # the set is in scheduler.db
        c.cluster.respawn("scheduler")
        await every_actor_answers(c, admin)
        assert {b.backend: b.disabled for b in await admin.list_backends()} == {
            first: True, second: False}
        assert await hosts_of_new_volumes(member, 4) == {second}

        await admin.set_backend_enabled(second, False)
        with pytest.raises(VolumeError, match="disabled by an operator"):
            await member.create_volume(1, wait=True)

        await admin.set_backend_enabled(first, True)
        await admin.set_backend_enabled(second, True)
        assert not any(b.disabled for b in await admin.list_backends())
        assert await eventually(lambda: _lands_on(member, first), timeout=30)


async def _lands_on(client: Client, backend: str) -> bool:
    return backend in await hosts_of_new_volumes(client, 1)

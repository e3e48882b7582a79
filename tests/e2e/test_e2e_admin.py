"""Admin reset-state: a volume stuck in a transitional status can be unstuck and deleted."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, InvalidState, NotFound
from tests.conftest import E2ECluster


@pytest.fixture(scope="module")
def no_scheduler(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """A cluster whose scheduler is gone: every create stays ``creating``."""
    c = cluster_factory()
    c.cluster.stop_actor("scheduler")
    return c


async def test_a_volume_stuck_in_creating_is_reset_to_error_then_deleted_and_its_quota_freed(
    no_scheduler: E2ECluster,
) -> None:
    c = no_scheduler
    async with c.client(project="stuck") as user, c.client(admin=True) as admin:
        vol = await user.create_volume(2, name="stuck")
        assert (await user.show_volume(vol.id)).status == "creating"
        with pytest.raises(InvalidState):
            await user.delete_volume(vol.id)

        with pytest.raises(Forbidden):
            await user.reset_volume_state(vol.id, "error")
        with pytest.raises(InvalidState, match="never reached a backend"):
            await admin.reset_volume_state(vol.id, "available")
        with pytest.raises(InvalidInput, match="can be reset to"):
            await admin.reset_volume_state(vol.id, "in-use")
        with pytest.raises(NotFound):
            await admin.reset_volume_state("no-such-volume", "error")
        assert (await user.show_volume(vol.id)).status == "creating"  # refusals changed nothing

        reset = await admin.reset_volume_state(vol.id, "error")
        assert reset.status == "error"
        assert reset.reason == "status reset by an admin (was creating)"
        await user.delete_volume(vol.id, wait=True)
        assert await user.list_volumes() == []
        quota = await user.show_quota()
        assert quota.in_use["volumes"] == 0 and quota.in_use["gigabytes"] == 0


async def test_a_volume_that_reached_a_backend_can_be_reset_back_to_available(
    cluster: E2ECluster,
) -> None:
    c = cluster
    async with c.client(project="back") as user, c.client(admin=True) as admin:
        vol = await user.create_volume(1, wait=True)
        assert (await admin.reset_volume_state(vol.id, "error")).status == "error"
        again = await admin.reset_volume_state(vol.id, "available")
        assert again.status == "available" and again.host == vol.host

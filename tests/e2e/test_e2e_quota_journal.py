"""The quota journal with real processes: what the gateway owes the quota actor waits
for it durably and deletes do not wait for it (docs/reliability.md). Kills at every
step are the failpoint matrix's (test_e2e_failpoints.py)."""

from __future__ import annotations

import time

import pytest

from cinderblock.protocol.client.client import Client, VolumeError
from tests.cluster_invariants import settled_violations
from tests.conftest import E2ECluster, eventually
from tests.e2e.test_e2e_quota_sync import quota_answers

HUGE_GB = 100_000_000  # no backend can hold it: the volume ends in error with no host


async def test_deletes_while_quota_is_down_answer_at_once_and_release_when_it_is_back(
    cluster: E2ECluster, admin: Client,
) -> None:
    project = "journal-deletes"
    await admin.set_quota(project, gigabytes=2 * HUGE_GB)
    async with cluster.client(project) as client:
        placed = await client.create_volume(1, wait=True)
        with pytest.raises(VolumeError):
            await client.create_volume(HUGE_GB, wait=True)
        hostless = next(v for v in await client.list_volumes() if v.host is None)
        cluster.cluster.stop_actor("quota")
        try:
            started = time.monotonic()
            gone = await client.delete_volume(hostless.id, wait=True, timeout=5)
            assert gone.status == "deleted"
            assert time.monotonic() - started < 2.0  # nothing waited for the quota actor
            await client.delete_volume(placed.id, wait=True, timeout=10)
        finally:
            cluster.cluster.spawn("quota")
    await eventually(lambda: quota_answers(admin), timeout=20)
    await eventually(lambda: _settled(cluster, admin, project), timeout=20)
    quota = await admin.show_quota(project)
    assert {r: quota.in_use[r] for r in ("volumes", "gigabytes", "snapshots")} == {
        "volumes": 0, "gigabytes": 0, "snapshots": 0}
    assert not any(quota.in_use.values()), quota.in_use  # each volume type's own too


async def _settled(cluster: E2ECluster, admin: Client, project: str) -> bool:
    return await settled_violations(cluster, admin, [project]) == []

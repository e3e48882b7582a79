"""``quota sync`` end to end: usage that no longer matches what exists (here a
quota database restored from an old copy) is found by a dry run and set right
by a sync; a project with work in progress is refused; only admins may sync."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import CinderblockError, Forbidden, InvalidState
from tests.conftest import E2ECluster, eventually, run_cli

NODES = ("node-1", "node-2")


async def quota_answers(client: Client) -> bool:
    try:
        await client.show_quota()
    except CinderblockError:
        return False
    return True


async def test_usage_that_drifted_is_shown_by_a_dry_run_and_set_right_by_a_sync(
    cluster: E2ECluster, admin: Client,
) -> None:
    project = "drifted"
    async with cluster.client(project) as client:
        for size in (1, 2):
            await client.create_volume(size, wait=True)
    assert (await admin.show_quota(project)).in_use["volumes"] == 2  # quota has both
    cluster.cluster.stop_actor("quota")  # the quota database comes back from an old copy
    with sqlite3.connect(cluster.cfg.path("quota.db")) as db:
        db.execute("UPDATE quota_usages SET in_use = 7 WHERE project = ?", (project,))
    cluster.cluster.spawn("quota")
    await eventually(lambda: quota_answers(admin), timeout=20)
    assert (await admin.show_quota(project)).in_use["volumes"] == 7

    dry = await admin.sync_quota(project, dry_run=True)
    assert (dry.before["volumes"], dry.after["volumes"], dry.after["gigabytes"]) == (7, 2, 3)
    assert not dry.applied and (await admin.show_quota(project)).in_use["volumes"] == 7
    done = await admin.sync_quota(project)
    assert done.applied
    quota = await admin.show_quota(project)
    assert (quota.in_use["volumes"], quota.in_use["gigabytes"]) == (2, 3)

    env = {"CINDERBLOCK_GATEWAY": cluster.gateway, "CINDERBLOCK_ADMIN": "1",
           "CINDERBLOCK_KEY": str(cluster.user_key("admin", admin=True))}
    cli = run_cli("quota", "sync", project, "--json", env=env)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["after"]["volumes"] == 2


async def test_only_an_admin_may_sync(cluster: E2ECluster, client: Client) -> None:
    with pytest.raises(Forbidden, match="only an admin"):
        await client.sync_quota("demo")


@pytest.fixture(scope="module")
def stalled(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    stall = {host: {"faults": ("stall:create_volume",)} for host in NODES}
    return cluster_factory(backend="null", node_overrides=stall)


async def test_a_project_with_a_create_in_progress_is_refused(stalled: E2ECluster) -> None:
    async with stalled.client("busy") as client, stalled.client("x", admin=True) as admin:
        vol = await client.create_volume(1)
        assert (await client.show_volume(vol.id)).status == "creating"  # and stays: stalled
        with pytest.raises(InvalidState, match=f"volume {vol.id} is creating"):
            await admin.sync_quota("busy")
        assert (await admin.sync_quota("idle")).applied  # other projects are not held up

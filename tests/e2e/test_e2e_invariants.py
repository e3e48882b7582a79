"""The settled-cluster check (tests/cluster_invariants.py) passes on an exact cluster and
names what is wrong when a file, a usage or a reservation disagrees with what exists."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from cinderblock.protocol.client.client import Client
from tests.cluster_invariants import settled_violations
from tests.conftest import E2ECluster, eventually
from tests.e2e.test_e2e_quota_sync import quota_answers


async def test_an_exact_cluster_has_no_violations_and_each_kind_of_drift_is_named(
    cluster: E2ECluster, admin: Client,
) -> None:
    project = "invariants"
    async with cluster.client(project) as client:
        vol = await client.create_volume(2, wait=True)
        snap = await client.create_snapshot(vol.id, wait=True)
        assert snap.size == 2
    assert await settled_violations(cluster, admin, [project]) == []

    host = (await admin.show_volume(vol.id)).host
    assert host is not None
    orphan = cluster.node_dir(host) / "volume-00000000-0000-4000-8000-000000000000"
    orphan.write_bytes(b"")
    cluster.cluster.stop_actor("quota")
    with sqlite3.connect(cluster.cfg.path("quota.db")) as db:
        db.execute("UPDATE quota_usages SET in_use = in_use + 1, reserved = 3 "
                   "WHERE project = ? AND resource = 'volumes'", (project,))
    cluster.cluster.spawn("quota")
    await eventually(lambda: quota_answers(admin), timeout=20)
    try:
        problems = await settled_violations(cluster, admin, [project])
    finally:
        orphan.unlink()
    assert problems == [
        f"{project}: quota says 2 volumes in use, 1 exist",
        f"{project}: 3 volumes still reserved after every operation ended",
        f"{host.partition('@')[0]}: orphan file {orphan.name} (no volume or snapshot there)",
    ]


@pytest.fixture(scope="module")
def null(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(backend="null")


async def test_a_null_node_s_volumes_are_not_looked_for_as_files(null: E2ECluster) -> None:
    """A ``null`` node keeps its volumes in memory: a settled null cluster is exact (the
    kill suite's ``--backend null`` had reported every volume's file missing)."""
    async with null.client("admin", admin=True) as admin, null.client("nulls") as client:
        vols = [await client.create_volume(1, wait=True) for _ in range(3)]
        await client.create_snapshot(vols[0].id, wait=True)
        assert null.node_files() == {}
        assert await settled_violations(null, admin, ["nulls"]) == []

"""Hostile HTTP on the REST front, the suite's short run of ``bench.rest_fuzz``: Cinder's
requests with one thing wrong and shapeless ones, from four concurrent senders, as a
member, another project and the admin. Every reply is an answer (below 500, in time),
every error is Cinder's fault body for its status, and afterwards the cluster settles
exact (nothing stuck, quota equal to what exists, node files equal to the records).

``CINDERBLOCK_REST_FUZZ_REQUESTS`` and ``CINDERBLOCK_REST_FUZZ_SEED`` run it longer or
otherwise; ``python -m cinderblock.bench.rest_fuzz`` runs it on a cluster of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from cinderblock.bench.fuzzing import settle
from cinderblock.bench.rest_fuzz import OTHER, PROJECT, fuzz
from tests.conftest import E2ECluster

REQUESTS = int(os.environ.get("CINDERBLOCK_REST_FUZZ_REQUESTS", "3000"))
SEED = int(os.environ.get("CINDERBLOCK_REST_FUZZ_SEED", "1"))


@pytest.fixture(scope="module")
def fuzzed(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    # its own: the run disables backends and edits types; node-2's backend is named
    # "fast", so that a retype to the run's types of that name (on-demand) migrates
    return cluster_factory(rest_fronts=1,
                           node_overrides={"node-2": {"volume_backend_name": "fast"}})


async def test_hostile_requests_get_cinder_s_answers_and_leave_the_cluster_exact(
    fuzzed: E2ECluster,
) -> None:
    cluster = fuzzed
    report = await fuzz(cluster.rest_url, REQUESTS, SEED, clients=4)
    assert report.problems == [], "\n".join(report.problems[:20])
    assert report.requests == REQUESTS
    # it reached the flows, not only the validation in front of them
    assert report.outcomes["202"] > 0 and report.outcomes["200"] > 0, report.outcomes
    async with cluster.client("admin", admin=True) as admin:
        assert await settle(admin, cluster.node_files, (PROJECT, OTHER)) == []

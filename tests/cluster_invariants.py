"""What must hold once a cluster has settled, whatever died on the way (issue 9): the
check is ``cinderblock.bench.invariants`` (shared with the failpoint matrix and the
benchmarks); this is its form for a test's ``E2ECluster``.

An empty list means settled and exact. Callers wait for it with ``eventually``
(the reconciler, the supervisor and the quota journal need a moment), then
assert it is empty; the list is the failure message.
"""

from __future__ import annotations

from collections.abc import Iterable

from cinderblock.bench import invariants
from cinderblock.protocol.client.client import Client
from tests.conftest import E2ECluster


async def settled_violations(
    cluster: E2ECluster, admin: Client, projects: Iterable[str] = ()
) -> list[str]:
    """Every way the settled cluster is not exact; [] when it is (see
    ``cinderblock.bench.invariants``)."""
    return await invariants.settled_violations(
        admin, cluster.node_files, projects, lambda: invariants.repository_names(cluster.cfg))

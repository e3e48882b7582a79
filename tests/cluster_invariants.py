"""What must hold once a cluster settles, whatever died on the way (issue 9): the
check itself is ``cinderblock.bench.settled`` (the kill suite, ``bench.chaos``, runs
it on a cluster ``cinderblock up`` started); this is its face for the tests.

Callers wait for ``settled_violations`` to be empty with ``eventually`` (the
reconciler, the supervisor and the quota journal need a moment), then assert it
is empty; the list is the failure message.
"""

from __future__ import annotations

from collections.abc import Iterable

from cinderblock.bench.settled import settled_problems
from cinderblock.protocol.client.client import Client
from tests.conftest import E2ECluster


async def settled_violations(
    cluster: E2ECluster, admin: Client, projects: Iterable[str] = ()
) -> list[str]:
    """Every way the settled cluster is not exact, as lines; [] when it is (nothing
    stuck, quota equal to what exists, no reservation left, node files equal to the
    gateway's list: see ``bench.settled``)."""
    return [p.text for p in await settled_problems(cluster, admin, projects)]

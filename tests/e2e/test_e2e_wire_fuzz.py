"""Hostile bodies on the gateway's own socket, the suite's short run of
``bench.wire_fuzz``: every op a member or an admin may send, with bodies of the op's
own fields or of any other shape, from four concurrent senders. Every reply is a result
or an error that says what was wrong (never ``internal``, a timeout or nothing), and
afterwards the cluster settles exact.

``CINDERBLOCK_WIRE_FUZZ_REQUESTS`` and ``CINDERBLOCK_WIRE_FUZZ_SEED`` run it longer or
otherwise; ``python -m cinderblock.bench.wire_fuzz`` runs it on a cluster of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from cinderblock.bench.fuzzing import settle
from cinderblock.bench.wire_fuzz import USER_OPS, fuzz
from tests.conftest import E2ECluster

REQUESTS = int(os.environ.get("CINDERBLOCK_WIRE_FUZZ_REQUESTS", "4000"))
SEED = int(os.environ.get("CINDERBLOCK_WIRE_FUZZ_SEED", "1"))
PROJECT = "wire-fuzz"


@pytest.fixture(scope="module")
def fuzzed(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory()  # its own: the run disables backends, sets default quotas


async def test_hostile_bodies_for_every_op_get_answers_that_say_what_was_wrong(
    fuzzed: E2ECluster,
) -> None:
    async with fuzzed.client("admin", admin=True) as admin, \
            fuzzed.client(PROJECT) as member:
        report = await fuzz(member, admin, REQUESTS, SEED, clients=4)
        assert report.problems == [], "\n".join(report.problems[:20])
        assert report.requests == REQUESTS
        assert report.outcomes["ok"] > REQUESTS // 20, report.outcomes  # past the schema
        assert {"invalid_input", "not_found"} <= set(report.outcomes), report.outcomes
        assert await settle(admin, fuzzed.node_files, (PROJECT, "admin")) == []


def test_every_op_a_user_may_send_is_fuzzed() -> None:
    assert {"volume.create", "volume.retype", "attachment.update", "transfer.accept",
            "quota.set", "type.update", "backend.set_enabled"} <= set(USER_OPS)
    assert not any(op.startswith(("node.", "schedule.")) for op in USER_OPS)

"""Requests retried with their request id, as a client does after a crash or a timeout;
both found by the state machine (``test_e2e_stateful.py``):

* a delete retried after the gateway was killed is answered as before the kill:
  ``deleted`` once its volume or snapshot is gone, its current view while it is still
  deleting (``actors/gateway/delete_requests.py``). The gateway kept this in memory
  only, so the retry got ``not_found`` or ``invalid_state`` and a client could not
  tell that its delete had happened;
* a snapshot create retried while its first attempt still runs (quota slow to answer)
  waits for that attempt and answers the same snapshot. A second flow ran instead,
  found the volume claimed by the first, and answered ``invalid_state``, while the
  first went on to make the snapshot."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable

import pytest

from cinderblock.protocol.wire.errors import InvalidState, NotFound
from tests.conftest import E2ECluster, every_actor_answers

NODES = ("node-1", "node-2")


async def kill_and_restart_gateway(c: E2ECluster) -> None:
    """SIGKILL the gateway, start it again, and wait until every actor (the nodes
    included: a delete goes to its node) answers it again."""
    proc = c.cluster.procs["gateway"]
    proc.kill()
    proc.wait(timeout=10)
    c.cluster.respawn("gateway")
    async with c.client("admin", admin=True) as admin:
        await every_actor_answers(c, admin)


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


@pytest.fixture(scope="module")
def plain(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory()


@pytest.fixture
def stalls_deletes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides={h: {"faults": ("stall:delete_volume",)} for h in NODES})


async def test_deletes_retried_after_a_gateway_kill_answer_deleted_and_a_refused_one_runs(
    plain: E2ECluster,
) -> None:
    c = plain
    async with c.client("retried-deletes") as client:
        vol = await client.create_volume(1, wait=True)
        kept = await client.create_volume(1, wait=True)
        snap = await client.create_snapshot(kept.id, wait=True)
        deleted_volume, deleted_snapshot, refused = request_id(), request_id(), request_id()
        await client.delete_volume(vol.id, request_id=deleted_volume, wait=True)
        await client.delete_snapshot(snap.id, request_id=deleted_snapshot, wait=True)
        snap2 = await client.create_snapshot(kept.id, wait=True)
        with pytest.raises(InvalidState, match="dependent snapshot"):
            await client.delete_volume(kept.id, request_id=refused)

        await kill_and_restart_gateway(c)

        again = await client.delete_volume(vol.id, request_id=deleted_volume)
        assert (again.id, again.status) == (vol.id, "deleted")
        again_snap = await client.delete_snapshot(snap.id, request_id=deleted_snapshot)
        assert (again_snap.id, again_snap.status) == (snap.id, "deleted")
        with pytest.raises(NotFound):  # a new request for a volume that is gone
            await client.delete_volume(vol.id)
        await client.delete_snapshot(snap2.id, wait=True)
        # the refused delete left nothing behind: sent again it runs, now that it may
        done = await client.delete_volume(kept.id, request_id=refused, wait=True)
        assert (done.id, done.status) == (kept.id, "deleted")
        in_use = (await client.show_quota()).in_use
        assert [in_use[r] for r in ("volumes", "snapshots", "gigabytes")] == [0, 0, 0]


async def test_a_delete_still_running_when_the_gateway_is_killed_is_answered_deleting(
    stalls_deletes: E2ECluster,
) -> None:
    c = stalls_deletes
    async with c.client("retried-running-delete") as client:
        vol = await client.create_volume(1, wait=True)
        rid = request_id()
        first = await client.delete_volume(vol.id, request_id=rid)
        assert first.status == "deleting"

        await kill_and_restart_gateway(c)

        again = await client.delete_volume(vol.id, request_id=rid)
        assert (again.id, again.status) == (vol.id, "deleting")
        with pytest.raises(InvalidState, match="is deleting"):  # another request is refused
            await client.delete_volume(vol.id, request_id=request_id())


async def test_a_snapshot_retried_while_its_first_attempt_waits_for_quota_is_that_snapshot(
    plain: E2ECluster,
) -> None:
    c = plain
    async with c.client("retried-snapshot") as client:
        vol = await client.create_volume(1, wait=True)
        rid = request_id()
        quota = c.cluster.procs["quota"].pid
        os.kill(quota, signal.SIGSTOP)  # the first attempt waits for its reservation
        try:
            first = asyncio.create_task(client.create_snapshot(vol.id, request_id=rid))
            await asyncio.sleep(0.5)
            again = asyncio.create_task(client.create_snapshot(vol.id, request_id=rid))
            await asyncio.sleep(0.5)
            assert not again.done(), again  # it waits for the first, it is not refused
        finally:
            os.kill(quota, signal.SIGCONT)
        made, retried = await asyncio.gather(first, again)
        assert retried.id == made.id
        assert [s.id for s in await client.list_snapshots()] == [made.id]

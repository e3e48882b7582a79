"""Flow history end to end: every actor remembers its flows and the gateway gathers them
(``flow.history``), with nobody subscribed to events while the flows ran.

One cluster for the module whose node-1 fails every create (and is larger, so it is
always tried first): each create leaves a reverted flow on node-1 and a successful one
on node-2. Tests work in projects of their own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from cinderblock.protocol.client.client import Client, SyncClient
from cinderblock.protocol.messages.flows import FlowRecent, FlowTrace, FlowTraceList
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, OverQuota
from cinderblock.protocol.wire.schema import parse
from tests.conftest import E2ECluster, eventually

MANAGER_RAN = ["ExtractVolumeRefTask", "OnFailureRescheduleTask", "ExtractVolumeSpecTask",
               "NotifyVolumeActionTask", "CreateVolumeFromSpecTask"]


@pytest.fixture(scope="module")
def faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(node_overrides={
        "node-1": {"faults": ("create_volume",), "capacity_gb": 1000.0},
        "node-2": {"capacity_gb": 100.0},
    })


async def _done_ones_left_out(client: Client, volume_id: str) -> FlowTraceList | None:
    """The history of flows done within the last 0.2 s, once the volume's done flows
    are older than that (None until then)."""
    recent = await client.flow_history(done_within_s=0.2)
    done = [f for f in of_volume(recent.flows, volume_id) if f[2] == "SUCCESS"]
    return None if done else recent


def of_volume(flows: tuple[FlowTrace, ...], volume_id: str) -> list[tuple[str, str, str]]:
    """(actor, flow, final state) of each flow of the volume, in the order answered."""
    return [(t.actor, t.flow, [s.state for s in t.steps if s.task is None][-1])
            for t in flows if t.volume_id == volume_id]


async def test_the_history_gathers_every_actors_flows_of_a_create_failed_first(
    faulty: E2ECluster, project: str,
) -> None:
    async with faulty.client(project) as client:
        volume = await client.create_volume(1, wait=True)
        history = await client.flow_history()
    assert volume.host == "node-2@file" and history.missing == ()
    flows = of_volume(history.flows, volume.id)
    assert flows[0] == ("node-1", "volume_create_manager", "REVERTED")
    assert sorted(flows[1:]) == [
        ("gateway", "volume_create_api", "SUCCESS"),
        ("node-2", "volume_create_manager", "SUCCESS"),
        ("scheduler", "volume_create_scheduler", "SUCCESS"),
        ("scheduler", "volume_create_scheduler", "SUCCESS"),
    ]
    failed = history.flows[0]
    reverts = [s.task for s in failed.steps if s.state == "REVERTING" and s.task]
    assert reverts == MANAGER_RAN[::-1]
    reasons = {s.reason for s in failed.steps if s.reason}
    assert reasons == {"injected fault: create_volume"}
    assert all(t.age_s >= 0 and t.project_id == project for t in history.flows)


async def test_a_project_sees_its_own_flows_and_an_admin_sees_everyones(
    faulty: E2ECluster, project: str,
) -> None:
    other = f"{project}-other"
    async with faulty.client("admin", admin=True) as admin:
        await admin.set_quota(other, gigabytes=1)
        async with faulty.client(project) as mine, faulty.client(other) as theirs:
            own = await mine.create_volume(1, wait=True)
            with pytest.raises(OverQuota):
                await theirs.create_volume(5)
            seen_by_me = await mine.flow_history()
            seen_by_them = await theirs.flow_history()
        everyone = await admin.flow_history(all_projects=True)
        admins_own = await admin.flow_history()
    assert {t.volume_id for t in seen_by_me.flows} == {own.id}
    refused = [t for t in seen_by_them.flows if t.flow == "volume_create_api"]
    assert len(seen_by_them.flows) == 1 and len(refused) == 1  # no volume: mapped by project
    assert "Quota exceeded" in str([s.reason for s in refused[0].steps])
    theirs_and_mine = {t.flow_id for t in [*seen_by_me.flows, *seen_by_them.flows]}
    assert theirs_and_mine <= {t.flow_id for t in everyone.flows}
    assert not theirs_and_mine & {t.flow_id for t in admins_own.flows}


async def test_the_gateways_unfiltered_flow_recent_is_refused_to_non_admins(
    faulty: E2ECluster, project: str,
) -> None:
    async with faulty.client(project) as client, faulty.client("ops", admin=True) as admin:
        await client.create_volume(1, wait=True)
        with pytest.raises(Forbidden):
            await client.call("flow.recent", FlowRecent())
        answer = parse(FlowTraceList, await admin.call("flow.recent", FlowRecent()))
    assert answer.flows and {t.actor for t in answer.flows} == {"gateway"}


async def test_done_flows_older_than_asked_for_are_left_out_failed_ones_are_not(
    faulty: E2ECluster, project: str,
) -> None:
    async with faulty.client(project) as client:
        volume = await client.create_volume(1, wait=True)
        recent = await eventually(lambda: _done_ones_left_out(client, volume.id), timeout=5)
        with pytest.raises(InvalidInput):
            await client.flow_history(limit=0)
    assert of_volume(recent.flows, volume.id) == [
        ("node-1", "volume_create_manager", "REVERTED")]


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process stops answering (SIGSTOP) until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_node_that_does_not_answer_is_named_missing_and_the_rest_is_answered(
    faulty: E2ECluster, project: str,
) -> None:
    async with faulty.client(project) as client:
        volume = await client.create_volume(1, wait=True)
        with frozen(faulty.cluster.pids()["node-2"]):
            started = time.monotonic()
            history = await client.flow_history()
            took = time.monotonic() - started
        again = await client.flow_history()
    assert history.missing == ("node-2",) and took < 5.0
    assert ("node-1", "volume_create_manager", "REVERTED") in of_volume(history.flows, volume.id)
    assert not [t for t in history.flows if t.actor == "node-2"]
    assert again.missing == () and [t for t in again.flows if t.actor == "node-2"]


def test_the_sync_client_reads_the_same_history(faulty: E2ECluster, project: str) -> None:
    with SyncClient(faulty.gateway, project=project, key=faulty.user_key(project)) as client:
        volume = client.create_volume(1, wait=True)
        history = client.flow_history(limit=2)
    assert history.truncated and len(history.flows) == 2
    assert history.flows[0].volume_id == volume.id and history.flows[0].actor == "node-1"

"""Creating volumes end to end: client → gateway → quota → scheduler → storage node.

One two-node cluster (file backends) serves the whole module; each test works
in a project of its own so quotas and listings do not mix.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from cinderblock.protocol.client.client import Client, SyncClient, VolumeError
from cinderblock.protocol.wire.errors import InvalidInput, NotFound, OverQuota
from tests.conftest import GIB, E2ECluster, EventTap, flow_events, flow_states, task_states

API_TASKS = ["ExtractVolumeRequestTask", "QuotaReserveTask", "EntryCreateTask",
             "VolumeCastTask"]
SCHEDULER_TASKS = ["ExtractSchedulerSpecTask", "ScheduleCreateVolumeTask"]
MANAGER_TASKS = ["ExtractVolumeRefTask", "OnFailureRescheduleTask", "ExtractVolumeSpecTask",
                 "NotifyVolumeActionTask", "CreateVolumeFromSpecTask",
                 "CreateVolumeOnFinishTask"]
FLOWS = {"volume_create_api": API_TASKS, "volume_create_scheduler": SCHEDULER_TASKS,
         "volume_create_manager": MANAGER_TASKS}
HOSTS = {"node-1@file", "node-2@file"}
HUGE_GB = 100_000_000  # 100 PB: no backend holds it, even thin and oversubscribed


async def quota_usage(admin: Client, project: str) -> dict[str, dict[str, int]]:
    q = await admin.show_quota(project)
    return {"in_use": {r: q.in_use.get(r, 0) for r in ("volumes", "gigabytes")},
            "reserved": {r: q.reserved.get(r, 0) for r in ("volumes", "gigabytes")}}


async def footprint(cluster: E2ECluster, admin: Client, project: str) -> dict[str, Any]:
    """Everything a create could write: the project's volumes and quota, all volumes, files."""
    everyone = await admin.list_volumes(all_projects=True)
    async with cluster.client(project) as c:
        mine = await c.list_volumes()
    return {
        "mine": sorted(v.id for v in mine),
        "all": sorted(v.id for v in everyone),
        "quota": await quota_usage(admin, project),
        "files": cluster.all_files(),
    }


# ---- the seed example ------------------------------------------------------------
async def test_a_created_volume_becomes_available_with_a_sparse_file_on_its_node(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(1, name="firstvol", volume_type="FCVolumeType", wait=True)

    assert vol.status == "available"
    assert vol.host in HOSTS
    assert (vol.name, vol.size, vol.volume_type, vol.project_id) == (
        "firstvol", 1, "FCVolumeType", project)
    path = cluster.volume_file(vol.host, vol.id)
    st = path.stat()
    assert st.st_size == GIB
    assert st.st_blocks * 512 < GIB // 100, "the volume file should be sparse"
    shown = await client.show_volume(vol.id)
    assert (shown.status, shown.host) == ("available", vol.host)
    assert await quota_usage(admin, project) == {
        "in_use": {"volumes": 1, "gigabytes": 1}, "reserved": {"volumes": 0, "gigabytes": 0}}


async def test_create_without_wait_answers_creating_and_wait_for_status_sees_available(
    client: Client,
) -> None:
    vol = await client.create_volume(2)
    assert vol.status == "creating"
    assert vol.volume_type == "__DEFAULT__" and vol.availability_zone == "nova"

    done = await client.wait_for_status(vol.id, "available")

    assert done.status == "available" and done.host in HOSTS
    again = await client.wait_for_status(vol.id, "available")  # already there: at once
    assert again.updated_at == done.updated_at


def test_the_sync_client_creates_a_volume_and_waits_for_it(
    cluster: E2ECluster, project: str
) -> None:
    with SyncClient(cluster.gateway, project=project,
                    key=cluster.user_key(project), timeout=20.0) as c:
        vol = c.create_volume(1, name="sync", wait=True)
        assert vol.status == "available"
        assert [v.id for v in c.list_volumes()] == [vol.id]


# ---- many at once ----------------------------------------------------------------
async def test_fifty_concurrent_creates_all_become_available_on_both_nodes_and_count_in_quota(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, volumes=60, gigabytes=200)
    sizes = [1 + i % 3 for i in range(50)]

    vols = await asyncio.gather(
        *(client.create_volume(size, name=f"v{i}", wait=True) for i, size in enumerate(sizes))
    )

    assert [v.status for v in vols] == ["available"] * 50
    assert len({v.id for v in vols}) == 50
    assert {v.host for v in vols} == HOSTS, "both nodes should take volumes"
    for v in vols:
        assert v.host is not None
        assert cluster.volume_file(v.host, v.id).stat().st_size == v.size * GIB
    listed = await client.list_volumes()
    assert sorted(v.id for v in listed) == sorted(v.id for v in vols)
    assert await quota_usage(admin, project) == {
        "in_use": {"volumes": 50, "gigabytes": sum(sizes)},
        "reserved": {"volumes": 0, "gigabytes": 0},
    }


# ---- quota -------------------------------------------------------------------------
async def test_a_create_over_the_gigabytes_quota_is_refused_naming_the_resource(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await client.create_volume(1, wait=True)
    before = await footprint(cluster, admin, project)

    with pytest.raises(OverQuota) as err:
        await client.create_volume(1000)

    assert "gigabytes" in err.value.message
    assert err.value.details["resource"] == "gigabytes"
    assert err.value.details["limit"] == 1000
    assert err.value.details["in_use"] == 1
    assert err.value.details["requested"] == 1000
    assert await footprint(cluster, admin, project) == before


async def test_a_create_over_the_volumes_quota_is_refused_and_its_reservation_released(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, volumes=1)
    await client.create_volume(1, wait=True)
    before = await footprint(cluster, admin, project)

    with pytest.raises(OverQuota) as err:
        await client.create_volume(1, wait=True)

    assert err.value.details["resource"] == "volumes"
    assert "volumes" in err.value.message
    after = await footprint(cluster, admin, project)
    assert after == before
    assert after["quota"]["reserved"] == {"volumes": 0, "gigabytes": 0}


async def test_concurrent_creates_beyond_the_quota_stop_exactly_at_the_limit(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, volumes=10)

    results = await asyncio.gather(*(client.create_volume(1, wait=True) for _ in range(20)),
                                   return_exceptions=True)

    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 10 and all(v.status == "available" for v in made)
    assert len(refused) == 10 and all(isinstance(r, OverQuota) for r in refused), refused
    assert len(await client.list_volumes()) == 10
    assert await quota_usage(admin, project) == {
        "in_use": {"volumes": 10, "gigabytes": 10}, "reserved": {"volumes": 0, "gigabytes": 0}}


async def test_a_volume_larger_than_the_per_volume_limit_is_over_quota(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, per_volume_gigabytes=5)
    before = await footprint(cluster, admin, project)

    with pytest.raises(OverQuota) as err:
        await client.create_volume(6)

    assert err.value.details["resource"] == "per_volume_gigabytes"
    assert "6G" in err.value.message and "5G" in err.value.message
    assert await footprint(cluster, admin, project) == before
    assert (await client.create_volume(5, wait=True)).status == "available"


async def test_a_request_id_whose_create_was_refused_can_be_used_once_the_cause_is_fixed(
    client: Client, admin: Client, project: str
) -> None:
    rid = f"req-{uuid.uuid4()}"
    await admin.set_quota(project, volumes=0)
    with pytest.raises(OverQuota):
        await client.create_volume(1, request_id=rid)

    await admin.set_quota(project, volumes=1)
    vol = await client.create_volume(1, request_id=rid, wait=True)

    assert vol.status == "available"
    assert [v.id for v in await client.list_volumes()] == [vol.id]


# ---- no valid backend ---------------------------------------------------------------
async def test_a_size_no_backend_can_hold_ends_in_error_with_a_no_valid_backend_reason(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, gigabytes=2 * HUGE_GB)
    files_before = cluster.all_files()

    vol = await client.create_volume(HUGE_GB)
    with pytest.raises(VolumeError) as err:
        await client.wait_for_status(vol.id, "available")

    failed = err.value.volume
    assert failed.id == vol.id and failed.status == "error"
    assert failed.reason is not None and "No valid backend" in failed.reason
    shown = await client.show_volume(vol.id)
    assert (shown.status, shown.host) == ("error", None)
    assert "No valid backend" in (shown.reason or "")
    assert cluster.all_files() == files_before
    # As in Cinder, the quota stays taken until the user deletes the errored volume.
    assert (await quota_usage(admin, project))["in_use"] == {"volumes": 1,
                                                             "gigabytes": HUGE_GB}


async def test_creating_with_wait_raises_volume_error_when_no_backend_can_hold_it(
    client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, gigabytes=2 * HUGE_GB)

    with pytest.raises(VolumeError) as err:
        await client.create_volume(HUGE_GB, wait=True)

    assert err.value.volume.status == "error"
    assert "No valid backend" in (err.value.volume.reason or "")


# ---- bad input ---------------------------------------------------------------------
BAD_CREATES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("size-zero", {"size": 0}, InvalidInput, "size"),
    ("size-negative", {"size": -1}, InvalidInput, "size"),
    ("size-float", {"size": 1.5}, InvalidInput, "size"),
    ("size-string-not-digits", {"size": "1.5"}, InvalidInput, "size"),  # "1" is a size
    ("size-bool", {"size": True}, InvalidInput, "size"),
    ("size-none", {"size": None}, InvalidInput, "size"),
    ("size-too-big", {"size": 1 << 31}, InvalidInput, "size"),  # over Cinder's schema max
    ("name-256", {"name": "n" * 256}, InvalidInput, "name"),
    ("name-not-string", {"name": 5}, InvalidInput, "name"),
    ("description-256", {"description": "d" * 256}, InvalidInput, "description"),
    ("type-unknown-name", {"volume_type": "NoSuchType"}, NotFound, "NoSuchType"),
    ("type-unknown-id", {"volume_type": "8d5e9d4c-0000-4000-8000-000000000000"}, NotFound,
     "8d5e9d4c-0000-4000-8000-000000000000"),
    ("zone-unknown", {"availability_zone": "atlantis"}, InvalidInput, "atlantis"),
    ("metadata-bad-key-char", {"metadata": {"bad*key": "v"}}, InvalidInput, "bad*key"),
    ("metadata-key-newline", {"metadata": {"key\n": "v"}}, InvalidInput, "metadata key"),
    ("metadata-key-empty", {"metadata": {"": "v"}}, InvalidInput, "metadata key"),
    ("metadata-key-256", {"metadata": {"k" * 256: "v"}}, InvalidInput, "metadata key"),
    ("metadata-value-int", {"metadata": {"k": 1}}, InvalidInput, "metadata value"),
    ("metadata-value-256", {"metadata": {"k": "v" * 256}}, InvalidInput, "metadata value"),
    ("metadata-not-a-map", {"metadata": ["k", "v"]}, InvalidInput, "metadata"),
]


async def test_affinity_hints_place_a_volume_beside_or_away_from_the_caller_s_volumes(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    """Cinder's same_host and different_host hints (its SameBackendFilter and
    DifferentBackendFilter): on two nodes, away from a volume and beside it, every
    time; a hint naming no volume of the caller's placed leaves no backend for
    same_host and nothing to avoid for different_host; a copy whose source's backend
    the hints leave out, and a hint that is not a volume id, are refused."""
    await admin.set_quota(project, volumes=20)
    first = await client.create_volume(1, wait=True)
    assert first.host is not None
    for _ in range(4):
        away = await client.create_volume(1, different_host=[first.id], wait=True)
        beside = await client.create_volume(1, same_host=[first.id], wait=True)
        assert away.host in HOSTS - {first.host} and beside.host == first.host
    both = await client.create_volume(1, same_host=[first.id, away.id],
                                      different_host=[first.id], wait=True)
    assert both.host == away.host
    with pytest.raises(VolumeError) as err:
        await client.create_volume(1, different_host=[first.id, away.id], wait=True)
    assert "No backend passes the scheduler hints" in err.value.message
    assert "2 set aside by scheduler hints" in err.value.message
    nobody = str(uuid.uuid4())
    with pytest.raises(VolumeError, match="No backend passes the scheduler hints"):
        await client.create_volume(1, same_host=[nobody], wait=True)
    anywhere = await client.create_volume(1, different_host=[nobody], wait=True)
    assert anywhere.host in HOSTS
    async with cluster.client(f"other-{project}") as other:  # another project's volume
        theirs = await other.create_volume(1, wait=True)
        with pytest.raises(VolumeError, match="scheduler hints"):
            await other.create_volume(1, same_host=[first.id], wait=True)
        await other.delete_volume(theirs.id, wait=True)
    snap = await client.create_snapshot(first.id, wait=True)
    with pytest.raises(InvalidInput, match=f"source's backend, {first.host}, which the "):
        await client.create_volume(None, snapshot_id=snap.id, different_host=[first.id])
    copy = await client.create_volume(None, snapshot_id=snap.id, same_host=[first.id],
                                      wait=True)
    assert copy.host == first.host
    for bad in (["not-a-uuid"], [nobody, nobody], [nobody] * 101):
        with pytest.raises(InvalidInput, match="different_host"):
            await client.create_volume(1, different_host=bad)


@pytest.mark.parametrize(
    ("fields", "error", "mentions"),
    [pytest.param(f, e, m, id=name) for name, f, e, m in BAD_CREATES],
)
async def test_a_bad_create_request_gets_a_clear_error_and_writes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
    fields: dict[str, Any], error: type[Exception], mentions: str,
) -> None:
    before = await footprint(cluster, admin, project)
    kwargs = {"size": 1, **fields}
    size = kwargs.pop("size")

    with pytest.raises(error) as err:
        await client.create_volume(size, **kwargs)

    assert mentions in str(err.value)
    assert await footprint(cluster, admin, project) == before


async def test_the_biggest_valid_metadata_and_names_are_accepted(client: Client) -> None:
    metadata = {f"key-{i}_:. /": "v" * 255 for i in range(127)}
    metadata["k" * 255] = "x"

    vol = await client.create_volume(1, name="n" * 255, description="d" * 255,
                                     metadata=metadata, wait=True)

    assert vol.status == "available"
    assert vol.metadata == metadata


# ---- idempotency -------------------------------------------------------------------
async def test_the_same_request_id_twice_returns_the_same_volume_counted_once(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    rid = f"req-{uuid.uuid4()}"
    first = await client.create_volume(1, name="once", request_id=rid, wait=True)

    second = await client.create_volume(1, name="once", request_id=rid, wait=True)

    assert second.id == first.id and second.status == "available"
    assert [v.id for v in await client.list_volumes()] == [first.id]
    assert (await quota_usage(admin, project))["in_use"] == {"volumes": 1, "gigabytes": 1}
    on_nodes = [f for f in cluster.all_files() if first.id in f]
    assert len(on_nodes) == 1


async def test_the_same_request_id_sent_concurrently_makes_one_volume(
    client: Client, admin: Client, project: str
) -> None:
    rid = f"req-{uuid.uuid4()}"

    vols = await asyncio.gather(*(client.create_volume(2, request_id=rid) for _ in range(5)))

    assert len({v.id for v in vols}) == 1
    await client.wait_for_status(vols[0].id, "available")
    assert len(await client.list_volumes()) == 1
    assert (await quota_usage(admin, project))["in_use"] == {"volumes": 1, "gigabytes": 2}


async def test_the_same_request_id_with_a_different_size_is_invalid_input(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    rid = f"req-{uuid.uuid4()}"
    first = await client.create_volume(1, request_id=rid, wait=True)
    before = await footprint(cluster, admin, project)

    with pytest.raises(InvalidInput) as err:
        await client.create_volume(2, request_id=rid)

    assert rid in err.value.message
    assert await footprint(cluster, admin, project) == before
    assert [v.id for v in await client.list_volumes()] == [first.id]


async def test_the_same_request_id_in_another_project_is_another_volume(
    cluster: E2ECluster, client: Client, project: str
) -> None:
    rid = f"req-{uuid.uuid4()}"
    mine = await client.create_volume(1, request_id=rid, wait=True)
    async with cluster.client(f"{project}-other") as other:
        theirs = await other.create_volume(1, request_id=rid, wait=True)
    assert theirs.id != mine.id


# ---- projects ------------------------------------------------------------------------
async def test_a_project_cannot_see_another_projects_volumes(
    cluster: E2ECluster, client: Client, project: str
) -> None:
    mine = await client.create_volume(1, name="mine", wait=True)
    async with cluster.client(f"{project}-b") as other:
        theirs = await other.create_volume(1, name="theirs", wait=True)

        with pytest.raises(NotFound):
            await other.show_volume(mine.id)
        with pytest.raises(NotFound):
            await other.wait_for_status(mine.id, "available")
        assert [v.id for v in await other.list_volumes()] == [theirs.id]
        assert [v.id for v in await other.list_volumes(all_projects=True)] == [theirs.id]

    with pytest.raises(NotFound):
        await client.show_volume(theirs.id)
    assert [v.id for v in await client.list_volumes()] == [mine.id]


async def test_an_admin_with_all_projects_sees_the_volumes_of_every_project(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    mine = await client.create_volume(1, wait=True)
    async with cluster.client(f"{project}-b") as other:
        theirs = await other.create_volume(1, wait=True)

    everyone = {v.id: v.project_id for v in await admin.list_volumes(all_projects=True)}
    assert everyone[mine.id] == project
    assert everyone[theirs.id] == f"{project}-b"
    assert (await admin.show_volume(theirs.id)).id == theirs.id
    own = {v.id for v in await admin.list_volumes()}
    assert mine.id not in own and theirs.id not in own


# ---- events ----------------------------------------------------------------------------
def _done(flow: str, volume_id: str, final: str) -> Any:
    def check(events: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == "flow" and e["flow"] == flow and e["volume_id"] == volume_id
                   and e["state"] == final for e in events)
    return check


def _all_done(volume_id: str, finals: dict[str, str], final_status: str) -> Any:
    """Every flow reached its final state and the gateway published the final status."""
    checks = [_done(flow, volume_id, final) for flow, final in finals.items()]

    def status(events: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == "volume" and e["volume_id"] == volume_id
                   and e["status"] == final_status for e in events)

    return lambda events: status(events) and all(c(events) for c in checks)


async def test_flow_and_task_events_of_a_create_arrive_in_order(
    cluster: E2ECluster, client: Client
) -> None:
    async with EventTap(cluster) as tap:
        vol = await client.create_volume(1, wait=True)
        done = _all_done(vol.id, dict.fromkeys(FLOWS, "SUCCESS"), final_status="available")
        # The node's notifications have no project: they travel on the cluster's topic,
        # a message of their own, which may come after the project's of the same flush.
        await tap.wait_until(lambda events: done(events) and any(
            e["kind"] == "notify" and e["volume_id"] == vol.id
            and e["event"] == "volume.create.end" for e in events))
        events = tap.of_volume(vol.id)

    for flow, tasks in FLOWS.items():
        mine = flow_events(events, flow)
        assert flow_states(mine) == ["PENDING", "RUNNING", "SUCCESS"], flow
        assert mine[0]["tasks"] == tasks
        assert task_states(mine) == [(t, s) for t in tasks for s in ("RUNNING", "SUCCESS")]
        assert len({e["flow_id"] for e in mine}) == 1
    actors = {e["flow"]: e["actor"] for e in events if e["kind"] == "flow"}
    assert actors["volume_create_api"] == "gateway"
    assert actors["volume_create_scheduler"] == "scheduler"
    assert actors["volume_create_manager"] == vol.host.partition("@")[0]  # type: ignore[union-attr]
    statuses = [e["status"] for e in events if e["kind"] == "volume"]
    assert statuses == ["creating", "available"]
    notes = [e["event"] for e in events if e["kind"] == "notify"]
    assert notes == ["volume.create.start", "volume.create.end"]


def _reverted_sequence(tasks_ran: list[str], failed: str) -> list[tuple[str, str, str]]:
    """flow and task events, in order, of a flow whose task ``failed`` raised."""
    seq = [("flow", "", "PENDING"), ("flow", "", "RUNNING")]
    for t in tasks_ran:
        seq += [("task", t, "RUNNING"), ("task", t, "FAILURE" if t == failed else "SUCCESS")]
    seq += [("flow", "", "FAILURE"), ("flow", "", "REVERTING")]
    for t in reversed(tasks_ran):
        seq += [("task", t, "REVERTING"), ("task", t, "REVERTED")]
    return [*seq, ("flow", "", "REVERTED")]


def _sequence(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["kind"], e.get("task", ""), e["state"]) for e in events]


async def test_a_create_over_quota_reverts_the_api_flow_newest_first(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, volumes=0)
    async with EventTap(cluster) as tap:
        start = len(tap.events)
        with pytest.raises(OverQuota):
            await client.create_volume(1)
        await tap.wait_until(lambda evs: any(
            e["kind"] == "flow" and e["state"] == "REVERTED" for e in evs[start:]))
        events = flow_events(tap.events[start:], "volume_create_api")

    (flow_id,) = {e["flow_id"] for e in events if e["state"] == "FAILURE"}
    mine = [e for e in events if e["flow_id"] == flow_id]
    assert _sequence(mine) == _reverted_sequence(API_TASKS[:2], "QuotaReserveTask")
    failure = next(e for e in mine if e["kind"] == "flow" and e["state"] == "FAILURE")
    assert "Quota exceeded" in failure["reason"]
    volume_id = mine[0]["volume_id"]
    with pytest.raises(NotFound):
        await admin.show_volume(volume_id)


async def test_a_create_no_backend_can_hold_reverts_the_scheduler_flow(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, gigabytes=2 * HUGE_GB)
    async with EventTap(cluster) as tap:
        vol = await client.create_volume(HUGE_GB)
        await tap.wait_until(_all_done(vol.id, {"volume_create_api": "SUCCESS",
                                                "volume_create_scheduler": "REVERTED"},
                                       final_status="error"))
        events = tap.of_volume(vol.id)

    api = flow_events(events, "volume_create_api")
    assert flow_states(api) == ["PENDING", "RUNNING", "SUCCESS"]
    sched = flow_events(events, "volume_create_scheduler")
    assert _sequence(sched) == _reverted_sequence(SCHEDULER_TASKS, "ScheduleCreateVolumeTask")
    assert "No valid backend" in next(e["reason"] for e in sched if e["state"] == "FAILURE")
    assert flow_events(events, "volume_create_manager") == []
    assert [e["status"] for e in events if e["kind"] == "volume"] == ["creating", "error"]

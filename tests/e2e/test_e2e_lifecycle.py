"""The rest of a volume's life end to end: delete, snapshots, clones, extend.

One two-node cluster (file backends) serves the module; each test works in a
project of its own. Scenarios that need a node of their own (a frozen node, a
failing driver, a full backend) are in ``test_e2e_lifecycle_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound, OverQuota
from tests.conftest import (
    GIB,
    E2ECluster,
    EventTap,
    eventually,
    flow_events,
    run_cli,
    task_states,
)
from tests.lifecycle_helpers import (
    assert_nodes_hold_exactly_what_the_gateway_lists,
    file_of,
    gone,
    read,
    same_bytes,
    usage,
    what_exists,
    write_pattern,
    zeros_from,
)

HUGE_GB = 100_000_000  # no backend holds it: the volume ends in error without a host
PATTERN = [(0, b"first bytes"), (3 * 4096 + 17, b"\xa5" * 9000), (GIB - 64, b"last" * 16)]


# ---- delete ------------------------------------------------------------------------
async def test_deleting_an_available_volume_removes_its_file_and_gives_its_quota_back(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(2, wait=True)
    path = file_of(cluster, vol)
    assert path.exists()

    deleting = await client.delete_volume(vol.id)

    assert deleting.status == "deleting"
    assert await eventually(lambda: gone(client, vol.id))
    assert not path.exists()
    assert await client.list_volumes() == []
    assert await usage(admin, project) == {
        "volumes": (0, 0), "gigabytes": (0, 0), "snapshots": (0, 0)}


async def test_delete_with_wait_ends_with_the_status_deleted(
    cluster: E2ECluster, client: Client
) -> None:
    vol = await client.create_volume(1, wait=True)

    gone = await client.delete_volume(vol.id, wait=True)

    assert gone.status == "deleted" and gone.id == vol.id
    assert not file_of(cluster, vol).exists()


async def test_deleting_twice_with_the_same_request_id_is_fine_and_counted_once(
    client: Client, admin: Client, project: str
) -> None:
    keep = await client.create_volume(1, wait=True)
    vol = await client.create_volume(3, wait=True)
    request_id = f"req-{uuid.uuid4()}"

    first = await client.delete_volume(vol.id, request_id=request_id, wait=True)
    again = await client.delete_volume(vol.id, request_id=request_id)

    assert (first.status, again.status, again.id) == ("deleted", "deleted", vol.id)
    with pytest.raises(NotFound):
        await client.delete_volume(vol.id)  # a new request for a volume that is gone
    assert await usage(admin, project) == {
        "volumes": (1, 0), "gigabytes": (keep.size, 0), "snapshots": (0, 0)}


async def test_the_same_delete_sent_twice_at_once_deletes_once_and_both_see_it_gone(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(1, wait=True)
    request_id = f"req-{uuid.uuid4()}"

    async with cluster.client(project) as twin:
        answers = await asyncio.gather(
            client.delete_volume(vol.id, request_id=request_id, wait=True),
            twin.delete_volume(vol.id, request_id=request_id, wait=True))

    assert [a.status for a in answers] == ["deleted", "deleted"]
    assert (await usage(admin, project))["volumes"] == (0, 0)


async def test_a_volume_that_never_reached_a_host_is_removed_by_the_gateway_alone(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, gigabytes=-1)
    vol = await client.create_volume(HUGE_GB)
    failed = await client.wait_for_status(vol.id, "error")
    assert failed.host is None
    async with EventTap(cluster) as tap:
        answer = await client.delete_volume(vol.id)

        assert answer.status == "deleted"  # at once: no node was asked
        await tap.wait_until(lambda evs: any(
            e["kind"] == "flow" and e["state"] == "SUCCESS" and e["volume_id"] == vol.id
            for e in evs))
    assert not flow_events(tap.of_volume(vol.id), "volume_delete_manager")
    assert await usage(admin, project) == {
        "volumes": (0, 0), "gigabytes": (0, 0), "snapshots": (0, 0)}


async def test_delete_is_refused_while_the_volume_has_snapshots_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(1, wait=True)
    snap = await client.create_snapshot(vol.id, wait=True)
    before = (await usage(admin, project), cluster.all_files())

    with pytest.raises(InvalidState, match="dependent snapshot"):
        await client.delete_volume(vol.id)

    assert (await client.show_volume(vol.id)).status == "available"
    assert (await usage(admin, project), cluster.all_files()) == before
    await client.delete_snapshot(snap.id, wait=True)
    assert (await client.delete_volume(vol.id, wait=True)).status == "deleted"


async def test_the_delete_flows_publish_their_task_events_in_order(
    cluster: E2ECluster, client: Client
) -> None:
    vol = await client.create_volume(1, wait=True)
    async with EventTap(cluster) as tap:
        await client.delete_volume(vol.id, wait=True)
        # each actor flushes its events on its own timer: the node's may come first
        done = {("volume_delete_api", "SUCCESS"), ("volume_delete_manager", "SUCCESS")}
        await tap.wait_until(lambda evs: done <= {
            (e.get("flow"), e.get("state")) for e in tap.of_volume(vol.id)
            if e["kind"] == "flow"})
    events = tap.of_volume(vol.id)

    api = task_states(flow_events(events, "volume_delete_api"))
    manager = task_states(flow_events(events, "volume_delete_manager"))
    assert [t for t, s in api if s == "SUCCESS"] == [
        "ExtractDeleteRequestTask", "MarkVolumeDeletingTask", "VolumeDeleteCastTask"]
    assert [t for t, s in manager if s == "SUCCESS"] == [
        "OnFailureReportTask", "NotifyActionTask", "DeleteVolumeTask",
        "DeleteVolumeOnFinishTask"]


# ---- snapshots ---------------------------------------------------------------------
async def test_a_snapshot_is_a_file_on_the_volumes_node_and_counts_in_quota(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(2, wait=True)

    snap = await client.create_snapshot(vol.id, name="before-upgrade", wait=True)

    assert (snap.status, snap.volume_id, snap.size, snap.name) == (
        "available", vol.id, 2, "before-upgrade")
    assert vol.host is not None
    assert (cluster.node_dir(vol.host) / f"snapshot-{snap.id}").exists()
    assert [s.id for s in await client.list_snapshots(volume_id=vol.id)] == [snap.id]
    assert (await client.show_snapshot(snap.id)).status == "available"
    assert await usage(admin, project) == {
        "volumes": (1, 0), "gigabytes": (4, 0), "snapshots": (1, 0)}

    gone = await client.delete_snapshot(snap.id, wait=True)

    assert gone.status == "deleted"
    assert not (cluster.node_dir(vol.host) / f"snapshot-{snap.id}").exists()
    assert await usage(admin, project) == {
        "volumes": (1, 0), "gigabytes": (2, 0), "snapshots": (0, 0)}


async def test_snapshots_over_the_quota_are_refused_naming_snapshots(
    client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, snapshots=1)
    vol = await client.create_volume(1, wait=True)
    await client.create_snapshot(vol.id, wait=True)

    with pytest.raises(OverQuota) as refused:
        await client.create_snapshot(vol.id)

    assert refused.value.details["resource"] == "snapshots"
    assert len(await client.list_snapshots()) == 1
    assert (await usage(admin, project))["snapshots"] == (1, 0)


async def test_a_snapshot_create_retried_with_its_request_id_returns_the_same_snapshot(
    client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(1, wait=True)
    request_id = f"req-{uuid.uuid4()}"

    first = await client.create_snapshot(vol.id, request_id=request_id, wait=True)
    again = await client.create_snapshot(vol.id, request_id=request_id)

    assert again.id == first.id
    assert (await usage(admin, project))["snapshots"] == (1, 0)


async def test_snapshot_requests_for_unknown_or_foreign_objects_are_not_found(
    cluster: E2ECluster, client: Client
) -> None:
    vol = await client.create_volume(1, wait=True)
    snap = await client.create_snapshot(vol.id, wait=True)
    async with cluster.client(f"other-{uuid.uuid4().hex[:8]}") as other:
        with pytest.raises(NotFound):
            await other.create_snapshot(vol.id)
        with pytest.raises(NotFound):
            await other.delete_snapshot(snap.id)
        assert await other.list_snapshots() == []
    with pytest.raises(NotFound):
        await client.show_snapshot("no-such-snapshot")


# ---- create from a snapshot or a source volume ----------------------------------------
async def test_clones_and_volumes_from_snapshots_hold_exactly_the_sources_bytes(
    cluster: E2ECluster, client: Client
) -> None:
    source = await client.create_volume(1, wait=True)
    source_file = file_of(cluster, source)
    write_pattern(source_file, PATTERN)
    snap = await client.create_snapshot(source.id, wait=True)
    assert source.host is not None
    snapshot_file = cluster.node_dir(source.host) / f"snapshot-{snap.id}"
    assert same_bytes(snapshot_file, source_file)
    write_pattern(source_file, [(0, b"written after the snapshot")])

    clone = await client.create_volume(None, source_volid=source.id, wait=True)
    restored = await client.create_volume(2, snapshot_id=snap.id, wait=True)

    assert (clone.host, restored.host) == (source.host, source.host)
    assert (clone.size, clone.source_volid, restored.size, restored.snapshot_id) == (
        1, source.id, 2, snap.id)
    assert same_bytes(file_of(cluster, clone), source_file)
    restored_file = file_of(cluster, restored)
    assert restored_file.stat().st_size == 2 * GIB and zeros_from(restored_file, GIB)
    for offset, data in PATTERN:  # the bytes of the snapshot, not the later write
        assert read(restored_file, offset, len(data)) == data
    assert same_bytes(restored_file, snapshot_file, GIB)


@pytest.mark.parametrize(
    ("kwargs", "error", "mentions"),
    [
        pytest.param({"size": 1}, InvalidInput, "smaller than the snapshot", id="smaller"),
        pytest.param({"volume_type": "FCVolumeType"}, InvalidInput, "does not match",
                     id="type-mismatch"),
        pytest.param({"availability_zone": "elsewhere"}, InvalidInput, "differs",
                     id="zone-mismatch"),
        pytest.param({"source_volid": "0b6a2f8e-6f5b-4a3e-9d52-1c8f3e1d2a44"}, InvalidInput,
                     "not both", id="both-sources"),
    ],
)
async def test_a_wrong_create_from_a_snapshot_is_refused_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
    kwargs: dict[str, Any], error: type[Exception], mentions: str,
) -> None:
    vol = await client.create_volume(2, wait=True)
    snap = await client.create_snapshot(vol.id, wait=True)
    before = (await usage(admin, project), cluster.all_files())
    size = kwargs.pop("size", None)

    with pytest.raises(error, match=mentions):
        await client.create_volume(size, snapshot_id=snap.id, **kwargs)

    assert [v.id for v in await client.list_volumes()] == [vol.id]
    assert (await usage(admin, project), cluster.all_files()) == before


async def test_a_clone_of_the_same_type_named_explicitly_is_accepted(client: Client) -> None:
    vol = await client.create_volume(1, volume_type="FCVolumeType", wait=True)

    clone = await client.create_volume(1, source_volid=vol.id, volume_type="FCVolumeType",
                                       wait=True)

    assert (clone.volume_type, clone.source_volid) == ("FCVolumeType", vol.id)
    with pytest.raises(InvalidInput, match="does not match"):
        await client.create_volume(None, source_volid=vol.id, volume_type="__DEFAULT__")


# ---- extend ------------------------------------------------------------------------
async def test_extend_grows_the_file_and_the_quota_by_the_difference(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    vol = await client.create_volume(1, wait=True)

    grown = await client.extend_volume(vol.id, 3, wait=True)

    assert (grown.status, grown.size) == ("available", 3)
    assert file_of(cluster, vol).stat().st_size == 3 * GIB
    assert await usage(admin, project) == {
        "volumes": (1, 0), "gigabytes": (3, 0), "snapshots": (0, 0)}


@pytest.mark.parametrize("new_size", [1, 2], ids=["smaller", "same"])
async def test_extend_to_a_size_that_is_not_larger_is_refused_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, project: str, new_size: int
) -> None:
    vol = await client.create_volume(2, wait=True)
    before = await usage(admin, project)

    with pytest.raises(InvalidInput, match="must be greater than the current size"):
        await client.extend_volume(vol.id, new_size)

    shown = await client.show_volume(vol.id)
    assert (shown.status, shown.size) == ("available", 2)
    assert file_of(cluster, vol).stat().st_size == 2 * GIB
    assert await usage(admin, project) == before


async def test_extend_over_the_gigabytes_quota_is_refused_and_changes_nothing(
    client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, gigabytes=5)
    vol = await client.create_volume(2, wait=True)

    with pytest.raises(OverQuota):
        await client.extend_volume(vol.id, 6)

    assert (await client.show_volume(vol.id)).status == "available"
    assert (await usage(admin, project))["gigabytes"] == (2, 0)


async def test_extend_beyond_the_per_volume_limit_is_refused_naming_it(
    client: Client, admin: Client, project: str
) -> None:
    await admin.set_quota(project, per_volume_gigabytes=3)
    vol = await client.create_volume(2, wait=True)

    with pytest.raises(OverQuota) as refused:
        await client.extend_volume(vol.id, 4)  # grows by 2, but would be 4 GiB

    assert refused.value.details["resource"] == "per_volume_gigabytes"
    assert (await client.extend_volume(vol.id, 3, wait=True)).size == 3


# ---- everything together -------------------------------------------------------------
async def test_after_a_mixed_sequence_quota_matches_what_exists_and_files_match_the_lists(
    cluster: E2ECluster, client: Client, admin: Client, project: str
) -> None:
    a = await client.create_volume(1, wait=True)
    b = await client.create_volume(2, wait=True)
    s1 = await client.create_snapshot(a.id, wait=True)
    c = await client.create_volume(3, snapshot_id=s1.id, wait=True)
    d = await client.create_volume(None, source_volid=b.id, wait=True)
    await client.extend_volume(a.id, 4, wait=True)
    s2 = await client.create_snapshot(a.id, wait=True)
    await client.extend_volume(d.id, 5, wait=True)
    await client.delete_volume(b.id, wait=True)
    await client.delete_snapshot(s1.id, wait=True)
    await client.create_snapshot(c.id, wait=True)
    assert s2.size == 4

    assert await usage(admin, project) == await what_exists(client)
    await assert_nodes_hold_exactly_what_the_gateway_lists(cluster, admin)

    for snap in await client.list_snapshots():
        await client.delete_snapshot(snap.id, wait=True)
    for vol in await client.list_volumes():
        await client.delete_volume(vol.id, wait=True)
    assert await usage(admin, project) == {
        "volumes": (0, 0), "gigabytes": (0, 0), "snapshots": (0, 0)}
    await assert_nodes_hold_exactly_what_the_gateway_lists(cluster, admin)


# ---- the command line ----------------------------------------------------------------
def test_the_cli_snapshots_clones_extends_and_deletes(cluster: E2ECluster, project: str) -> None:
    cluster.user_key(project)
    where = ["--data-dir", cluster.cfg.data_dir, "--project", project, "--user", project]

    def cli(*args: str) -> Any:
        done = run_cli(*args, *where, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    vol = cli("volume", "create", "1", "--wait")
    snap = cli("snapshot", "create", vol["id"], "--name", "s", "--wait")
    assert (snap["status"], snap["name"]) == ("available", "s")
    assert [s["id"] for s in cli("snapshot", "list")] == [snap["id"]]
    copy = cli("volume", "create", "--snapshot-id", snap["id"], "--wait")
    assert (copy["size"], copy["snapshot_id"]) == (1, snap["id"])
    assert cli("volume", "extend", copy["id"], "2", "--wait")["size"] == 2
    assert cli("snapshot", "delete", snap["id"], "--wait")["status"] == "deleted"
    assert cli("volume", "delete", copy["id"], "--wait")["status"] == "deleted"
    refused = run_cli("volume", "extend", vol["id"], "1", *where)
    assert refused.returncode == 1
    assert refused.stderr.startswith("ERROR (invalid_input): new size 1 GiB")
    assert run_cli("volume", "create", *where).stderr.startswith("ERROR (usage)")

"""Generic volume groups end to end, through the client library: group types (Cinder's
3.11) an admin makes, changes and deletes, which projects see without their specs; and
groups (3.13) of volumes on one backend; group snapshots (3.14) taken at one instant."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, InvalidState, NotFound
from tests.cluster_invariants import settled_violations
from tests.conftest import E2ECluster, EventTap, eventually, run_cli
from tests.lifecycle_helpers import (
    file_of,
    group_gone,
    group_snapshot_gone,
    read,
    write_pattern,
)


async def test_an_admin_makes_changes_and_deletes_a_group_type(
    cluster: E2ECluster, client: Client, admin: Client,
) -> None:
    name = f"cg-{uuid.uuid4().hex[:8]}"
    made = await admin.create_group_type(name, description=" crash-consistent ",
                                         group_specs={"consistent_group_snapshot_enabled":
                                                      "<is> True"})
    assert (made.name, made.description, made.is_public, made.group_specs) == (
        name, "crash-consistent", True, {"consistent_group_snapshot_enabled": "<is> True"})
    assert await admin.show_group_type(name) == made
    seen = await client.show_group_type(made.id)  # a project: no specs
    assert (seen.id, seen.name, seen.group_specs) == (made.id, name, {})
    assert made.id in {t.id for t in await client.list_group_types()}

    with pytest.raises(InvalidInput, match=f"Group Type {name} already exists"):
        await admin.create_group_type(f"  {name} ")
    with pytest.raises(InvalidInput, match="name can not be empty"):
        await admin.create_group_type("   ")
    with pytest.raises(InvalidInput, match=r"group spec .*1-255 characters"):
        await admin.create_group_type(f"{name}-x", group_specs={"k": "v" * 256})
    with pytest.raises(Forbidden):
        await client.create_group_type(f"{name}-mine")
    with pytest.raises(Forbidden):
        await client.delete_group_type(made.id)
    with pytest.raises(NotFound, match="Default group type can not be found"):
        await client.show_group_type("default")

    hidden = await admin.update_group_type(made.id, name=f"{name}-r", is_public=False,
                                           group_specs={"k": "v"},
                                           delete_specs=["consistent_group_snapshot_enabled"])
    assert (hidden.name, hidden.is_public, hidden.group_specs) == (f"{name}-r", False,
                                                                  {"k": "v"})
    with pytest.raises(NotFound):  # private: a project does not see it
        await client.show_group_type(made.id)
    assert made.id not in {t.id for t in await client.list_group_types()}
    with pytest.raises(NotFound, match="has no specs with key nope"):
        await admin.update_group_type(made.id, delete_specs=["nope"])

    await admin.delete_group_type(made.id)
    with pytest.raises(NotFound):
        await admin.show_group_type(made.id)


@pytest.fixture(scope="module")
def two_names(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-2's backend named ``fast``: a group of the Fast type goes there."""
    return cluster_factory(nodes=2, node_overrides={"node-2": {"volume_backend_name": "fast"}})


async def test_a_group_holds_volumes_of_its_types_on_its_backend(two_names: E2ECluster) -> None:
    """A group is placed on the backend its volume types fit; volumes are made in it
    (there) or added (if there) and removed; a volume in a group is not deleted,
    migrated or retyped on its own; a group with volumes is deleted only with them; the
    groups quota counts it; and the cluster settles exact."""
    c, project = two_names, "grouping"
    async with c.client(project) as client, c.client("admin", admin=True) as admin:
        fast = await admin.create_type("Fast", extra_specs={"volume_backend_name": "fast"})
        gtype = await admin.create_group_type("cg")
        group = await client.create_group("cg", ["Fast"], name="db", description="d")
        assert (group.status, group.host, group.volume_types, group.group_type, group.name) \
            == ("available", "node-2@file", (fast.id,), gtype.id, "db")
        assert (await client.show_quota()).in_use["groups"] == 1

        inside = await client.create_volume(1, volume_type="Fast", group_id=group.id, wait=True)
        assert (inside.group_id, inside.host) == (group.id, "node-2@file")
        with pytest.raises(InvalidInput, match=r"is not one of group .* volume types"):
            await client.create_volume(1, group_id=group.id)  # the default type
        outside = await client.create_volume(1, volume_type="Fast", wait=True)
        plain = await client.create_volume(1, volume_type="FCVolumeType", wait=True)
        with pytest.raises(InvalidInput, match="volume type FCVolumeType is not supported"):
            await client.update_group(group.id, add_volumes=[plain.id])
        added = await client.update_group(group.id, add_volumes=[outside.id], name="db2")
        assert (set(added.volumes), added.name) == ({inside.id, outside.id}, "db2")
        assert (await client.show_volume(outside.id)).group_id == group.id
        listed = {v.id for v in await client.list_volumes(group_id=group.id)}
        assert listed == {inside.id, outside.id}  # the group's, not plain's
        assert await client.count_volumes(group_id=group.id) == 2

        with pytest.raises(InvalidState, match="belongs to group"):
            await client.delete_volume(inside.id)
        with pytest.raises(InvalidState, match="belongs to group"):
            await admin.migrate_volume(inside.id, "node-1@file")
        with pytest.raises(InvalidState, match="belongs to group"):
            await client.retype_volume(inside.id, "FCVolumeType", "on-demand")
        with pytest.raises(InvalidState, match="belongs to group"):
            await client.create_transfer(inside.id)
        with pytest.raises(InvalidInput, match="still contains volumes"):
            await client.delete_group(group.id)
        with pytest.raises(InvalidInput, match="still in use"):
            await admin.delete_group_type(gtype.id)

        kept = await client.update_group(group.id, remove_volumes=[outside.id])
        assert set(kept.volumes) == {inside.id}
        assert (await client.show_volume(outside.id)).group_id is None
        await client.delete_volume(outside.id, wait=True)  # on its own again

        await client.delete_group(group.id, delete_volumes=True)
        await eventually(lambda: group_gone(client, group.id), timeout=30)
        with pytest.raises(NotFound):
            await client.show_volume(inside.id)
        assert (await client.show_quota()).in_use["groups"] == 0
        assert await settled_violations(c, admin, [project]) == []
        await client.delete_volume(plain.id, wait=True)
        await admin.delete_group_type(gtype.id)


async def test_a_group_snapshot_takes_every_volume_at_one_instant_and_goes_with_them(
    two_names: E2ECluster,
) -> None:
    """A group snapshot of two volumes: each snapshot holds its volume's bytes and names
    the group snapshot; a member is not deleted on its own, nor the group while it has
    one; a volume made from a member holds its bytes; the group snapshot's delete takes
    its snapshots, and quota and node files settle exact."""
    c, project = two_names, "group-snapping"
    async with c.client(project) as client, c.client("admin", admin=True) as admin:
        await admin.create_type("Fast2", extra_specs={"volume_backend_name": "fast"})
        gtype = await admin.create_group_type("cg2", group_specs={
            "consistent_group_snapshot_enabled": "<is> True"})  # at one instant
        group = await client.create_group(gtype.id, ["Fast2"])
        vols = [await client.create_volume(1, volume_type="Fast2", group_id=group.id,
                                           wait=True) for _ in range(2)]
        for n, vol in enumerate(vols):
            write_pattern(file_of(c, vol), [(4096, f"volume {n} at the instant".encode())])
        async with EventTap(c) as tap:
            snap = await client.create_group_snapshot(group.id, name="nightly", wait=True)
            await tap.caught_up()
        assert (snap.status, snap.group_id, len(snap.snapshots), snap.name) == (
            "available", group.id, 2, "nightly")
        for sid in snap.snapshots:  # a dashboard sees each made, as a single snapshot
            assert [e["status"] for e in tap.events if e.get("snapshot_id") == sid] == [
                "creating", "available"]
        members = [await client.show_snapshot(s) for s in snap.snapshots]
        assert {m.volume_id for m in members} == {v.id for v in vols}
        assert all(m.group_snapshot_id == snap.id and m.status == "available" for m in members)
        assert (await client.show_quota()).in_use["snapshots"] == 2
        with pytest.raises(InvalidState, match="is part of group snapshot"):
            await client.delete_snapshot(members[0].id)
        with pytest.raises(InvalidState, match="has existing group snapshots"):
            await client.delete_group(group.id, delete_volumes=True)
        first = next(m for m in members if m.volume_id == vols[0].id)
        copy = await client.create_volume(snapshot_id=first.id, size=None, wait=True)
        assert read(file_of(c, copy), 4096, 23) == b"volume 0 at the instant"
        await client.delete_volume(copy.id, wait=True)

        # a group made from the group snapshot, and one copied from the group (3.14)
        restored = await client.create_group_from_src(group_snapshot_id=snap.id,
                                                      name="restored")
        cloned = await client.create_group_from_src(source_group_id=group.id)
        assert (restored.group_snapshot_id, cloned.source_group_id) == (snap.id, group.id)
        assert restored.status == cloned.status == "available"  # creating until then
        assert (restored.host, restored.volume_types) == (group.host, group.volume_types)
        for made in (restored, cloned):
            assert len(made.volumes) == 2
            for vid in made.volumes:
                await client.wait_for_status(vid, "available", timeout=30)
        from_snap = {(await client.show_volume(v)).snapshot_id: v for v in restored.volumes}
        assert read(file_of(c, await client.show_volume(from_snap[first.id])), 4096, 23) \
            == b"volume 0 at the instant"
        with pytest.raises(InvalidInput, match="one of them"):
            await client.create_group_from_src(group_snapshot_id=snap.id,
                                               source_group_id=group.id)
        for made in (restored, cloned):
            await client.delete_group(made.id, delete_volumes=True)
        for gid in (restored.id, cloned.id):
            await eventually(partial(group_gone, client, gid), timeout=30)

        await client.delete_group_snapshot(snap.id)
        await eventually(lambda: group_snapshot_gone(client, snap.id), timeout=30)
        for m in members:
            with pytest.raises(NotFound):
                await client.show_snapshot(m.id)
        await client.delete_group(group.id, delete_volumes=True)
        await eventually(lambda: group_gone(client, group.id), timeout=30)
        assert await settled_violations(c, admin, [project]) == []
        await admin.delete_group_type(gtype.id)


async def test_creates_sent_twice_at_once_under_one_request_id_make_one(
    two_names: E2ECluster,
) -> None:
    """A group's create and a group snapshot's, each sent twice at once under one request
    id (a client retrying while the first runs), make one and answer it to both."""
    c, project = two_names, "group-retrying"
    async with c.client(project) as client, c.client("admin", admin=True) as admin, \
            EventTap(c) as tap:
        gtype = await admin.create_group_type("cg-retry")
        groups = await asyncio.gather(*(client.create_group(
            gtype.id, ["__DEFAULT__"], name="once", request_id="make-once") for _ in range(2)))
        assert groups[0].id == groups[1].id
        assert [g.id for g in await client.list_groups()] == [groups[0].id]
        await client.create_volume(1, group_id=groups[0].id, wait=True)
        snaps = await asyncio.gather(*(client.create_group_snapshot(
            groups[0].id, request_id="snap-once") for _ in range(2)))
        assert snaps[0].id == snaps[1].id
        listed = await client.list_group_snapshots()
        assert [s.id for s in listed] == [snaps[0].id] and len(listed[0].snapshots) == 1
        with pytest.raises(InvalidInput, match="already used for a different request"):
            await client.create_group_snapshot(groups[0].id, name="other",
                                               request_id="snap-once")
        await eventually(partial(_available, client, snaps[0].id), timeout=30)
        await client.delete_group_snapshot(snaps[0].id)
        await eventually(partial(group_snapshot_gone, client, snaps[0].id), timeout=30)
        await client.delete_group(groups[0].id, delete_volumes=True)
        await eventually(partial(group_gone, client, groups[0].id), timeout=30)
        assert await settled_violations(c, admin, [project]) == []
        await admin.delete_group_type(gtype.id)
        await tap.caught_up()
    told = [(e["status"], e["volumes"]) for e in tap.events
            if e["kind"] == "group" and e["group_id"] == groups[0].id]
    # one group made, its count following its volume in and out
    assert told == [("available", 0), ("available", 1), ("deleting", 1), ("deleting", 0),
                    ("deleted", 0)]
    # one group snapshot made, its status its snapshot's, then gone (each change told,
    # once: its member's moves that change nothing it shows are not)
    snapped = [(e["status"], e["snapshots"]) for e in tap.events
               if e["kind"] == "group_snapshot" and e["group_snapshot_id"] == snaps[0].id]
    assert snapped == [
        ("creating", 1), ("available", 1), ("deleting", 1), ("deleting", 0), ("deleted", 0)]


async def _available(client: Client, group_snapshot_id: str) -> bool:
    return (await client.show_group_snapshot(group_snapshot_id)).status == "available"


@pytest.fixture(scope="module")
def failing_snapshots(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1, node_overrides={"node-1": {"faults": ("create_snapshot",)}})


async def test_a_group_snapshot_that_fails_leaves_every_member_in_error_and_no_file(
    failing_snapshots: E2ECluster,
) -> None:
    c, project = failing_snapshots, "group-failing"
    async with c.client(project) as client, c.client("admin", admin=True) as admin:
        gtype = await admin.create_group_type("cg-fail")
        group = await client.create_group(gtype.id, ["__DEFAULT__"])
        for _ in range(2):
            await client.create_volume(1, group_id=group.id, wait=True)
        snap = await client.create_group_snapshot(group.id, wait=True)
        assert snap.status == "error"
        for sid in snap.snapshots:
            member = await client.show_snapshot(sid)
            assert member.status == "error"
            assert "injected fault: create_snapshot" in (member.reason or "")
        assert not [f for f in c.node_files()["node-1"] if f.startswith("snapshot-")]
        with pytest.raises(Forbidden):  # 3.19's reset is an admin's
            await client.reset_group_snapshot_status(snap.id, "available")
        with pytest.raises(InvalidInput, match=r"can be reset to \['available', 'error'\]"):
            await admin.reset_group_snapshot_status(snap.id, "deleting")
        reset = await admin.reset_group_snapshot_status(snap.id, "error")
        assert reset.status == "error"
        for sid in snap.snapshots:
            assert "status reset by an admin" in ((await client.show_snapshot(sid)).reason
                                                  or "")
        await client.delete_group_snapshot(snap.id)
        await eventually(lambda: group_snapshot_gone(client, snap.id), timeout=30)
        await client.delete_group(group.id, delete_volumes=True)
        await eventually(lambda: group_gone(client, group.id), timeout=30)
        assert await settled_violations(c, admin, [project]) == []


async def test_the_cli_makes_snapshots_and_deletes_a_group(two_names: E2ECluster) -> None:
    """``cinderblock group type create``, ``group create``, ``volume create --group``,
    ``group snapshot create --wait`` (again with its ``--request-id``: the same one),
    ``group snapshot list``, an admin's ``reset-state`` and ``delete``, and ``group
    delete --delete-volumes``: each prints what it made, and the group goes."""
    c, project = two_names, "group-cli"

    def cli(*args: str, admin: bool = False) -> Any:
        done = run_cli(*args, "--json", "--gateway", c.gateway, *(["--admin"] * admin),
                       env={"CINDERBLOCK_KEY": str(c.user_key("admin" if admin else project,
                                                               admin))})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    gtype = await asyncio.to_thread(cli, "group", "type", "create", "cg-cli", "--spec",
                                    "consistent_group_snapshot_enabled=<is> True", admin=True)
    group = await asyncio.to_thread(cli, "group", "create", gtype["id"], "__DEFAULT__",
                                    "--name", "by-cli")
    vol = await asyncio.to_thread(cli, "volume", "create", "1", "--group", group["id"],
                                  "--wait")
    assert vol["group_id"] == group["id"]
    listed = await asyncio.to_thread(cli, "volume", "list", "--group", group["id"])
    assert [v["id"] for v in listed] == [vol["id"]], listed
    snap = await asyncio.to_thread(cli, "group", "snapshot", "create", group["id"], "--wait",
                                   "--request-id", "cli-nightly")
    assert (snap["status"], len(snap["snapshots"])) == ("available", 1)
    again = await asyncio.to_thread(cli, "group", "snapshot", "create", group["id"],
                                    "--request-id", "cli-nightly")  # a retry: the same one
    assert again["id"] == snap["id"]
    listed = await asyncio.to_thread(cli, "group", "snapshot", "list", "--group", group["id"])
    assert [s["id"] for s in listed] == [snap["id"]], listed
    reset = await asyncio.to_thread(cli, "group", "snapshot", "reset-state", snap["id"],
                                    admin=True)  # error, the default
    assert reset["status"] == "error"
    reset = await asyncio.to_thread(cli, "group", "snapshot", "reset-state", snap["id"],
                                    "--state", "available", admin=True)
    assert reset["status"] == "available"
    await asyncio.to_thread(cli, "group", "snapshot", "delete", snap["id"])
    async with c.client(project) as client:
        await eventually(lambda: group_snapshot_gone(client, snap["id"]), timeout=30)
        await asyncio.to_thread(cli, "group", "delete", group["id"], "--delete-volumes")
        await eventually(lambda: group_gone(client, group["id"]), timeout=30)
    await asyncio.to_thread(cli, "group", "type", "delete", gtype["id"], admin=True)

"""The real OpenStack clients against the REST front of a running cluster.

python-cinderclient's ``cinder`` and python-openstackclient's ``openstack`` run as
processes, unchanged, with their noauth options (each command a fork of a process that
has imported the client already: ``tests/cli_zygote.py``; one test starts the installed
launcher scripts themselves); openstacksdk's block-storage proxy runs in this process.
What they print is checked against what the gateway holds (read with the client library,
as an admin).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sysconfig
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.wire.errors import InvalidInput
from tests.cli_zygote import run_script
from tests.conftest import GIB, E2ECluster, self_signed
from tests.lifecycle_helpers import file_of, read, same_bytes, write_pattern
from tests.nbd_tls import qemu_tls, requires

SCRIPTS = Path(sysconfig.get_path("scripts"))


@pytest.fixture(scope="module")
def rest_cluster(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(rest_fronts=1)


@pytest.fixture
def admin_view(rest_cluster: E2ECluster) -> Iterator[SyncClient]:
    with SyncClient(rest_cluster.gateway, project="admin", admin=True, timeout=20.0,
                    key=rest_cluster.user_key("admin", admin=True)) as c:
        yield c


def tool(name: str) -> str:
    path = SCRIPTS / name
    if not path.exists():
        pytest.fail(f"{name} is not installed beside this Python: pip install -e '.[test]'")
    return str(path)


def run(argv: list[str], timeout: float = 60.0) -> str:
    """A ``cinder`` or ``openstack`` command (``argv[0]``: the installed script), as a
    fork of a process that has imported it already (``tests/cli_zygote.py``: the same
    code, a second less per command)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CINDER_"))}
    done = run_script(argv, timeout, env)
    assert done.returncode == 0, f"{' '.join(argv[-4:])} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def table(output: str) -> dict[str, str]:
    """A ``Property | Value`` table as printed by cinder."""
    rows: dict[str, str] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and line.startswith("|") and cells[0] not in ("Property", ""):
            rows[cells[0]] = cells[1]
    return rows


def rows(output: str) -> list[list[str]]:
    """The data rows of a list table."""
    lines = [ln for ln in output.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[1:]]


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "the cluster did not get there in time"
        time.sleep(0.1)


def admin_commands(cluster: E2ECluster, version: str
                   ) -> tuple[Callable[..., str], Callable[..., str]]:
    """``cinder`` and ``openstack`` as the admin against the cluster's REST front, at a
    microversion: each runs its arguments and returns what it printed."""
    return commands_as(cluster, version, "admin")


def commands_as(cluster: E2ECluster, version: str, project: str
                ) -> tuple[Callable[..., str], Callable[..., str]]:
    """``cinder`` and ``openstack`` as a user of ``project`` (the admin for "admin")
    against the cluster's REST front, at a microversion."""
    endpoint = ["--os-endpoint", cluster.rest_url, "--os-volume-api-version", version]

    def cinder(*args: str) -> str:
        return run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
                    "--os-project-id", project, *endpoint, *args])

    def openstack(*args: str) -> str:
        return run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                    f"{project}:{project}", *endpoint, *args])

    return cinder, openstack


def volume_status(admin: SyncClient, volume_id: str, status: str) -> Volume:
    def reached() -> Volume | None:
        vol = admin.show_volume(volume_id)
        return vol if vol.status == status else None

    found: Volume = wait_for(reached)
    return found


def snapshot_status(admin: SyncClient, snapshot_id: str, status: str) -> Snapshot:
    def reached() -> Snapshot | None:
        snap = admin.show_snapshot(snapshot_id)
        return snap if snap.status == status else None

    found: Snapshot = wait_for(reached)
    return found


def backup_status(admin: SyncClient, backup_id: str, status: str,
                  timeout: float = 60.0) -> Backup:
    def reached() -> Backup | None:
        backup = admin.show_backup(backup_id)
        return backup if backup.status == status else None

    found: Backup = wait_for(reached, timeout)
    return found


def backup_gone(admin: SyncClient, backup_id: str) -> None:
    wait_for(lambda: backup_id not in {
        b.id for b in admin.list_backups(all_projects=True)}, timeout=60.0)


def gone(admin: SyncClient, volume_id: str) -> None:
    wait_for(lambda: volume_id not in {v.id for v in admin.list_volumes(all_projects=True)})


# ---- python-cinderclient -----------------------------------------------------------------
def test_the_cinder_command_drives_a_volume_through_its_whole_life(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    base = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
            "--os-project-id", project, "--os-endpoint", rest_cluster.rest_url]

    def cinder(*args: str) -> str:
        return run([*base, *args])

    created = table(cinder("create", "1", "--name", "firstvol", "--volume-type", "FCVolumeType"))
    assert (created["name"], created["size"], created["volume_type"]) == (
        "firstvol", "1", "FCVolumeType")
    vol = volume_status(admin_view, created["id"], "available")
    assert (vol.project_id, vol.name, vol.volume_type) == (project, "firstvol", "FCVolumeType")

    shown = table(cinder("show", "firstvol"))
    assert (shown["id"], shown["status"], shown["size"]) == (vol.id, "available", "1")
    listed = rows(cinder("list"))
    assert [(r[0], r[1], r[2]) for r in listed] == [(vol.id, "available", "firstvol")]
    by_name = rows(cinder("list", "--sort", "name:asc"))  # sent as display_name:asc
    assert [r[0] for r in by_name] == [vol.id]
    summary = table(cinder("--os-volume-api-version", "3.12", "summary"))
    assert (summary["total_count"], summary["total_size"]) == ("1", "1")
    type_names = {r[1] for r in rows(cinder("type-list"))}
    assert {t.name for t in admin_view.list_types()} == type_names
    quota = table(cinder("quota-show", project))
    limits = admin_view.show_quota(project).limits
    assert (int(quota["volumes"]), int(quota["gigabytes"])) == (
        limits["volumes"], limits["gigabytes"])

    cinder("extend", vol.id, "2")
    wait_for(lambda: admin_view.show_volume(vol.id).size == 2)
    volume_status(admin_view, vol.id, "available")

    snap = table(cinder("snapshot-create", "--name", "snap1", vol.id))
    wait_for(lambda: admin_view.show_snapshot(snap["id"]).status == "available")
    cinder("snapshot-metadata", "snap1", "set", "tier=gold", "owner=ops")
    cinder("snapshot-metadata", "snap1", "unset", "owner")
    assert admin_view.show_snapshot(snap["id"]).metadata == {"tier": "gold"}
    cinder("--os-volume-api-version", "3.40", "revert-to-snapshot", "snap1")
    volume_status(admin_view, vol.id, "available")
    wait_for(lambda: admin_view.show_snapshot(snap["id"]).status == "available")
    clone = table(cinder("create", "--snapshot-id", snap["id"], "--name", "fromsnap"))
    assert (clone["snapshot_id"], clone["size"]) == (snap["id"], "2")
    volume_status(admin_view, clone["id"], "available")

    # Nova's three calls: reserve, give the connector (the export), complete.
    att = table(cinder("attachment-create", vol.id, "instance-1"))
    assert (att["volume_id"], att["instance"], att["status"]) == (vol.id, "instance-1",
                                                                  "reserved")
    assert admin_view.show_volume(vol.id).status == "reserved"
    updated = table(cinder("attachment-update", "--host", "vm-host", "--initiator",
                           "iqn.2026-12.test:vm", att["id"]))
    assert updated["driver_volume_type"] == "nbd"
    export = admin_view.show_attachment(att["id"]).connection_info["data"]["export_name"]
    assert export in updated["data"]
    cinder("attachment-complete", att["id"])
    assert admin_view.show_volume(vol.id).status == "in-use"
    assert table(cinder("show", vol.id))["attachment_ids"] == f"['{att['id']}']"
    cinder("attachment-delete", att["id"])
    volume_status(admin_view, vol.id, "available")

    cinder("metadata", vol.id, "set", "tier=gold", "owner=ops")
    cinder("metadata", vol.id, "unset", "owner")
    assert admin_view.show_volume(vol.id).metadata == {"tier": "gold"}
    assert table(cinder("metadata-show", vol.id)) == {"tier": "gold"} or \
        rows(cinder("metadata-show", vol.id)) == [["tier", "gold"]]
    cinder("rename", vol.id, "renamed", "--description", "after the rename")
    renamed = admin_view.show_volume(vol.id)
    assert (renamed.name, renamed.description) == ("renamed", "after the rename")

    cinder("delete", clone["id"])
    gone(admin_view, clone["id"])
    cinder("snapshot-delete", snap["id"])
    wait_for(lambda: not admin_view.list_snapshots(volume_id=vol.id))
    cinder("delete", "renamed")
    gone(admin_view, vol.id)
    assert rows(cinder("list")) == []


# ---- python-openstackclient ----------------------------------------------------------------
def test_the_openstack_command_creates_shows_lists_and_deletes_a_volume(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    project = f"osc-{uuid.uuid4().hex[:8]}"
    base = [tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
            f"{project}:{project}", "--os-endpoint", rest_cluster.rest_url,
            "--os-volume-api-version", "3"]

    def openstack(*args: str) -> str:
        return run([*base, *args])

    volume_id = openstack("volume", "create", "--size", "1", "x", "-f", "value", "-c",
                          "id").strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", volume_id)
    vol = volume_status(admin_view, volume_id, "available")
    assert (vol.project_id, vol.name, vol.size) == (project, "x", 1)
    shown = openstack("volume", "show", volume_id, "-f", "value", "-c", "status", "-c", "size")
    assert shown.split() == ["1", "available"]
    listed = openstack("volume", "list", "-f", "value", "-c", "ID", "-c", "Name")
    assert listed.split() == [volume_id, "x"]
    openstack("volume", "set", "--property", "tier=gold", volume_id)
    by_property = openstack("volume", "list", "--property", "tier=gold", "-f", "value", "-c",
                            "ID")  # sent as metadata={'tier': 'gold'}: had been a 400
    assert by_property.split() == [volume_id]
    assert openstack("volume", "list", "--property", "tier=lead", "-f", "value") == ""
    summary = openstack("--os-volume-api-version", "3.36", "volume", "summary", "-f", "json")
    assert json.loads(summary) == {"Total Count": 1, "Total Size": 1,
                                   "Metadata": {"tier": ["gold"]}}
    snap_id = openstack("volume", "snapshot", "create", "--volume", volume_id, "s", "-f",
                        "value", "-c", "id").strip()
    wait_for(lambda: admin_view.show_snapshot(snap_id).status == "available")
    openstack("--os-volume-api-version", "3.40", "volume", "revert", snap_id)
    volume_status(admin_view, volume_id, "available")
    wait_for(lambda: admin_view.show_snapshot(snap_id).status == "available")
    openstack("volume", "snapshot", "delete", snap_id)
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=volume_id))
    openstack("volume", "delete", volume_id)
    gone(admin_view, volume_id)
    assert openstack("volume", "list", "-f", "value").strip() == ""


def test_the_launcher_scripts_themselves_create_show_and_delete_a_volume(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """The ``cinder`` and ``openstack`` scripts pip installed, started as plain processes
    (the other tests run their entry point in a fork of a process that has imported it:
    this one holds that the launchers themselves reach the front, as a user's shell does)."""
    project = f"launch-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CINDER_"))}
    endpoint = ["--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3"]

    def launch(argv: list[str]) -> str:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{' '.join(argv[-4:])} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    openstack = [tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                 f"{project}:{project}", *endpoint]
    cinder = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
              "--os-project-id", project, *endpoint]
    volume_id = launch([*openstack, "volume", "create", "--size", "1", "launched", "-f",
                        "value", "-c", "id"]).strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", volume_id)
    volume_status(admin_view, volume_id, "available")
    shown = table(launch([*cinder, "show", volume_id]))
    assert (shown["name"], shown["size"], shown["status"]) == ("launched", "1", "available")
    launch([*cinder, "delete", volume_id])
    gone(admin_view, volume_id)
    assert launch([*openstack, "volume", "list", "-f", "value"]).strip() == ""


def test_image_properties_are_set_shown_and_unset_with_openstack_and_cinder(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume set/unset --image-property`` and ``cinder image-metadata`` /
    ``image-metadata-show`` (each had been "There is no such action"): the properties
    Nova reads to boot a volume, shown by ``volume show``; a clone of the bootable
    volume, made with ``openstack volume create --source``, is bootable and has them."""
    cinder, openstack = commands_as(rest_cluster, "3", f"img-{uuid.uuid4().hex[:8]}")

    volume_id = openstack("volume", "create", "--size", "1", "boot", "-f", "value", "-c",
                          "id").strip()
    volume_status(admin_view, volume_id, "available")
    openstack("volume", "set", "--bootable", "--image-property", "hw_disk_bus=scsi",
              "--image-property", "hw_scsi_model=virtio-scsi", volume_id)
    shown = json.loads(openstack("volume", "show", volume_id, "-f", "json"))
    assert shown["bootable"] is True  # openstacksdk's: Cinder's "true" read as a boolean
    assert shown["volume_image_metadata"] == {"hw_disk_bus": "scsi",
                                              "hw_scsi_model": "virtio-scsi"}, shown
    cinder("image-metadata", volume_id, "set", "os_type=linux")
    openstack("volume", "unset", "--image-property", "hw_disk_bus", volume_id)
    assert table(cinder("image-metadata-show", volume_id)) == {
        "Metadata-property": "Value", "hw_scsi_model": "virtio-scsi", "os_type": "linux"}
    clone_id = openstack("volume", "create", "--source", volume_id, "copy", "-f", "value",
                         "-c", "id").strip()
    volume_status(admin_view, clone_id, "available")
    copied = json.loads(openstack("volume", "show", clone_id, "-f", "json"))
    assert (copied["bootable"], copied["volume_image_metadata"]) == (
        True, {"hw_scsi_model": "virtio-scsi", "os_type": "linux"}), copied
    openstack("volume", "delete", clone_id, volume_id)
    gone(admin_view, clone_id)
    gone(admin_view, volume_id)


def test_an_operator_changes_types_and_a_user_snapshot_properties_with_openstack_and_cinder(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume type set/unset``, ``cinder type-key``, ``type-update`` and
    ``quota-delete`` as an admin; ``openstack volume snapshot set/unset --property`` as a
    user (each had failed with 405 or 404: no route served them)."""
    name = f"osc-type-{uuid.uuid4().hex[:8]}"

    def openstack(token: str, *args: str) -> str:
        return run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token", token,
                    "--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3",
                    *args])

    def cinder(*args: str) -> str:
        return run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
                    "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url,
                    *args])

    def stored(type_id: str) -> VolumeType:
        return next(t for t in admin_view.list_types() if t.id == type_id)

    admin = "admin:admin"
    type_id = openstack(admin, "volume", "type", "create", name, "--property", "qos:a=1",
                        "-f", "value", "-c", "id").strip()
    openstack(admin, "volume", "type", "set", "--property", "qos:b=2", "--property", "qos:c=3",
              "--description", "tiered", "--private", name)
    openstack(admin, "volume", "type", "unset", "--property", "qos:a", name)
    changed = stored(type_id)
    assert (changed.extra_specs, changed.description, changed.is_public) == (
        {"qos:b": "2", "qos:c": "3"}, "tiered", False)
    cinder("type-key", type_id, "set", "qos:d=4")
    cinder("type-key", type_id, "unset", "qos:b")
    cinder("type-update", "--name", f"{name}-2", "--is-public", "true", type_id)
    changed = stored(type_id)
    assert (changed.name, changed.is_public, changed.extra_specs) == (
        f"{name}-2", True, {"qos:c": "3", "qos:d": "4"})
    cinder("type-key", type_id, "set", f"tier={name}")
    listed = cinder("--os-volume-api-version", "3.52", "type-list", "--filters",
                    f"extra_specs={{tier:{name}}}")  # types by their specs (had been a 400)
    assert f"{name}-2" in listed and "__DEFAULT__" not in listed, listed
    cinder("type-key", type_id, "unset", "tier")  # no backend has it: nothing would place

    project = f"osc-{uuid.uuid4().hex[:8]}"
    user = f"{project}:{project}"
    volume_id = openstack(user, "volume", "create", "--size", "1", "--type", f"{name}-2", "v",
                          "-f", "value", "-c", "id").strip()
    volume_status(admin_view, volume_id, "available")
    snap_id = openstack(user, "volume", "snapshot", "create", "--volume", volume_id,
                        "--property", "k=v", "s", "-f", "value", "-c", "id").strip()
    wait_for(lambda: admin_view.show_snapshot(snap_id).status == "available")
    openstack(user, "volume", "snapshot", "set", "--property", "tier=gold", "--property",
              "owner=ops", snap_id)
    openstack(user, "volume", "snapshot", "unset", "--property", "owner", snap_id)
    assert admin_view.show_snapshot(snap_id).metadata == {"k": "v", "tier": "gold"}
    cinder("snapshot-reset-state", "--state", "error", snap_id)  # had been a 404
    assert admin_view.show_snapshot(snap_id).status == "error"
    openstack(user, "volume", "snapshot", "delete", snap_id)
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=volume_id))
    openstack(user, "volume", "delete", volume_id)
    gone(admin_view, volume_id)
    cinder("type-delete", type_id)
    assert type_id not in {t.id for t in admin_view.list_types()}
    cinder("quota-update", "--volumes", "3", project)
    assert admin_view.show_quota(project).limits["volumes"] == 3
    cinder("quota-delete", project)  # back on the defaults (it had failed with 405)
    assert admin_view.show_quota(project).limits == admin_view.show_quota(
        project, defaults=True).limits


def test_a_volume_changes_project_through_openstack_and_cinder_transfers(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume transfer request create/accept/list/delete`` and ``cinder
    transfer-create/transfer-accept/transfer-list`` (each had been a 404): the donor
    offers, another project accepts with the key, the volume and its quota move."""
    donor, taker = (f"xfer-{uuid.uuid4().hex[:8]}" for _ in range(2))

    def openstack(project: str, *args: str) -> str:
        return run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                    f"{project}:{project}", "--os-endpoint", rest_cluster.rest_url,
                    "--os-volume-api-version", "3.57", *args])

    def cinder(project: str, *args: str) -> str:
        return run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
                    "--os-project-id", project, "--os-endpoint", rest_cluster.rest_url,
                    "--os-volume-api-version", "3.57", *args])

    volume_id = openstack(donor, "volume", "create", "--size", "1", "v", "-f", "value",
                          "-c", "id").strip()
    volume_status(admin_view, volume_id, "available")
    offer = json.loads(openstack(donor, "volume", "transfer", "request", "create",
                                 "--name", "to-taker", volume_id, "-f", "json"))
    assert admin_view.show_volume(volume_id).status == "awaiting-transfer"
    listed = openstack(donor, "volume", "transfer", "request", "list", "-f", "value",
                       "-c", "ID")
    assert listed.split() == [offer["id"]]
    cinder(taker, "transfer-accept", offer["id"], offer["auth_key"])
    moved = admin_view.show_volume(volume_id)
    assert (moved.project_id, moved.status) == (taker, "available")
    assert admin_view.show_quota(taker).in_use["volumes"] == 1
    wait_for(lambda: admin_view.show_quota(donor).in_use["volumes"] == 0)

    back = table(cinder(taker, "transfer-create", "--name", "back", volume_id))
    assert back["volume_id"] == volume_id and len(back["auth_key"]) == 16
    assert back["id"] in cinder(taker, "transfer-list")
    sorted_list = run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", taker,
                       "--os-project-id", taker, "--os-endpoint", rest_cluster.rest_url,
                       "--os-volume-api-version", "3.59", "transfer-list", "--sort",
                       "created_at:asc"])
    assert [row[0] for row in rows(sorted_list)] == [back["id"]]
    openstack(taker, "volume", "transfer", "request", "delete", back["id"])
    assert admin_view.show_volume(volume_id).status == "available"  # withdrawn
    openstack(taker, "volume", "delete", volume_id)
    gone(admin_view, volume_id)


def test_a_volume_is_retyped_in_place_with_openstack_and_cinder(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume set --type`` and ``cinder retype`` (each had been a 400, "There
    is no such action: os-retype"): the volume takes a type its backend satisfies, in
    place; a type it does not is refused with why, and the volume keeps its type."""
    project = f"retype-{uuid.uuid4().hex[:8]}"
    gold = admin_view.create_type(f"gold-{uuid.uuid4().hex[:8]}",
                                  extra_specs={"volume_backend_name": "file"})
    lvm = admin_view.create_type(f"lvm-{uuid.uuid4().hex[:8]}",
                                 extra_specs={"volume_backend_name": "lvm"})

    def openstack(*args: str) -> str:
        return run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                    f"{project}:{project}", "--os-endpoint", rest_cluster.rest_url,
                    "--os-volume-api-version", "3", *args])

    def cinder(*args: str, check: bool = True) -> str:
        argv = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
                "--os-project-id", project, "--os-endpoint", rest_cluster.rest_url, *args]
        if check:
            return run(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0, done.stdout
        return done.stderr

    volume_id = openstack("volume", "create", "--size", "1", "v", "-f", "value",
                          "-c", "id").strip()
    before = volume_status(admin_view, volume_id, "available")
    openstack("volume", "set", "--type", gold.name, "--retype-policy", "never", volume_id)
    retyped = admin_view.show_volume(volume_id)
    assert (retyped.volume_type, retyped.host, retyped.status) == (
        gold.name, before.host, "available")
    refused = cinder("retype", "--migration-policy", "on-demand", volume_id, lvm.name,
                     check=False)
    assert "No valid backend to migrate volume" in refused  # no backend is named lvm
    assert admin_view.show_volume(volume_id).volume_type == gold.name
    cinder("retype", volume_id, before.volume_type or "")
    assert admin_view.show_volume(volume_id).volume_type == before.volume_type
    openstack("volume", "delete", volume_id)
    gone(admin_view, volume_id)
    admin_view.delete_type(gold.id)
    admin_view.delete_type(lvm.id)


def test_a_retype_on_demand_moves_the_volume_with_cinder_and_openstack(
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    """``cinder retype --migration-policy on-demand`` and ``openstack volume set --type
    --retype-policy on-demand`` to a type only the other backend satisfies (had been
    refused, "a retype here does not migrate volumes between backends"): the volume moves
    there, keeping its id and bytes, and takes the type; and back."""
    named = cluster_factory(rest_fronts=1,
                            node_overrides={"node-2": {"volume_backend_name": "fast"}})
    project = f"ondemand-{uuid.uuid4().hex[:8]}"
    cinder, openstack = commands_as(named, "3.60", project)
    with SyncClient(named.gateway, project="admin", admin=True, timeout=20.0,
                    key=named.user_key("admin", admin=True)) as admin:
        fast = admin.create_type("fast", extra_specs={"volume_backend_name": "fast"})
        volume_id = openstack("volume", "create", "--size", "1", "--type", "FCVolumeType",
                              "v", "-f", "value", "-c", "id").strip()
        before = volume_status(admin, volume_id, "available")
        assert before.host == "node-1@file"  # FCVolumeType asks for a backend named file
        write_pattern(file_of(named, before), [(4096, b"moves with it")])

        def settled(volume_type: str) -> Volume | None:
            vol = admin.show_volume(volume_id)
            return vol if (vol.volume_type, vol.status, vol.migration_status) == (
                volume_type, "available", "success") else None

        cinder("retype", "--migration-policy", "on-demand", volume_id, fast.name)
        moved: Volume = wait_for(lambda: settled(fast.name), timeout=60)
        assert moved.host == "node-2@file"
        assert read(file_of(named, moved), 4096, 13) == b"moves with it"
        assert table(cinder("show", volume_id))["volume_type"] == fast.name
        openstack("volume", "set", "--type", "FCVolumeType", "--retype-policy", "on-demand",
                  volume_id)
        back: Volume = wait_for(lambda: settled("FCVolumeType"), timeout=60)
        assert back.host == "node-1@file"
        assert read(file_of(named, back), 4096, 13) == b"moves with it"
        openstack("volume", "delete", volume_id)
        gone(admin, volume_id)
        admin.delete_type(fast.id)


def test_an_admin_migrates_a_volume_with_cinder_and_openstack(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder migrate`` and ``openstack volume migrate --host`` (each had been a 400,
    "There is no such action: os-migrate_volume"): the volume moves to the other backend
    and back, keeping its id; admins see ``migration_status`` and
    ``os-vol-mig-status-attr:migstat`` and list by it (``--filters migration_status=``); a
    member is refused with Cinder's policy 403."""
    cinder, openstack = admin_commands(rest_cluster, "3.0")
    project = f"migrate-{uuid.uuid4().hex[:8]}"
    volume_id = openstack("volume", "create", "--size", "1", "m", "-f", "value",
                          "-c", "id").strip()
    home = volume_status(admin_view, volume_id, "available").host
    assert home is not None
    (away,) = [n.backend_id for n in rest_cluster.cfg.nodes if n.backend_id != home]

    cinder("migrate", volume_id, f"{away}#file")
    wait_for(lambda: admin_view.show_volume(volume_id).migration_status == "success")
    shown = table(cinder("show", volume_id))
    assert (shown["os-vol-host-attr:host"], shown["status"]) == (away, "available")
    assert (shown["migration_status"], shown["os-vol-mig-status-attr:migstat"]) == \
        ("success", "success")
    filtering, _ = admin_commands(rest_cluster, "3.33")  # cinder's --filters, from 3.33
    assert volume_id in filtering("list", "--all-tenants", "--filters",
                                  "migration_status=success")
    assert volume_id not in filtering("list", "--all-tenants", "--filters",
                                      "migration_status=migrating")

    openstack("volume", "migrate", "--host", home, volume_id)
    wait_for(lambda: admin_view.show_volume(volume_id).host == home
             and admin_view.show_volume(volume_id).migration_status == "success")
    shown_json = json.loads(openstack("volume", "show", volume_id, "-f", "json"))
    assert shown_json["os-vol-host-attr:host"] == home and shown_json["id"] == volume_id

    _, member_openstack = commands_as(rest_cluster, "3.0", project)
    own = member_openstack("volume", "create", "--size", "1", "mine", "-f", "value",
                           "-c", "id").strip()
    volume_status(admin_view, own, "available")
    refused = subprocess.run(
        [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
         "--os-project-id", project, "--os-endpoint", rest_cluster.rest_url, "migrate",
         own, away], capture_output=True, text=True, timeout=60, check=False)
    # cinderclient prints the refusal (and exits 0: its migrate catches what it is told)
    assert "Policy doesn't allow volume_extension:volume_admin_actions:migrate_volume" \
        in refused.stdout + refused.stderr, refused
    assert admin_view.show_volume(own).migration_status is None
    member_openstack("volume", "delete", own)
    gone(admin_view, own)
    cinder("delete", volume_id)
    gone(admin_view, volume_id)


def test_an_operator_manages_qos_specs_with_openstack_and_cinder(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume qos create/set/unset/associate/show/list/delete`` and ``cinder
    qos-*`` (each had been a 404): the specs are kept, a type has them, and an attachment
    of a volume of that type carries the front-end ones (per GB worked out) in its
    connection info, as Cinder's; an in-use volume may not be retyped off them."""
    tag = uuid.uuid4().hex[:8]
    qos_name, type_name, project = f"qos-{tag}", f"qtype-{tag}", f"qos-{tag}"

    def openstack(token: str, *args: str) -> str:
        return run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token", token,
                    "--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3",
                    *args])

    def cinder(*args: str, check: bool = True) -> str:
        argv = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
                "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url, *args]
        if check:
            return run(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0, done.stdout
        return done.stderr

    admin = "admin:admin"
    made = json.loads(openstack(
        admin, "volume", "qos", "create", "--consumer", "front-end", "--property",
        "total_iops_sec_per_gb=10", "--property", "total_iops_sec_per_gb_min=50",
        "--property", "read_bytes_sec=1048576", qos_name, "-f", "json"))
    qos_id = made["id"]
    assert (made["name"], made["consumer"]) == (qos_name, "front-end")
    openstack(admin, "volume", "qos", "set", "--property", "write_iops_sec=200", qos_name)
    openstack(admin, "volume", "qos", "unset", "--property", "read_bytes_sec", qos_name)
    assert admin_view.show_qos(qos_id).specs == {
        "total_iops_sec_per_gb": "10", "total_iops_sec_per_gb_min": "50",
        "write_iops_sec": "200"}
    type_id = admin_view.create_type(type_name).id
    openstack(admin, "volume", "qos", "associate", qos_name, type_name)
    shown = json.loads(openstack(admin, "volume", "qos", "show", qos_name, "-f", "json"))
    assert type_name in str(shown["associations"])
    listed = json.loads(openstack(admin, "volume", "qos", "list", "-f", "json"))
    assert qos_id in [q["ID"] for q in listed]
    assert type_id in cinder("qos-get-association", qos_id)
    assert next(t for t in admin_view.list_types() if t.id == type_id).qos_specs_id == qos_id

    # A user's volume of that type: its attachment carries the front-end specs.
    with SyncClient(rest_cluster.gateway, project=project, timeout=20.0,
                    key=rest_cluster.user_key(project)) as owner:
        volume_id = owner.create_volume(3, volume_type=type_name, wait=True).id
        att = owner.create_attachment(volume_id, instance_id="vm-qos")
        att = owner.update_attachment(att.id, {"host": "vm-host", "initiator": "iqn.x"})
        # 10 a GB of 3 GB is 30, under the minimum of 50
        assert att.connection_info["data"]["qos_specs"] == {"total_iops_sec": 50,
                                                            "write_iops_sec": "200"}
        owner.complete_attachment(att.id)
        volume_status(admin_view, volume_id, "in-use")
        plain = admin_view.create_type(f"plain-{tag}")
        refused = cinder("--os-project-id", project, "retype", volume_id, plain.name,
                         check=False)
        assert "front-end qos specs cannot change" in refused
        assert admin_view.show_volume(volume_id).volume_type == type_name
        owner.delete_attachment(att.id)
        volume_status(admin_view, volume_id, "available")
        owner.delete_volume(volume_id)
        gone(admin_view, volume_id)
        admin_view.delete_type(plain.id)

    refused = cinder("qos-delete", qos_id, check=False)
    assert "still in use" in refused.lower()
    cinder("qos-disassociate-all", qos_id)
    assert not admin_view.qos_associations(qos_id)
    openstack(admin, "volume", "qos", "associate", qos_name, type_name)
    cinder("qos-delete", "--force", "true", qos_id)
    assert qos_id not in [q.id for q in admin_view.list_qos()]
    assert next(t for t in admin_view.list_types() if t.id == type_id).qos_specs_id is None
    admin_view.delete_type(type_id)


def test_a_project_gets_a_default_type_of_its_own_with_cinder(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder default-type-set/list/unset`` (3.62; each had been a 404): the project's
    creates without a type get its own default, ``GET /types/default`` shows it to the
    project, other projects keep the cluster's, and the type cannot be deleted meanwhile."""
    tag = uuid.uuid4().hex[:8]
    project, other = f"deft-{tag}", f"deft2-{tag}"
    gold = admin_view.create_type(f"gold-{tag}")

    def cinder(user: str, *args: str, check: bool = True) -> str:
        argv = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", user,
                "--os-project-id", user, "--os-endpoint", rest_cluster.rest_url,
                "--os-volume-api-version", "3.62", *args]
        if check:
            return run(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0, done.stdout
        return done.stderr

    cinder("admin", "default-type-set", gold.name, project)
    assert [gold.id, project] in rows(cinder("admin", "default-type-list"))
    assert rows(cinder(project, "type-default"))[0][:2] == [gold.id, gold.name]
    assert rows(cinder(other, "type-default"))[0][1] == "__DEFAULT__"
    made = table(cinder(project, "create", "1"))
    theirs = table(cinder(other, "create", "1"))
    assert (made["volume_type"], theirs["volume_type"]) == (gold.name, "__DEFAULT__")
    assert "Unable to delete" in cinder("admin", "type-delete", gold.id, check=False)
    with pytest.raises(InvalidInput, match="is a default volume type"):
        admin_view.delete_type(gold.id)
    assert "HTTP 403" in cinder(project, "default-type-set", gold.name, project, check=False)
    cinder("admin", "default-type-unset", project)
    assert rows(cinder(project, "type-default"))[0][1] == "__DEFAULT__"
    for user, volume in ((project, made["id"]), (other, theirs["id"])):
        volume_status(admin_view, volume, "available")
        cinder(user, "delete", volume)
        gone(admin_view, volume)
    admin_view.delete_type(gold.id)


def test_an_admin_force_deletes_with_cinder_and_openstack(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder force-delete``, ``openstack volume delete --force`` and ``openstack volume
    snapshot delete --force`` (each had been "There is no such action"): an admin's
    delete of a volume or snapshot in error; refused to a member."""
    project = f"force-{uuid.uuid4().hex[:8]}"

    def openstack(token: str, *args: str, check: bool = True) -> str:
        argv = [tool("openstack"), "--os-auth-type", "admin_token", "--os-token", token,
                "--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3", *args]
        if check:
            return run(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0, done.stdout
        return done.stderr

    def cinder(*args: str) -> str:
        return run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
                    "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url, *args])

    user, admin = f"{project}:{project}", "admin:admin"
    with SyncClient(rest_cluster.gateway, project=project, timeout=20.0,
                    key=rest_cluster.user_key(project)) as owner:  # what is deleted
        first, second = (owner.create_volume(1, name=name, wait=True).id for name in "ab")
        snap = owner.create_snapshot(first, name="s", wait=True).id
    assert "force_delete" in openstack(user, "volume", "snapshot", "delete", "--force", snap,
                                       check=False)
    cinder("snapshot-reset-state", "--state", "error", snap)
    openstack(admin, "volume", "snapshot", "delete", "--force", snap)
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=first))
    cinder("reset-state", "--state", "error", first)
    cinder("force-delete", first)
    openstack(admin, "volume", "delete", "--force", second)
    for volume_id in (first, second):
        gone(admin_view, volume_id)
    wait_for(lambda: admin_view.show_quota(project).in_use.get("volumes", 0) == 0)


def test_an_operator_manages_and_unmanages_files_with_cinder_and_openstack(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder manageable-list/manage/unmanage`` and ``openstack block storage volume
    manageable list``, ``openstack volume create --remote-source`` and ``openstack
    volume delete --remote`` (each had been a 404 or "There is no such action"): files
    put in a node's directory become volumes with their bytes, and files again."""
    tag = uuid.uuid4().hex[:8]
    directory = rest_cluster.node_dir("node-1")
    for name, data in ((f"c-{tag}.raw", b"from cinder"), (f"o-{tag}.raw", b"from openstack")):
        (directory / name).write_bytes(data)

    cinder, openstack = admin_commands(rest_cluster, "3.8")

    printed = cinder("manageable-list", "node-1@file#file")  # reference: {'source-name': ..}
    listed = {re.sub(r"\{'source-name': '(.*)'\}", r"\1", row[0]): row for row in rows(printed)}
    assert listed[f"c-{tag}.raw"][1:3] == ["1", "True"], printed
    managed = table(cinder("manage", "--name", f"managed-{tag}", "node-1@file#file",
                           f"c-{tag}.raw"))
    first = volume_status(admin_view, managed["id"], "available")
    assert (first.name, first.size, first.host) == (f"managed-{tag}", 1, "node-1@file")
    assert read(directory / f"volume-{first.id}", 0, 11) == b"from cinder"

    found = json.loads(openstack("block", "storage", "volume", "manageable", "list",
                                 "node-1@file#file", "--long", "-f", "json"))
    by_name = {m["reference"]["source-name"]: m for m in found}
    assert by_name[f"volume-{first.id}"]["cinder_id"] == first.id
    assert not by_name[f"volume-{first.id}"]["safe_to_manage"]
    made = json.loads(openstack("volume", "create", "--remote-source",
                                f"source-name=o-{tag}.raw", "--host", "node-1@file#file",
                                f"os-{tag}", "-f", "json"))
    second = volume_status(admin_view, made["id"], "available")
    assert read(directory / f"volume-{second.id}", 0, 14) == b"from openstack"

    cinder("unmanage", first.id)
    openstack("volume", "delete", "--remote", second.id)
    for volume_id in (first.id, second.id):
        gone(admin_view, volume_id)
        assert (directory / f"unmanaged-volume-{volume_id}").exists()
    assert read(directory / f"unmanaged-volume-{first.id}", 0, 11) == b"from cinder"


def test_an_operator_manages_and_unmanages_snapshots_with_cinder_and_openstack(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder snapshot-manageable-list/snapshot-manage/snapshot-unmanage``, ``openstack
    block storage snapshot manageable list``, ``openstack volume snapshot create
    --remote-source`` and ``openstack volume snapshot delete --remote``: files put beside
    a volume on its node become snapshots of it with their bytes, and files again."""
    tag = uuid.uuid4().hex[:8]
    volume = admin_view.create_volume(1, name=f"base-{tag}", wait=True)
    assert volume.host is not None
    node = volume.host.split("@")[0]  # where the scheduler put it: the files go there
    directory = rest_cluster.node_dir(node)
    for name, data in ((f"cs-{tag}.raw", b"from cinder"), (f"os-{tag}.raw", b"from openstack")):
        (directory / name).write_bytes(data)

    cinder, openstack = admin_commands(rest_cluster, "3.8")

    printed = cinder("snapshot-manageable-list", f"{node}@file#file")
    listed = {re.sub(r"\{'source-name': '(.*)'\}", r"\1", row[0]): row
              for row in rows(printed)}
    assert listed[f"cs-{tag}.raw"][1:3] == ["1", "True"], printed
    managed = table(cinder("snapshot-manage", "--name", f"managed-{tag}", volume.id,
                           f"cs-{tag}.raw"))
    first = snapshot_status(admin_view, managed["id"], "available")
    assert (first.name, first.size, first.volume_id) == (f"managed-{tag}", 1, volume.id)
    assert read(directory / f"snapshot-{first.id}", 0, 11) == b"from cinder"

    found = json.loads(openstack("block", "storage", "snapshot", "manageable", "list",
                                 f"{node}@file#file", "--long", "-f", "json"))
    by_name = {m["reference"]["source-name"]: m for m in found}
    assert by_name[f"snapshot-{first.id}"]["cinder_id"] == first.id
    assert not by_name[f"snapshot-{first.id}"]["safe_to_manage"]
    made = json.loads(openstack("volume", "snapshot", "create", "--volume", volume.id,
                                "--remote-source", f"source-name=os-{tag}.raw", f"os-{tag}",
                                "-f", "json"))
    second = snapshot_status(admin_view, made["id"], "available")
    assert read(directory / f"snapshot-{second.id}", 0, 14) == b"from openstack"

    cinder("snapshot-unmanage", first.id)
    openstack("volume", "snapshot", "delete", "--remote", second.id)
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=volume.id))
    for snapshot_id in (first.id, second.id):
        assert (directory / f"unmanaged-snapshot-{snapshot_id}").exists()
    assert read(directory / f"unmanaged-snapshot-{first.id}", 0, 11) == b"from cinder"
    admin_view.delete_volume(volume.id, wait=True)


def test_cinder_and_openstack_list_the_filters_and_a_filter_not_honoured_is_refused(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder list-filters`` and ``openstack block storage resource filter list/show``
    (each had been a 404): what each listing filters by; ``cinder list --filters`` with
    one of them works (``bootable=true``, Horizon's boot sources, had been refused),
    and with another fails saying so (it had listed every volume)."""
    def cinder(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "u",
                "--os-project-id", "p", "--os-endpoint", rest_cluster.rest_url,
                "--os-volume-api-version", "3.33", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CINDER_"))}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                              check=False)

    listed = {row[0]: row[1] for row in rows(cinder("list-filters").stdout)}
    assert listed["volume"] == ("name, status, metadata, bootable, availability_zone, "
                                "size, created_at, updated_at, consumes_quota, "
                                "migration_status, group_id"), listed
    assert cinder("list", "--filters", "status=available").returncode == 0
    refused = cinder("list", "--filters", "name~=g-1")
    assert refused.returncode != 0
    assert "Invalid filters name~ are found in query options" in refused.stderr
    made = [table(cinder("create", "1", "--name", "bootfilter").stdout)["id"] for _ in "ab"]
    for volume_id in made:
        volume_status(admin_view, volume_id, "available")
    assert cinder("set-bootable", made[1], "true").returncode == 0

    def filtered(*filters: str) -> list[str]:  # cinder takes one filter a --filters
        out = cinder("list", *(f"--filters={f}" for f in ("name=bootfilter", *filters)))
        assert out.returncode == 0, out.stderr
        return [row[0] for row in rows(out.stdout)]

    assert filtered("bootable=true") == [made[1]]
    assert sorted(filtered("consumes_quota=true")) == sorted(made)
    assert filtered("consumes_quota=0") == []
    assert filtered("bootable=false", "availability_zone=nova", "size=1") == [made[0]]
    made_at = datetime.fromtimestamp(admin_view.show_volume(made[0]).created_at, UTC)
    later = cinder("--os-volume-api-version", "3.60", "list", "--filters=name=bootfilter",
                   f"--filters=created_at=gt:{made_at.isoformat()}")
    assert later.returncode == 0 and [row[0] for row in rows(later.stdout)] == [made[1]]
    counted = cinder("--os-volume-api-version", "3.45", "list", "--with-count",
                     "--filters", "name=bootfilter")
    assert counted.returncode == 0 and "Volume in total: 2" in counted.stdout, counted
    snapshots = cinder("--os-volume-api-version", "3.45", "snapshot-list", "--with-count",
                       "--filters", f"volume_id={made[0]}")
    assert snapshots.returncode == 0 and "Snapshot in total: 0" in snapshots.stdout, snapshots
    snap = table(cinder("snapshot-create", made[0]).stdout)["id"]
    snapshot_status(admin_view, snap, "available")
    for zone, found in (("nova", [snap]), ("elsewhere", [])):
        in_zone = cinder("snapshot-list", "--filters", f"availability_zone={zone}")
        assert in_zone.returncode == 0, in_zone.stderr
        assert [row[0] for row in rows(in_zone.stdout)] == found
    assert cinder("snapshot-delete", snap).returncode == 0
    wait_for(lambda: admin_view.list_snapshots(all_projects=True, volume_id=made[0]) == [])
    for volume_id in made:
        assert cinder("delete", volume_id).returncode == 0
    shown = json.loads(run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                            "u:p", "--os-endpoint", rest_cluster.rest_url,
                            "--os-volume-api-version", "3.33", "block", "storage", "resource",
                            "filter", "show", "snapshot", "-f", "json"]))
    assert shown["Filters"] == ["name", "status", "volume_id", "metadata", "availability_zone",
                                "consumes_quota"]


def test_cinder_sorts_attachments_and_messages_by_creation_either_way(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder attachment-list --sort`` and ``cinder message-list --sort`` (each had
    been refused: "Invalid filters sort"): by ``created_at``, oldest or newest first;
    a sort by any other key is refused saying what is taken."""
    project = f"sorts-{uuid.uuid4().hex[:8]}"
    cinder, _ = commands_as(rest_cluster, "3.27", project)
    made = [table(cinder("create", "1", "--name", f"sorted-{n}"))["id"] for n in range(2)]
    for volume_id in made:
        volume_status(admin_view, volume_id, "available")
    attached = [table(cinder("attachment-create", volume_id, str(uuid.uuid4())))["id"]
                for volume_id in made]

    def listed(*args: str) -> list[str]:
        return [row[0] for row in rows(cinder("attachment-list", *args))]

    assert listed("--sort", "created_at:asc") == attached
    assert listed("--sort", "created_at:desc") == attached[::-1]  # unsorted: by id
    assert listed("--sort", "created_at:asc", "--marker", attached[0]) == attached[1:]
    with pytest.raises(AssertionError, match="attachments are sorted by created_at"):
        cinder("attachment-list", "--sort", "status")
    for attachment_id in attached:
        cinder("attachment-delete", attachment_id)
    assert listed() == []
    admin_cinder, _ = admin_commands(rest_cluster, "3.5")
    admin_cinder("quota-update", "--gigabytes", "-1", project)
    failed = [table(cinder("create", "10000000"))["id"] for _ in range(2)]
    for volume_id in failed:  # no backend holds it: a user message says why
        volume_status(admin_view, volume_id, "error")

    def about(*args: str) -> list[str]:  # each message's resource uuid
        found = rows(cinder("--os-volume-api-version", "3.5", "message-list", *args))
        return [next(cell for cell in row if cell in failed) for row in found]

    assert about("--sort", "created_at:asc") == failed
    assert about("--sort", "created_at:desc") == failed[::-1]
    with pytest.raises(AssertionError, match="messages are sorted by created_at"):
        cinder("--os-volume-api-version", "3.5", "message-list", "--sort", "event_id")
    for volume_id in made + failed:
        cinder("delete", volume_id)


def test_openstack_and_cinder_place_volumes_by_affinity_hints(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume create --hint different_host=ID`` and ``cinder create --hint
    same_host=ID`` (the hints had been passed over: a volume asked to be away from
    another could land beside it); a hint not honoured here is refused naming it."""
    project = f"hint-{uuid.uuid4().hex[:8]}"
    cinder, openstack = commands_as(rest_cluster, "3.0", project)
    first = volume_status(admin_view, table(cinder("create", "1"))["id"], "available")
    for _ in range(3):
        away = openstack("volume", "create", "--size", "1", "--hint",
                         f"different_host={first.id}", "-f", "value", "-c", "id").strip()
        beside = table(cinder("create", "1", "--hint", f"same_host={first.id}"))["id"]
        assert volume_status(admin_view, away, "available").host != first.host
        assert volume_status(admin_view, beside, "available").host == first.host
        for volume_id in (away, beside):
            cinder("delete", volume_id)
    with pytest.raises(AssertionError, match="local_to_instance are not honoured here"):
        cinder("create", "1", "--hint", f"local_to_instance={uuid.uuid4()}")
    with pytest.raises(AssertionError, match="is not a 'uuid'"):
        openstack("volume", "create", "--size", "1", "--hint", "same_host=nope")
    cinder("delete", first.id)
    wait_for(lambda: admin_view.list_volumes(all_projects=True, project_id=project) == [])


def test_an_operator_sets_log_levels_with_cinder_and_openstack(
    rest_cluster: E2ECluster,
) -> None:
    """``cinder service-set-log/service-get-log`` and ``openstack block storage log level
    set/list`` (each had been a 404): a node's loggers to DEBUG and back, read back."""
    cinder, openstack = admin_commands(rest_cluster, "3.32")
    prefix = "cinderblock.storage_node"
    cinder("service-set-log", "DEBUG", "--binary", "cinder-volume", "--server",
           "node-1@file", "--prefix", prefix)
    printed = rows(cinder("service-get-log", "--binary", "cinder-volume", "--prefix", prefix))
    assert printed and {(r[0], r[1], r[3]) for r in printed} == {
        ("cinder-volume", "node-1@file", "DEBUG"), ("cinder-volume", "node-2@file", "INFO")}
    openstack("block", "storage", "log", "level", "set", "--service", "cinder-volume",
              "--host", "node-1@file", "--log-prefix", prefix, "INFO")
    listed = json.loads(openstack("block", "storage", "log", "level", "list", "--service",
                                  "cinder-volume", "--log-prefix", prefix, "-f", "json"))
    assert listed and {(e["Host"], e["Level"]) for e in listed} == {
        ("node-1@file", "INFO"), ("node-2@file", "INFO")}


def test_cinder_and_openstack_list_no_clusters(rest_cluster: E2ECluster) -> None:
    """``cinder cluster-list`` and ``openstack block storage cluster list`` (each had
    been a 404): no backend is in a cluster, so none is listed."""
    cinder, openstack = admin_commands(rest_cluster, "3.7")
    assert rows(cinder("cluster-list", "--detailed", "--is-up", "true")) == []
    assert json.loads(openstack("block", "storage", "cluster", "list", "-f", "json")) == []


def test_cinder_and_openstack_list_the_extensions_served(rest_cluster: E2ECluster) -> None:
    """``cinder list-extensions`` and ``openstack extension list --volume`` (each had been
    a 404): the extensions this front serves, each saying what of it."""
    listed = run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "u",
                  "--os-project-id", "p", "--os-endpoint", rest_cluster.rest_url,
                  "list-extensions"])
    for alias in ("os-volume-transfer", "os-types-manage", "os-volume-actions",
                  "scheduler-stats"):
        assert alias in listed
    shown = json.loads(run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                            "u:p", "--os-endpoint", rest_cluster.rest_url,
                            "--os-volume-api-version", "3", "extension", "list", "--volume",
                            "-f", "json"]))
    by_alias = {e["Alias"]: e for e in shown}
    assert by_alias["os-admin-actions"]["Name"] == "AdminActions"
    assert "os-force_detach" in by_alias["os-admin-actions"]["Description"]
    assert by_alias["qos-specs"]["Name"] == "Qos_specs_manage"
    assert by_alias["os-volume-manage"]["Name"] == "VolumeManage"
    assert by_alias["os-snapshot-manage"]["Name"] == "SnapshotManage"
    assert by_alias["backups"]["Name"] == "Backups"  # served, as Cinder lists it
    assert "records exported and imported" in by_alias["backups"]["Description"]


def test_cinder_and_openstack_list_the_services_an_operator_checks(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``cinder service-list`` and ``openstack volume service list`` as an admin: the
    scheduler, each backend's cinder-volume and each node's cinder-backup, up and
    enabled."""
    up = wait_for(lambda: [b for b in admin_view.list_backends() if b.up] or None)
    backends, nodes = {b.backend for b in up}, {b.host for b in up}
    cinder = run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
                  "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url,
                  "--os-volume-api-version", "3.49", "service-list"])
    listed = {(r[0], r[1]): r for r in rows(cinder)}  # Binary, Host, Zone, Status, State
    assert set(listed) == {("cinder-scheduler", "scheduler"),
                           *(("cinder-volume", b) for b in backends),
                           *(("cinder-backup", n) for n in nodes)}
    assert all(r[3:5] == ["enabled", "up"] for r in listed.values()), cinder
    osc = run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token", "admin:admin",
               "--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3",
               "volume", "service", "list", "-f", "value", "-c", "Binary", "-c", "Host",
               "-c", "State"])
    assert sorted(osc.splitlines()) == sorted(
        ["cinder-scheduler scheduler up", *(f"cinder-volume {b} up" for b in backends),
         *(f"cinder-backup {n} up" for n in nodes)])
    host = sorted(backends)[0]
    try:  # a backend out of placement, as an operator takes one (then back)
        run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token", "admin:admin",
             "--os-endpoint", rest_cluster.rest_url, "--os-volume-api-version", "3",
             "volume", "service", "set", "--disable", "--disable-reason", "disk swap",
             host, "cinder-volume"])
        assert [(b.disabled, b.disabled_reason) for b in admin_view.list_backends()
                if b.backend == host] == [(True, "disk swap")]
    finally:
        run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
             "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url,
             "service-enable", host, "cinder-volume"])
    assert not any(b.disabled for b in admin_view.list_backends())
    # what each prints of one backend's capabilities
    keys = run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                "admin:admin", "--os-endpoint", rest_cluster.rest_url,
                "--os-volume-api-version", "3", "volume", "backend", "capability", "show",
                host, "-f", "value", "-c", "Key"])
    assert {"multiattach", "thin_provisioning_support"} <= set(keys.split())
    stats = table(run([tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
                       "--os-project-id", "admin", "--os-endpoint", rest_cluster.rest_url,
                       "get-capabilities", host]))
    assert (stats["namespace"], stats["storage_protocol"]) == (
        f"OS::Storage::Capabilities::{host}", "nbd")


# ---- the attach actions from before attachments ----------------------------------------------
OLD_WAY_CONNECTOR = {"host": "baremetal-7", "ip": "127.0.0.1", "initiator":
                     "iqn.2004-10.org:baremetal-7", "multipath": False, "platform": "x86_64"}


def cinder_api(cluster: E2ECluster, project: str, version: str = "3.0") -> Any:
    """python-cinderclient's Python API (what Ironic and Nova's old code call), noauth,
    at a microversion."""
    from cinderclient import client as cinder_client
    from cinderclient.contrib.noauth import CinderNoAuthPlugin
    from keystoneauth1 import session

    auth = CinderNoAuthPlugin(project, project, endpoint=cluster.rest_url)
    return cinder_client.Client(version, session=session.Session(auth=auth))


def sdk_connection(cluster: E2ECluster, project: str) -> Any:
    """openstacksdk's connection as a user of ``project``, to the REST front (v3)."""
    import openstack

    return openstack.connect(
        auth_type="admin_token", auth={"endpoint": cluster.rest_url,
                                       "token": f"{project}:{project}"},
        block_storage_endpoint_override=cluster.rest_url,
        block_storage_api_version="3", load_yaml_config=False, load_envvars=False)


def qemu_io_opens(info: dict[str, Any], directory: Path, *commands: str) -> str:
    """qemu-io at a ``connection_info`` (its NBD address and TLS credentials)."""
    data = info["data"]
    directory.mkdir(parents=True, exist_ok=True)
    for name, key in (("ca-cert.pem", "ca_cert"), ("client-cert.pem", "client_cert"),
                      ("client-key.pem", "client_key")):
        (directory / name).write_text(data[key])
    (directory / "client-key.pem").chmod(0o600)
    argv = ["qemu-io", *qemu_tls(data["host"], data["port"], data["export_name"], directory)]
    for command in commands:
        argv += ["-c", command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return f"rc={done.returncode} {done.stdout}{done.stderr}"


@requires("qemu-io")
def test_ironic_and_tempest_attach_the_old_way_with_cinderclient_and_openstacksdk(
    rest_cluster: E2ECluster, admin_view: SyncClient, tmp_path: Path,
) -> None:
    from cinderclient import exceptions as cinder_errors

    project = f"old-{uuid.uuid4().hex[:8]}"
    instance = str(uuid.uuid4())
    cinder = cinder_api(rest_cluster, project)
    vol = cinder.volumes.create(1, name="old-way")
    volume_status(admin_view, vol.id, "available")

    # Ironic's order, through cinderclient's Python API
    cinder.volumes.reserve(vol)
    assert cinder.volumes.get(vol.id).status == "attaching"
    info = cinder.volumes.initialize_connection(vol, OLD_WAY_CONNECTOR)
    assert info["driver_volume_type"] == "nbd" and info["data"]["enforce_multipath"] is False
    assert "rc=0" in qemu_io_opens(info, tmp_path / "one", "write -P 0x3c 0 1M")
    cinder.volumes.attach(vol, instance, "/dev/vdb", host_name="baremetal-7")
    shown = cinder.volumes.get(vol.id)
    brief, = shown.attachments
    assert (shown.status, brief["server_id"], brief["device"], brief["host_name"]) == (
        "in-use", instance, "/dev/vdb", "baremetal-7")
    cinder.volumes.begin_detaching(vol)
    assert cinder.volumes.get(vol.id).status == "detaching"
    cinder.volumes.roll_detaching(vol)
    assert cinder.volumes.get(vol.id).status == "in-use"
    cinder.volumes.begin_detaching(vol)
    cinder.volumes.terminate_connection(vol, OLD_WAY_CONNECTOR)
    assert "rc=0" not in qemu_io_opens(info, tmp_path / "one", "read 0 1M")
    cinder.volumes.detach(vol, brief["attachment_id"])
    assert cinder.volumes.get(vol.id).status == "available"
    with pytest.raises(cinder_errors.BadRequest, match="instance_uuid must be a UUID"):
        cinder.volumes.attach(vol, "vm-1", "/dev/vdb")
    with pytest.raises(cinder_errors.BadRequest, match="must be 'in-use'"):
        cinder.volumes.begin_detaching(vol)
    with pytest.raises(cinder_errors.BadRequest, match="mode must be one of rw, ro"):
        cinder.volumes.attach(vol, instance, "/dev/vdb", mode="")  # not taken for rw

    # tempest's: attach and detach alone
    cinder.volumes.attach(vol, instance, "/dev/vdb")
    assert cinder.volumes.get(vol.id).status == "in-use"
    cinder.volumes.detach(vol)
    assert cinder.volumes.get(vol.id).status == "available"

    # openstacksdk's block-storage proxy
    conn = sdk_connection(rest_cluster, project)
    try:
        from openstack.block_storage.v3._proxy import Proxy

        sdk = conn.block_storage
        assert isinstance(sdk, Proxy)  # v3, asked for
        sdk.reserve_volume(vol.id)
        assert sdk.get_volume(vol.id).status == "attaching"
        sdk.unreserve_volume(vol.id)
        assert sdk.get_volume(vol.id).status == "available"
        # Ironic's attach_volumes and detach_volumes (ironic/common/cinder.py), call by call
        sdk.reserve_volume(vol.id)
        info = sdk.init_volume_attachment(vol.id, OLD_WAY_CONNECTOR)
        out = qemu_io_opens(info, tmp_path / "two", "read -P 0x3c 0 1M")
        assert "rc=0" in out, out
        sdk.attach_volume(vol.id, "ironic_mountpoint", instance=instance)
        sdk.set_volume_metadata(vol.id, ironic_attachment_state="attached")
        attached = sdk.get_volume(vol.id)
        assert attached.status == "in-use"
        assert [a["server_id"] for a in attached.attachments] == [instance]
        sdk.begin_volume_detaching(vol.id)
        assert sdk.get_volume(vol.id).status == "detaching"
        sdk.abort_volume_detaching(vol.id)
        assert sdk.get_volume(vol.id).status == "in-use"
        sdk.begin_volume_detaching(vol.id)
        sdk.terminate_volume_attachment(vol.id, OLD_WAY_CONNECTOR)
        sdk.detach_volume(vol.id, attached.attachments[0]["attachment_id"])
        assert sdk.get_volume(vol.id).status == "available"
        assert admin_view.list_attachments(vol.id) == []
    finally:
        conn.close()
    cinder.volumes.delete(vol)


# ---- openstacksdk ---------------------------------------------------------------------------
def test_openstacksdk_creates_waits_for_lists_and_deletes_volumes(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    project = f"sdk-{uuid.uuid4().hex[:8]}"
    conn = sdk_connection(rest_cluster, project)
    try:
        made = [conn.block_storage.create_volume(size=1, name="sdk-0")]
        conn.block_storage.wait_for_status(made[0], "available", wait=30)  # placed
        made.append(conn.block_storage.create_volume(  # sent beside the volume, not in it
            size=1, name="sdk-1", scheduler_hints={"different_host": made[0].id}))
        ready = [conn.block_storage.wait_for_status(v, "available", wait=30) for v in made]
        assert {v.status for v in ready} == {"available"}
        hosts = [admin_view.show_volume(v.id).host for v in made]
        assert hosts[0] != hosts[1], hosts
        listed = {v.id: v.name for v in conn.block_storage.volumes()}
        assert listed == {v.id: v.name for v in made}
        # pages of one, newest first: the sdk reads on from each full page
        assert [v.id for v in conn.block_storage.volumes(limit=1)] == [
            v.id for v in made[::-1]]
        assert {v.id for v in admin_view.list_volumes(all_projects=True)
                if v.project_id == project} == set(listed)
        for v in made:
            conn.block_storage.delete_volume(v.id)
        for v in made:
            conn.block_storage.wait_for_delete(v, wait=30)
        assert list(conn.block_storage.volumes()) == []
    finally:
        conn.close()


# ---- backups ---------------------------------------------------------------------------------
BACKED_UP = [(0, b"backed up through a client " * 32), (GIB // 2 - 5, b"across the middle"),
             (GIB - 7, b"the end")]


def written_volume(cluster: E2ECluster, admin: SyncClient, volume_id: str) -> Volume:
    """The volume, once available, with ``BACKED_UP`` written into its file."""
    vol = volume_status(admin, volume_id, "available")
    write_pattern(file_of(cluster, vol), BACKED_UP)
    return vol


def test_cinderclient_backs_up_restores_into_a_volume_and_new_ones_and_deletes_backups(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """python-cinderclient's Python API at 3.47 (``backups`` and ``restores``, and
    ``volumes.create(backup_id=)``), the bytes of every volume written from the backup
    compared with the source's; an admin's reset and force delete."""
    from cinderclient import exceptions as cinder_errors

    project = f"bak-{uuid.uuid4().hex[:8]}"
    cinder, admin = cinder_api(rest_cluster, project, "3.47"), cinder_api(
        rest_cluster, "admin", "3.47")
    vol = written_volume(rest_cluster, admin_view, cinder.volumes.create(1, name="src").id)
    made = cinder.backups.create(vol.id, name="nightly", description="the first")
    backup = backup_status(admin_view, made.id, "available")
    assert (backup.project_id, backup.name, backup.size, backup.volume_id) == (
        project, "nightly", 1, vol.id)
    shown = cinder.backups.get(made.id)
    assert (shown.status, shown.object_count, shown.metadata, shown.description) == (
        "available", 4, {}, "the first")
    assert [b.id for b in cinder.backups.list()] == [made.id]
    assert cinder.backups.list(search_opts={"volume_id": str(uuid.uuid4())}) == []
    cinder.backups.update(made, name="renamed", metadata={"tier": "gold"})
    renamed = admin_view.show_backup(made.id)
    assert (renamed.name, renamed.metadata) == ("renamed", {"tier": "gold"})

    # into another volume: its own bytes replaced by the backup's
    target = volume_status(admin_view, cinder.volumes.create(1, name="target").id,
                           "available")
    write_pattern(file_of(rest_cluster, target), [(0, b"the target's own"), (4096, b"x")])
    restore = cinder.restores.restore(made.id, volume_id=target.id)
    assert (restore.backup_id, restore.volume_id, restore.volume_name) == (
        made.id, target.id, "target")
    backup_status(admin_view, made.id, "available")
    volume_status(admin_view, target.id, "available")
    assert same_bytes(file_of(rest_cluster, target), file_of(rest_cluster, vol))

    # into a new volume, and a volume created from the backup (3.47)
    fresh = cinder.restores.restore(made.id, name="fresh")
    new = volume_status(admin_view, fresh.volume_id, "available")
    assert new.name == "fresh" and same_bytes(file_of(rest_cluster, new),
                                              file_of(rest_cluster, vol))
    backup_status(admin_view, made.id, "available")
    created = volume_status(admin_view, cinder.volumes.create(1, backup_id=made.id).id,
                            "available")
    assert same_bytes(file_of(rest_cluster, created), file_of(rest_cluster, vol))
    with pytest.raises(cinder_errors.NotFound, match="could not be found"):
        cinder.volumes.create(1, backup_id=str(uuid.uuid4()))

    # an admin's record export; its import where the backup is known already is Cinder's 400
    backup_status(admin_view, made.id, "available")
    with pytest.raises(cinder_errors.Forbidden):
        cinder.backups.export_record(made.id)
    record = admin.backups.export_record(made.id)
    assert record["backup_service"] == "cinderblock.storage_node.backup_repository"
    with pytest.raises(cinder_errors.BadRequest, match="Backup already exists in database"):
        admin.backups.import_record(record["backup_service"], record["backup_url"])

    # an admin's reset and force delete; a member's are refused
    with pytest.raises(cinder_errors.Forbidden):
        cinder.backups.reset_state(made, "error")
    admin.backups.reset_state(made, "error")
    assert admin_view.show_backup(made.id).status == "error"
    with pytest.raises(cinder_errors.BadRequest, match="Backup status must be available"):
        cinder.restores.restore(made.id, volume_id=target.id)
    second = cinder.backups.create(vol.id, name="second")
    backup_status(admin_view, second.id, "available")
    with pytest.raises(cinder_errors.Forbidden):
        cinder.backups.delete(second, force=True)
    admin.backups.delete(made, force=True)
    cinder.backups.delete(second)
    for backup_id in (made.id, second.id):
        backup_gone(admin_view, backup_id)
    assert cinder.backups.list() == []


def test_openstacksdk_creates_waits_for_lists_restores_and_deletes_backups(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """openstacksdk's block-storage proxy: ``create_backup``, ``wait_for_status``,
    ``backups()`` (pages of one followed), ``get_backup``, ``restore_backup`` into a
    volume and into a new one (the bytes compared), ``delete_backup``."""
    project = f"sdkb-{uuid.uuid4().hex[:8]}"
    conn = sdk_connection(rest_cluster, project)
    try:
        sdk = conn.block_storage
        made = sdk.create_volume(size=1, name="sdk-source")
        vol = written_volume(rest_cluster, admin_view, made.id)
        backup = sdk.create_backup(volume_id=vol.id, name="sdk-backup")
        backup = sdk.wait_for_status(backup, "available", wait=60, interval=0.2)
        assert (backup.volume_id, backup.size, backup.is_incremental, backup.name) == (
            vol.id, 1, False, "sdk-backup")
        fetched = sdk.get_backup(backup.id)
        assert (fetched.object_count, fetched.metadata, fetched.project_id) == (4, {}, None)
        second = sdk.wait_for_status(sdk.create_backup(volume_id=vol.id, name="second"),
                                     "available", wait=60, interval=0.2)
        assert [b.id for b in sdk.backups()] == [second.id, backup.id]
        assert [b.id for b in sdk.backups(limit=1)] == [second.id, backup.id]
        assert [b.name for b in sdk.backups(details=False, name="second")] == ["second"]
        assert [b.id for b in sdk.backups(volume_id=str(uuid.uuid4()))] == []

        target = sdk.create_volume(size=1, name="sdk-target")
        sdk.wait_for_status(target, "available", wait=30, interval=0.2)
        restored = sdk.restore_backup(backup.id, volume=target.id)
        assert (restored.volume_id, restored.volume_name) == (target.id, "sdk-target")
        sdk.wait_for_status(sdk.get_backup(backup.id), "available", wait=60, interval=0.2)
        into = volume_status(admin_view, target.id, "available")
        assert same_bytes(file_of(rest_cluster, into), file_of(rest_cluster, vol))
        fresh = sdk.restore_backup(backup.id, name="sdk-fresh")
        new = volume_status(admin_view, fresh.volume_id, "available")
        assert new.name == "sdk-fresh" and same_bytes(file_of(rest_cluster, new),
                                                      file_of(rest_cluster, vol))
        for each in (backup, second):
            sdk.wait_for_status(sdk.get_backup(each.id), "available", wait=60, interval=0.2)
            sdk.delete_backup(each.id)
            sdk.wait_for_delete(each, wait=60, interval=0.2)
        assert list(sdk.backups()) == []
    finally:
        conn.close()


def test_openstacksdk_makes_snapshots_resets_copies_and_deletes_groups(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """openstacksdk's block-storage proxy with groups: an admin's ``create_group_type``;
    a member's ``create_group``, a volume in it, ``groups()``, ``create_group_snapshot``
    and ``group_snapshots()``; an admin's ``reset_group_snapshot_status``;
    ``create_group_from_source``; ``delete_group_snapshot`` and ``delete_group`` with
    the volumes."""
    project = f"sdkg-{uuid.uuid4().hex[:8]}"
    admin, conn = sdk_connection(rest_cluster, "admin"), sdk_connection(rest_cluster, project)
    try:
        gtype = admin.block_storage.create_group_type(name=f"sdk-cg-{project}")
        sdk = conn.block_storage
        group = sdk.create_group(group_type=gtype.id, volume_types=["__DEFAULT__"],
                                 name="sdk-group")
        group = sdk.wait_for_status(group, "available", wait=30, interval=0.2)
        vol = sdk.create_volume(size=1, name="sdk-member", group_id=group.id)
        sdk.wait_for_status(vol, "available", wait=30, interval=0.2)
        assert [g.id for g in sdk.groups()] == [group.id]
        assert sdk.get_group(group.id, list_volume=True).volumes == [vol.id]

        snap = sdk.create_group_snapshot(group_id=group.id, name="sdk-gs")
        snap = sdk.wait_for_status(snap, "available", wait=30, interval=0.2)
        assert [(s.id, s.group_id) for s in sdk.group_snapshots()] == [(snap.id, group.id)]
        admin.block_storage.reset_group_snapshot_status(snap.id, "error")
        assert sdk.get_group_snapshot(snap.id).status == "error"
        admin.block_storage.reset_group_snapshot_status(snap.id, "available")
        assert sdk.get_group_snapshot(snap.id).status == "available"

        copy = sdk.create_group_from_source(group_snapshot_id=snap.id, source_group_id=None,
                                            name="sdk-copy")
        copy = sdk.wait_for_status(sdk.get_group(copy.id), "available", wait=30, interval=0.2)
        (copied,) = admin_view.show_group(copy.id).volumes
        volume_status(admin_view, copied, "available")
        sdk.delete_group(copy.id, delete_volumes=True)
        sdk.delete_group_snapshot(snap.id)
        sdk.wait_for_delete(snap, wait=30, interval=0.2)
        sdk.wait_for_delete(copy, wait=30, interval=0.2)
        sdk.delete_group(group.id, delete_volumes=True)
        sdk.wait_for_delete(group, wait=30, interval=0.2)
        gone(admin_view, vol.id)
        admin.block_storage.delete_group_type(gtype.id)
    finally:
        conn.close()
        admin.close()


def test_the_openstack_command_backs_up_shows_lists_restores_and_deletes_a_backup(
    rest_cluster: E2ECluster, admin_view: SyncClient,
) -> None:
    """``openstack volume backup create/show/list/restore/delete`` as a member; the
    restored volume holds the source's bytes; ``create --incremental`` names the first
    its parent."""
    project = f"oscb-{uuid.uuid4().hex[:8]}"
    _, openstack = commands_as(rest_cluster, "3", project)
    volume_id = openstack("volume", "create", "--size", "1", "osc-source", "-f", "value",
                          "-c", "id").strip()
    vol = written_volume(rest_cluster, admin_view, volume_id)
    made = json.loads(openstack("volume", "backup", "create", "--name", "osc-backup",
                                "--description", "by the command", volume_id, "-f", "json"))
    assert (made["name"], made["volume_id"]) == ("osc-backup", volume_id)
    backup_status(admin_view, made["id"], "available")
    shown = json.loads(openstack("volume", "backup", "show", "osc-backup", "-f", "json"))
    assert (shown["id"], shown["status"], shown["size"], shown["description"]) == (
        made["id"], "available", 1, "by the command")
    listed = json.loads(openstack("volume", "backup", "list", "--long", "-f", "json"))
    assert [(b["ID"], b["Name"], b["Status"], b["Volume"]) for b in listed] == [
        (made["id"], "osc-backup", "available", volume_id)]
    restored = json.loads(openstack("volume", "backup", "restore", "osc-backup",
                                    "osc-restored", "-f", "json"))
    new = volume_status(admin_view, restored["volume_id"], "available")
    assert (new.name, new.project_id) == ("osc-restored", project)
    assert same_bytes(file_of(rest_cluster, new), file_of(rest_cluster, vol))
    backup_status(admin_view, made["id"], "available")
    delta = json.loads(openstack("volume", "backup", "create", "--incremental", "--name",
                                 "osc-delta", volume_id, "-f", "json"))
    backup_status(admin_view, delta["id"], "available")
    shown = json.loads(openstack("volume", "backup", "show", "osc-delta", "-f", "json"))
    parent = json.loads(openstack("volume", "backup", "show", "osc-backup", "-f", "json"))
    assert (shown["is_incremental"], parent["has_dependent_backups"]) == (True, True)
    openstack("volume", "backup", "delete", "osc-delta")  # the parent's dependents first
    backup_gone(admin_view, delta["id"])
    openstack("volume", "backup", "delete", "osc-backup")
    backup_gone(admin_view, made["id"])
    assert json.loads(openstack("volume", "backup", "list", "-f", "json")) == []


# ---- TLS --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_cluster(cluster_factory: Callable[..., E2ECluster],
                tmp_path_factory: pytest.TempPathFactory) -> E2ECluster:
    cert, key = self_signed(tmp_path_factory.mktemp("rest-tls"))
    return cluster_factory(rest_fronts=1, rest_certfile=str(cert), rest_keyfile=str(key))


def test_cinder_and_openstack_speak_to_a_front_over_tls(tls_cluster: E2ECluster) -> None:
    """A front given ``rest_certfile`` and ``rest_keyfile`` serves HTTPS only (a front
    beyond loopback must, as its callers send tokens): cinder and openstack with the
    certificate's CA (``--os-cacert``) create, list and delete; without it they refuse
    the server; plain HTTP to it gets no answer."""
    url = tls_cluster.rest_url
    assert url.startswith("https://127.0.0.1:")
    ca = tls_cluster.cfg.rest_certfile
    project = f"tls-{uuid.uuid4().hex[:8]}"

    def cinder(*args: str, cacert: str | None = ca) -> subprocess.CompletedProcess[str]:
        argv = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
                "--os-project-id", project, "--os-endpoint", url,
                *(("--os-cacert", cacert) if cacert else ()), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CINDER_"))}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                              check=False)

    volume_id = run([tool("openstack"), "--os-auth-type", "admin_token", "--os-token",
                     f"{project}:{project}", "--os-endpoint", url, "--os-cacert", ca,
                     "--os-volume-api-version", "3", "volume", "create", "--size", "1",
                     "over-tls", "-f", "value", "-c", "id"]).strip()
    listed = cinder("list")
    assert listed.returncode == 0 and volume_id in listed.stdout, listed.stderr
    unverified = cinder("list", cacert=None)  # the system's CAs do not know this one
    assert unverified.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.stderr or "SSL" in unverified.stderr, \
        unverified.stderr
    plain = url.replace("https://", "http://", 1)
    with pytest.raises(http.client.RemoteDisconnected):  # no TLS handshake, no answer
        urllib.request.urlopen(plain + "/", timeout=5)
    deleted = cinder("delete", volume_id)
    assert deleted.returncode == 0, deleted.stderr


# ---- generic volume groups ------------------------------------------------------------
def test_group_types_with_cinder_and_openstack(rest_cluster: E2ECluster) -> None:
    """``cinder group-type-*`` and ``openstack volume group type *`` (3.11; each had been a
    404): an admin makes a group type, sets and unsets its specs, renames and hides it,
    and deletes it; a member sees the public ones without their specs and may not make
    one."""
    cinder, openstack = admin_commands(rest_cluster, "3.11")
    member_cinder, _ = commands_as(rest_cluster, "3.11", f"gt-{uuid.uuid4().hex[:8]}")
    name = f"cg-{uuid.uuid4().hex[:8]}"
    made = rows(cinder("group-type-create", name, "--description", "consistent"))
    assert [(row[1], row[2]) for row in made] == [(name, "consistent")], made
    type_id = made[0][0]
    assert name in {row[1] for row in rows(cinder("group-type-list"))}
    cinder("group-type-key", name, "set", "consistent_group_snapshot_enabled=<is> True")
    shown = json.loads(openstack("volume", "group", "type", "show", type_id, "-f", "json"))
    assert (shown["Name"], shown["Properties"]) == (
        name, {"consistent_group_snapshot_enabled": "<is> True"})
    assert name in {row[1] for row in rows(member_cinder("group-type-list"))}
    refused = subprocess.run(
        [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "someone",
         "--os-project-id", "someone", "--os-endpoint", rest_cluster.rest_url,
         "--os-volume-api-version", "3.11", "group-type-create", f"{name}-mine"],
        capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "Policy doesn't allow group:group_types:create" in \
        refused.stderr, refused.stderr
    cinder("group-type-key", name, "unset", "consistent_group_snapshot_enabled")
    openstack("volume", "group", "type", "set", type_id, "--name", f"{name}-r", "--private")
    shown = json.loads(openstack("volume", "group", "type", "show", type_id, "-f", "json"))
    assert (shown["Name"], shown["Is Public"], shown["Properties"]) == (f"{name}-r", False, {})
    assert f"{name}-r" not in {row[1] for row in rows(member_cinder("group-type-list"))}
    openstack("volume", "group", "type", "delete", type_id)
    assert type_id not in {row[0] for row in rows(cinder("group-type-list"))}


def test_groups_with_cinder_and_openstack(rest_cluster: E2ECluster,
                                          admin_view: SyncClient) -> None:
    """``cinder group-*`` and ``openstack volume group *`` (3.13; each had been a 404): a
    member makes a group, a volume in it (``cinder create --group-id``), adds another and
    removes it, renames the group, snapshots it (3.14, ``cinder group-snapshot-*``,
    ``openstack volume group snapshot *``; an admin resets the group snapshot's status,
    3.19) and deletes it with its volumes."""
    project = f"grp-{uuid.uuid4().hex[:8]}"
    cinder, openstack = commands_as(rest_cluster, "3.13", project)
    gtype = admin_view.create_group_type(f"cg-{uuid.uuid4().hex[:8]}")
    made = table(cinder("group-create", "--name", "db", gtype.name, "FCVolumeType"))
    group_id = made["id"]
    shown = table(cinder("group-show", group_id))
    fc_id = next(t.id for t in admin_view.list_types() if t.name == "FCVolumeType")
    assert (shown["status"], shown["group_type"]) == ("available", gtype.id), shown
    assert fc_id in shown["volume_types"], shown
    inside = table(cinder("create", "1", "--volume-type", "FCVolumeType", "--group-id",
                          group_id, "--name", "in"))["id"]
    volume_status(admin_view, inside, "available")
    assert admin_view.show_volume(inside).group_id == group_id
    other = table(cinder("create", "1", "--volume-type", "FCVolumeType", "--name", "other",
                         "--hint", f"same_host={inside}"))["id"]  # on the group's backend
    volume_status(admin_view, other, "available")
    cinder("group-update", group_id, "--add-volumes", other)
    assert set(admin_view.show_group(group_id).volumes) == {inside, other}
    cinder("group-update", group_id, "--remove-volumes", other)
    assert admin_view.show_group(group_id).volumes == (inside,)
    assert [row[0] for row in rows(cinder("list", "--group_id", group_id))] == [inside]
    openstack("volume", "group", "set", group_id, "--name", "db2")
    listed = json.loads(openstack("volume", "group", "list", "-f", "json"))
    assert [(g["ID"], g["Name"]) for g in listed] == [(group_id, "db2")], listed
    refused = subprocess.run(
        [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
         "--os-project-id", project, "--os-endpoint", rest_cluster.rest_url,
         "--os-volume-api-version", "3.13", "delete", inside],
        capture_output=True, text=True, timeout=60, check=False)
    assert "belongs to group" in refused.stdout + refused.stderr, refused
    snapshots, snapshots_os = commands_as(rest_cluster, "3.14", project)
    made_snap = table(snapshots("group-snapshot-create", group_id, "--name", "nightly"))
    gs_id = made_snap["id"]
    wait_for(lambda: admin_view.show_group_snapshot(gs_id).status == "available")
    shown_snap = table(snapshots("group-snapshot-show", gs_id))
    assert (shown_snap["status"], shown_snap["group_id"], shown_snap["name"]) == (
        "available", group_id, "nightly"), shown_snap
    member = admin_view.show_group_snapshot(gs_id).snapshots[0]
    assert table(snapshots("snapshot-show", member))["group_snapshot_id"] == gs_id
    snapshots("group-create-from-src", "--group-snapshot", gs_id, "--name", "copy")
    copied = wait_for(lambda: next((g for g in admin_view.list_groups(True)
                                    if g.name == "copy" and g.project_id == project), None))
    assert (copied.group_snapshot_id, len(copied.volumes)) == (gs_id, 1)
    volume_status(admin_view, copied.volumes[0], "available")
    cinder("group-delete", "--delete-volumes", copied.id)
    wait_for(lambda: copied.id not in {g.id for g in admin_view.list_groups(True)})
    listed_snaps = json.loads(snapshots_os("volume", "group", "snapshot", "list", "-f", "json"))
    assert [s["ID"] for s in listed_snaps] == [gs_id], listed_snaps
    admin_cinder, _ = commands_as(rest_cluster, "3.19", "admin")  # 3.19: reset_status
    admin_cinder("reset-state", "--type", "group-snapshot", "--state", "error", gs_id)
    assert admin_view.show_group_snapshot(gs_id).status == "error"
    assert admin_view.show_snapshot(member).status == "error"  # its snapshots' status
    admin_cinder("reset-state", "--type", "group-snapshot", "--state", "available", gs_id)
    assert admin_view.show_group_snapshot(gs_id).status == "available"
    snapshots_os("volume", "group", "snapshot", "delete", gs_id)
    wait_for(lambda: not admin_view.list_group_snapshots(all_projects=True,
                                                         group_id=group_id))
    cinder("group-delete", "--delete-volumes", group_id)
    wait_for(lambda: group_id not in {g.id for g in admin_view.list_groups(True)})
    gone(admin_view, inside)
    cinder("delete", other)
    gone(admin_view, other)
    admin_view.delete_group_type(gtype.id)

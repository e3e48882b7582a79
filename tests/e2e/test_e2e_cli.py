"""The ``cinderblock`` command end to end, as a user runs it: real subprocesses.

The module's cluster is started with ``cinderblock up --data-dir DIR`` itself
and stopped with SIGTERM (what Ctrl-C does); the teardown checks that every
actor it printed is gone and that ``endpoints.json`` was removed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.runtime.config import ClusterConfig, free_port, load, rest_url
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import Timeout
from tests.conftest import _DATA_DIRS, CINDERBLOCK, GIB, run_cli
from tests.lifecycle_helpers import read


@dataclass
class UpCluster:
    data_dir: Path
    cfg: ClusterConfig
    pids: dict[str, int]

    def cli(self, *args: str, project: str = "demo", admin: bool = False,
            ) -> subprocess.CompletedProcess[str]:
        who = ["--admin"] if admin else ["--project", project, "--user", self.user(project)]
        return run_cli(*args, "--data-dir", str(self.data_dir), *who)

    def user(self, project: str) -> str:
        """A member of ``project`` (``cinderblock user add`` on first use; ``up`` made demo)."""
        if project != "demo" and not (self.data_dir / "keys" / f"{project}.key").exists():
            done = run_cli("user", "add", project, "--project", project,
                           "--data-dir", str(self.data_dir))
            assert done.returncode == 0, done.stderr
        return project

    def cli_json(self, *args: str, **kwargs: Any) -> Any:
        done = self.cli(*args, "--json", **kwargs)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"  # gone


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    data_dir = tmp_path_factory.mktemp("up")
    _DATA_DIRS.append(data_dir.resolve())
    out = data_dir / "up.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([CINDERBLOCK, "up", "--data-dir", str(data_dir)],
                                stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    pids: dict[str, int] = {}
    try:
        pids = _wait_up(proc, out)
        yield UpCluster(data_dir, load(data_dir / "cluster.json"), pids)
    finally:
        _stop_up(proc, pids)
    text = out.read_text()
    assert proc.returncode == 0, text
    assert "cinderblock stopped" in text
    assert not (data_dir / "endpoints.json").exists(), "up removes endpoints.json on exit"


def _wait_up(proc: subprocess.Popen[bytes], out: Path, timeout: float = 30.0,
             actors: int = 7) -> dict[str, int]:
    """The pids ``up`` printed, once it printed ``actors`` (by default quota, scheduler,
    gateway, 2 nodes, the REST front, the exporter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text()
        pids = {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\S+)\s+pid (\d+)$", text, re.M)}
        if len(pids) == actors:
            return pids
        assert proc.poll() is None, f"cinderblock up exited: {text}"
        time.sleep(0.05)
    raise AssertionError(f"cinderblock up not ready after {timeout}s: {out.read_text()}")


def _stop_up(proc: subprocess.Popen[bytes], pids: dict[str, int]) -> None:
    """SIGTERM `up` and wait; if anything is left, kill exactly the PIDs it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    left = [pid for pid in pids.values() if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"cinderblock up left actors running: {left}"


def _one_error_line(done: subprocess.CompletedProcess[str], code: str) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ERROR ({code}): "), lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]


# ---- the seed example ----------------------------------------------------------------
def test_the_seed_example_creates_an_available_volume_with_a_sparse_file(up: UpCluster) -> None:
    vol = up.cli_json("volume", "create", "1", "--name", "firstvol", "--type", "FCVolumeType",
                      "--wait")

    assert vol["status"] == "available"
    assert (vol["name"], vol["size"], vol["volume_type"]) == ("firstvol", 1, "FCVolumeType")
    assert vol["host"] in {"node-1@file", "node-2@file"}
    node_dir = up.cfg.path("nodes", vol["host"].partition("@")[0])
    st = (node_dir / f"volume-{vol['id']}").stat()
    assert st.st_size == GIB
    assert st.st_blocks * 512 < GIB // 100, "sparse"

    shown = up.cli_json("volume", "show", vol["id"])
    assert (shown["id"], shown["status"], shown["host"]) == (vol["id"], "available", vol["host"])
    listed = up.cli_json("volume", "list")
    assert vol["id"] in [v["id"] for v in listed]


def test_volume_show_and_list_print_readable_tables(up: UpCluster) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    vol = up.cli_json("volume", "create", "2", "--name", "tabled", "--metadata", "a=1", "b=2",
                      "--wait", project=project)

    shown = up.cli("volume", "show", vol["id"], project=project)
    listed = up.cli("volume", "list", "--long", project=project)

    assert shown.returncode == 0 and listed.returncode == 0
    assert re.search(r"\| status\s+\| available", shown.stdout)
    assert "a=1, b=2" in shown.stdout
    header, row = [ln for ln in listed.stdout.splitlines() if ln.startswith("|")]
    assert [c.strip() for c in header.split("|")[1:-1]] == [
        "ID", "Name", "Status", "Size", "Attached to", "Type", "Zone", "Host", "Properties",
        "Created At"]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[:-1] == [vol["id"], "tabled", "available", "2", "", "__DEFAULT__", "nova",
                          vol["host"], "a=1, b=2"]
    assert cells[-1] == vol["created_at"] and cells[-1].endswith("+00:00")


def test_volume_list_of_a_project_shows_only_its_volumes_and_all_projects_for_admins(
    up: UpCluster,
) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    va = up.cli_json("volume", "create", "1", "--wait", project=a)
    vb = up.cli_json("volume", "create", "1", "--wait", project=b)

    assert [v["id"] for v in up.cli_json("volume", "list", project=a)] == [va["id"]]
    assert [v["id"] for v in up.cli_json("volume", "list", "--all-projects", project=a)] == [
        va["id"]]
    everyone = {v["id"] for v in up.cli_json("volume", "list", "--all-projects", admin=True)}
    assert {va["id"], vb["id"]} <= everyone
    _one_error_line(up.cli("volume", "show", vb["id"], project=a), "not_found")


def test_a_project_other_than_the_key_s_is_refused_not_quietly_replaced(up: UpCluster) -> None:
    """The key decides the project: ``--project b`` with a's key would act for a."""
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    where = ["--data-dir", str(up.data_dir), "--user", up.user(a)]
    refused = _one_error_line(run_cli("volume", "create", "1", "--project", b, *where), "usage")
    assert f"--project {b}: this key (user {a}) acts for project {a}" in refused
    admin = run_cli("volume", "list", "--admin", "--project", "demo", "--data-dir",
                    str(up.data_dir))
    assert "acts for project admin" in _one_error_line(admin, "usage")
    env = run_cli("volume", "list", *where, env={"CINDERBLOCK_PROJECT": b})
    assert f"--project {b}: " in _one_error_line(env, "usage")
    dashboard = run_cli("tui", "--project", b, *where, timeout=20)  # refused before it opens
    assert f"--project {b}: " in _one_error_line(dashboard, "usage")
    assert up.cli_json("volume", "list", project=a) == []  # nothing was made for a or b
    assert [v for v in up.cli_json("volume", "list", "--all-projects", admin=True)
            if v["project_id"] in (a, b)] == []
    with SyncClient(up.cfg.gateway, project=b, key=up.data_dir / "keys" / f"{a}.key_secret",
                    timeout=10.0) as c:
        me = c.whoami()  # the library's project is a label; the gateway's answer is the key's
    assert (me.project_id, me.user_id, me.roles) == (a, a, ("member",))
    shown = json.loads(run_cli("whoami", "--json", *where).stdout)
    assert shown == {"project_id": a, "user_id": a, "roles": ["member"]}
    assert json.loads(up.cli("whoami", "--json", admin=True).stdout)["project_id"] == "admin"


# ---- types -----------------------------------------------------------------------------
def test_type_create_with_a_property_by_an_admin_and_type_list(up: UpCluster) -> None:
    name = f"gold-{uuid.uuid4().hex[:6]}"

    made = up.cli_json("type", "create", name, "--property", "volume_backend_name=file",
                       admin=True)

    assert made["name"] == name
    assert made["extra_specs"] == {"volume_backend_name": "file"}
    names = {t["name"]: t for t in up.cli_json("type", "list")}
    assert {"__DEFAULT__", "FCVolumeType", name} <= set(names)
    assert names[name]["id"] == made["id"]
    vol = up.cli_json("volume", "create", "1", "--type", name, "--wait")
    assert (vol["status"], vol["volume_type"]) == ("available", name)
    table = up.cli("type", "list")
    assert table.returncode == 0 and name in table.stdout


def test_type_create_is_refused_to_non_admins_and_for_duplicates(up: UpCluster) -> None:
    _one_error_line(up.cli("type", "create", "sneaky"), "forbidden")
    _one_error_line(up.cli("type", "create", "FCVolumeType", admin=True), "invalid_input")
    bad = up.cli("type", "create", "x", "--property", "novalue", admin=True)
    assert "KEY=VALUE" in _one_error_line(bad, "usage")


def test_qos_specs_are_made_associated_changed_and_deleted_by_an_admin(up: UpCluster) -> None:
    tag = uuid.uuid4().hex[:6]
    vtype = up.cli_json("type", "create", f"qtype-{tag}", admin=True)
    made = up.cli_json("qos", "create", f"fast-{tag}", "--consumer", "front-end",
                       "--property", "total_iops_sec=500", admin=True)
    assert (made["consumer"], made["properties"], made["associations"]) == (
        "front-end", {"total_iops_sec": "500"}, [])
    assert up.cli("qos", "associate", made["id"], vtype["name"], admin=True).returncode == 0
    assert up.cli_json("type", "show", vtype["name"], admin=True)["qos_specs_id"] == made["id"]
    changed = up.cli_json("qos", "set", f"fast-{tag}", "--property", "read_iops_sec=9",
                          admin=True)
    assert changed["properties"] == {"total_iops_sec": "500", "read_iops_sec": "9"}
    assert changed["associations"] == [vtype["name"]]
    dropped = up.cli_json("qos", "unset", f"fast-{tag}", "--property", "total_iops_sec",
                          admin=True)
    assert dropped["properties"] == {"read_iops_sec": "9"}
    listed = {q["id"]: q for q in up.cli_json("qos", "list", admin=True)}
    assert listed[made["id"]]["associations"] == [vtype["name"]]
    _one_error_line(up.cli("qos", "list"), "forbidden")
    _one_error_line(up.cli("qos", "delete", made["id"], admin=True), "invalid_input")
    assert up.cli("qos", "disassociate", made["id"], "--all", admin=True).returncode == 0
    assert up.cli_json("type", "show", vtype["name"], admin=True)["qos_specs_id"] is None
    assert up.cli("qos", "delete", made["id"], admin=True).returncode == 0
    _one_error_line(up.cli("qos", "show", made["id"], admin=True), "not_found")
    assert up.cli("type", "delete", vtype["id"], admin=True).returncode == 0


def test_a_project_s_default_type_is_set_listed_and_unset_by_an_admin(up: UpCluster) -> None:
    project = f"dt-{uuid.uuid4().hex[:8]}"
    vtype = up.cli_json("type", "create", f"dtype-{project}", admin=True)
    made = up.cli_json("type", "default-set", vtype["name"], project, admin=True)
    assert made == {"project_id": project, "volume_type_id": vtype["id"]}
    listed = up.cli_json("type", "default-list", admin=True)
    assert made in listed, listed
    vol = up.cli_json("volume", "create", "1", "--wait", project=project)
    assert vol["volume_type"] == vtype["name"]
    _one_error_line(up.cli("type", "default-set", vtype["name"], project, project=project),
                    "forbidden")
    assert up.cli("type", "default-unset", project, admin=True).returncode == 0
    again = up.cli_json("volume", "create", "1", "--wait", project=project)
    assert again["volume_type"] == "__DEFAULT__"


def test_an_admin_manages_a_file_and_unmanages_the_volume(up: UpCluster) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}.raw"
    (up.data_dir / "nodes" / "node-2" / name).write_bytes(b"on node-2")
    listed = {m["reference"]: m for m in up.cli_json("volume", "manageable", "node-2@file",
                                                      "--long", admin=True)}
    assert (listed[name]["size"], listed[name]["safe_to_manage"]) == (1, True)
    _one_error_line(up.cli("volume", "manageable", "node-2"), "forbidden")
    _one_error_line(up.cli("volume", "manage", "node-2", "no-such", admin=True),
                    "invalid_input")
    vol = up.cli_json("volume", "manage", "node-2", name, "--name", "adopted",
                      "--property", "k=v", "--wait", admin=True)
    assert (vol["status"], vol["name"], vol["metadata"]) == ("available", "adopted", {"k": "v"})
    gone = up.cli_json("volume", "unmanage", "adopted", "--wait", admin=True)
    assert gone["status"] == "deleted"
    kept = up.data_dir / "nodes" / "node-2" / f"unmanaged-volume-{vol['id']}"
    assert read(kept, 0, 9) == b"on node-2"
    refused = up.cli("volume", "unmanage", "no-such-volume", admin=True)
    assert "failed to unmanage volume 'no-such-volume'" in refused.stderr


def test_an_admin_manages_a_file_as_a_snapshot_and_unmanages_it(up: UpCluster) -> None:
    vol = up.cli_json("volume", "create", "1", "--name", f"base-{uuid.uuid4().hex[:6]}",
                      "--wait", admin=True)
    home = vol["host"].partition("@")[0]
    name = f"cli-snap-{uuid.uuid4().hex[:8]}.raw"
    (up.data_dir / "nodes" / home / name).write_bytes(b"a snapshot")
    listed = {m["reference"]: m for m in up.cli_json("snapshot", "manageable", home, "--long",
                                                      admin=True)}
    assert (listed[name]["size"], listed[name]["safe_to_manage"]) == (1, True)
    _one_error_line(up.cli("snapshot", "manageable", home), "forbidden")
    _one_error_line(up.cli("snapshot", "manage", vol["id"], "no-such", admin=True),
                    "invalid_input")
    snap = up.cli_json("snapshot", "manage", vol["id"], name, "--name", "adopted-snap",
                       "--property", "k=v", "--wait", admin=True)
    assert (snap["status"], snap["name"], snap["volume_id"], snap["metadata"]) == (
        "available", "adopted-snap", vol["id"], {"k": "v"})
    gone = up.cli_json("snapshot", "unmanage", "adopted-snap", "--wait", admin=True)
    assert gone["status"] == "deleted"
    kept = up.data_dir / "nodes" / home / f"unmanaged-snapshot-{snap['id']}"
    assert read(kept, 0, 10) == b"a snapshot"
    up.cli_json("volume", "delete", vol["id"], "--wait", admin=True)


def test_an_admin_sets_a_node_s_log_level_and_lists_it(up: UpCluster) -> None:
    prefix = "cinderblock.storage_node"
    changed = up.cli_json("log", "set", "debug", "--service", "cinder-volume", "--host",
                          "node-2", "--prefix", prefix, admin=True)
    assert changed and {(r["host"], r["level"]) for r in changed} == {("node-2@file", "DEBUG")}
    listed = up.cli_json("log", "list", "--prefix", prefix, admin=True)
    assert {(r["host"], r["level"]) for r in listed} == {("node-1@file", "INFO"),
                                                          ("node-2@file", "DEBUG")}
    _one_error_line(up.cli("log", "list"), "forbidden")
    assert "invalid choice: 'LOUD'" in up.cli("log", "set", "loud", admin=True).stderr
    up.cli_json("log", "set", "INFO", "--host", "node-2", "--prefix", prefix, admin=True)


# ---- quotas and backends --------------------------------------------------------------------
def test_quota_show_quota_set_and_quota_delete_by_an_admin(up: UpCluster) -> None:
    project = f"q-{uuid.uuid4().hex[:8]}"
    up.cli_json("volume", "create", "3", "--wait", project=project)

    shown = up.cli_json("quota", "show", project=project)
    assert shown["limits"]["volumes"] == 10 and shown["limits"]["gigabytes"] == 1000
    assert (shown["in_use"]["volumes"], shown["in_use"]["gigabytes"]) == (1, 3)

    updated = up.cli_json("quota", "set", project, "--volumes", "25", "--gigabytes", "500",
                          admin=True)
    assert (updated["limits"]["volumes"], updated["limits"]["gigabytes"]) == (25, 500)
    again = up.cli_json("quota", "show", project=project)
    assert (again["limits"]["volumes"], again["limits"]["gigabytes"]) == (25, 500)
    table = up.cli("quota", "show", project=project)
    assert re.search(r"\| gigabytes\s+\| 500\s+\| 3\s+\| 0", table.stdout), table.stdout
    typed = up.cli_json("quota", "set", project, "--volume-type", "__DEFAULT__", "--volumes",
                        "4", admin=True)  # the type's own (cinder quota-update --volume-type)
    assert (typed["limits"]["volumes___DEFAULT__"], typed["limits"]["volumes"]) == (4, 25)
    table = up.cli("quota", "show", project=project)
    assert re.search(r"\| volumes___DEFAULT__\s+\| 4\s+\| 1\s+\| 0", table.stdout), table.stdout
    _one_error_line(up.cli("quota", "delete", project, project=project), "forbidden")
    back = up.cli_json("quota", "delete", project, admin=True)
    assert (back["limits"]["volumes"], back["limits"]["gigabytes"]) == (10, 1000)
    assert back["in_use"]["gigabytes"] == 3  # the usage stays
    restarted = up.cli_json("quota", "show", project=project)
    assert restarted["limits"] == back["limits"]


def test_quota_errors_are_one_line_each(up: UpCluster) -> None:
    project = f"q-{uuid.uuid4().hex[:8]}"
    line = _one_error_line(up.cli("quota", "set", project, "--volumes", "5", project=project),
                           "forbidden")
    assert "admin" in line
    _one_error_line(up.cli("quota", "show", "someone-else", project=project), "forbidden")
    _one_error_line(up.cli("quota", "set", project, admin=True), "usage")
    _one_error_line(up.cli("quota", "set", project, "--volumes", "-5", admin=True),
                    "invalid_input")
    _one_error_line(up.cli("quota", "set-defaults", "--volumes", "50", project=project),
                    "forbidden")
    _one_error_line(up.cli("quota", "set-defaults", admin=True), "usage")
    _one_error_line(up.cli("quota", "set", project, "--volume-type", "nosuch", "--volumes",
                           "5", admin=True), "invalid_input")
    _one_error_line(up.cli("quota", "set", project, "--volume-type", "__DEFAULT__",
                           "--per-volume-gigabytes", "5", admin=True), "usage")
    _one_error_line(up.cli("quota", "set-defaults", "--snapshots", "-5", admin=True),
                    "invalid_input")


def test_transfer_create_and_accept_move_a_volume_to_another_project(up: UpCluster) -> None:
    donor, taker = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    vol = up.cli_json("volume", "create", "1", "--name", "gift", "--wait", project=donor)
    offer = up.cli_json("transfer", "create", "gift", "--name", "to-taker", project=donor)
    assert (offer["volume_id"], len(offer["auth_key"])) == (vol["id"], 16)
    assert [t["id"] for t in up.cli_json("transfer", "list", project=donor)] == [offer["id"]]
    line = _one_error_line(up.cli("transfer", "accept", offer["id"], "0" * 16,
                                  project=taker), "invalid_input")
    assert "invalid auth key" in line
    taken = up.cli_json("transfer", "accept", offer["id"], offer["auth_key"], project=taker)
    assert (taken["accepted"], taken["destination_project_id"]) == (True, taker)
    assert up.cli_json("volume", "show", vol["id"], project=taker)["project_id"] == taker
    _one_error_line(up.cli("volume", "show", vol["id"], project=donor), "not_found")
    up.cli_json("volume", "delete", vol["id"], "--wait", project=taker)


def test_backups_are_made_restored_and_deleted_by_name(up: UpCluster) -> None:
    """``cinderblock backup ...`` on ``up``'s embedded cluster: its two nodes share the
    data directory's backup repository, so a backup goes back into either's volumes."""
    project = f"b-{uuid.uuid4().hex[:8]}"
    vol = up.cli_json("volume", "create", "1", "--name", "data", "--wait", project=project)
    made = up.cli_json("backup", "create", "data", "--name", "nightly", "--wait",
                       project=project)
    assert (made["status"], made["volume_id"], made["size"]) == ("available", vol["id"], 1)
    assert (up.data_dir / "backups" / made["id"] / "manifest.json").is_file()
    listed = up.cli_json("backup", "list", "--long", project=project)
    assert [(b["id"], b["volume_id"]) for b in listed] == [(made["id"], vol["id"])]

    into_data = up.cli_json("backup", "restore", "nightly", "data", "--wait", project=project)
    assert into_data["volume_id"] == vol["id"]
    delta = up.cli_json("backup", "create", "data", "--name", "delta", "--incremental",
                        "--wait", project=project)
    assert (delta["status"], delta["is_incremental"]) == ("available", True)
    up.cli_json("backup", "delete", "delta", "--wait", project=project)
    line = _one_error_line(up.cli("backup", "restore", "nightly", "data", "--name", "x",
                                  project=project), "usage")
    assert "--name names a new volume" in line
    into_new = up.cli_json("backup", "restore", "nightly", "--wait", project=project)
    assert into_new["volume_name"] == f"restore_backup_{made['id']}"  # until it is restored:
    new = up.cli_json("volume", "show", into_new["volume_id"], project=project)
    assert (new["status"], new["size"], new["name"]) == ("available", 1, "data")  # Cinder's
    from_backup = up.cli_json("volume", "create", "--size", "2", "copy", "--backup",
                              "nightly", "--wait", project=project)
    assert (from_backup["status"], from_backup["size"], from_backup["name"]) == (
        "available", 2, "copy")  # a name of its own stays

    record = up.cli_json("backup", "export", made["id"], admin=True)
    assert set(record) == {"backup_service", "backup_url"}
    line = _one_error_line(up.cli("backup", "import", record["backup_service"],
                                  record["backup_url"], admin=True), "invalid_state")
    assert "Backup already exists in database." in line
    up.cli_json("backup", "delete", "nightly", "--wait", project=project)
    assert not (up.data_dir / "backups" / made["id"]).exists()
    _one_error_line(up.cli("backup", "show", "nightly", project=project), "not_found")


def test_listings_by_time_counted_by_zone_and_oldest_first(up: UpCluster) -> None:
    """``volume list --created-at/--updated-at/--count``, ``snapshot list
    --availability-zone``, and ``--oldest-first`` of attachments, messages and
    transfers: each asked of the gateway, each a listing's own order or filter."""
    project = f"l-{uuid.uuid4().hex[:8]}"
    made = [up.cli_json("volume", "create", "1", "--name", f"timed-{n}", "--wait",
                        project=project) for n in range(2)]
    first = made[0]["created_at"]
    assert [v["id"] for v in up.cli_json("volume", "list", "--created-at", f"gt:{first}",
                                         project=project)] == [made[1]["id"]]
    assert [v["id"] for v in up.cli_json("volume", "list", "--created-at", f"lte:{first}",
                                         "--updated-at", "gt:2000-01-01", project=project)
            ] == [made[0]["id"]]
    assert up.cli_json("volume", "list", "--count", project=project) == {"count": 2}
    assert up.cli_json("volume", "list", "--count", "--size", "5", project=project) == {
        "count": 0}
    bad = up.cli("volume", "list", "--created-at", "after:2026-01-01", project=project)
    assert bad.returncode == 2  # a usage error
    assert "--created-at: Invalid after operator" in bad.stderr.splitlines()[-1]
    snap = up.cli_json("snapshot", "create", made[0]["id"], "--wait", project=project)
    for zone, found in (("nova", [snap["id"]]), ("elsewhere", [])):
        listed = up.cli_json("snapshot", "list", "--availability-zone", zone, project=project)
        assert [s["id"] for s in listed] == found
    attached = [up.cli_json("attachment", "create", v["id"], project=project)["id"]
                for v in made]
    assert [a["id"] for a in up.cli_json("attachment", "list", project=project)] == \
        attached[::-1]
    assert [a["id"] for a in up.cli_json("attachment", "list", "--oldest-first",
                                         "--limit", "1", project=project)] == attached[:1]
    for attachment_id in attached:
        up.cli_json("attachment", "delete", attachment_id, project=project)
    offers = [up.cli_json("transfer", "create", v["id"], project=project)["id"]
              for v in made]
    assert [t["id"] for t in up.cli_json("transfer", "list", project=project)] == offers[::-1]
    assert [t["id"] for t in up.cli_json("transfer", "list", "--oldest-first",
                                         project=project)] == offers
    for offer in offers:
        assert up.cli("transfer", "delete", offer, project=project).returncode == 0
    assert up.cli_json("message", "list", "--oldest-first", project=project) == []
    assert up.cli("snapshot", "delete", snap["id"], "--wait", project=project).returncode == 0
    for v in made:
        assert up.cli("volume", "delete", v["id"], "--wait", project=project).returncode == 0


def test_volume_create_by_affinity_to_volumes_named(up: UpCluster) -> None:
    project = f"a-{uuid.uuid4().hex[:8]}"
    first = up.cli_json("volume", "create", "1", "--name", "anchor", "--wait", project=project)
    away = up.cli_json("volume", "create", "1", "--different-host", "anchor", "--wait",
                       project=project)
    beside = up.cli_json("volume", "create", "1", "--same-host", first["id"],
                         "--same-host", away["id"], "--different-host", away["id"],
                         "--wait", project=project)
    assert away["host"] != first["host"] and beside["host"] == first["host"]
    for v in (first, away, beside):
        assert up.cli("volume", "delete", v["id"], "--wait", project=project).returncode == 0


def test_quota_defaults_shows_and_set_defaults_sets_the_default_limits(up: UpCluster) -> None:
    """Set to what they are (the cluster is shared: another test's project would feel a
    change); ``test_e2e_quota_classes`` changes them on a cluster of its own."""
    shown = {row["resource"]: row["limit"] for row in up.cli_json("quota", "defaults")}
    assert (shown["volumes"], shown["gigabytes"]) == (10, 1000)
    same = up.cli_json("quota", "set-defaults", "--volumes", "10", admin=True)
    assert {row["resource"]: row["limit"] for row in same} == shown


def test_volume_set_type_retypes_in_place(up: UpCluster) -> None:
    name = f"gold-{uuid.uuid4().hex[:6]}"
    made = up.cli("type", "create", name, "--property", "volume_backend_name=file",
                  admin=True)
    assert made.returncode == 0, made.stderr
    vol = up.cli_json("volume", "create", "1", "--wait")
    retyped = up.cli_json("volume", "set", vol["id"], "--type", name, "--name", "typed")
    assert (retyped["volume_type"], retyped["name"], retyped["host"]) == (
        name, "typed", vol["host"])
    _one_error_line(up.cli("volume", "set", vol["id"], "--retype-policy", "never"), "usage")
    _one_error_line(up.cli("volume", "set", vol["id"], "--type", name), "invalid_state")
    assert up.cli("volume", "delete", vol["id"], "--wait").returncode == 0
    assert up.cli("type", "delete", name, admin=True).returncode == 0


def test_backend_list_and_az_list(up: UpCluster) -> None:
    backends = up.cli_json("backend", "list")
    assert {b["backend"] for b in backends} == {"node-1@file", "node-2@file"}
    assert all(b["up"] and b["total_capacity_gb"] > 0 for b in backends)
    table = up.cli("backend", "list")
    assert table.returncode == 0 and "node-1@file" in table.stdout and "thin" in table.stdout
    assert up.cli_json("az", "list") == ["nova"]


def test_backend_disable_and_enable_by_an_admin(up: UpCluster) -> None:
    _one_error_line(up.cli("backend", "disable", "node-2@file"), "forbidden")
    _one_error_line(up.cli("backend", "disable", "node-9@file", admin=True), "not_found")
    try:
        state = up.cli_json("backend", "disable", "node-2@file", "--reason", "disk swap",
                            admin=True)
        assert (state["enabled"], state["reason"]) == (False, "disk swap")
        listed = {b["backend"]: b["disabled"] for b in up.cli_json("backend", "list")}
        assert listed == {"node-1@file": "", "node-2@file": "disk swap"}
    finally:
        up.cli_json("backend", "enable", "node-2@file", admin=True)
    assert {b["disabled"] for b in up.cli_json("backend", "list")} == {""}


def test_cleanup_by_an_admin_looks_at_what_is_in_transition_and_refuses_what_is_not(
    up: UpCluster,
) -> None:
    """Nothing here was left by a crash (the work-cleanup e2e tests make the crashes):
    the cleanup answers what it looked at, every node answering, and what it did, if
    anything (a delete an earlier test left running would be sent again, harmlessly);
    what it cannot clean is one error line each."""
    done = up.cli("cleanup", "--json", admin=True)
    assert done.returncode == 0, done.stderr
    assert "looked at" in done.stderr and "did not answer" not in done.stderr
    assert all(a["action"] in ("available", "redo_delete", "redo_extend", "redo_revert")
               for a in json.loads(done.stdout))
    vol = up.cli_json("volume", "create", "1", "--wait")
    _one_error_line(up.cli("cleanup", "--volume", vol["id"], admin=True), "invalid_input")
    _one_error_line(up.cli("cleanup", "--node", "node-9", admin=True), "invalid_input")
    _one_error_line(up.cli("cleanup"), "forbidden")
    up.cli_json("volume", "delete", vol["id"], "--wait")


# ---- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "mentions"),
    [
        pytest.param(["0"], "invalid_input", "size", id="size-zero"),
        pytest.param(["-1"], "invalid_input", "size", id="size-negative"),
        pytest.param(["1", "--type", "NoSuchType"], "not_found", "NoSuchType",
                     id="unknown-type"),
        pytest.param(["1", "--availability-zone", "atlantis"], "invalid_input", "atlantis",
                     id="unknown-zone"),
        pytest.param(["1", "--metadata", "novalue"], "usage", "KEY=VALUE", id="bad-metadata"),
        pytest.param(["1", "--name", "n" * 256], "invalid_input", "name", id="long-name"),
        pytest.param(["5000"], "over_quota", "gigabytes", id="over-quota"),
    ],
)
def test_a_bad_volume_create_prints_one_error_line_and_creates_nothing(
    up: UpCluster, args: list[str], code: str, mentions: str
) -> None:
    project = f"e-{uuid.uuid4().hex[:8]}"

    line = _one_error_line(up.cli("volume", "create", *args, "--wait", project=project), code)

    assert mentions in line
    assert up.cli_json("volume", "list", project=project) == []


def test_a_volume_that_ends_in_error_makes_create_wait_fail_with_the_reason(
    up: UpCluster,
) -> None:
    project = f"e-{uuid.uuid4().hex[:8]}"
    up.cli_json("quota", "set", project, "--gigabytes", "1000000000", admin=True)

    line = _one_error_line(up.cli("volume", "create", "100000000", "--wait", project=project),
                           "volume_error")

    assert "No valid backend" in line
    (vol,) = up.cli_json("volume", "list", project=project)
    assert vol["status"] == "error"


def test_a_non_integer_size_is_a_usage_error(up: UpCluster) -> None:
    done = up.cli("volume", "create", "1.5")
    assert done.returncode == 2
    assert "size must be an integer, got '1.5'" in done.stderr.splitlines()[-1]


def test_up_serves_cinder_s_api_and_publishes_its_endpoint(up: UpCluster) -> None:
    endpoints = json.loads((up.data_dir / "endpoints.json").read_text())
    assert endpoints["rest"] == rest_url(up.cfg.rest[0])
    request = urllib.request.Request(endpoints["rest"] + "/types",
                                     headers={"X-Auth-Token": "demo:demo"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        names = {t["name"] for t in json.load(reply)["volume_types"]}
    assert "FCVolumeType" in names


@pytest.mark.parametrize(("args", "says"), [
    (["--nodes", "0"], "--nodes must be 1 to 64, got 0"),
    (["--nodes", "two"], "--nodes must be an integer, got 'two'"),
    (["--capacity-gb", "-5"], "--capacity-gb must be a positive number, got '-5'"),
    (["--capacity-gb", "nan"], "--capacity-gb must be a positive number, got 'nan'"),
    (["--check-every-hours", "-1"], "--check-every-hours must be 0 or more, got '-1'"),
    (["--quota-keep-answered", "-1"], "--quota-keep-answered must be 0 or more, got '-1'"),
    (["--check-before-start-mb", "all"], "--check-before-start-mb must be a number, got 'all'"),
    (["--synchronous", "SOMETIMES"], "--synchronous: invalid choice: 'SOMETIMES'"),
])
def test_up_refuses_a_bad_shape_before_starting_anything(
    tmp_path: Path, args: list[str], says: str,
) -> None:
    done = run_cli("up", "--data-dir", str(tmp_path / "never"), *args)
    assert says in _one_error_line(done, "usage")
    assert done.returncode == 2 and not (tmp_path / "never").exists()


def test_up_refuses_a_ports_range_that_is_not_one_before_starting_anything(
    tmp_path: Path,
) -> None:
    done = run_cli("up", "--data-dir", str(tmp_path / "never"),
                   env={"CINDERBLOCK_PORTS": "40000-30000"})
    assert ("CINDERBLOCK_PORTS: expected LOW-HIGH, two ports from 1024 to 65535, the first "
            "not above the second, got '40000-30000'") in _one_error_line(done, "usage")
    assert done.returncode == 1 and not (tmp_path / "never").exists()


def test_up_runs_its_actors_with_the_durability_and_checks_it_is_given(tmp_path: Path) -> None:
    data_dir = tmp_path / "up"
    data_dir.mkdir()
    _DATA_DIRS.append(data_dir.resolve())
    out = data_dir / "up.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [CINDERBLOCK, "up", "--data-dir", str(data_dir), "--api-fronts", "0",
             "--synchronous", "FULL", "--check-before-start-mb", "0",
             "--check-every-hours", str(1 / 3600), "--quota-keep-answered", "0"],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    pids: dict[str, int] = {}
    try:
        pids = _wait_up(proc, out, actors=6)
        cfg = load(data_dir / "cluster.json")
        assert (cfg.synchronous, cfg.check_before_start_mb, cfg.check_every_hours,
                cfg.quota_keep_answered_s) == ("FULL", 0.0, 1 / 3600, 0.0)
        deadline = time.monotonic() + 30
        while True:  # checked after the start (0 MB), then again every second
            done = run_cli("health", "--data-dir", str(data_dir), "-f", "json")
            stats = {a["actor"]: a["stats"] for a in json.loads(done.stdout)["actors"]}
            databases = [stats[owner]["database"] for owner in ("gateway", "quota")]
            assert all(db["synchronous"] == "FULL" for db in databases), databases
            # nothing applied yet: at most the row of the gateway's sweep at its start
            assert stats["quota"]["details"]["finished_ids"] in (0, 1)
            if all(db["integrity"].startswith("whole (checked again in ") for db in databases):
                break
            assert time.monotonic() < deadline, databases
            time.sleep(0.2)
    finally:
        _stop_up(proc, pids)


def test_without_a_running_cluster_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    done = run_cli("volume", "list", "--data-dir", str(tmp_path))

    line = _one_error_line(done, "usage")
    assert "no running cluster found" in line and "cinderblock up" in line


def test_a_gateway_that_does_not_answer_gives_a_timeout_error_line() -> None:
    gateway = f"tcp://127.0.0.1:{free_port()}"

    done = run_cli("volume", "create", "1", "--gateway", gateway, "--timeout", "0.5")

    assert "no reply" in _one_error_line(done, "timeout")


def test_the_data_dir_and_project_can_come_from_the_environment(up: UpCluster) -> None:
    project = f"env-{uuid.uuid4().hex[:8]}"
    env = {"CINDERBLOCK_DATA_DIR": str(up.data_dir), "CINDERBLOCK_PROJECT": project,
           "CINDERBLOCK_USER": up.user(project)}

    made = run_cli("volume", "create", "1", "--wait", "--json", env=env)
    listed = run_cli("volume", "list", "--json", env=env)

    assert made.returncode == 0, made.stderr
    vol = json.loads(made.stdout)
    assert vol["project_id"] == project
    assert [v["id"] for v in json.loads(listed.stdout)] == [vol["id"]]


def test_a_second_up_on_a_running_data_dir_is_refused_and_leaves_the_first_alone(
    up: UpCluster,
) -> None:
    done = run_cli("up", "--data-dir", str(up.data_dir))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "a cluster is already running" in done.stderr
    assert (up.data_dir / "endpoints.json").exists()
    assert all(_alive(pid) for pid in up.pids.values())
    assert up.cli_json("volume", "list") is not None  # the first cluster still answers


def test_an_actor_pointed_at_a_database_another_process_owns_exits_with_a_clear_error(
    up: UpCluster,
) -> None:
    done = run_cli("actor", "quota", "--config", str(up.data_dir / "cluster.json"),
                   timeout=30)
    assert done.returncode != 0
    assert "is owned by another running process" in done.stderr
    assert up.cli_json("quota", "show") is not None


# ---- down, and an `up` that dies ----------------------------------------------------
def _start_up(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    _DATA_DIRS.append(data_dir.resolve())
    out = data_dir / "up.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([CINDERBLOCK, "up", "--data-dir", str(data_dir)],
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        return proc, _wait_up(proc, out)
    except BaseException:
        _stop_up(proc, {})
        raise


def _all_gone(pids: dict[str, int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids.values() if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_down_stops_the_cluster_up_runs(tmp_path: Path) -> None:
    proc, pids = _start_up(tmp_path)
    try:
        done = run_cli("down", "--data-dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert f"cinderblock stopped (pid {proc.pid}" in done.stdout
        assert proc.wait(5) == 0
        assert _all_gone(pids) == []
        assert not (tmp_path / "endpoints.json").exists()
    finally:
        _stop_up(proc, pids)
    again = run_cli("down", "--data-dir", str(tmp_path))
    assert "no running cluster found" in _one_error_line(again, "usage")


def test_a_killed_up_takes_its_actors_with_it_and_down_clears_the_stale_file(
    tmp_path: Path,
) -> None:
    proc, pids = _start_up(tmp_path)
    try:
        proc.kill()  # SIGKILL: `up` cannot stop anything itself
        proc.wait(5)
        assert _all_gone(pids) == [], "actors outlived their `up`"
    finally:
        _stop_up(proc, pids)
    assert (tmp_path / "endpoints.json").exists()  # nobody was left to remove it
    done = run_cli("down", "--data-dir", str(tmp_path))
    assert "is gone; its stale endpoints.json was removed" in _one_error_line(done, "usage")
    assert not (tmp_path / "endpoints.json").exists()


def test_a_reader_that_leaves_early_gets_no_traceback(up: UpCluster) -> None:
    proc = subprocess.Popen([CINDERBLOCK, "az", "list", "--data-dir", str(up.data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes: its write meets a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141, err
    assert err == ""


# ---- keys and users ------------------------------------------------------------------
def test_the_seed_example_works_right_after_up_with_no_flags(up: UpCluster) -> None:
    done = run_cli("volume", "create", "1", "--name", "firstvol", "--type", "FCVolumeType",
                   "--wait", "--json", "--data-dir", str(up.data_dir))

    assert done.returncode == 0, done.stderr
    vol = json.loads(done.stdout)
    assert (vol["status"], vol["project_id"], vol["name"]) == ("available", "demo", "firstvol")


def test_up_made_the_keys_and_keys_list_shows_no_secret(up: UpCluster) -> None:
    secrets = [p.read_text() for p in (up.data_dir / "keys").glob("*.key_secret")]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600"
               for p in (up.data_dir / "keys").glob("*.key_secret"))

    listed = up.cli_json("keys", "list")

    assert {k["name"]: k["kind"] for k in listed} == {
        "gateway": "actor", "quota": "actor", "scheduler": "actor", "node-1": "actor",
        "node-2": "actor", "admin": "user", "demo": "user", **{
            k["name"]: "user" for k in listed if k["kind"] == "user"}}
    text = up.cli("keys", "list").stdout
    for secret in secrets:
        secret_key = re.search(r'secret-key = "(.+)"', secret)
        assert secret_key is not None and secret_key[1] not in text


def test_a_user_added_on_the_command_line_works_at_once_and_a_removed_one_no_longer(
    up: UpCluster,
) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    where = ["--data-dir", str(up.data_dir)]
    added = run_cli("user", "add", name, "--project", "carols", "--role", "admin", *where)
    assert added.returncode == 0, added.stderr
    users = {u["name"]: u for u in json.loads(run_cli("user", "list", "--json", *where).stdout)}
    assert (users[name]["project"], users[name]["roles"]) == ("carols", ["admin"])

    made = run_cli("volume", "create", "1", "--wait", "--json", "--user", name, *where)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["project_id"] == "carols"

    assert run_cli("user", "remove", name, *where).returncode == 0
    key = up.data_dir / "keys" / f"{name}.key_secret"
    with SyncClient(up.cfg.gateway, key=key, timeout=2.0) as c, pytest.raises(Timeout):
        c.list_volumes()  # the gateway no longer answers that key

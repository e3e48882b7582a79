"""The CLI's output as python-openstackclient's, end to end: every format parsed back,
columns picked with -c, volumes found by name, several deleted at once, global options
on either side of the subcommand, errors as JSON, shell completion."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import yaml

from tests.conftest import E2ECluster, run_cli, user_key

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(cluster: E2ECluster, project: str) -> Cli:
    """The command line as a member of this test's project (its key made on first use)."""
    user_key(cluster.cfg, project)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--data-dir", cluster.cfg.data_dir, "--project", project,
                       "--user", project)

    return run


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def make(cli: Cli, name: str, size: int = 1) -> dict[str, Any]:
    made: dict[str, Any] = json.loads(ok(cli("volume", "create", "--size", str(size), name,
                                             "--wait", "-f", "json")))
    return made


# ---- formats ------------------------------------------------------------------------
def parse(fmt: str, text: str, columns: list[str]) -> list[dict[str, Any]]:
    """Output in ``fmt`` back into rows of column -> text (numbers as text)."""
    if fmt == "json":
        data = json.loads(text)
    elif fmt == "yaml":
        data = yaml.safe_load(text)
    elif fmt == "csv":
        data = list(csv.DictReader(io.StringIO(text)))
    else:  # value: space-separated, in the order of the columns asked for
        data = [dict(zip(columns, line.split(" "), strict=True)) for line in text.splitlines()]
    rows = data if isinstance(data, list) else [data]
    return [{k: str(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "value"])
def test_a_volume_list_in_every_format_parses_back_to_the_same_rows(cli: Cli, fmt: str) -> None:
    first, second = make(cli, "alpha"), make(cli, "beta", 2)

    text = ok(cli("volume", "list", "-f", fmt, "-c", "ID", "-c", "Name", "-c", "Size"))

    rows = parse(fmt, text, ["ID", "Name", "Size"])
    keys = ("id", "name", "size") if fmt in ("json", "yaml") else ("ID", "Name", "Size")
    assert [tuple(r[k] for k in keys) for r in rows] == [
        (second["id"], "beta", "2"), (first["id"], "alpha", "1")]


@pytest.mark.parametrize("fmt", ["json", "yaml", "csv", "value"])
def test_a_volume_show_in_every_format_parses_back_to_the_volume(cli: Cli, fmt: str) -> None:
    vol = make(cli, "shown", 3)

    text = ok(cli("volume", "show", vol["id"], "-f", fmt, "-c", "id", "-c", "size",
                  "-c", "status", "-c", "created_at"))

    if fmt == "value":
        assert text.splitlines() == [vol["id"], "3", "available", vol["created_at"]]
        return
    (row,) = parse(fmt, text, [])
    assert (row["id"], row["size"], row["status"]) == (vol["id"], "3", "available")
    assert datetime.fromisoformat(row["created_at"]).tzinfo is not None


def test_times_print_as_iso_8601_never_as_epoch_floats(cli: Cli) -> None:
    vol = make(cli, "timed")
    created = datetime.fromisoformat(vol["created_at"])
    updated = datetime.fromisoformat(vol["updated_at"])
    assert created <= updated and created.utcoffset() is not None
    table = ok(cli("volume", "show", vol["id"]))
    assert vol["created_at"] in table


def test_columns_pick_fields_in_the_order_given_and_an_unknown_one_is_refused(cli: Cli) -> None:
    vol = make(cli, "picked")

    assert ok(cli("volume", "show", "picked", "-f", "value", "-c", "name", "-c", "id")
              ).splitlines() == ["picked", vol["id"]]
    listed = json.loads(ok(cli("volume", "list", "-f", "json", "-c", "Status")))
    assert listed == [{"status": "available"}]
    refused = cli("volume", "list", "-c", "Colour")
    assert refused.returncode == 1
    assert "no column 'Colour'" in refused.stderr and "Attached to" in refused.stderr


def test_json_alias_and_table_still_work(cli: Cli) -> None:
    vol = make(cli, "aliased")
    assert json.loads(ok(cli("volume", "show", "aliased", "--json")))["id"] == vol["id"]
    table = ok(cli("volume", "list"))
    assert "| ID" in table and "Attached to" in table and vol["id"] in table


# ---- names ----------------------------------------------------------------------------
def test_a_volume_is_found_by_its_name_for_show_extend_and_snapshot(cli: Cli) -> None:
    vol = make(cli, "by-name")

    assert json.loads(ok(cli("volume", "show", "by-name", "-f", "json")))["id"] == vol["id"]
    grown = json.loads(ok(cli("volume", "extend", "by-name", "2", "--wait", "-f", "json")))
    assert (grown["id"], grown["size"]) == (vol["id"], 2)
    snap = json.loads(ok(cli("snapshot", "create", "by-name", "--name", "s1", "--wait",
                             "-f", "json")))
    assert snap["volume_id"] == vol["id"]
    assert json.loads(ok(cli("snapshot", "show", "s1", "-f", "json")))["id"] == snap["id"]
    att = json.loads(ok(cli("attachment", "create", "by-name", "--instance", "vm-1",
                            "-f", "json")))
    assert att["volume_id"] == vol["id"]
    listed = json.loads(ok(cli("volume", "list", "-f", "json")))
    assert listed[0]["attached_to"] == ["vm-1"]


def test_an_ambiguous_name_is_refused_with_every_candidate_listed(cli: Cli) -> None:
    ids = {make(cli, "twin")["id"], make(cli, "twin")["id"]}

    done = cli("volume", "show", "twin", "-f", "json")

    assert done.returncode == 1 and done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["code"] == "ambiguous"
    assert set(error["details"]["candidates"]) == ids
    assert all(i in error["message"] for i in ids)
    plain = cli("volume", "delete", "twin")
    assert plain.returncode == 1 and "ERROR (ambiguous)" in plain.stderr
    assert len(json.loads(ok(cli("volume", "list", "-f", "json")))) == 2, "nothing deleted"


def test_an_unknown_name_is_not_found(cli: Cli) -> None:
    done = cli("volume", "show", "nobody-has-this-name")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR (not_found): no volume with the name or id")


# ---- several deletes --------------------------------------------------------------------
def test_a_delete_of_several_reports_the_one_that_failed_and_does_the_rest(cli: Cli) -> None:
    a, b = make(cli, "del-a"), make(cli, "del-b")

    done = cli("volume", "delete", "del-a", "no-such-volume", b["id"], "--wait")

    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert errors[0].startswith("ERROR (not_found): failed to delete volume 'no-such-volume'")
    assert errors[-1] == "1 of 3 volumes failed to delete"
    assert a["id"] in done.stdout and b["id"] in done.stdout
    assert json.loads(ok(cli("volume", "list", "-f", "json"))) == []


def test_delete_errors_under_json_are_json_objects_on_stderr(cli: Cli) -> None:
    done = cli("volume", "delete", "ghost-1", "ghost-2", "-f", "json")
    assert done.returncode == 1
    errors = [json.loads(line)["error"] for line in done.stderr.splitlines()]
    assert [(e["code"], e["details"]["volume"]) for e in errors] == [
        ("not_found", "ghost-1"), ("not_found", "ghost-2")]


# ---- create as openstack volume create -------------------------------------------------
def test_volume_create_takes_size_property_and_volume_type_as_openstack_does(cli: Cli) -> None:
    made = json.loads(ok(cli("volume", "create", "--size", "2", "--property", "a=1",
                             "--property", "b=2", "--volume-type", "FCVolumeType", "osc-style",
                             "--wait", "-f", "json")))
    assert (made["name"], made["size"], made["volume_type"]) == ("osc-style", 2, "FCVolumeType")
    assert made["metadata"] == {"a": "1", "b": "2"}
    cinder = json.loads(ok(cli("volume", "create", "1", "--name", "cinder-style", "--type",
                               "FCVolumeType", "-f", "json")))
    assert (cinder["name"], cinder["size"]) == ("cinder-style", 1)
    twice = cli("volume", "create", "--size", "1", "one", "--name", "two")
    assert twice.returncode == 2 and "named twice" in twice.stderr


# ---- global options, version, help, completion ----------------------------------------
def test_global_options_work_before_the_subcommand(cluster: E2ECluster, project: str) -> None:
    user_key(cluster.cfg, project)
    made = json.loads(ok(run_cli("--data-dir", cluster.cfg.data_dir, "--user", project,
                                 "-f", "json", "volume", "create", "1", "--name", "early")))
    shown = run_cli("--user", project, "--data-dir", cluster.cfg.data_dir, "volume",
                    "show", "early", "-f", "value", "-c", "id")
    assert ok(shown).strip() == made["id"]
    other = run_cli("--user", "nobody-has-this-key", "volume", "show", "early", "--data-dir",
                    cluster.cfg.data_dir, "--user", project, "-f", "value", "-c", "name")
    assert ok(other).strip() == "early", "the option after the subcommand wins"


def test_version_help_and_environment_variables() -> None:
    assert ok(run_cli("--version")).startswith("cinderblock ")
    helped = ok(run_cli("--help"))
    for name in ("CINDERBLOCK_DATA_DIR", "CINDERBLOCK_GATEWAY", "CINDERBLOCK_PROJECT",
                 "CINDERBLOCK_ADMIN", "CINDERBLOCK_EVENTS", "CINDERBLOCK_LOG_FORMAT"):
        assert name in helped
    up_help = ok(run_cli("up", "--help"))
    assert "--nodes" in up_help and "--data-dir" in up_help
    for meaningless in ("--gateway", "--project", "--admin", "--json", "--format"):
        assert meaningless not in up_help


def test_the_environment_names_the_cluster(cluster: E2ECluster, project: str) -> None:
    key = user_key(cluster.cfg, project)
    make(lambda *a: run_cli(*a, env={"CINDERBLOCK_DATA_DIR": cluster.cfg.data_dir,
                                     "CINDERBLOCK_USER": project}), "from-env")
    listed = run_cli("volume", "list", "-f", "value", "-c", "Name",
                     env={"CINDERBLOCK_GATEWAY": cluster.gateway, "CINDERBLOCK_KEY": str(key)})
    assert ok(listed).split() == ["from-env"]


def complete(script: str, words: str) -> list[str]:
    """What bash completes after ``words`` with the generated script loaded."""
    line = f"cinderblock {words}"
    probe = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD=${{#COMP_WORDS[@]}}; "
             "COMP_WORDS+=(''); _cinderblock; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completion_completes_commands_and_options() -> None:
    script = ok(run_cli("completion", "bash"))
    assert "volume" in complete(script, "")
    assert {"create", "list", "delete", "show"} <= set(complete(script, "volume"))
    options = complete(script, "volume create")
    assert {"--size", "--property", "--volume-type", "--format"} <= set(options)
    assert "--nodes" in complete(script, "--data-dir /tmp up")


def test_backend_list_counts_the_volumes_each_node_holds(cli: Cli, cluster: E2ECluster) -> None:
    make(cli, "counted-1")
    make(cli, "counted-2")
    everyone = run_cli("volume", "list", "--all-projects", "--admin", "-f", "value", "-c", "ID",
                       "--data-dir", cluster.cfg.data_dir)
    held = len(ok(everyone).split())
    deadline = time.monotonic() + 10
    while True:  # nodes report their count with their next stats
        backends = json.loads(ok(cli("backend", "list", "-f", "json")))
        counted = sum(b["volumes"] for b in backends)
        if counted == held or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted == held >= 2
    table = ok(cli("backend", "list", "-c", "Backend", "-c", "Volumes", "-f", "csv"))
    assert table.splitlines()[0] == '"Backend","Volumes"'


def test_a_volume_that_went_to_error_has_a_message_saying_why(
    cli: Cli, cluster: E2ECluster, project: str,
) -> None:
    """``message list/show/delete`` as ``openstack volume message``: the reason a volume
    no backend can hold went to ``error``, found by the volume, seen by its project only."""
    admin = ("--data-dir", cluster.cfg.data_dir, "--admin")
    ok(run_cli("quota", "set", project, "--gigabytes", "-1", *admin))
    failed = cli("volume", "create", "10000000", "--name", "huge", "--wait")
    assert failed.returncode == 1 and "went to error" in failed.stderr
    huge = json.loads(ok(cli("volume", "show", "huge", "-f", "json")))
    fine = make(cli, "fine")
    deadline = time.monotonic() + 20
    while not (listed := json.loads(ok(cli("message", "list", "-f", "json")))):
        assert time.monotonic() < deadline, "no message about the volume that went to error"
        time.sleep(0.1)
    (message,) = listed
    assert message["resource_uuid"] == huge["id"]
    assert message["user_message"] == f"schedule allocate volume: {huge['reason']}"
    assert json.loads(ok(cli("message", "list", "--volume", "huge", "-f", "json"))) == listed
    assert json.loads(ok(cli("message", "list", "--volume", fine["id"], "-f", "json"))) == []
    shown = json.loads(ok(cli("message", "show", message["id"], "-f", "json")))
    assert (shown["project_id"], shown["message_level"]) == (project, "ERROR")
    assert datetime.fromisoformat(shown["expires_at"]) > datetime.fromisoformat(
        shown["created_at"])
    everyone = json.loads(ok(run_cli("message", "list", "--all-projects", "-f", "json", *admin)))
    assert {"id": message["id"], "project_id": project} in [
        {"id": m["id"], "project_id": m["project_id"]} for m in everyone]
    user_key(cluster.cfg, f"{project}-other")
    other = run_cli("message", "show", message["id"], "--data-dir", cluster.cfg.data_dir,
                    "--user", f"{project}-other")
    assert other.returncode == 1 and other.stderr.startswith("ERROR (not_found)")
    ok(cli("message", "delete", message["id"]))
    assert json.loads(ok(cli("message", "list", "-f", "json"))) == []
    gone = cli("message", "show", message["id"])
    assert gone.returncode == 1 and gone.stderr.startswith("ERROR (not_found)")


def test_volume_and_snapshot_set_and_unset_and_type_delete_as_openstack_has_them(
    cli: Cli, cluster: E2ECluster, project: str,
) -> None:
    made = json.loads(ok(cli("volume", "create", "1", "--name", "before", "--property", "a=1",
                             "--wait", "-f", "json")))
    changed = json.loads(ok(cli("volume", "set", "before", "--name", "after", "--description",
                                "said", "--property", "b=2", "--bootable", "--read-only",
                                "-f", "json")))
    assert (changed["id"], changed["name"], changed["description"]) == (made["id"], "after",
                                                                       "said")
    assert changed["metadata"] == {"a": "1", "b": "2"}
    assert (changed["bootable"], changed["readonly"]) == (True, True)
    unset = json.loads(ok(cli("volume", "unset", "after", "--property", "a", "-f", "json")))
    assert unset["metadata"] == {"b": "2"}
    imaged = json.loads(ok(cli("volume", "set", "after", "--image-property", "os_type=linux",
                               "--image-property", "hw_disk_bus=scsi", "-f", "json")))
    assert imaged["image_metadata"] == {"os_type": "linux", "hw_disk_bus": "scsi"}
    unimaged = json.loads(ok(cli("volume", "unset", "after", "--image-property", "os_type",
                                 "-f", "json")))
    assert (unimaged["image_metadata"], unimaged["metadata"]) == ({"hw_disk_bus": "scsi"},
                                                                  {"b": "2"})
    empty = cli("volume", "unset", "after")
    assert empty.returncode == 1 and empty.stderr.startswith("ERROR (usage): nothing to unset")
    replaced = json.loads(ok(cli("volume", "set", made["id"], "--no-property", "--property",
                                 "c=3", "--non-bootable", "--name", "", "-f", "json")))
    assert (replaced["metadata"], replaced["bootable"], replaced["name"]) == ({"c": "3"},
                                                                              False, None)
    assert replaced["readonly"] is True  # what was not given stays
    nothing = cli("volume", "set", made["id"])
    assert nothing.returncode == 1 and nothing.stderr.startswith("ERROR (usage): nothing to set")
    snap = json.loads(ok(cli("snapshot", "create", made["id"], "--name", "s1", "--property",
                             "k=v", "--wait", "-f", "json")))
    assert snap["metadata"] == {"k": "v"}
    renamed = json.loads(ok(cli("snapshot", "set", "s1", "--name", "s2", "--description",
                                "kept", "--property", "a=1", "--property", "b=2", "-f",
                                "json")))
    assert (renamed["id"], renamed["name"], renamed["description"]) == (snap["id"], "s2", "kept")
    assert renamed["metadata"] == {"k": "v", "a": "1", "b": "2"}
    unset = json.loads(ok(cli("snapshot", "unset", "s2", "--property", "a", "-f", "json")))
    assert unset["metadata"] == {"k": "v", "b": "2"}
    replaced = json.loads(ok(cli("snapshot", "set", "s2", "--no-property", "--property", "c=3",
                                 "-f", "json")))
    assert (replaced["metadata"], replaced["description"]) == ({"c": "3"}, "kept")
    missing = cli("snapshot", "unset", "s2", "--property", "a")
    assert missing.returncode == 1 and "'a'" in missing.stderr
    refused = cli("snapshot", "reset-state", "s2")
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR (forbidden)")
    admin = ("--data-dir", cluster.cfg.data_dir, "--admin")
    reset = json.loads(ok(run_cli("snapshot", "reset-state", snap["id"], "--state",
                                  "available", "-f", "json", *admin)))
    assert (reset["status"], reset["reason"]) == ("available",
                                                  "status reset by an admin (was available)")
    reverted = json.loads(ok(cli("volume", "revert", "s2", "--wait", "-f", "json")))
    assert (reverted["id"], reverted["status"]) == (made["id"], "available")
    ok(cli("volume", "extend", made["id"], "2", "--wait"))
    refused = cli("volume", "revert", "s2")
    assert refused.returncode == 1 and "size must be equal" in refused.stderr
    admin = ("--data-dir", cluster.cfg.data_dir, "--admin")
    name = f"gone-{project}"
    ok(run_cli("type", "create", name, *admin))
    refused = cli("type", "delete", name)
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR (forbidden)")
    ok(run_cli("type", "delete", name, *admin))
    listed = json.loads(ok(run_cli("type", "list", "-f", "json", *admin)))
    assert name not in [t["name"] for t in listed]
    again = run_cli("type", "delete", name, *admin)
    assert again.returncode == 1 and again.stderr.startswith("ERROR (not_found)")


def test_a_private_type_is_shared_and_unshared_with_a_project_from_the_command_line(
    cli: Cli, cluster: E2ECluster, project: str,
) -> None:
    admin = ("--data-dir", cluster.cfg.data_dir, "--admin")
    name = f"private-{project}"
    made = json.loads(ok(run_cli("type", "create", name, "--private", "-f", "json", *admin)))
    assert made["is_public"] is False

    def seen() -> list[str]:
        return [t["name"] for t in json.loads(ok(cli("type", "list", "-f", "json")))]

    assert name not in seen()
    shared = json.loads(ok(run_cli("type", "set", name, "--project-id", project, "-f", "json",
                                   *admin)))
    assert shared["access_project_ids"] == [project]
    assert name in seen()
    shown = json.loads(ok(run_cli("type", "show", made["id"], "-f", "json", *admin)))
    assert (shown["name"], shown["access_project_ids"]) == (name, [project])
    vol = json.loads(ok(cli("volume", "create", "1", "--type", name, "--wait", "-f", "json")))
    assert vol["volume_type"] == name
    refused = cli("type", "unset", name, "--project-id", project)
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR (forbidden)")
    ok(run_cli("type", "unset", name, "--project-id", project, *admin))
    assert name not in seen()
    hidden = cli("type", "show", name)
    assert hidden.returncode == 1 and hidden.stderr.startswith("ERROR (not_found)")


def test_an_admin_renames_a_type_and_changes_its_extra_specs_until_a_volume_has_it(
    cli: Cli, cluster: E2ECluster, project: str,
) -> None:
    admin = ("--data-dir", cluster.cfg.data_dir, "--admin")
    name = f"tiered-{project}"
    ok(run_cli("type", "create", name, "--property", "qos:a=1", *admin))
    changed = json.loads(ok(run_cli("type", "set", name, "--name", f"{name}-2", "--description",
                                    "said", "--property", "qos:b=2", "-f", "json", *admin)))
    assert (changed["name"], changed["description"], changed["extra_specs"]) == (
        f"{name}-2", "said", {"qos:a": "1", "qos:b": "2"})
    unset = json.loads(ok(run_cli("type", "unset", f"{name}-2", "--property", "qos:a", "-f",
                                  "json", *admin)))
    assert unset["extra_specs"] == {"qos:b": "2"}
    refused = cli("type", "set", f"{name}-2", "--property", "qos:c=3")
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR (forbidden)")
    nothing = run_cli("type", "set", f"{name}-2", *admin)
    assert nothing.returncode == 1 and nothing.stderr.startswith("ERROR (usage): nothing to set")
    vol = json.loads(ok(cli("volume", "create", "1", "--type", f"{name}-2", "--wait", "-f",
                            "json")))
    in_use = run_cli("type", "set", f"{name}-2", "--property", "qos:c=3", *admin)
    assert in_use.returncode == 1 and "currently in use" in in_use.stderr
    ok(run_cli("type", "set", f"{name}-2", "--name", f"{name}-3", *admin))
    shown = json.loads(ok(cli("volume", "show", vol["id"], "-f", "json")))
    assert shown["volume_type"] == f"{name}-3"


def test_volume_list_filters_by_name_and_property_and_sorts_as_asked(cli: Cli) -> None:
    def listed(*args: str) -> list[tuple[str, int]]:
        rows = json.loads(ok(cli("volume", "list", "-f", "json", *args)))
        return [(r["name"], int(r["size"])) for r in rows]

    for size, name, tier in ((2, "a", "gold"), (1, "b", "silver"), (3, "a", None)):
        ok(cli("volume", "create", str(size), "--name", name, "--wait",
               *(("--property", f"tier={tier}") if tier else ())))
    summary = json.loads(ok(cli("volume", "summary", "-f", "json")))
    assert summary == {"total_count": 3, "total_size": 6,
                       "metadata": {"tier": ["gold", "silver"]}}
    assert sorted(listed("--name", "a")) == [("a", 2), ("a", 3)]
    assert listed("--property", "tier=gold") == [("a", 2)]
    assert listed("--property", "tier=gold", "--name", "b") == []
    assert listed("--sort", "size:asc") == [("b", 1), ("a", 2), ("a", 3)]
    assert listed("--sort", "size:desc", "--limit", "2") == [("a", 3), ("a", 2)]
    refused = cli("volume", "list", "--sort", "colour")
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR (invalid_input)")

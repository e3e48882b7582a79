"""``cinderblock health`` against a real cluster: 0 while every actor answers, 1 once
one of them is killed (by its PID), and the stats behind it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.conftest import E2ECluster, run_cli


def health(cluster: E2ECluster, *args: str) -> tuple[int, dict[str, object]]:
    done = run_cli("health", "--data-dir", cluster.cfg.data_dir, "-f", "json", *args)
    return done.returncode, json.loads(done.stdout)


def test_health_is_0_on_a_healthy_cluster_and_1_with_an_actor_killed(
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    cluster = cluster_factory()

    code, report = health(cluster)
    assert code == 0, report
    actors = {a["actor"]: a for a in report["actors"]}  # type: ignore[attr-defined]
    assert set(actors) == {"gateway", "quota", "scheduler", "node-1", "node-2"}
    pids = cluster.cluster.pids()
    for name, entry in actors.items():
        stats = entry["stats"]
        assert entry["healthy"] and entry["via_gateway"] == "up"
        assert stats["pid"] == pids[name] and stats["uptime_s"] > 0
    assert actors["gateway"]["stats"]["database"]["state"] == "ok"
    for owner in ("gateway", "quota"):  # small files: checked before the start
        assert actors[owner]["stats"]["database"]["integrity"] == \
            "whole (checked before the start)"
    assert actors["gateway"]["direct"] == "up"
    assert actors["quota"]["direct"] == "-"  # with keys it admits actors alone: via the gateway
    table = run_cli("health", "--data-dir", cluster.cfg.data_dir)
    assert table.returncode == 0 and "healthy: 5 actors answer" in table.stdout
    assert "Integrity" in table.stdout
    rows = {line.split()[1]: line for line in table.stdout.splitlines()
            if line.startswith("|") and line.split()[1] in actors}
    for owner in ("gateway", "quota"):  # what the check found, without when
        assert "| whole " in rows[owner] and "before the start" not in rows[owner]

    os.kill(pids["node-2"], signal.SIGKILL)
    cluster.cluster.procs["node-2"].wait()

    code, report = health(cluster, "--timeout", "2")
    assert code == 1
    actors = {a["actor"]: a for a in report["actors"]}  # type: ignore[attr-defined]
    assert not actors["node-2"]["healthy"] and actors["node-2"]["stats"] is None
    assert actors["node-2"]["problems"] == ["does not answer"]
    assert all(actors[n]["healthy"] for n in ("gateway", "quota", "scheduler", "node-1"))
    table = run_cli("health", "--data-dir", cluster.cfg.data_dir)
    assert table.returncode == 1 and "UNHEALTHY node-2: does not answer" in table.stdout


def test_health_with_the_quota_actor_killed_is_1_and_names_it(
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    cluster = cluster_factory(nodes=1)
    os.kill(cluster.cluster.pids()["quota"], signal.SIGKILL)
    cluster.cluster.procs["quota"].wait()

    code, report = health(cluster, "--timeout", "2")

    assert code == 1
    actors = {a["actor"]: a for a in report["actors"]}  # type: ignore[attr-defined]
    assert not actors["quota"]["healthy"]
    assert actors["quota"]["problems"] == ["does not answer"]
    assert actors["quota"]["via_gateway"] == "no answer"
    assert actors["gateway"]["healthy"] and actors["node-1"]["healthy"]


def test_health_reads_restarts_from_the_supervisors_status_file(
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    cluster = cluster_factory(nodes=1)
    code, report = health(cluster)
    assert code == 0 and report["restarts_reported"] is False
    status = {"pid": os.getpid(), "actors": {"node-1": {"pid": 1, "restarts": 2},
                                             "quota": {"pid": 2, "restarts": 0}}}
    (Path(cluster.cfg.data_dir) / "status.json").write_text(json.dumps(status))

    code, report = health(cluster)

    assert code == 0 and report["restarts_reported"] is True
    restarts = {a["actor"]: a["stats"]["restarts"] for a in report["actors"]}  # type: ignore[attr-defined]
    assert restarts == {"gateway": None, "quota": 0, "scheduler": None, "node-1": 2}
    table = run_cli("health", "--data-dir", cluster.cfg.data_dir, "-c", "Actor",
                    "-c", "Restarts", "-f", "csv")
    assert '"node-1",2' in table.stdout

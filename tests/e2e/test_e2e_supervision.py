"""``cinderblock up`` supervises: an actor killed with SIGKILL is started again on the
same endpoints, reported with its exit status, counted in ``cinderblock status``;
past the restart cap the cluster is stopped with a clear message; another ``up`` in
the same data directory is found at the same endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _DATA_DIRS, CINDERBLOCK, run_cli


@dataclass
class Up:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    out: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--data-dir", str(self.data_dir))

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        actors: dict[str, Any] = json.loads(done.stdout)["actors"]
        return actors

    def endpoints(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads((self.data_dir / "endpoints.json").read_text())
        return found

    def wait_output(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.out.read_text()
            if text in out:
                return out
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not printed by up in {timeout}s: {self.out.read_text()}")


def start_up(data_dir: Path, *extra: str) -> Up:
    _DATA_DIRS.append(data_dir.resolve())
    out = data_dir / f"up-{time.monotonic_ns()}.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([CINDERBLOCK, "up", "--data-dir", str(data_dir), *extra],
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    up = Up(data_dir, proc, out)
    try:
        up.wait_output("Ctrl-C")
        _wait(lambda: (data_dir / "status.json").exists())
    except BaseException:
        stop_up(up)
        raise
    return up


def stop_up(up: Up) -> None:
    if up.proc.poll() is None:
        up.proc.send_signal(signal.SIGTERM)
    try:
        up.proc.wait(20)
    except subprocess.TimeoutExpired:
        up.proc.kill()
        up.proc.wait()


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    started = start_up(tmp_path, "--max-restarts", "3")
    try:
        yield started
    finally:
        stop_up(started)


@pytest.mark.parametrize("actor", ["gateway", "quota", "scheduler", "node-1", "rest-1"])
def test_an_actor_killed_under_up_comes_back_on_its_endpoints_and_creates_succeed(
    up: Up, actor: str,
) -> None:
    endpoints = up.endpoints()
    killed = up.status()[actor]["pid"]
    os.kill(killed, signal.SIGKILL)
    up.wait_output(f"{actor} (pid {killed}) killed by SIGKILL")
    back = _wait(lambda: (s := up.status()[actor])["restarts"] == 1 and s["running"] and s)
    assert back["pid"] != killed and _alive(back["pid"])
    assert back["last_exit"] == "killed by SIGKILL"
    assert up.endpoints() == endpoints
    created = up.cli("volume", "create", "1", "--wait", "--timeout", "30", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "available"
    table = up.cli("status")
    assert table.returncode == 0, table.stderr
    assert f"| {actor}" in table.stdout and "killed by SIGKILL" in table.stdout
    assert "Traceback" not in (up.data_dir / "logs" / "up.log").read_text()


def test_past_the_restart_cap_up_stops_the_cluster_and_says_why(tmp_path: Path) -> None:
    up = start_up(tmp_path, "--max-restarts", "1")
    try:
        pids = [a["pid"] for a in up.status().values()]
        first = up.status()["quota"]["pid"]
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: (s := up.status()["quota"])["restarts"] == 1 and s["running"]
                       and s["pid"])
        pids.append(second)
        os.kill(second, signal.SIGKILL)
        up.proc.wait(30)
    finally:
        stop_up(up)
    out = up.out.read_text()
    assert up.proc.returncode == 1, out
    assert "quota died 2 times within a minute, last killed by SIGKILL" in out
    assert "cinderblock stopped" in out
    assert not [pid for pid in pids if _alive(pid)]
    assert not (tmp_path / "endpoints.json").exists()


def test_up_started_again_in_a_data_directory_keeps_its_endpoints(tmp_path: Path) -> None:
    up = start_up(tmp_path)
    try:
        first = up.endpoints()
        down = up.cli("down")
        assert down.returncode == 0, down.stderr
        up.proc.wait(20)
    finally:
        stop_up(up)
    again = start_up(tmp_path)
    try:
        second = again.endpoints()
        assert {k: v for k, v in second.items() if k != "pid"} == \
            {k: v for k, v in first.items() if k != "pid"}
        listed = again.cli("volume", "list")
        assert listed.returncode == 0, listed.stderr
    finally:
        stop_up(again)


def test_status_without_a_running_up_is_one_clear_error(tmp_path: Path) -> None:
    done = run_cli("status", "--data-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR (usage): no cluster started by `cinderblock up`")

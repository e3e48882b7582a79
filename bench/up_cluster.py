"""A cluster run by a real ``cinderblock up`` process, as the kill suite drives it.

``UpCluster.start`` runs ``python -m cinderblock up`` on a data directory and
waits until it says it is up; everything else is read from what ``up`` publishes
there: ``endpoints.json`` (the gateway), ``status.json`` (each actor's pid,
restarts and last exit), ``cluster.json`` (the nodes), ``keys/`` (the users'
keys). ``kill`` sends SIGKILL to one actor by the pid ``up`` reports for it;
``stop`` sends SIGTERM to ``up`` itself (which stops its actors) and then makes
sure no actor pid ever seen is left alive, killing any straggler by its pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from cinderblock.actors.runtime.config import PORTS_ENV, ClusterConfig, load
from cinderblock.actors.runtime.keyring import secret_key_file
from cinderblock.bench.invariants import repository_names
from cinderblock.protocol.client.client import Client

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
R = TypeVar("R")


def on_a_fresh_cluster(name: str, work: Callable[[UpCluster], Coroutine[Any, Any, R]],
                       *up_args: str) -> R:
    """``work`` run on a new ``cinderblock up`` in a temporary data directory (``up_args``
    its options), which is stopped and removed afterwards, whatever happened."""
    with tempfile.TemporaryDirectory(prefix=f"cb-bench-{name}-") as tmp:
        up = UpCluster(Path(tmp) / "data", *up_args)
        up.start()
        try:
            return asyncio.run(work(up))
        finally:
            up.stop()


def own_environment() -> dict[str, str]:
    """This process's environment for a command that runs a cluster of its own: none of
    the ``CINDERBLOCK_`` settings that name the caller's cluster, user or key, but the
    range its ports are picked from (``CINDERBLOCK_PORTS``: one a test worker was given
    is the commands' too)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("CINDERBLOCK_") or k == PORTS_ENV}


class UpError(RuntimeError):
    """``up`` did not start, or an actor did not come back; the text says what."""


class UpCluster:
    def __init__(self, data_dir: Path, *up_args: str) -> None:
        self.data_dir = data_dir
        self.up_args = up_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = data_dir / "up.out"
        self.seen_pids: set[int] = set()
        self._cfg: ClusterConfig | None = None

    # ---- life ---------------------------------------------------------------
    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = own_environment()
        with open(self.out, "wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cinderblock", "up", "--data-dir", str(self.data_dir),
                 *self.up_args],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise

    def _wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self.proc is not None
        while "Ctrl-C" not in self.output() or not (self.data_dir / "status.json").exists():
            if self.proc.poll() is not None:
                raise UpError(f"`cinderblock up` exited {self.proc.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                raise UpError(f"`cinderblock up` not up after {START_TIMEOUT_S:g}s: "
                              f"{self.output()}")
            time.sleep(0.05)
        self.seen_pids |= {a["pid"] for a in self.status().values()}

    def stop(self) -> list[int]:
        """Stop ``up`` (SIGTERM, SIGKILL past the grace); the actor pids that had to be
        killed by hand afterwards (none, when ``up`` stops its actors as it should)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = [pid for pid in sorted(self.seen_pids) if _is_actor(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        return left

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    # ---- what up publishes ----------------------------------------------------
    @property
    def cfg(self) -> ClusterConfig:
        if self._cfg is None:
            self._cfg = load(self.data_dir / "cluster.json")
        return self._cfg

    def status(self) -> dict[str, dict[str, Any]]:
        """``status.json``'s actors: pid, started_at, restarts, last_exit, running."""
        actors: dict[str, dict[str, Any]] = json.loads(
            (self.data_dir / "status.json").read_text())["actors"]
        self.seen_pids |= {a["pid"] for a in actors.values()}
        return actors

    def node_files(self) -> dict[str, set[str]]:
        """Every file in the directory of every node that keeps files (a ``null`` node
        keeps its volumes in memory), by host (``bench.invariants``)."""
        out: dict[str, set[str]] = {}
        for node in self.cfg.nodes:
            if node.backend != "file":
                continue
            d = self.cfg.path("nodes", node.host)
            out[node.host] = {p.name for p in d.iterdir()} if d.exists() else set()
        return out

    def backup_files(self) -> set[str]:
        """What the backup repositories hold (``bench.invariants``)."""
        return repository_names(self.cfg)

    def client(self, user: str, timeout: float) -> Client:
        """A client speaking as ``user`` (``demo`` or ``admin``: up makes both keys)."""
        endpoint = json.loads((self.data_dir / "endpoints.json").read_text())["gateway"]
        admin = user == "admin"
        return Client(endpoint, project="admin" if admin else user, admin=admin,
                      timeout=timeout, key=secret_key_file(self.data_dir, user))

    # ---- kills ----------------------------------------------------------------
    def running_pid(self, actor: str, timeout: float) -> int:
        """The pid of ``actor`` once ``up`` reports it running and it is alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.status()[actor]
            if entry["running"] and _is_actor(entry["pid"]):
                return int(entry["pid"])
            time.sleep(0.05)
        raise UpError(f"{actor} not running after {timeout:g}s: {self.status()[actor]}")

    def kill(self, actor: str, sig: signal.Signals = signal.SIGKILL) -> tuple[int, int]:
        """SIGKILL (or ``sig``: SIGSTOP to freeze it first) ``actor``; its pid and its
        restart count before the signal."""
        pid = self.running_pid(actor, 30.0)
        restarts = int(self.status()[actor]["restarts"])
        os.kill(pid, sig)
        return pid, restarts

    def restarted(self, actor: str, killed_pid: int, restarts: int) -> bool:
        entry = self.status()[actor]
        return (entry["restarts"] > restarts and entry["running"]
                and entry["pid"] != killed_pid and _is_actor(entry["pid"]))


def _is_actor(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) cinderblock actor process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and b"cinderblock" in cmdline and b"actor" in cmdline

"""Shared fixtures for the end-to-end tests: whole clusters of real actor processes.

Every cluster runs on 127.0.0.1 with free ports under a pytest temporary
directory. ``running_cluster`` always stops exactly the processes it started
(also when a test or the start itself fails) and checks they are gone; at the
end of the session no actor process whose command line names one of our data
directories may be left.

- ``cluster``: one cluster per test module (tests isolate themselves with a
  project of their own: the ``project`` fixture).
- ``cluster_factory``: dedicated clusters (fault injection, special quotas).
- ``client`` / ``admin``: ``protocol.client.Client`` on the module's cluster.
- ``EventTap``: a SUB socket on the gateway's event hub collecting events.
- ``require_tool`` / ``require_root`` / ``@pytest.mark.tools(...)``: a test that
  needs a Debian tool (qemu-io, nbdinfo, mkfs.xfs ...) or root skips on a laptop
  without it, and FAILS under ``CI=true``, where .ci/run provides every one.
- ``EventRecorder``: the in-memory publisher of the tests that need no hub (flows
  driven directly): every event a flow or actor emits, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sysconfig
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import pytest
import zmq
import zmq.asyncio

from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.runtime.cluster import Cluster, with_quota_defaults
from cinderblock.actors.runtime.config import (
    PORTS_ENV,
    ClusterConfig,
    NodeConfig,
    embedded,
    port_range,
    rest_url,
    with_rest_fronts,
)
from cinderblock.actors.runtime.keyring import add_user, list_users, secret_key_file
from cinderblock.bench.netcut import socket_inodes
from cinderblock.bench.up_cluster import own_environment
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.codec import unpack
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.keys import client_keys, curve_client
from tests import cli_zygote


def _ports_of_this_worker() -> None:
    """Under pytest-xdist (pyproject.toml runs two workers), each worker's clusters
    take their ports from a slice of the range of its own: a port is picked free and
    bound by its actor a moment later, and the other worker must not pick it between
    (its processes, ``up`` and the benchmarks, inherit the variable)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    index, count = int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    low, high = port_range()
    span = (high - low) // count
    os.environ[PORTS_ENV] = f"{low + index * span}-{low + (index + 1) * span - 1}"


_ports_of_this_worker()

GIB = 1 << 30
E2E_HEARTBEAT_S = 0.25  # quicker first events for the event taps; nothing else depends on it
_DATA_DIRS: list[Path] = []


def _installed_command() -> str:
    """The ``cinderblock`` script pip installed beside this interpreter (a pyenv shim
    for it may not exist yet on a fresh machine), else whatever PATH finds."""
    script = Path(sysconfig.get_path("scripts")) / "cinderblock"
    return str(script) if script.exists() else "cinderblock"


CINDERBLOCK = _installed_command()


# ---- tools and privileges ------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """What a test does when the machine lacks what it needs: skip on a laptop; fail
    under CI=true, where a skip would hide a test that never ran."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the CI machine must provide it)", pytrace=False)
    pytest.skip(reason)


def require_tool(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} on PATH")


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"needs root to {why}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tools(*names): the test runs these Debian tools (see require_tool)")


@pytest.fixture(autouse=True)
def _required_tools(request: pytest.FixtureRequest) -> None:
    for mark in request.node.iter_markers("tools"):
        require_tool(*mark.args)


# ---- clusters ----------------------------------------------------------------
class E2ECluster:
    """A running cluster and what tests want to know about it."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cfg: ClusterConfig = cluster.cfg

    @property
    def gateway(self) -> str:
        return self.cfg.gateway

    def node_dir(self, host: str) -> Path:
        """A node's directory, from its host name or its ``host@backend`` id."""
        return self.cfg.path("nodes", host.partition("@")[0])

    def node_files(self) -> dict[str, set[str]]:
        """Every file (volumes, temporaries) in the directory of every node that keeps
        files (a ``null`` node keeps its volumes in memory)."""
        out: dict[str, set[str]] = {}
        for node in self.cfg.nodes:
            if node.backend != "file":
                continue
            d = self.node_dir(node.host)
            out[node.host] = {p.name for p in d.iterdir()} if d.exists() else set()
        return out

    def all_files(self) -> set[str]:
        return {f"{h}/{name}" for h, names in self.node_files().items() for name in names}

    def volume_file(self, host: str, volume_id: str) -> Path:
        return self.node_dir(host) / f"volume-{volume_id}"

    @property
    def rest_url(self) -> str:
        """The first REST front's Cinder endpoint (``http://127.0.0.1:PORT/v3``)."""
        assert self.cfg.rest, "start the cluster with make_config(rest_fronts=1)"
        return rest_url(self.cfg.rest[0], bool(self.cfg.rest_certfile))

    def user_key(self, project: str = "demo", admin: bool = False) -> Path | None:
        return user_key(self.cfg, project, admin)

    def client(self, project: str = "demo", admin: bool = False, timeout: float = 20.0) -> Client:
        return Client(self.gateway, project=project, admin=admin, timeout=timeout,
                      key=self.user_key(project, admin))


def user_key(cfg: ClusterConfig, project: str = "demo", admin: bool = False) -> Path | None:
    """The key of a user of ``project`` (a member, or an admin): made and listed in
    the users file on first use (the gateway applies it at its next handshake);
    None when the cluster runs without security."""
    if not cfg.security:
        return None
    data_dir = Path(cfg.data_dir)
    name = {("admin", True): "admin", ("demo", False): "demo"}.get(
        (project, admin), f"{project}.admin" if admin else project)
    if name not in {u.name for u in list_users(data_dir)}:
        add_user(data_dir, name, project, ("admin",) if admin else ("member",))
    return secret_key_file(data_dir, name)


def make_config(
    data_dir: Path,
    *,
    nodes: int = 2,
    backend: str = "file",
    capacity_gb: float | None = None,
    node_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    quota: Mapping[str, int] | None = None,
    heartbeat_s: float = E2E_HEARTBEAT_S,
    rest_fronts: int = 0,
    **cluster: Any,
) -> ClusterConfig:
    """The embedded config, with per-node changes (``{"node-1": {"faults": (...)}}``)
    and any other ``ClusterConfig`` field given by name (``reconcile_after_s=1.0``)."""
    cfg = embedded(data_dir, backend=backend, nodes=nodes, capacity_gb=capacity_gb)
    overrides = node_overrides or {}
    node_cfgs: tuple[NodeConfig, ...] = tuple(
        replace(n, **overrides.get(n.host, {})) for n in cfg.nodes
    )
    cfg = replace(cfg, nodes=node_cfgs, heartbeat_s=heartbeat_s, **cluster)
    if quota:
        cfg = with_quota_defaults(cfg, **quota)
    if rest_fronts:
        cfg = with_rest_fronts(cfg, rest_fronts)
    return cfg


def self_signed(directory: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``address`` (its own CA) and its key, made by openssl, in
    ``directory``: what an operator would give a REST front (``rest_certfile``)."""
    cert, key = directory / "rest-cert.pem", directory / "rest-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-noenc", "-days", "2", "-subj",
                    f"/CN={address}", "-addext", f"subjectAltName=IP:{address}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@contextlib.asynccontextmanager
async def open_gateway_store(path: Path) -> AsyncIterator[GatewayStore]:
    """A real gateway store (SQLite) with its group-commit flusher running, for
    tests that drive the gateway's flows without processes; closed afterwards."""
    store = GatewayStore(path, "NORMAL")
    await store.open()
    flusher = asyncio.create_task(store.db.flusher())
    try:
        yield store
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await store.close()


@contextlib.contextmanager
def running_cluster(cfg: ClusterConfig) -> Iterator[E2ECluster]:
    """Start a cluster; always stop exactly its processes and check they exited."""
    _DATA_DIRS.append(Path(cfg.data_dir))
    cluster = Cluster(cfg)
    cluster.start(timeout=30.0)  # stops what it spawned if it fails
    procs = list(cluster.procs.values())
    try:
        yield E2ECluster(cluster)
    finally:
        cluster.stop()
        alive = [p.pid for p in procs if p.poll() is None]
        assert not alive, f"actor processes still running after stop: {alive}"


def actor_pids_for(data_dir: Path) -> list[int]:
    """PIDs of actor processes whose command line names ``data_dir`` (via /proc)."""
    needle = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"cinderblock" in cmdline and needle in cmdline and b"actor" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_actor_left_behind() -> Iterator[None]:
    yield
    cli_zygote.stop_all()
    leftovers = {str(d): pids for d in _DATA_DIRS if (pids := actor_pids_for(d))}
    assert not leftovers, f"actor processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    """One two-node file-backend cluster shared by the tests of a module."""
    with running_cluster(make_config(tmp_path_factory.mktemp("cluster"))) as c:
        yield c


@pytest.fixture(scope="module")
def cluster_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., E2ECluster]]:
    """Start dedicated clusters (``make_config`` keywords); all stop with the module."""
    stack = contextlib.ExitStack()

    def start(**kwargs: Any) -> E2ECluster:
        cfg = make_config(tmp_path_factory.mktemp("cluster"), **kwargs)
        return stack.enter_context(running_cluster(cfg))

    with stack:
        yield start


@pytest.fixture
def project() -> str:
    """A project of this test's own, so quotas and lists do not mix between tests."""
    return f"project-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(cluster: E2ECluster, project: str) -> AsyncIterator[Client]:
    async with cluster.client(project) as c:
        yield c


@pytest.fixture
async def admin(cluster: E2ECluster) -> AsyncIterator[Client]:
    async with cluster.client("admin", admin=True) as c:
        yield c


# ---- events --------------------------------------------------------------------
class EventRecorder:
    """An event publisher that keeps every event (``listening`` as a subscriber
    would set it: a flow builds no events while it is False)."""

    def __init__(self, actor: str = "", listening: bool = True) -> None:
        self.actor = actor
        self.listening = listening
        self.events: list[dict[str, Any]] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, "actor": self.actor, **fields})

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def sequence(self) -> list[tuple[str, str, str]]:
        """(kind, task or "", state) of every flow and task event."""
        return [(e["kind"], e.get("task", ""), e["state"]) for e in self.events
                if e["kind"] in ("flow", "task")]

    def tasks(self, flow: str) -> list[tuple[str, str]]:
        """(task, state) of one flow's task events."""
        return [(e["task"], e["state"]) for e in self.events
                if e["kind"] == "task" and e["flow"] == flow]


class EventTap:
    """Collects every event published on the gateway's hub (``[topic, [event, ...]]``),
    as the cluster's admin (every project's events and the cluster's own).

    Actors only build events while someone subscribes, and each learns of the
    subscription through the hub on its own (PUB/SUB slow joiner), so
    ``__aenter__`` returns only once a heartbeat came from every actor of the
    cluster: from then on none of them misses an event.
    """

    def __init__(self, cluster: E2ECluster) -> None:
        self.endpoint = cluster.cfg.events
        self.keys = client_keys(cluster.user_key("admin", admin=True))
        self.actors = {"gateway", "quota", "scheduler", *(n.host for n in cluster.cfg.nodes)}
        self.events: list[dict[str, Any]] = []
        self._zctx = zmq.asyncio.Context()
        self._sock = self._zctx.socket(zmq.SUB)
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventTap:
        self._sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            curve_client(self._sock, *self.keys)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sock.connect(self.endpoint)
        self._reader = asyncio.create_task(self._read())
        try:
            await self.wait_until(lambda evs: self.actors <= self._beating(evs), timeout=10.0)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)  # no socket left behind
            if isinstance(exc, TimeoutError):
                silent = sorted(self.actors - self._beating(self.events))
                raise TimeoutError(f"no heartbeat within 10 s from {silent} "
                                   f"({len(self.events)} events heard)") from exc
            raise
        return self

    @staticmethod
    def _beating(events: list[dict[str, Any]]) -> set[str]:
        return {e["actor"] for e in events if e["kind"] == "heartbeat"}

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._sock.close(linger=0)
        self._zctx.term()

    async def _read(self) -> None:
        while True:
            topic, payload = await self._sock.recv_multipart()
            assert topic.endswith(b"/"), topic
            self.events.extend(unpack(payload))
            self._changed.set()

    async def wait_until(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while not done(self.events):
                self._changed.clear()
                await self._changed.wait()
        return self.events

    def of_volume(self, volume_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("volume_id") == volume_id]

    async def caught_up(self, timeout: float = 10.0) -> None:
        """Until every actor's events up to now have arrived: each actor publishes in
        order, so a heartbeat from each, newer than every event seen so far, means
        nothing they emitted before now is still on its way."""
        start = len(self.events)
        await self.wait_until(lambda evs: self.actors <= self._beating(evs[start:]), timeout)


def flow_events(events: list[dict[str, Any]], flow: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] in ("flow", "task") and e.get("flow") == flow]


def flow_states(events: list[dict[str, Any]]) -> list[str]:
    return [e["state"] for e in events if e["kind"] == "flow"]


def task_states(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["task"], e["state"]) for e in events if e["kind"] == "task"]


# ---- processes and their connections -----------------------------------------------
def tcp_connections(pid: int) -> set[tuple[str, str]]:
    """(local, remote) address pairs of the TCP connections process ``pid`` holds."""
    inodes = socket_inodes(pid)
    return {(local, remote) for local, remote, inode in _tcp_table() if inode in inodes}


def _tcp_table() -> list[tuple[str, str, str]]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                rows.append((fields[1], fields[2], fields[9]))  # local, remote, inode
    return rows


async def peers_let_go(connections: set[tuple[str, str]], timeout: float = 10.0) -> None:
    """Until no live process holds the other end of these connections (a process
    that went away: its peers' ZeroMQ sockets noticed and dropped it)."""
    def held() -> bool:
        ends = {(remote, local) for local, remote in connections}
        return any((local, remote) in ends and inode != "0"
                   for local, remote, inode in _tcp_table())
    await eventually(lambda: not held(), timeout=timeout)


# ---- waiting and the CLI ---------------------------------------------------------
async def eventually(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Retry ``check`` (sync or async) until it returns a truthy value."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(every)


async def every_actor_answers(cluster: E2ECluster, admin: Client, timeout: float = 30.0
                              ) -> None:
    """Until every actor answers the gateway (its ``cluster.stats``: the nodes are
    connected to it again) and the scheduler has every backend up; then two heartbeats
    more, so the gateway has pinged quota and the scheduler since (after a restart)."""
    wanted = {"gateway", "quota", "scheduler", *(n.host for n in cluster.cfg.nodes)}

    async def answering() -> bool:
        try:
            stats = await admin.cluster_stats(timeout=1.0)
            backends = await admin.list_backends()
        except CinderblockError:
            return False
        return (not stats.missing and wanted <= {s.actor for s in stats.actors}
                and len(backends) == len(cluster.cfg.nodes) and all(b.up for b in backends))

    await eventually(answering, timeout=timeout, every=0.1)
    await asyncio.sleep(2 * cluster.cfg.heartbeat_s)


def run_cli(*args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cinderblock`` command; never raises on a non-zero exit. A
    fork of a process that has imported it (``cli_zygote``: the same entry point, argv
    and environment, 0.2 s less a command); ``cinderblock up`` and the commands a test
    signals are started with ``subprocess`` instead, as a user starts them."""
    full_env = own_environment()
    full_env.update(env or {})
    return cli_zygote.run_script([CINDERBLOCK, *args], timeout, full_env)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str  # empty when merged into stdout


async def run_process(*argv: str, timeout: float = 60.0, merge_stderr: bool = False,
                      ) -> Completed:
    """Run an outside tool (qemu-io, nbdinfo...) without blocking the loop (the test's
    own servers keep serving). A tool still running at the deadline is killed."""
    err = asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        async with asyncio.timeout(timeout):
            out, errors = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Completed(proc.returncode, out.decode(errors="replace"),
                     (errors or b"").decode(errors="replace"))


async def run_tool(*argv: str, timeout: float = 60.0) -> tuple[int, str]:
    """``run_process`` with stderr merged into stdout: the exit status and the output."""
    done = await run_process(*argv, timeout=timeout, merge_stderr=True)
    return done.returncode, done.stdout


def query_plan(conn: sqlite3.Connection, sql: str, *params: object) -> str:
    """What SQLite's EXPLAIN QUERY PLAN says of ``sql``: the indexes a store's read goes
    through (a test of plans, not of timings)."""
    return str(conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())


def listing_plan(conn: sqlite3.Connection, statement: tuple[str, list[Any]]) -> str:
    """``query_plan`` of a listing statement and its parameters (``newest_first_sql``)."""
    return query_plan(conn, statement[0], *statement[1])


# A read that holds SQLite a second or more (10,000,000 rows of a recursive CTE): what a
# long read aside is, in tests of what may or may not wait for one.
SLOW_COUNT = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 10000000) SELECT count(*) FROM c")  # a second or more of SQLite

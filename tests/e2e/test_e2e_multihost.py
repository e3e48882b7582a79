"""Storage nodes on other hosts: each node in a network namespace of its own.

The test builds a small private network and removes it afterwards, even on failure:
a bridge in this (the controller's) namespace holding the first address of a /24
that no interface or route of the machine overlaps, and per storage host a network
namespace joined to the bridge by a veth pair, with the next addresses. The gateway,
quota and the scheduler listen on the bridge's address; every node runs as
``cinderblock node --config cluster.toml --host NAME`` inside its namespace, keeps
its state under its own ``data_dir`` and connects out. Nothing talks to an address
the test did not make.

Cutting a node's link (``ip link set <its veth> down``) must mark it down within 5 s
and fail the create it holds (``stall:create_volume`` keeps one in its hands), and
restoring the link must bring it back. Needs root and iproute2: the tests skip where
namespaces cannot be made, and fail instead under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import SERVICE_ACTORS, free_port, load
from cinderblock.protocol.client.client import Client, SyncClient
from cinderblock.protocol.client.status_waits import VolumeError
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import NotFound
from cinderblock.protocol.wire.keys import ensure_keys, load_public, make_key
from tests.conftest import E2ECluster, EventTap, eventually, unavailable

DOWN_WITHIN_S = 5.0
BACK_WITHIN_S = 10.0  # after a cut, TCP's retransmission backoff decides (docs/operations.md)
ZONES = {"node-1": "nova", "node-2": "nova", "node-3": "rack-3"}
STALLING = "node-3"  # the one storage host of rack-3; it never finishes a create


# ---- the private network --------------------------------------------------------------
@dataclass
class Lab:
    tag: str
    subnet: ipaddress.IPv4Network
    bridge: str
    controller: str  # the bridge's address: where the service actors listen
    namespaces: dict[str, str] = field(default_factory=dict)  # storage host -> netns
    addresses: dict[str, str] = field(default_factory=dict)  # storage host -> its address
    links: dict[str, str] = field(default_factory=dict)  # storage host -> its veth, our side

    def names(self) -> list[str]:
        return [self.bridge, *self.links.values()]


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def ip_output(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network an address or a route of this machine covers."""
    used = []
    for line in ip_output("-4", "-o", "addr", "show").splitlines():
        used.append(ipaddress.ip_network(line.split()[3], strict=False))
    kinds = {"local", "broadcast", "unicast", "multicast", "anycast", "blackhole",
             "unreachable", "prohibit", "throw", "nat"}
    for line in ip_output("-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        dst = words[1] if words[0] in kinds else words[0]
        if dst != "default":
            used.append(ipaddress.ip_network(dst, strict=False))
    return [n for n in used if isinstance(n, ipaddress.IPv4Network)]


def private_subnet() -> ipaddress.IPv4Network:
    used = networks_in_use()
    for _ in range(100):
        candidate = ipaddress.IPv4Network(
            f"10.{200 + secrets.randbelow(55)}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(n) for n in used):
            return candidate
    raise RuntimeError("no free 10.x.y.0/24 to build the test network in")


@contextlib.contextmanager
def private_network(hosts: list[str]) -> Iterator[Lab]:
    if shutil.which("ip") is None:
        unavailable("needs ip (iproute2)")
    if os.geteuid() != 0:
        unavailable("needs root to make network namespaces")
    tag = secrets.token_hex(3)
    subnet = private_subnet()
    addresses = list(subnet.hosts())
    lab = Lab(tag, subnet, f"cb{tag}br", str(addresses[0]))
    try:
        build(lab, hosts, addresses)
    except RuntimeError as exc:
        tear_down(lab)
        unavailable(f"cannot make network namespaces: {exc}")
    try:
        yield lab
    finally:
        left = tear_down(lab)
        assert not left, f"test network left behind: {left}"


def build(lab: Lab, hosts: list[str], addresses: list[ipaddress.IPv4Address]) -> None:
    ip("link", "add", lab.bridge, "type", "bridge")
    ip("addr", "add", f"{lab.controller}/{lab.subnet.prefixlen}", "dev", lab.bridge)
    ip("link", "set", lab.bridge, "up")
    for i, host in enumerate(hosts, start=1):
        ns, ours, theirs = f"cinderblock-{lab.tag}-{host}", f"cb{lab.tag}h{i}", f"cb{lab.tag}n{i}"
        address = str(addresses[10 + i])
        ip("netns", "add", ns)
        lab.namespaces[host] = ns
        ip("link", "add", ours, "type", "veth", "peer", "name", theirs)
        lab.links[host] = ours
        ip("link", "set", theirs, "netns", ns)
        ip("link", "set", ours, "master", lab.bridge)
        ip("link", "set", ours, "up")
        ip("-n", ns, "addr", "add", f"{address}/{lab.subnet.prefixlen}", "dev", theirs)
        ip("-n", ns, "link", "set", theirs, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        lab.addresses[host] = address


def tear_down(lab: Lab) -> list[str]:
    """Remove everything the lab made; what is still there afterwards."""
    for ns in lab.namespaces.values():
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    for name in lab.names():
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    links = ip_output("-o", "link", "show")
    namespaces = ip_output("netns", "list")
    return [n for n in lab.names() if f" {n}:" in links or f" {n}@" in links] + [
        ns for ns in lab.namespaces.values() if ns in namespaces]


# ---- the cluster over it ------------------------------------------------------------
def cluster_toml(controller: str, addresses: dict[str, str], controller_dir: Path,
                 host_dirs: dict[str, Path]) -> str:
    """The cluster file an operator would write: the service actors on ``controller``,
    each storage host at its address with its own data directory; every actor's key
    pair made where it runs (the services' in the controller's data directory, each
    node's in its own), and every public key in the file."""
    def endpoint() -> str:
        return f'"tcp://{controller}:{free_port(controller)}"'

    services = ensure_public_keys(controller_dir, SERVICE_ACTORS)
    lines = [
        f'data_dir = "{controller_dir}"',
        *(f"{name} = {endpoint()}" for name in
          ("gateway", "events_in", "events", "quota", "scheduler", "stats")),
        "reconcile_every_s = 0  # this test watches liveness, not the reconciler",
        "[volume_types.__DEFAULT__]",
        *(f'[actors.{name}]\npublic_key = "{key}"' for name, key in services.items()),
    ]
    for host, address in addresses.items():
        lines += [
            "[[nodes]]",
            f'host = "{host}"',
            f'data_dir = "{host_dirs[host]}"',
            f'availability_zone = "{ZONES[host]}"',
            "capacity_gb = 100",
            f'nbd_address = "{address}"',
            f'public_key = "{ensure_public_keys(host_dirs[host], (host,))[host]}"',
        ]
        if host == STALLING:
            lines.append('faults = ["stall:create_volume"]')
    return "\n".join(lines) + "\n"


def ensure_public_keys(data_dir: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Make the key pairs an operator makes on a host (``cinderblock keys make``)."""
    ensure_keys(data_dir / "keys", names)
    return {n: load_public(data_dir / "keys" / f"{n}.key").decode() for n in names}


@contextlib.contextmanager
def nodes_on_their_own_hosts(config: Path, run_on: dict[str, list[str]]) -> Iterator[E2ECluster]:
    """The service actors from ``config`` through ``Cluster``; each storage node as
    ``cinderblock node`` behind its host's command prefix (``ip netns exec NS``), handed
    to the cluster, which stops every process it holds, even on failure."""
    cluster = Cluster(load(config))
    (cluster.data_dir / "logs").mkdir(parents=True)
    try:
        for host, prefix in run_on.items():
            log = open(cluster.data_dir / "logs" / f"{host}.log", "ab")  # noqa: SIM115
            cluster.procs[host] = subprocess.Popen(
                [*prefix, sys.executable, "-m", "cinderblock", "node", "--config", str(config),
                 "--host", host], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
        cluster.start(timeout=60.0)  # the service actors; it returns once every node joined
        yield E2ECluster(cluster)
    finally:
        procs = list(cluster.procs.values())
        cluster.stop()
        assert all(p.poll() is not None for p in procs), "actor processes left running"


@dataclass
class MultiHost:
    lab: Lab
    cluster: E2ECluster
    config: Path
    host_dirs: dict[str, Path]

    def client(self, project: str, admin: bool = False) -> Client:
        return self.cluster.client(project, admin=admin, timeout=15.0)


@pytest.fixture(scope="module")
def multihost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHost]:
    with private_network(list(ZONES)) as lab:
        root = tmp_path_factory.mktemp("multihost")
        host_dirs = {host: root / "hosts" / host for host in ZONES}
        config = root / "cluster.toml"
        config.write_text(cluster_toml(lab.controller, lab.addresses, root / "controller",
                                       host_dirs))
        netns = {host: ["ip", "netns", "exec", ns] for host, ns in lab.namespaces.items()}
        with nodes_on_their_own_hosts(config, netns) as cluster:
            yield MultiHost(lab, cluster, config, host_dirs)


async def backend_up(admin: Client, backend: str) -> bool | None:
    for b in await admin.list_backends():
        if b.backend == backend:
            return b.up
    return None


async def is_up(admin: Client, backend: str, up: bool) -> bool:
    return await backend_up(admin, backend) is up


# ---- the tests ----------------------------------------------------------------------
def net_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


async def test_nodes_on_their_own_hosts_join_and_creates_spread_over_them(
    multihost: MultiHost,
) -> None:
    m = multihost
    procs = m.cluster.cluster.procs
    ours = net_namespace(os.getpid())
    assert all(net_namespace(procs[h].pid) != ours for h in ZONES)
    assert net_namespace(procs["gateway"].pid) == ours
    async with m.client("spread") as client, m.client("admin", admin=True) as admin:
        backends = {b.backend: b for b in await admin.list_backends()}
        assert {f"{h}@file" for h in ZONES} <= {name for name, b in backends.items() if b.up}
        volumes = [await client.create_volume(1, name=f"spread-{i}", availability_zone="nova",
                                              wait=True) for i in range(6)]
    hosts = {v.host for v in volumes}
    assert hosts == {"node-1@file", "node-2@file"}
    for vol in volumes:
        host = (vol.host or "").partition("@")[0]
        assert (m.host_dirs[host] / "nodes" / host / f"volume-{vol.id}").exists()
    assert not list(m.cluster.cfg.path().glob("nodes/*/volume-*"))  # not on the controller


async def test_a_volume_migrates_between_hosts_over_their_network(
    multihost: MultiHost,
) -> None:
    """The destination host copies the volume from the source host's NBD export at its
    ``nbd_address``, across the private network; the bytes arrive, the old file goes."""
    m = multihost
    async with m.client("moving") as client, m.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, availability_zone="nova", wait=True)
        source = (vol.host or "").partition("@")[0]
        target = "node-2" if source == "node-1" else "node-1"
        old_file = m.host_dirs[source] / "nodes" / source / f"volume-{vol.id}"
        with old_file.open("r+b") as f:
            f.seek(300 << 20)
            f.write(b"crossed the wire")
        moved = await admin.migrate_volume(vol.id, f"{target}@file", wait=True, timeout=60)
        assert (moved.host, moved.status, moved.migration_status) == (
            f"{target}@file", "available", "success")
        new_file = m.host_dirs[target] / "nodes" / target / f"volume-{vol.id}"
        with new_file.open("rb") as f:
            f.seek(300 << 20)
            assert f.read(16) == b"crossed the wire"
        await eventually(lambda: not old_file.exists(), timeout=10)
        await client.delete_volume(vol.id, wait=True)
        assert not new_file.exists()


def test_a_node_started_with_cinderblock_node_keeps_its_state_in_its_own_data_dir(
    tmp_path: Path,
) -> None:
    """The same start on loopback, where no namespace is needed."""
    host_dirs = {"node-1": tmp_path / "storage-host"}
    config = tmp_path / "cluster.toml"
    config.write_text(cluster_toml("127.0.0.1", {"node-1": "127.0.0.1"}, tmp_path / "controller",
                                   host_dirs))
    with nodes_on_their_own_hosts(config, {"node-1": []}) as c, \
            SyncClient(c.gateway, project="own-dir", key=c.user_key("own-dir")) as client:
        vol = client.create_volume(1, availability_zone="nova", wait=True)
        assert vol.host == "node-1@file"
        assert (host_dirs["node-1"] / "nodes" / "node-1" / f"volume-{vol.id}").exists()
        assert (host_dirs["node-1"] / "nodes" / "node-1.exports.json").exists()
        assert not (tmp_path / "controller" / "nodes").exists()


@contextlib.contextmanager
def link_cut(lab: Lab, host: str) -> Iterator[None]:
    ip("link", "set", lab.links[host], "down")
    try:
        yield
    finally:
        ip("link", "set", lab.links[host], "up")


async def test_a_cut_link_marks_its_node_down_within_5s_fails_its_create_and_it_comes_back(
    multihost: MultiHost,
) -> None:
    m = multihost
    backend = f"{STALLING}@file"
    async with m.client("cut") as client, m.client("admin", admin=True) as admin, \
            EventTap(m.cluster) as tap:
        held = await client.create_volume(1, name="in-hand", availability_zone="rack-3")
        await tap.wait_until(lambda events: any(  # it is in node-3's hands, stalled
            e["kind"] == "notify" and e["event"] == "volume.create.start"
            for e in tap.of_volume(held.id)))
        with link_cut(m.lab, STALLING):
            cut = time.monotonic()
            await eventually(lambda: is_up(admin, backend, False), timeout=DOWN_WITHIN_S)
            down_after = time.monotonic() - cut
            with pytest.raises(VolumeError, match=f"{backend} stopped reporting") as failed:
                await client.wait_for_status(held.id, "available", timeout=5)
            assert failed.value.volume.status == "error"
            with pytest.raises(VolumeError, match="No valid backend"):  # no new work for it
                await client.create_volume(1, availability_zone="rack-3", wait=True, timeout=10)
            elsewhere = await client.create_volume(1, availability_zone="nova", wait=True)
            assert elsewhere.host in ("node-1@file", "node-2@file")
        restored = time.monotonic()
        await eventually(lambda: is_up(admin, backend, True), timeout=BACK_WITHIN_S, every=0.1)
        back_after = time.monotonic() - restored
        assert (await client.show_volume(held.id)).status == "error"
    assert down_after < DOWN_WITHIN_S
    print(f"node down {down_after:.2f}s after the cut, up {back_after:.2f}s after the restore")


async def test_a_node_with_a_wrong_key_never_appears_in_backend_list(
    multihost: MultiHost, tmp_path: Path,
) -> None:
    """A storage host whose key the cluster does not know (the file the services read
    does not list it) runs ``cinderblock node`` next to node-3: its handshakes are
    refused, so it never joins."""
    m = multihost
    rogue_dir = tmp_path / "rogue"
    key = make_key(rogue_dir / "keys", "node-4")
    config = tmp_path / "cluster.toml"
    config.write_text(m.config.read_text() + (
        f'[[nodes]]\nhost = "node-4"\ndata_dir = "{rogue_dir}"\n'
        f'public_key = "{key.public.decode()}"\n'))
    proc = subprocess.Popen(
        ["ip", "netns", "exec", m.lab.namespaces[STALLING], sys.executable, "-m",
         "cinderblock", "node", "--config", str(config), "--host", "node-4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        await asyncio.sleep(3.0)
        assert proc.poll() is None  # it runs and keeps trying
        async with m.client("admin", admin=True) as admin:
            assert "node-4@file" not in {b.backend for b in await admin.list_backends()}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.tools("ss")
async def test_a_delete_lost_when_tcp_gave_up_on_a_cut_link_is_sent_again_once_it_is_back(
    multihost: MultiHost,
) -> None:
    """A delete is cast while a node's link is cut: its bytes wait in the gateway's
    socket, retransmitted into the void. The cut lasts until TCP gives up (``ss -K`` on
    this side, as its retries running out would): they are lost, and once the link is
    back the node's process comes back on a new connection under its old routing id.
    With no reconciler rounds here, only the gateway's look at a node heard from again
    (``Gateway._node_back``: its records mended as ``work.cleanup`` would) deletes it."""
    m = multihost
    async with m.client("cut-delete") as client:
        vol, host = await volume_in_nova(client)
        with link_cut(m.lab, host):
            deleting = await client.delete_volume(vol.id)
            assert deleting.status == "deleting"
            await asyncio.sleep(3.0)  # silent past stale_after_s: judged so by the gateway
            tcp_gives_up(m.lab.addresses[host])
            assert (await client.show_volume(vol.id)).status == "deleting"
        await eventually(lambda: _gone(client, vol.id), timeout=BACK_WITHIN_S + 5.0, every=0.2)


@pytest.mark.tools("ss")
async def test_a_node_whose_own_side_gave_up_a_cut_link_dials_again_and_is_heard(
    multihost: MultiHost,
) -> None:
    """The other way round: the node's side of its connections gives up while its link
    is cut (``ss -K`` in its namespace; the resets are lost on the cut link) and the
    controller's side, with nothing to send, does not. Back, the node connects again
    under its routing ids, which the gateway's and the scheduler's ROUTERs still hold
    for the old connections, so neither takes the new one for the node
    (``actors.runtime.redial``): on the code before, nothing it sent was heard again,
    and a delete cast to it was lost. Its hellos unanswered on a connection made since,
    it dials again under a new routing id of its process: the gateway hears it, sends
    the delete again (``Gateway._node_back``), and the scheduler places creates on it
    (one it cast into the old connection fails at once, saying so: ``_fence_held``)."""
    m = multihost
    async with m.client("cut-node-side") as client:
        vol, host = await volume_in_nova(client)
        with link_cut(m.lab, host):
            await asyncio.sleep(3.0)  # silent past stale_after_s: judged so by the gateway
            tcp_gives_up(m.lab.controller, "ip", "netns", "exec", m.lab.namespaces[host])
        deleting = await client.delete_volume(vol.id)
        assert deleting.status == "deleting"
        await eventually(lambda: _gone(client, vol.id), timeout=BACK_WITHIN_S + 15.0,
                         every=0.2)
        hosts = []
        for _ in range(6):
            try:
                made = await client.create_volume(1, availability_zone="nova", wait=True,
                                                  timeout=15)
            except VolumeError as exc:  # cast while the scheduler's route was the old one
                assert "was lost with storage node" in str(exc), exc
                continue
            hosts.append(made.host)
            if made.host == vol.host:
                break
        assert vol.host in hosts  # the scheduler reaches it again
    async with m.client("admin", admin=True) as admin:
        stats = await admin.cluster_stats(timeout=10.0)
    dials = next(a.details["dialled_again"] for a in stats.actors if a.actor == host)
    assert dials >= 1  # it was the node's dial that did it


async def volume_in_nova(client: Client) -> tuple[Volume, str]:
    """A volume made in zone nova (node-1 or node-2), and its node's host name."""
    vol = await client.create_volume(1, availability_zone="nova", wait=True)
    assert vol.host is not None
    return vol, vol.host.partition("@")[0]


def tcp_gives_up(dst: str, *where: str) -> None:
    """The TCP connections to ``dst`` broken, as TCP's retries running out would
    (``ss -K``), here or behind the command prefix ``where``."""
    subprocess.run([*where, "ss", "-K", "-t", "dst", dst], check=True,
                   capture_output=True, timeout=10)


async def _gone(client: Client, volume_id: str) -> bool:
    try:
        await client.show_volume(volume_id)
    except NotFound:
        return True
    return False

"""End-to-end create throughput: volumes per second from request to ``available``.

    python -m cinderblock.bench.throughput [--volumes N] [--concurrency C]
                                           [--backend null|file] [--front native|rest]
                                           [--json]

Starts a real cluster (gateway, quota, scheduler, 2 storage nodes, each its own
process) in a temporary directory, raises the quota, and creates N volumes
through the client library with C requests in flight, each waiting for its
volume to become ``available`` (the gateway pushes the status; nobody polls).
It reports creates/s, p50/p99 latency from request to ``available``, and CPU
milliseconds per volume summed over every actor process (from /proc, the benchmark
client excluded), and each actor's share of it (``cpu_ms_per_volume_by_actor``, the
measured pass only; ``cpu_s_by_actor`` is each process's whole life, start
included). With ``--events`` a subscriber (a process of its own, as a dashboard is)
reads and decodes every event the actors publish during the run, as a dashboard
would (actors build no events while nobody subscribes); its CPU is reported apart
(``subscriber_cpu_ms_per_volume``). In the same run it measures this machine's raw
ceiling for the same shape of work (``bench.ceiling``: pipelined msgpack
request-reply through a chain of ROUTER/DEALER processes, as many messages per
request as a create) and reports ``ratio = creates_per_s / ceiling_rps``; and the
same chain batched as the actors batch (one message per peer per wake-up:
``ceiling_batched_rps``, ``ratio_batched``), beside it, not instead of it.

``--front rest`` also starts a REST front (Cinder's API v3) and, in the same run
and cluster after the native pass, creates N more volumes with ``POST /v3/volumes``
over keep-alive HTTP (C in flight), each followed to ``available`` by the client
library's push (as the native pass is); ``rest`` in the answer has its creates/s,
latencies and CPU per create (every actor plus the front), and ``rest_cpu_ratio``
divides that CPU by the native pass's.

Security is on, as everywhere (CURVE on every socket, identities from keys);
``--security off`` runs the cluster without it, the only place that switch is
used, and ``--compare-security`` runs both in one go and reports each and the
cost (``security_cost``: on vs off, creates/s and CPU per volume).

The temporary directory (the actors' SQLite files, and the ``file`` backend's volumes)
is made under ``TMPDIR`` (``/tmp`` if unset): ``TMPDIR=/mnt/xfs`` measures on that file
system. The answer names it (``data_filesystem``: type, mount point, and for ext4
whether it has a journal). A ``file`` create costs what the file system's file creation
costs, and on ext4 without a journal that grows with the files deleted in the last
minutes, as a run before this one deleted thousands (``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import zmq

from cinderblock.actors.runtime.cluster import Cluster, with_quota_defaults
from cinderblock.actors.runtime.config import embedded, rest_url, with_rest_fronts
from cinderblock.actors.runtime.keyring import add_user
from cinderblock.bench.ceiling import measure_ceiling
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.codec import unpack
from cinderblock.protocol.wire.keys import client_keys, curve_client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes so far, from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (after pid and comm)
    return total / CLOCK_TICKS


def data_filesystem(path: Path, mounts: str | None = None,
                    sys_fs: Path = Path("/sys/fs")) -> dict[str, Any]:
    """The file system ``path`` is on: the mount of ``mounts`` (``/proc/mounts``) with
    the longest mount point holding it, its type, and for ext4 whether it has a journal
    (``/sys/fs/ext4/DEV/journal_task``: its thread's pid, or ``<none>``; None: not
    known).
    The file backend's creates cost what this file system's creates cost: ext4 without
    a journal looks at every inode deleted in the last minutes before it reuses one
    (``docs/performance.md``, "The file backend's creates are the file system's")."""
    if mounts is None:
        mounts = Path("/proc/mounts").read_text()
    where = os.path.realpath(path)
    best: tuple[str, str, str] = ("", "", "")  # mount point, type, device
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, point, kind = _unescaped(fields[0]), _unescaped(fields[1]), fields[2]
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, kind, device)
    point, kind, device = best
    journal: bool | None = None
    if kind == "ext4" and device.startswith("/"):
        task = sys_fs / "ext4" / os.path.basename(os.path.realpath(device)) / "journal_task"
        try:
            journal = task.read_text().strip() not in ("", "<none>")  # its thread's pid
        except OSError:
            journal = None
    return {"type": kind or "unknown", "mount": point, "journal": journal}


def _unescaped(field: str) -> str:
    """A /proc/mounts field with its octal escapes (``\\040`` for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


async def create_many(endpoint: str, volumes: int, concurrency: int,
                      key: Path | None = None) -> list[float]:
    """Create ``volumes`` volumes, ``concurrency`` at a time; return each latency in s."""
    latencies: list[float] = []
    queue = iter(range(volumes))
    async with Client(endpoint, project="bench", timeout=120.0, key=key) as client:

        async def worker() -> None:
            for _ in queue:
                start = time.perf_counter()
                await client.create_volume(1, wait=True)
                latencies.append(time.perf_counter() - start)

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
    return latencies


async def create_many_rest(url: str, gateway: str, volumes: int,
                           concurrency: int, key: Path | None = None) -> list[float]:
    """``create_many`` through the REST front: POST, then the push to ``available``."""
    import aiohttp

    latencies: list[float] = []
    queue = iter(range(volumes))
    headers = {"X-Auth-Token": "bench:bench", "Content-Type": "application/json"}
    body = json.dumps({"volume": {"size": 1}})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http, \
            Client(gateway, project="bench", timeout=120.0, key=key) as watcher:

        async def worker() -> None:
            for _ in queue:
                start = time.perf_counter()
                async with http.post(f"{url}/volumes", data=body) as reply:
                    created = await reply.json()
                    if reply.status != 202:
                        raise RuntimeError(f"REST create answered {reply.status}: {created}")
                await watcher.wait_for_status(created["volume"]["id"], "available")
                latencies.append(time.perf_counter() - start)

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
    return latencies


def rest_pass(url: str, gateway: str, pids: list[int], rest_pid: int, volumes: int,
              concurrency: int, warmup: int, key: Path | None = None) -> dict[str, Any]:
    asyncio.run(create_many_rest(url, gateway, warmup, concurrency, key))
    cpu0, front0, t0 = cpu_seconds(pids), cpu_seconds([rest_pid]), time.perf_counter()
    latencies = asyncio.run(create_many_rest(url, gateway, volumes, concurrency, key))
    elapsed = time.perf_counter() - t0
    cpu, front = cpu_seconds(pids) - cpu0, cpu_seconds([rest_pid]) - front0
    return {
        "creates_per_s": round(volumes / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "cpu_ms_per_volume": round(cpu * 1000 / volumes, 3),
        "front_cpu_ms_per_volume": round(front * 1000 / volumes, 3),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drain_events(endpoint: str, key: Path | None, ready: Connection, done: Connection) -> None:
    """Subscribe to every event and read it as a dashboard would (each message
    decoded), until told to stop; then report how many events were read."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.SUB)
    keys = client_keys(key)
    if keys is not None:
        curve_client(sock, *keys)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    ready.send(True)
    count = 0
    while not done.poll(0):
        if sock.poll(100):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                count += len(unpack(frames[-1]))
    done.send(count)
    sock.close(linger=0)
    zctx.term()


class EventDrain:
    """A subscriber that reads (and counts) every event, as a dashboard would: a
    process of its own, as a dashboard is another program (a thread in this one
    would take the GIL from the benchmark's client)."""

    def __init__(self, endpoint: str, key: Path | None) -> None:
        self.count = 0
        spawn = multiprocessing.get_context("spawn")
        ready, self._ready = spawn.Pipe()
        self._done, done = spawn.Pipe()
        self._proc = spawn.Process(target=drain_events, args=(endpoint, key, ready, done),
                                   daemon=True)
        self._proc.start()
        if not self._ready.poll(30):
            self._proc.kill()
            self._proc.join()
            raise RuntimeError("the event subscriber did not start")
        self._ready.recv()

    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def close(self) -> None:
        self._done.send(True)
        if self._done.poll(10):
            self.count = self._done.recv()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def run(
    volumes: int, concurrency: int, backend: str, warmup: int, events: bool = False,
    front: str = "native", security: bool = True,
) -> dict[str, Any]:
    result = run_cluster(volumes, concurrency, backend, warmup, events, front, security)
    return with_ceiling(result, concurrency)


def compare_security(volumes: int, concurrency: int, backend: str, warmup: int,
                     events: bool = False, front: str = "native") -> dict[str, Any]:
    """The same run with security on and off, and what it costs."""
    on = run(volumes, concurrency, backend, warmup, events, front, True)
    off = run_cluster(volumes, concurrency, backend, warmup, events, front, False)
    off = {**off, **{k: v for k, v in on.items() if k.startswith("ceiling")},
           "ratio": round(off["creates_per_s"] / on["ceiling_rps"], 3),
           "ratio_batched": round(off["creates_per_s"] / on["ceiling_batched_rps"], 3)}
    return {"security_on": on, "security_off": off, "security_cost": {
        "creates_per_s_on_vs_off": round(on["creates_per_s"] / off["creates_per_s"], 3),
        "cpu_ms_per_volume_added": round(on["cpu_ms_per_volume"] - off["cpu_ms_per_volume"], 3),
        "p99_ms_added": round(on["p99_ms"] - off["p99_ms"], 2),
    }}


def run_cluster(volumes: int, concurrency: int, backend: str, warmup: int, events: bool,
                front: str, security: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cinderblock-bench-") as tmp:
        filesystem = data_filesystem(Path(tmp))
        cfg = embedded(Path(tmp), backend=backend, nodes=2)
        cfg = replace(with_quota_defaults(cfg, volumes=-1, gigabytes=-1), security=security)
        if front == "rest":
            cfg = with_rest_fronts(cfg, 1)
        with Cluster(cfg) as cluster:
            key = None
            if security:
                add_user(Path(tmp), "bench", "bench", ("member",))
                key = cluster.key("bench")
            drain = EventDrain(cfg.events, cluster.key("admin")) if events else None
            pids = list(cluster.pids().values())
            reader = [drain.pid()] if drain is not None else []
            asyncio.run(create_many(cfg.gateway, warmup, concurrency, key))
            by_pid0 = {n: cpu_seconds([pid]) for n, pid in cluster.pids().items()}
            cpu0, t0, client0 = cpu_seconds(pids), time.perf_counter(), time.process_time()
            reader0 = cpu_seconds(reader)
            latencies = asyncio.run(create_many(cfg.gateway, volumes, concurrency, key))
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
            pass_by_actor = {n: round((cpu_seconds([pid]) - by_pid0[n]) * 1000 / volumes, 3)
                             for n, pid in cluster.pids().items() if n in by_pid0}
            client_cpu = time.process_time() - client0
            reader_cpu = cpu_seconds(reader) - reader0
            rest = (rest_pass(rest_url(cfg.rest[0]), cfg.gateway, pids,
                              cluster.pids()["rest-1"], volumes, concurrency, warmup, key)
                    if front == "rest" else None)
            per_actor = {n: round(cpu_seconds([pid]), 2) for n, pid in cluster.pids().items()}
            if drain is not None:
                drain.close()
            events_seen = drain.count if drain is not None else 0
    rate = volumes / elapsed
    return {
        "volumes": volumes,
        "concurrency": concurrency,
        "backend": backend,
        "data_filesystem": filesystem,
        "security": security,
        "creates_per_s": round(rate, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "cpu_ms_per_volume": round(cpu * 1000 / volumes, 3),
        "client_cpu_ms_per_volume": round(client_cpu * 1000 / volumes, 3),
        "subscriber_cpu_ms_per_volume": round(reader_cpu * 1000 / volumes, 3),
        "cpu_s_by_actor": per_actor,
        "cpu_ms_per_volume_by_actor": pass_by_actor,
        "event_subscriber": events,
        "events_received": events_seen,
        **({"front": "rest", "rest": rest,
            "rest_cpu_ratio": round(rest["cpu_ms_per_volume"] * volumes / (cpu * 1000), 2)}
           if rest is not None else {"front": "native"}),
    }


def with_ceiling(result: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The same-run ceilings: ``ratio`` is against today's (one message per envelope,
    the issue's definition), ``ratio_batched`` against the chain that batches as the
    actors do (one message per peer per wake-up)."""
    ceiling = measure_ceiling(hops=4, requests=20_000, window=concurrency)
    batched = measure_ceiling(hops=4, requests=20_000, window=concurrency, batched=True)
    return {
        **result,
        "ceiling_rps": round(ceiling.rps, 1),
        "ceiling_messages_per_request": ceiling.messages_per_request,
        "ceiling_cpu_ms_per_request": round(ceiling.cpu_ms_per_request, 3),
        "ratio": round(result["creates_per_s"] / ceiling.rps, 3),
        "ceiling_batched_rps": round(batched.rps, 1),
        "ceiling_batched_cpu_ms_per_request": round(batched.cpu_ms_per_request, 3),
        "ratio_batched": round(result["creates_per_s"] / batched.rps, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.throughput", description=__doc__)
    p.add_argument("--volumes", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--backend", choices=("null", "file"), default="null")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--events", action="store_true",
                   help="run with a subscriber reading every event, as a dashboard would")
    p.add_argument("--front", choices=("native", "rest"), default="native",
                   help="rest: also create through the REST front, in the same run")
    p.add_argument("--security", choices=("on", "off"), default="on",
                   help="CURVE and keys on every socket (default on; off: to see its cost)")
    p.add_argument("--compare-security", action="store_true",
                   help="run with security on and off, and report both and the cost")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.volumes < 1 or args.concurrency < 1:
        p.error("--volumes and --concurrency must be at least 1")
    if args.compare_security:
        result = compare_security(args.volumes, args.concurrency, args.backend, args.warmup,
                                  args.events, args.front)
    else:
        result = run(args.volumes, args.concurrency, args.backend, args.warmup, args.events,
                     args.front, security=args.security == "on")
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end create throughput: volumes per second from request to ``available``.

    python -m bench.throughput [--volumes N] [--concurrency C] [--backend null|file] [--json]

Starts a real cluster (gateway, quota, scheduler, 2 storage nodes, each its own
process) in a temporary directory, raises the quota, and creates N volumes
through the client library with C requests in flight, each waiting for its
volume to become ``available`` (the gateway pushes the status; nobody polls).
It reports creates/s, p50/p99 latency from request to ``available``, and CPU
milliseconds per volume summed over every actor process (from /proc, the
benchmark client excluded). In the same run it measures this machine's raw
ceiling for the same shape of work (``bench.ceiling``: pipelined msgpack
request-reply through a chain of ROUTER/DEALER processes, as many messages
per request as a create) and reports ``ratio = creates_per_s / ceiling_rps``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.cluster import Cluster, with_quota_defaults
from actors.config import embedded
from bench.ceiling import measure_ceiling
from protocol.client import Client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the given processes so far, from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (after pid and comm)
    return total / CLOCK_TICKS


async def create_many(endpoint: str, volumes: int, concurrency: int) -> list[float]:
    """Create ``volumes`` volumes, ``concurrency`` at a time; return each latency in s."""
    latencies: list[float] = []
    queue = iter(range(volumes))
    async with Client(endpoint, project="bench", timeout=120.0) as client:

        async def worker() -> None:
            for _ in queue:
                start = time.perf_counter()
                await client.create_volume(1, wait=True)
                latencies.append(time.perf_counter() - start)

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(volumes: int, concurrency: int, backend: str, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cinderblock-bench-") as tmp:
        cfg = embedded(Path(tmp), backend=backend, nodes=2)
        cfg = with_quota_defaults(cfg, volumes=-1, gigabytes=-1)
        with Cluster(cfg) as cluster:
            pids = list(cluster.pids().values())
            asyncio.run(create_many(cfg.gateway, warmup, concurrency))
            cpu0, t0 = cpu_seconds(pids), time.perf_counter()
            latencies = asyncio.run(create_many(cfg.gateway, volumes, concurrency))
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
            per_actor = {n: round(cpu_seconds([pid]), 2) for n, pid in cluster.pids().items()}
    ceiling = measure_ceiling(hops=4, requests=20_000, window=concurrency)
    rate = volumes / elapsed
    return {
        "volumes": volumes,
        "concurrency": concurrency,
        "backend": backend,
        "creates_per_s": round(rate, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "cpu_ms_per_volume": round(cpu * 1000 / volumes, 3),
        "ceiling_rps": round(ceiling.rps, 1),
        "ceiling_messages_per_request": ceiling.messages_per_request,
        "ceiling_cpu_ms_per_request": round(ceiling.cpu_ms_per_request, 3),
        "ratio": round(rate / ceiling.rps, 3),
        "cpu_s_by_actor": per_actor,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    p.add_argument("--volumes", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--backend", choices=("null", "file"), default="null")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.volumes < 1 or args.concurrency < 1:
        p.error("--volumes and --concurrency must be at least 1")
    result = run(args.volumes, args.concurrency, args.backend, args.warmup)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The quota actor killed (SIGKILL) under a stream of creates, under ``cinderblock up``,
whose supervisor starts it again: the reserves it took with it are sent again as soon
as their connection closes and answered by the new process, so every create ends
``available`` within a second or so, where each of them failed after the call's
10 s before (``Timeout: no reply to quota.reserve within 10s``); and quota counts
every volume once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cinderblock.bench.up_cluster import UpCluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.states import VolumeStatus
from tests.conftest import _DATA_DIRS

WORKERS = 32
KILLS = 3  # at most: until a kill took a call in flight with it
SLOWEST_S = 5.0  # well under the quota call's 10 s


async def _creates_while(up: UpCluster, demo: Client, admin: Client) -> tuple[list[str], float,
                                                                                  int]:
    """Creates from ``WORKERS`` at once while the quota actor is killed, until one kill
    lost a call (``KILLS`` at most); what did not end available, the slowest, resent."""
    failures: list[str] = []
    slowest = 0.0
    done = asyncio.Event()

    async def worker(w: int) -> None:
        nonlocal slowest
        n = 0
        while not done.is_set():
            n += 1
            started = time.monotonic()
            try:
                vol = await demo.create_volume(1, name=f"w{w}-{n}", wait=True, timeout=60)
                if vol.status is not VolumeStatus.AVAILABLE:
                    failures.append(f"w{w}-{n}: {vol.status}")
            except Exception as exc:  # what the user would see
                failures.append(f"w{w}-{n}: {type(exc).__name__}: {exc}")
            slowest = max(slowest, time.monotonic() - started)

    async def resent() -> int:
        stats = await admin.cluster_stats(timeout=10)
        gateway = next(a for a in stats.actors if a.actor == "gateway")
        return int(gateway.details["quota_calls_resent"])

    workers = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
    try:
        for _ in range(KILLS):
            await asyncio.sleep(1.0)
            pid, restarts = up.kill("quota")
            while not up.restarted("quota", pid, restarts):
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # creates through the new process
            if await resent():
                break
    finally:
        done.set()
        await asyncio.gather(*workers)
    return failures, slowest, await resent()


def test_creates_in_flight_when_the_quota_actor_dies_end_available_within_a_second(
    tmp_path: Path,
) -> None:
    _DATA_DIRS.append(tmp_path)  # the session's check: no actor left behind
    up = UpCluster(tmp_path / "data", "--backend", "null", "--api-fronts", "0")
    up.start()
    try:
        async def run() -> None:
            admin, demo = up.client("admin", 30.0), up.client("demo", 30.0)
            async with admin, demo:
                await admin.set_quota("demo", volumes=-1, gigabytes=-1)
                failures, slowest, resent = await _creates_while(up, demo, admin)
                assert failures == [], failures[:5]
                assert resent > 0, "no kill took a quota call with it"
                assert slowest < SLOWEST_S, slowest
                volumes = await demo.list_volumes()
                quota = await admin.show_quota("demo")
                assert quota.in_use["volumes"] == len(volumes)
                assert quota.reserved["volumes"] == 0

        asyncio.run(run())
    finally:
        assert up.stop() == []

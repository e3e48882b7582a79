"""The metrics exporter scraped with prometheus-client's own parser while volumes are
created: its counters match what the test did."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.wire.errors import OverQuota
from tests.conftest import E2ECluster

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(url: str, check: Callable[[Samples], bool], timeout: float = 15.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def metered(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(metrics=f"127.0.0.1:{free_port()}",
                           quota={"gigabytes": 50, "volumes": 20})


async def test_creates_and_deletes_counted_while_scraped(metered: E2ECluster, project: str,
                                                         ) -> None:
    url = metered.cluster.endpoints()["metrics"]
    actors = ("gateway", "quota", "scheduler", "node-1", "node-2")
    ready = await until(url, lambda s: all(value(s, "cinderblock_actor_up", actor=a) == 1
                                           for a in actors))
    assert all(value(ready, "cinderblock_actor_up", actor=a) == 1 for a in actors)
    before_available = value(ready, "cinderblock_volume_creates_total", outcome="available")
    seen_during: list[float] = []

    async with metered.client(project) as c:
        async def create(i: int) -> str:
            vol = await c.create_volume(1, name=f"m{i}", wait=True)
            return vol.id

        creating = asyncio.gather(*(create(i) for i in range(12)))
        while not creating.done():  # scrape while the creates run
            seen_during.append(value(await asyncio.to_thread(scrape, url),
                                     "cinderblock_volume_creates_total", outcome="available"))
            await asyncio.sleep(0.05)
        made = await creating
        with pytest.raises(OverQuota):
            await c.create_volume(49, name="too-big")
        for volume_id in made[:5]:
            await c.delete_volume(volume_id, wait=True)

    def settled(s: Samples) -> bool:
        return (value(s, "cinderblock_volume_creates_total", outcome="available")
                - before_available == 12
                and value(s, "cinderblock_volume_deletes_total", outcome="deleted") == 5
                and value(s, "cinderblock_quota_in_use", project=project,
                          resource="volumes") == 7)

    samples = await until(url, settled)
    assert value(samples, "cinderblock_volume_creates_total", outcome="available") \
        - before_available == 12
    assert value(samples, "cinderblock_volume_creates_total", outcome="refused") == 1
    assert value(samples, "cinderblock_volume_creates_total", outcome="error") == 0
    assert value(samples, "cinderblock_volume_deletes_total", outcome="deleted") == 5
    assert value(samples, "cinderblock_volume_create_seconds_count") - before_available == 12
    assert 0 < value(samples, "cinderblock_volume_create_seconds_sum") < 12 * 30
    assert value(samples, "cinderblock_quota_in_use", project=project, resource="volumes") == 7
    assert value(samples, "cinderblock_quota_in_use", project=project,
                 resource="gigabytes") == 7
    assert value(samples, "cinderblock_quota_limit", project=project, resource="gigabytes") == 50
    assert value(samples, "cinderblock_flow_changes_total", flow="volume_create_api",
                 state="FAILURE") == 1
    volumes = sum(value(samples, "cinderblock_backend_volumes", backend=b)
                  for b in ("node-1@file", "node-2@file"))
    assert volumes == 7
    assert value(samples, "cinderblock_backend_capacity_gb", backend="node-1@file",
                 kind="total") > 0
    assert value(samples, "cinderblock_actor_uptime_seconds", actor="gateway") > 0
    assert seen_during and seen_during == sorted(seen_during), "scraped, never going back"


def test_the_exporter_listens_on_loopback_and_is_in_the_endpoints(metered: E2ECluster) -> None:
    url = metered.cluster.endpoints()["metrics"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert "exporter" in metered.cluster.pids()

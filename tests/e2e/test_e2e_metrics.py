"""The metrics exporter scraped with prometheus-client's own parser while volumes are
created: its counters match what the test did, its counts by status what the gateway
lists."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cinderblock.actors.runtime.config import free_port
from cinderblock.actors.runtime.keyring import add_user, list_users, secret_key_file
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.quota import QUOTAS_MAX, QuotaShowMany
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, OverQuota
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
    return cluster_factory(metrics=f"127.0.0.1:{free_port()}", metrics_counts_every_s=1.0,
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
    for what in ("quota_resent", "quota_given_up", "node_given_up", "creates_sent_again"):
        assert ("cinderblock_gateway_peer_calls", (("what", what),)) in samples  # shown
    assert seen_during and seen_during == sorted(seen_during), "scraped, never going back"


def test_the_exporter_listens_on_loopback_and_is_in_the_endpoints(metered: E2ECluster) -> None:
    url = metered.cluster.endpoints()["metrics"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert "exporter" in metered.cluster.pids()


async def test_quotas_are_read_many_projects_a_call_by_whom_may_read_them(
    metered: E2ECluster, project: str,
) -> None:
    """``quota.show_many`` (the exporter's every poll: it had made a call a project): a
    monitor or an admin reads any project's, ``QUOTAS_MAX`` a call; a member its own
    only; no project, or too many in one call, is refused saying so."""
    data_dir = Path(metered.cfg.data_dir)
    if "quota-reader" not in {u.name for u in list_users(data_dir)}:
        add_user(data_dir, "quota-reader", "svc", ("monitor",))
    monitor = Client(metered.gateway, project="svc", timeout=20.0,
                     key=secret_key_file(data_dir, "quota-reader"))
    others = [f"{project}-other-{n}" for n in range(QUOTAS_MAX)]
    async with metered.client(project) as member, monitor, \
            metered.client("admin", admin=True) as admin:
        await member.create_volume(2, wait=True)
        deadline = time.monotonic() + 10  # the create's commit reaches quota by itself
        while True:
            (own,) = await member.show_quotas([project])
            if own.in_use.get("volumes") == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (own.project, own.in_use["volumes"], own.in_use["gigabytes"]) == (project, 1, 2)
        assert own.limits["volumes"] == 20 and own.limits["gigabytes"] == 50
        with pytest.raises(Forbidden):
            await member.show_quotas([project, others[0]])
        every = await monitor.show_quotas([project, *others])  # two calls
        assert [q.project for q in every] == [project, *others]
        assert every[0] == own and {q.in_use.get("volumes", 0) for q in every[1:]} == {0}
        assert len(await admin.show_quotas(others[:3])) == 3
        for wrong in ((), (*others, "one-too-many"), ("",)):
            with pytest.raises(InvalidInput, match=r"quota\.show_many takes|1-255"):
                await admin.call("quota.show_many", QuotaShowMany(wrong))


async def test_volumes_snapshots_attachments_backups_and_groups_are_counted_by_status(
    metered: E2ECluster, project: str,
) -> None:
    """``cluster.counts`` (admins and monitors) counts every project's volumes, snapshots,
    attachments, backups and groups by status, as the listings hold them; the exporter
    shows the counts, 0 for a status none is in."""
    url = metered.cluster.endpoints()["metrics"]
    async with metered.client(project) as member, \
            metered.client("admin", admin=True) as admin:
        with pytest.raises(Forbidden):
            await member.status_counts()
        vol = await member.create_volume(1, wait=True)
        await member.create_snapshot(vol.id, wait=True)
        await member.create_backup(vol.id, wait=True)
        await member.create_attachment(vol.id, str(uuid.uuid4()))  # reserved
        await admin.create_group_type(f"counted-{project}")
        await member.create_group(f"counted-{project}", ["__DEFAULT__"])
        counts = await admin.status_counts()
        listed = Counter(v.status.value for v in await admin.list_volumes(all_projects=True))
        assert counts.volumes == dict(listed) and counts.volumes["reserved"] >= 1
        assert counts.snapshots["available"] >= 1 and counts.attachments["reserved"] >= 1
        assert counts.backups["available"] >= 1
        assert counts.groups == dict(Counter(
            g.status.value for g in await admin.list_groups(all_projects=True)))
        assert counts.groups["available"] >= 1

        def shown(s: Samples) -> bool:
            return all(value(s, f"cinderblock_{kind}", status=status) == n
                       for kind in ("volumes", "snapshots", "attachments", "backups",
                                    "groups")
                       for status, n in getattr(counts, kind).items())

        samples = await until(url, shown)
        assert shown(samples)
        assert value(samples, "cinderblock_volumes", status="error") == counts.volumes.get(
            "error", 0)
        assert ("cinderblock_volumes", (("status", "error"),)) in samples  # 0 is shown

"""Listing more volumes than one page holds: the client library and the CLI
read every page; ``--limit`` and ``--marker`` page by hand, as Cinder's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from cinderblock.actors.gateway.paging import PAGE_MAX
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import VolumeList, VolumeListRequest
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import parse
from tests.conftest import E2ECluster, run_cli

MORE_THAN_A_PAGE = PAGE_MAX + 60


async def create_many(client: Client, n: int, width: int = 64) -> list[str]:
    sem = asyncio.Semaphore(width)

    async def one(i: int) -> str:
        async with sem:
            return (await client.create_volume(1, name=f"p{i}", wait=True)).id

    return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.fixture(scope="module")
def big(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(backend="null")


async def test_more_volumes_than_a_page_are_all_listed_newest_first(big: E2ECluster) -> None:
    async with big.client("admin", admin=True) as admin:
        await admin.set_quota("many", volumes=MORE_THAN_A_PAGE, gigabytes=MORE_THAN_A_PAGE)
    async with big.client("many") as client:
        made = await create_many(client, MORE_THAN_A_PAGE)
        listed = await client.list_volumes()
        assert sorted(v.id for v in listed) == sorted(made)
        order = [(v.created_at, v.id) for v in listed]
        assert order == sorted(order, reverse=True)

        raw = await client.call("volume.list", VolumeListRequest(limit=5 * PAGE_MAX))
        first = parse(VolumeList, raw, strict=False)
        assert len(first.volumes) == PAGE_MAX and first.next_marker == first.volumes[-1].id

        head = await client.list_volumes(limit=3)
        after = await client.list_volumes(limit=3, marker=head[-1].id)
        assert [v.id for v in head + after] == [v.id for v in listed[:6]]
        with pytest.raises(InvalidInput, match="marker"):
            await client.list_volumes(marker="00000000-0000-0000-0000-000000000000")
        with pytest.raises(InvalidInput, match="limit"):
            await client.list_volumes(limit=-1)

    env = {"CINDERBLOCK_GATEWAY": big.gateway, "CINDERBLOCK_PROJECT": "many",
           "CINDERBLOCK_KEY": str(big.user_key("many"))}
    done = run_cli("volume", "list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == MORE_THAN_A_PAGE
    done = run_cli("volume", "list", "--limit", "2", "--marker", listed[0].id, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert [v["id"] for v in json.loads(done.stdout)] == [v.id for v in listed[1:3]]
    done = run_cli("volume", "list", "--marker", "nope", env=env)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "marker" in done.stderr


async def test_another_projects_volume_is_no_marker(big: E2ECluster) -> None:
    async with big.client("one") as one, big.client("two") as two:
        mine = await one.create_volume(1, wait=True)
        with pytest.raises(InvalidInput, match="not found"):
            await two.list_volumes(marker=mine.id)

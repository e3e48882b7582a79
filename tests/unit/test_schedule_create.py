"""The scheduler's create task: a node it cannot reach is forgotten, another backend
takes the create; when none can, a node that connects (and reports) again within the
grace takes it, and otherwise the error says which could not be reached."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from cinderblock.actors.scheduler.capacity_index import CapacityIndex
from cinderblock.actors.scheduler.create_flow import (
    ExtractSchedulerSpecTask,
    ScheduleContext,
    ScheduleCreateVolumeTask,
    Unreached,
)
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import NoValidHost, PeerGone
from tests.unit.test_capacity_index import stats


@dataclass
class Nodes:
    """The scheduler's side of its nodes: which it can reach, and every cast that
    went out."""

    index: CapacityIndex
    connected: set[str] = field(default_factory=set)
    casts: list[tuple[str, str]] = field(default_factory=list)
    connect_grace_s: float = 0.0

    def cast_to_node(self, host: str, body: NodeCreateVolume, ctx: Context) -> None:
        if host not in self.connected:
            raise PeerGone(f"peer {host!r} is not connected", {"peer": host})
        self.casts.append((host, body.backend))


def nodes(*hosts: str) -> Nodes:
    index = CapacityIndex(epoch="e1", stale_after_s=60.0)
    for i, host in enumerate(hosts):  # the first has the most room: picked first
        index.update(stats(host, free_capacity_gb=1000.0 - i), time.monotonic())
    return Nodes(index)


async def schedule(services: Nodes, zone: str | None = None,
                   task: ScheduleCreateVolumeTask | None = None) -> ScheduleContext:
    c = ScheduleContext(ScheduleRequest("vol-1", "p", 1, availability_zone=zone), Context())
    await ExtractSchedulerSpecTask().execute(c)
    await (task or ScheduleCreateVolumeTask(services)).execute(c)
    return c


async def test_a_node_reached_gets_the_create() -> None:
    s = nodes("a", "b")
    s.connected = {"a", "b"}
    c = await schedule(s)
    assert c.placement is not None and c.placement.backend == "a@file"
    assert s.casts == [("a", "a@file")]


async def test_a_node_not_connected_is_forgotten_and_another_takes_the_create() -> None:
    s = nodes("a", "b")
    s.connected = {"b"}
    c = await schedule(s)
    assert c.placement is not None and c.placement.backend == "b@file"
    assert s.casts == [("b", "b@file")]
    assert [v.stats.backend for v in s.index.backends(time.monotonic())] == ["b@file"]


async def test_when_no_node_can_be_reached_the_error_names_the_ones_not_connected() -> None:
    s = nodes("a", "b")
    with pytest.raises(NoValidHost, match=r"Not connected: a@file, b@file\.") as refused:
        await schedule(s, zone="nova")
    assert "No backend has reported stats in availability zone 'nova'" in refused.value.message
    assert s.casts == [] and len(s.index) == 0



async def test_a_create_only_a_restarting_node_can_take_waits_for_it_and_goes_there() -> None:
    """Its process died (no route), and its next one says hello and reports 0.3 s later:
    the create is placed there, not failed."""
    s = nodes("a")
    s.connect_grace_s = 5.0

    async def started_again() -> None:
        await asyncio.sleep(0.3)
        s.connected.add("a")
        s.index.update(stats("a", free_capacity_gb=1000.0), time.monotonic())

    back = asyncio.create_task(started_again())
    began = time.monotonic()
    c = await schedule(s)
    await back
    assert c.placement is not None and c.placement.backend == "a@file"
    assert s.casts == [("a", "a@file")]
    assert 0.3 <= time.monotonic() - began < 2.0


async def test_a_node_that_does_not_come_back_within_the_grace_is_named() -> None:
    s = nodes("a", "b")
    s.connect_grace_s = 0.3
    began = time.monotonic()
    with pytest.raises(NoValidHost, match=r"Not connected: a@file, b@file\."):
        await schedule(s)
    assert time.monotonic() - began >= 0.3
    assert s.casts == []


async def test_nothing_waits_when_no_node_was_out_of_reach() -> None:
    """No backend reported in the zone: refused at once, whatever the grace."""
    s = nodes("a")
    s.connected = {"a"}
    s.connect_grace_s = 5.0
    began = time.monotonic()
    with pytest.raises(NoValidHost, match="availability zone 'elsewhere'"):
        await schedule(s, zone="elsewhere")
    assert time.monotonic() - began < 1.0


async def test_creates_that_come_while_the_node_is_away_wait_for_it_too() -> None:
    """The first create finds the node gone and forgets its backend; the next ones find
    no backend at all, and wait for the same node within the same grace."""
    s = nodes("a")
    s.connect_grace_s = 5.0
    task = ScheduleCreateVolumeTask(s)
    first = asyncio.create_task(schedule(s, task=task))
    await asyncio.sleep(0.15)
    assert len(s.index) == 0  # forgotten: the next creates find no backend
    later = [asyncio.create_task(schedule(s, task=task)) for _ in range(3)]
    await asyncio.sleep(0.15)
    s.connected.add("a")
    s.index.update(stats("a", free_capacity_gb=1000.0), time.monotonic())
    placed = await asyncio.gather(first, *later)
    assert all(c.placement is not None and c.placement.backend == "a@file" for c in placed)
    assert len(s.casts) == 4


async def test_a_node_back_in_the_index_is_not_waited_for_again() -> None:
    """Once the node reports again, a create it cannot take anyway fails at once."""
    s = nodes("a")
    s.connect_grace_s = 5.0
    task = ScheduleCreateVolumeTask(s)
    waiting = asyncio.create_task(schedule(s, task=task))
    await asyncio.sleep(0.15)
    s.connected.add("a")
    s.index.update(stats("a", free_capacity_gb=1000.0), time.monotonic())
    await waiting
    began = time.monotonic()
    with pytest.raises(NoValidHost, match="availability zone 'elsewhere'"):
        await schedule(s, zone="elsewhere", task=task)
    assert time.monotonic() - began < 1.0


def test_unreached_names_the_backends_lost_within_the_grace_and_not_back() -> None:
    s = nodes("c")
    unreached = Unreached()
    unreached.lost("a@file", 100.0)
    unreached.lost("b@file", 101.0)
    unreached.lost("c@file", 101.5)  # reported again since: in the index
    assert unreached.awaited(102.0, 5.0, s.index) == ["a@file", "b@file"]
    assert unreached.awaited(105.5, 5.0, s.index) == ["b@file"]  # a's grace is over
    assert unreached.awaited(106.0, 5.0, s.index) == []


async def test_a_node_that_reports_but_is_never_reached_holds_a_create_no_longer_than_the_grace(
) -> None:
    """Its stats keep putting it back in the index, and each cast finds it not connected
    (lost again, later each time): the create still fails once its own grace is over."""
    s = nodes("a")
    s.connect_grace_s = 0.5

    async def reporting() -> None:
        while True:
            await asyncio.sleep(0.05)
            s.index.update(stats("a", free_capacity_gb=1000.0), time.monotonic())

    reports = asyncio.create_task(reporting())
    began = time.monotonic()
    try:
        with pytest.raises(NoValidHost, match=r"Not connected: a@file\."):
            await schedule(s)
    finally:
        reports.cancel()
    assert 0.5 <= time.monotonic() - began < 2.0
    assert s.casts == []

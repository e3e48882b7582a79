"""The scheduler's create task: a node it cannot reach is forgotten, another backend
takes the create, and when none can the error says which could not be reached."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from cinderblock.actors.scheduler.capacity_index import CapacityIndex
from cinderblock.actors.scheduler.create_flow import (
    ExtractSchedulerSpecTask,
    ScheduleContext,
    ScheduleCreateVolumeTask,
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

    def cast_to_node(self, host: str, body: NodeCreateVolume, ctx: Context) -> None:
        if host not in self.connected:
            raise PeerGone(f"peer {host!r} is not connected", {"peer": host})
        self.casts.append((host, body.backend))


def nodes(*hosts: str) -> Nodes:
    index = CapacityIndex(epoch="e1", stale_after_s=60.0)
    for i, host in enumerate(hosts):  # the first has the most room: picked first
        index.update(stats(host, free_capacity_gb=1000.0 - i), time.monotonic())
    return Nodes(index)


async def schedule(services: Nodes, zone: str | None = None) -> ScheduleContext:
    c = ScheduleContext(ScheduleRequest("vol-1", "p", 1, availability_zone=zone), Context())
    await ExtractSchedulerSpecTask().execute(c)
    await ScheduleCreateVolumeTask(services).execute(c)
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


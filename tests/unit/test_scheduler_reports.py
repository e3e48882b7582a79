"""Which of a node's reports the scheduler takes: its hello's first report (``node.hello``,
on the connection its hellos come from), its published stats, and what a process that
another one's hello ended still publishes. The scheduler is built without starting it
(its ROUTER a socket never bound): a request is given to its handlers as that ROUTER
would, the route set first as the runtime sets it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import msgpack
import pytest
import zmq

from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.actors.runtime.redial import routing_id
from cinderblock.actors.runtime.trust import Trust
from cinderblock.actors.scheduler.scheduler import Scheduler
from cinderblock.protocol.messages.reconcile import NodeFenceCreates, NodeFenceReply
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.messages.volumes import Empty, VolumeUpdate
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Forbidden
from cinderblock.protocol.wire.schema import dump
from tests.conftest import EventRecorder, make_config

OLD, NEW = routing_id("node-1", "01", 0), routing_id("node-1", "02", 0)  # two processes'


def report(free_gb: float, incarnation: str, host: str = "node-1") -> BackendStatsMsg:
    return BackendStatsMsg("node-1@null", host, "nova", 100.0, free_gb, 0.0, 0.0,
                           timestamp=time.time(), incarnation=incarnation)


class Secured:
    """A scheduler as with keys: node-1's route is the routing id its key last spoke
    from (the runtime sets it before a handler sees the message)."""

    def __init__(self, tmp_path: Path) -> None:
        self.scheduler = Scheduler(make_config(tmp_path, nodes=1, backend="null"))
        # a secure ROUTER of its own, never bound: the handlers read its routes only
        self.router = Link(self.scheduler, zmq.Context.instance().socket(zmq.ROUTER),
                           routed=True, secure=True)
        self.routes = self.router.routes
        self.scheduler.router = self.router
        self.scheduler.trust = cast(Trust, object())  # only "keys are on" is read
        self.events = EventRecorder("scheduler")
        self.scheduler.events = cast(EventPublisher, self.events)

    def _request(self, op: str, body: object, sender: bytes) -> Request:
        self.routes[b"node-1"] = sender
        return Request(Envelope("req", 1, op, None), body, self.router, sender, "node-1")

    def ping(self, sender: bytes) -> None:
        self.scheduler.on_ping(self._request("ping", Empty(), sender))

    def hello(self, msg: BackendStatsMsg, sender: bytes) -> None:
        self.scheduler.on_node_hello(self._request("node.hello", msg, sender))

    def free_gb(self) -> float:
        (view,) = self.scheduler.index.backends(time.monotonic())
        return view.stats.free_capacity_gb

    def shown(self) -> list[float]:
        """The free space of each backend event (what the dashboard showed)."""
        return [e["free_capacity_gb"] for e in self.events.events if e["kind"] == "backend"]


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    s = Secured(tmp_path)
    try:
        yield s
    finally:
        s.router.channel.close()


async def test_a_node_s_first_report_is_taken_with_its_hello(secured: Secured) -> None:
    s = secured
    s.ping(OLD)
    s.hello(report(10.0, "p1"), OLD)
    assert s.free_gb() == 10.0
    s.scheduler._take_stats(report(8.0, "p1"))  # published
    assert s.free_gb() == 8.0


async def test_a_first_report_late_behind_its_process_s_stats_is_dropped(
    secured: Secured,
) -> None:
    """A scheduler frozen while both waited takes the published stats first: the first
    report is older than they are."""
    s = secured
    s.ping(OLD)
    s.scheduler._take_stats(report(8.0, "p1"))
    s.hello(report(10.0, "p1"), OLD)
    assert s.free_gb() == 8.0 and s.shown() == [8.0]


async def test_stats_of_a_process_its_successor_s_hello_ended_are_dropped(
    secured: Secured,
) -> None:
    s = secured
    s.ping(OLD)
    s.hello(report(10.0, "p1"), OLD)
    s.ping(NEW)  # node-1 started again
    s.scheduler._take_stats(report(3.0, "p1"))  # the old process's, overtaken
    assert s.free_gb() == 10.0 and s.scheduler.stats_of_gone_process == 1
    s.hello(report(9.0, "p2"), NEW)
    s.scheduler._take_stats(report(7.0, "p2"))
    assert s.free_gb() == 7.0 and s.scheduler.stats_of_gone_process == 1
    assert s.shown() == [10.0, 9.0, 7.0]


async def test_a_node_s_process_on_a_connection_it_dialled_again_is_not_a_new_one(
    secured: Secured,
) -> None:
    """Its hellos went unanswered, so it dialled again under a new routing id of the
    same process (``actors.runtime.redial``): its stats are still taken."""
    s = secured
    s.ping(OLD)
    s.hello(report(10.0, "p1"), OLD)
    s.ping(routing_id("node-1", "01", 1))
    s.scheduler._take_stats(report(8.0, "p1"))
    assert s.free_gb() == 8.0 and s.scheduler.stats_of_gone_process == 0


async def test_creates_cast_before_a_node_dialled_again_are_settled_by_its_fence(
    secured: Secured, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node fences what it neither works on nor holds: that was lost with the old
    connection and fails now; what it holds is reported made; what it works on stays
    held, for its stats to settle."""
    s = secured
    s.ping(OLD)
    s.hello(report(10.0, "p1"), OLD)
    liveness, backend = s.scheduler.liveness, "node-1@null"
    for seq, volume in enumerate(("made", "working", "lost"), start=1):
        liveness.placed(backend, seq, volume, Context(project_id="p"), time.monotonic())
    asked: list[tuple[str, tuple[str, ...], bytes]] = []
    updates: list[tuple[str, VolumeStatus, str | None]] = []

    async def node(op: str, body: NodeFenceCreates, ctx: Context | None = None,
                   to: bytes = b"", timeout: float = 0.0) -> Any:
        asked.append((op, body.volume_ids, to))
        reply = NodeFenceReply(busy=("working",), volumes=("made",), fenced=("lost",))
        return msgpack.unpackb(msgpack.packb(dump(reply)))  # as it comes off the wire

    def report_to_gateway(op: str, body: VolumeUpdate, ctx: Context | None = None,
                          to: bytes = b"") -> None:
        updates.append((body.volume_id, body.status, body.reason))

    monkeypatch.setattr(s.router, "call", node)
    monkeypatch.setattr(s.router, "cast", report_to_gateway)
    await s.scheduler._fence_held(liveness.holding(backend), backend)
    assert asked == [("node.fence_creates", ("made", "working", "lost"), b"node-1")]
    assert [(v, status) for v, status, _ in updates] == [
        ("made", VolumeStatus.AVAILABLE), ("lost", VolumeStatus.ERROR)]
    assert "lost with storage node node-1@null's connection" in str(updates[1][2])
    assert [h.volume_id for h in liveness.holding(backend)] == ["working"]


async def test_a_node_reports_for_its_own_host_only(secured: Secured) -> None:
    s = secured
    with pytest.raises(Forbidden, match="a node reports for its own host only"):
        s.hello(report(0.0, "p1", host="node-2"), OLD)
    assert s.scheduler.index.backends(time.monotonic()) == []

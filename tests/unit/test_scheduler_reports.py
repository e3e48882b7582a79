"""Which of a node's reports the scheduler takes: its hello's first report (``node.hello``,
on the connection its hellos come from), its published stats, and what a process that
another one's hello ended still publishes. The scheduler is built without starting it
(its ROUTER a socket never bound): a request is given to its handlers as that ROUTER
would, the route set first as the runtime sets it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import zmq

from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.actors.runtime.trust import Trust
from cinderblock.actors.scheduler.scheduler import Scheduler
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.codec import Envelope
from cinderblock.protocol.wire.errors import Forbidden
from tests.conftest import EventRecorder, make_config

OLD, NEW = b"node-1/0000000000000001", b"node-1/0000000000000002"  # two processes' ids


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


async def test_a_node_reports_for_its_own_host_only(secured: Secured) -> None:
    s = secured
    with pytest.raises(Forbidden, match="a node reports for its own host only"):
        s.hello(report(0.0, "p1", host="node-2"), OLD)
    assert s.scheduler.index.backends(time.monotonic()) == []

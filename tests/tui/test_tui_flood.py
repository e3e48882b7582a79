"""A flood of 10,000 events through a real PUB socket: the dashboard keeps up.

The events are the ones 264 creates publish, sent as the actors send them
(one message per actor per burst), all at once. While they pour in, a key
press must be handled promptly; afterwards every volume, flow and backend
must show its final state, and the tables must have repainted per refresh,
not per event.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import zmq

from cinderblock.protocol.messages.events import TOPIC
from cinderblock.protocol.wire.access import event_topic
from cinderblock.protocol.wire.codec import pack
from cinderblock.tui.app import DashboardApp
from cinderblock.tui.demo import Create, Event, create_events, volume_id
from cinderblock.tui.model.model import Model
from cinderblock.tui.widgets.flows_pane import FlowsPane
from cinderblock.tui.widgets.volumes_pane import VolumesPane
from tests.tui.waiting import repainted

CREATES = 280  # 36 events each: 10,080 events
T0 = 1_700_000_000.0


def flood() -> list[list[Event]]:
    """Every create's events, cut into one message per run of one actor's events."""
    messages: list[list[Event]] = []
    provisioned = {"node-1": 0.0, "node-2": 0.0}
    for i in range(CREATES):
        node = f"node-{1 + i % 2}"
        provisioned[node] += 1
        events = create_events(Create(volume_id(i), T0 + i * 0.01, node), provisioned[node])
        for _, run in itertools.groupby(events, key=lambda e: e["actor"]):
            messages.append(list(run))
    return messages


@pytest.fixture
def publisher() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # this test's publisher keeps everything
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield sock, f"tcp://127.0.0.1:{port}"
    finally:
        sock.close(linger=0)


async def test_a_flood_of_events_leaves_the_dashboard_responsive_and_right(
    publisher: tuple[zmq.Socket[bytes], str],
) -> None:
    sock, endpoint = publisher
    messages = flood()
    total = sum(len(m) for m in messages)
    assert total >= 10_000
    app = DashboardApp(None, endpoint, model=Model(fade_s=3600.0))
    app.model.flows.keep_done = 10 * CREATES
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.stream is not None
        assert app.stream.sock.getsockopt(zmq.RCVHWM) == 1000  # bounded: drops, never blocks
        deadline = time.monotonic() + 5
        while not sock.poll(0):  # the dashboard's subscription has arrived
            assert time.monotonic() < deadline, "the dashboard never subscribed"
            await pilot.pause(0.02)
        assert sock.recv() == b"\x01" + TOPIC

        for message in messages:
            sock.send_multipart([event_topic("demo"), pack(message)])
        pressed = time.monotonic()
        await pilot.press("3")
        while app.active != "backends":
            await pilot.pause(0.01)
        # A liveness bound, generous for a loaded CI machine: the worker yields to the UI
        # every 8 ms of draining, so a key never waits for the whole flood.
        assert time.monotonic() - pressed < 5.0, "a key press waited for the flood"

        deadline = time.monotonic() + 20
        while app.model.events_total < total:
            assert time.monotonic() < deadline, f"only {app.model.events_total} of {total}"
            await pilot.pause(0.05)
        await pilot.press("2")
        await repainted(app, pilot)

        model = app.model
        assert model.malformed == 0
        assert model.volumes.counts() == {"available": CREATES}
        for flow in ("volume_create_api", "volume_create_scheduler", "volume_create_manager"):
            assert model.flows.finished[f"{flow} SUCCESS"] == CREATES
        assert {b.backend: b.provisioned_gb for b in model.backends.ordered()} == {
            "node-1@file": CREATES / 2, "node-2@file": CREATES / 2}
        assert model.rates.creates_total == CREATES

        volumes = app.query_one(VolumesPane)
        assert volumes.table.keys[0] == volume_id(CREATES - 1)  # newest first
        assert volumes.table.row_text(volume_id(0))[2] == "available"
        flows = app.query_one(FlowsPane).table
        assert {flows.row_text(k)[4] for k in flows.keys} == {"SUCCESS"}
        repaints = volumes.table.repaints + flows.repaints
        assert repaints < total / 10, f"{repaints} line repaints for {total} events"

"""Pushes to watching clients (``Watchers``) and events to dashboards
(``EventPublisher``), on real sockets with a real client and subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from enum import StrEnum

import pytest
import zmq
import zmq.asyncio

from cinderblock.actors.gateway.watchers import Watchers
from cinderblock.actors.runtime.actor import Actor, Handler, Request
from cinderblock.actors.runtime.events import FLUSH_EVENTS, EventPublisher
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.events import TOPIC
from cinderblock.protocol.messages.volumes import Volume, VolumeList, VolumeWatch
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.access import event_topic
from cinderblock.protocol.wire.codec import unpack
from tests.conftest import eventually

V = VolumeStatus
AVAILABLE: frozenset[StrEnum] = frozenset({V.AVAILABLE})


def vol(status: VolumeStatus, at: float) -> Volume:
    return Volume("v1", "demo", 1, status, updated_at=at)


class Watched(Actor):
    """An actor that lets clients watch volumes, as the gateway does."""

    name = "watched"
    heartbeat_s = 60.0

    def __init__(self) -> None:
        super().__init__(None)
        self.watchers = Watchers()
        self.endpoint = ""
        self.ready = asyncio.Event()

    def handlers(self) -> dict[str, Handler]:
        return {"volume.watch": self.on_watch}

    async def on_start(self) -> None:
        router = self.bind("tcp://127.0.0.1:*", "watched")
        self.endpoint = router.channel.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.ready.set()

    def on_watch(self, req: Request) -> VolumeList:
        for volume_id in req.body.volume_ids:
            self.watchers.add(volume_id, req)
        return VolumeList()


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    actor = Watched()
    task = asyncio.create_task(actor.run())
    await actor.ready.wait()
    try:
        yield actor
    finally:
        actor.stop()
        await task


async def watching(actor: Watched) -> Client:
    client = Client(actor.endpoint, timeout=5.0)
    await client.call("volume.watch", VolumeWatch(("v1",)))
    return client


async def test_every_watcher_gets_each_push_until_the_last(watched: Watched) -> None:
    one, two = await watching(watched), await watching(watched)
    try:
        assert len(watched.watchers) == 1  # one volume watched, by two clients
        watched.watchers.push("v1", "volume.status", vol(V.EXTENDING, 2.0), last=False)
        watched.watchers.push("v1", "volume.status", vol(V.AVAILABLE, 3.0), last=True)
        for client in (one, two):
            seen = await client.volume_waits.wait(vol(V.CREATING, 1.0), AVAILABLE, 5.0)
            assert seen.updated_at == 3.0
        assert len(watched.watchers) == 0  # the last push ended the watch
    finally:
        one.close()
        two.close()


async def test_a_removed_or_dropped_watch_gets_no_more_pushes(watched: Watched) -> None:
    client = await watching(watched)
    try:
        watched.watchers.drop("v1")
        assert len(watched.watchers) == 0
        watched.watchers.push("v1", "volume.status", vol(V.AVAILABLE, 3.0), last=True)
        assert client.volume_waits.statistics()["remembered"] == 0
    finally:
        client.close()


async def test_a_watcher_whose_connection_went_away_is_dropped_without_harm(
    watched: Watched,
) -> None:
    gone, staying = await watching(watched), await watching(watched)
    gone.close()
    try:
        # the ROUTER learns of the closed connection on its own; until then a push to it
        # is queued and lost, after that it is refused (PeerGone) and logged: both fine
        for at in range(2, 12):
            watched.watchers.push("v1", "volume.status", vol(V.EXTENDING, float(at)), False)
        watched.watchers.push("v1", "volume.status", vol(V.AVAILABLE, 20.0), last=True)
        seen = await staying.volume_waits.wait(vol(V.CREATING, 1.0), AVAILABLE, 5.0)
        assert seen.updated_at == 20.0
    finally:
        staying.close()


# ---- events ---------------------------------------------------------------------


class Subscriber:
    """The hub's side of an actor's publisher: an XSUB that (un)subscribes upstream
    as the hub does for its dashboards."""

    def __init__(self) -> None:
        self.zctx = zmq.asyncio.Context()
        self.sock = self.zctx.socket(zmq.XSUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.zctx.term()


async def subscribe(subscriber: Subscriber, publisher: EventPublisher, how: bytes) -> bool:
    """(Un)subscribe, again until the publisher heard it: one sent before the
    connection was up may be lost, as a dashboard's may on a real hub."""
    await subscriber.sock.send(how + TOPIC)
    return publisher.listening is (how == b"\x01")


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    try:
        yield sub
    finally:
        sub.close()


async def test_events_are_built_only_while_someone_listens_and_go_out_together(
    subscriber: Subscriber,
) -> None:
    publisher = EventPublisher(zmq.Context.instance(), subscriber.endpoint, "probe")
    try:
        publisher.emit("volume", volume_id="v0")  # nobody listens: not even built
        assert not publisher.listening and publisher.published == 0
        await eventually(lambda: subscribe(subscriber, publisher, b"\x01"))
        publisher.emit("volume", volume_id="v1", status="creating")
        publisher.emit("flow", flow="volume_create_api", ts=5.0)
        topic, payload = await asyncio.wait_for(subscriber.sock.recv_multipart(), 5.0)
        assert topic == event_topic("")  # the cluster's own events: no project
        first, second = unpack(payload)  # both events of the flush in one message
        assert (first["kind"], first["actor"], first["volume_id"]) == ("volume", "probe", "v1")
        assert isinstance(first["ts"], float)
        assert (second["kind"], second["ts"]) == ("flow", 5.0)  # a given time is kept
        assert publisher.published == 2
        await eventually(lambda: subscribe(subscriber, publisher, b"\x00"))
    finally:
        publisher.close()


async def test_a_long_flush_goes_as_several_messages_in_order(
    subscriber: Subscriber,
) -> None:
    publisher = EventPublisher(zmq.Context.instance(), subscriber.endpoint, "probe")
    try:
        await eventually(lambda: subscribe(subscriber, publisher, b"\x01"))
        count = FLUSH_EVENTS * 2 + 3
        for i in range(count):
            publisher.add({"kind": "task", "actor": "probe", "ts": 1.0, "n": i})
        sizes: list[int] = []
        seen: list[int] = []
        while len(seen) < count:
            _, payload = await asyncio.wait_for(subscriber.sock.recv_multipart(), 5.0)
            batch = unpack(payload)
            sizes.append(len(batch))
            seen.extend(event["n"] for event in batch)
        assert sizes == [FLUSH_EVENTS, FLUSH_EVENTS, 3]  # none past the bound a message
        assert seen == list(range(count)) and publisher.published == count
    finally:
        publisher.close()


async def test_a_publisher_without_a_hub_publishes_nothing() -> None:
    publisher = EventPublisher(zmq.Context.instance(), None, "probe")
    publisher.emit("volume", volume_id="v1")
    publisher.close()
    assert publisher.published == 0 and not publisher.listening

"""Bounded in bytes: a peer that does not read loses only its own messages, and what
waits for it is bounded; a log of what peers control says each kind of line a few
times a minute at most."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import zmq
import zmq.asyncio

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.wire import transport
from cinderblock.protocol.wire.errors import PeerGone
from cinderblock.protocol.wire.throttled_log import ThrottledLog
from cinderblock.protocol.wire.transport import Channel, tune


async def test_a_peer_that_does_not_read_holds_up_only_its_own_messages() -> None:
    plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    zctx = zmq.asyncio.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    router = plain.socket(zmq.ROUTER)
    tune(router)
    router.setsockopt(zmq.SNDHWM, 10)  # small pipes, so that one fills at once
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.bind(endpoint)
    peers = {}
    for name in (b"sleeper", b"reader"):
        sock = zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, name)
        sock.setsockopt(zmq.RCVHWM, 10)
        sock.setsockopt(zmq.RCVBUF, 4096)
        sock.connect(endpoint)
        peers[name] = sock
    channel = Channel(router, lambda frames: None, routed=True)
    try:
        for sock in peers.values():  # the router learns both identities
            await sock.send(b"hello")
        await asyncio.sleep(0.3)
        payload = b"x" * (64 << 10)
        total = transport.OUTBOX_PEER_BYTES * 2
        for _ in range(total // len(payload)):  # twice what may wait for one peer
            channel.send([b"sleeper", payload])
        stats = channel.statistics()
        assert stats["dropped"] > 0
        assert stats["outbox_bytes"] <= transport.OUTBOX_PEER_BYTES
        started = time.monotonic()
        channel.send([b"reader", b"ping"])
        async with asyncio.timeout(2.0):
            assert await peers[b"reader"].recv() == b"ping"
        assert time.monotonic() - started < 0.1
    finally:
        channel.close()
        for sock in peers.values():
            sock.close(linger=0)
        zctx.term()
        plain.term()


def test_a_throttled_log_says_each_kind_a_few_times_then_how_many_it_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("test.throttled"), per_window=3,
                             window_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        for i in range(1000):
            throttled.warning("bad", "bad message %d", i)
        throttled.warning("other", "another kind")
        assert throttled.held_back("bad") == 997
        now[0] = 61.0
        throttled.warning("bad", "bad message again")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["bad message 0", "bad message 1", "bad message 2", "another kind",
                     "997 more bad lines were held back in the last 61s",
                     "bad message again"]


async def test_a_send_that_fails_for_a_departed_peer_still_leaves_the_socket_read() -> None:
    """A send processes the socket's pending commands, which can take the edge that
    would have woken the reader (ZeroMQ's FD is edge-triggered). A send to a peer that
    is gone fails (``PeerGone``), and what arrived meanwhile from another peer must
    still be read, not wait for the next event (it once waited for good: a client's
    ping went unanswered while the gateway replied to a flooder that had left)."""
    plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    router = plain.socket(zmq.ROUTER)
    tune(router)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.bind(endpoint)
    client = plain.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(endpoint)
    got: list[bytes] = []
    channel = Channel(router, lambda frames: got.append(frames[-1]), routed=True)
    try:
        client.send(b"hello")
        async with asyncio.timeout(2.0):
            while not got:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the reader has drained and waits for the next edge
        client.send(b"ping")
        time.sleep(0.2)  # (not awaited) it is in the router's pipe, its edge raised
        with pytest.raises(PeerGone):
            channel.send([b"departed", b"reply"])  # takes the edge with the commands
        async with asyncio.timeout(2.0):
            while len(got) < 2:
                await asyncio.sleep(0.01)
        assert got == [b"hello", b"ping"]
    finally:
        channel.close()
        client.close(linger=0)
        plain.term()


async def test_a_pass_over_the_socket_ends_after_batch_bytes_and_lets_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large messages end a read pass early (``BATCH_BYTES``), as many small ones do
    (``BATCH``): what else the loop has to do runs in between."""
    monkeypatch.setattr(transport, "BATCH_BYTES", 250)
    plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    receiver, sender = plain.socket(zmq.PULL), plain.socket(zmq.PUSH)
    for sock in (receiver, sender):
        sock.setsockopt(zmq.LINGER, 0)
    receiver.bind(endpoint)
    sender.connect(endpoint)
    loop = asyncio.get_running_loop()
    order: list[str] = []

    def on_frames(frames: list[bytes]) -> None:
        if not order:
            loop.call_soon(order.append, "other")
        order.append("message")

    for _ in range(12):
        sender.send(b"x" * 100)
    time.sleep(0.2)  # all twelve wait in the receiver before the channel reads any
    channel = Channel(receiver, on_frames)
    try:
        async with asyncio.timeout(2.0):
            while order.count("message") < 12:
                await asyncio.sleep(0.01)
        # a pass reads three (300 bytes); two may run in one turn of the loop
        assert order.index("other") <= 6, order
    finally:
        channel.close()
        sender.close(linger=0)
        plain.term()

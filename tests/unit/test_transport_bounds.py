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

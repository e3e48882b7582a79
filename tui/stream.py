"""The dashboard's end of the event stream: one SUB socket, drained, never blocking.

PUB/SUB decides who waits: nobody. The cluster's event hub (an XPUB in the
gateway) drops messages for a subscriber that falls behind, so a slow
dashboard loses events and never slows an actor. This socket's receive
high-water mark (``hwm`` messages, each a batch of events) bounds what can
queue up here; the dashboard catches up from the gateway for what it lost.

``run`` waits for readiness once, then drains with ``zmq.NOBLOCK`` until the
socket is empty or ``budget_s`` is spent, hands each batch to ``deliver``,
and yields to the event loop, so a flood cannot starve key presses.

A socket monitor counts the (re)connections in ``connects``: every one may
have missed events (a restarted gateway, a slow joiner), so the gateway link
catches up again after each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from cinderblock.protocol.messages.events import TOPIC
from cinderblock.protocol.wire.codec import MAX_FRAME, MalformedMessage, unpack
from cinderblock.protocol.wire.keys import client_keys, curve_client

Deliver = Callable[[list[object]], None]


class EventStream:
    def __init__(self, endpoint: str, hwm: int = 1000, budget_s: float = 0.008,
                 topic: bytes = TOPIC, key: str | Path | None = None) -> None:
        """``topic``: every event (an admin), or a project's (``event_topic``);
        ``key``: the user's key file (else ``$CINDERBLOCK_KEY``; neither: plaintext)."""
        self.endpoint = endpoint
        self.budget_s = budget_s
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME + 4096)
        keys = client_keys(key)
        if keys is not None:
            curve_client(self.sock, *keys)
        self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.monitor: zmq.Socket[bytes] = self.sock.get_monitor_socket(zmq.EVENT_CONNECTED)
        self.sock.connect(endpoint)
        self.messages = 0
        self.malformed = 0
        self.connects = 0

    async def run(self, deliver: Deliver) -> None:
        """Deliver batches until cancelled."""
        poller = zmq.asyncio.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        while True:
            await poller.poll(timeout=1000)
            self.watch_connections()
            self.drain(deliver)
            await asyncio.sleep(0)

    def watch_connections(self) -> None:
        while True:
            try:
                recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self.connects += 1

    def drain(self, deliver: Deliver) -> int:
        """Receive what is waiting (within the time budget); returns the messages read."""
        deadline = time.monotonic() + self.budget_s
        read = 0
        while time.monotonic() < deadline:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            read += 1
            batch = self._decode(frames)
            if batch is not None:
                deliver(batch)
        self.messages += read
        return read

    def _decode(self, frames: list[bytes]) -> list[object] | None:
        try:
            if len(frames) != 2 or not frames[0].endswith(b"/"):
                raise MalformedMessage(f"expected [b'<project>/', events], got {len(frames)} "
                                       "frames")
            batch = unpack(frames[1])
            if not isinstance(batch, list):
                raise MalformedMessage("events must be an array")
        except MalformedMessage:
            self.malformed += 1
            return None
        return batch

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)

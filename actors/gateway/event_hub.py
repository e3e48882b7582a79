"""The event hub: every actor publishes into its XSUB, dashboards subscribe at its XPUB.

It runs in a thread of its own (the two sockets are its alone). Without
security it is libzmq's proxy. With security both sides are CURVE servers
(actors only on the publisher side, users on the subscriber side) and the XPUB
is in manual mode: each subscription message is read with its connection's
ZAP User-Id, and the hub subscribes that subscriber to the topic only if
``may_subscribe`` says so (a member: its own project's topic; an admin or a
monitor: anything). A refused subscription is dropped: the subscriber simply
receives nothing.

Upstream, a topic is subscribed when its first admitted subscriber arrives and
unsubscribed when its last leaves, so the actors know whether anybody listens.

A subscriber may send a multipart message that never ends, which libzmq keeps in
memory without limit (``protocol/wire/pending_guard.py``): with security the hub
also reads its XPUB's monitor (``HubWatch``), counts what each connection's
messages took off the wire, and cuts a connection that holds too much.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from cinderblock.protocol.wire.pending_guard import CHECK_S, PendingGuard

log = logging.getLogger(__name__)
MaySubscribe = Callable[[str, bytes], bool]  # (User-Id, topic) -> admitted?


@dataclass(frozen=True)
class HubWatch:
    """The XPUB's monitor (connections, failed handshakes) and its connections' bytes."""

    monitor: zmq.Socket[bytes]
    guard: PendingGuard
    on_refusal: Callable[[], None]

    def read_events(self) -> None:
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.guard.on_monitor_event(frames, lambda event: self.on_refusal())


def run_hub(xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
            may_subscribe: MaySubscribe | None, watch: HubWatch | None = None) -> None:
    with contextlib.suppress(zmq.ContextTerminated):
        if may_subscribe is None:
            zmq.proxy(xsub, xpub)
        else:
            _Hub(xsub, xpub, may_subscribe, watch).run()


class _Hub:
    def __init__(self, xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
                 may_subscribe: MaySubscribe, watch: HubWatch | None = None) -> None:
        self.xsub, self.xpub = xsub, xpub
        self.watch = watch
        self.may_subscribe = may_subscribe
        self.subscribers: Counter[bytes] = Counter()
        self.refused = 0

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.xsub, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        watch, timeout, next_check = self.watch, None, 0.0
        if watch is not None:
            poller.register(watch.monitor, zmq.POLLIN)
            timeout, next_check = int(CHECK_S * 1000), time.monotonic() + CHECK_S
        while True:
            ready = dict(poller.poll(timeout))
            if self.xsub in ready:
                self._forward()
            if self.xpub in ready:
                self._subscriptions()
            if watch is not None:
                if watch.monitor in ready:
                    watch.read_events()
                if time.monotonic() >= next_check:
                    watch.guard.check()
                    next_check = time.monotonic() + CHECK_S

    def _forward(self) -> None:
        for _ in range(1000):
            try:  # frames as libzmq holds them: no copy into bytes and out again
                self.xpub.send_multipart(self.xsub.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                return

    def _subscriptions(self) -> None:
        while True:
            try:
                frame = self.xpub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if self.watch is not None:
                with contextlib.suppress(zmq.ZMQError):  # one the socket made itself
                    self.watch.guard.count_frame(frame.get(zmq.SRCFD), len(frame.bytes))
            self._on_subscription(frame)

    def _on_subscription(self, frame: zmq.Frame) -> None:
        message = frame.bytes
        if not message or message[0] not in (0, 1):
            return
        topic = message[1:]
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:
            user = ""  # an unsubscription the socket made for a subscriber that left
        if message[0] == 1:
            self._subscribe(str(user), topic)
        elif self.subscribers[topic] > 0 and (not user or self.may_subscribe(str(user), topic)):
            self.xpub.setsockopt(zmq.UNSUBSCRIBE, topic)
            self.subscribers[topic] -= 1
            if not self.subscribers[topic]:
                del self.subscribers[topic]
                self.xsub.send(b"\x00" + topic)

    def _subscribe(self, user: str, topic: bytes) -> None:
        if not self.may_subscribe(user, topic):
            self.refused += 1
            return
        self.xpub.setsockopt(zmq.SUBSCRIBE, topic)
        self.subscribers[topic] += 1
        if self.subscribers[topic] == 1:
            self.xsub.send(b"\x01" + topic)

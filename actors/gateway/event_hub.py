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
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable

import zmq

log = logging.getLogger(__name__)
MaySubscribe = Callable[[str, bytes], bool]  # (User-Id, topic) -> admitted?


def run_hub(xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
            may_subscribe: MaySubscribe | None) -> None:
    with contextlib.suppress(zmq.ContextTerminated):
        if may_subscribe is None:
            zmq.proxy(xsub, xpub)
        else:
            _Hub(xsub, xpub, may_subscribe).run()


class _Hub:
    def __init__(self, xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
                 may_subscribe: MaySubscribe) -> None:
        self.xsub, self.xpub = xsub, xpub
        self.may_subscribe = may_subscribe
        self.subscribers: Counter[bytes] = Counter()
        self.refused = 0

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.xsub, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self.xsub in ready:
                self._forward()
            if self.xpub in ready:
                self._subscriptions()

    def _forward(self) -> None:
        for _ in range(1000):
            try:
                self.xpub.send_multipart(self.xsub.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return

    def _subscriptions(self) -> None:
        while True:
            try:
                frame = self.xpub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
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

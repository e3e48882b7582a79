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
Who holds what is kept per connection (``Subscribers``: its file descriptor, from
the XPUB's monitor and each message's ``ZMQ_SRCFD``), and a connection's admitted
topics are let go when the monitor says it ended. The unsubscriptions libzmq itself
makes when a subscriber leaves are not used: in manual mode they name every topic
the subscriber asked for, refused ones too, and nothing says whose they were (a
member that asked for everything and left would otherwise switch the actors'
events off under an admin's dashboard). An unsubscription counts only from a
connection that holds the topic.

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

from cinderblock.protocol.wire.pending_guard import CHECK_S, EVENT_STRUCT, PendingGuard

log = logging.getLogger(__name__)
MaySubscribe = Callable[[str, bytes], bool]  # (User-Id, topic) -> admitted?


@dataclass(frozen=True)
class HubWatch:
    """The XPUB's monitor (connections, failed handshakes) and its connections' bytes."""

    monitor: zmq.Socket[bytes]
    guard: PendingGuard
    on_refusal: Callable[[], None]


class Subscribers:
    """The topics each connection of the hub was admitted to (by file descriptor:
    one at a time per descriptor), and so the topics anybody listens to."""

    def __init__(self) -> None:
        self._held: dict[int, set[bytes]] = {}
        self._listeners: Counter[bytes] = Counter()

    def holds(self, fd: int, topic: bytes) -> bool:
        return topic in self._held.get(fd, ())

    def subscribe(self, fd: int, topic: bytes) -> bool:
        """``fd``'s connection was admitted to ``topic``; True: its first listener."""
        held = self._held.setdefault(fd, set())
        if topic in held:
            return False
        held.add(topic)
        self._listeners[topic] += 1
        return self._listeners[topic] == 1

    def unsubscribe(self, fd: int, topic: bytes) -> bool:
        """``fd``'s connection let ``topic`` go; True: nobody listens to it any more."""
        held = self._held.get(fd)
        if held is None or topic not in held:
            return False
        held.discard(topic)
        return self._drop(topic)

    def ended(self, fd: int) -> list[bytes]:
        """The connection on ``fd`` ended (or, seen at a new one's start, had ended):
        the topics nobody listens to any more."""
        return [topic for topic in self._held.pop(fd, ()) if self._drop(topic)]

    def _drop(self, topic: bytes) -> bool:
        self._listeners[topic] -= 1
        if self._listeners[topic]:
            return False
        del self._listeners[topic]
        return True

    def listened(self) -> set[bytes]:
        return set(self._listeners)


def run_hub(xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
            may_subscribe: MaySubscribe | None, watch: HubWatch | None = None) -> None:
    """Without ``may_subscribe`` (no security) libzmq's proxy; with it, the hub below,
    which needs the XPUB's monitor (``watch``)."""
    with contextlib.suppress(zmq.ContextTerminated):
        if may_subscribe is None:
            zmq.proxy(xsub, xpub)
        else:
            assert watch is not None, "the hub with security reads its XPUB's monitor"
            _Hub(xsub, xpub, may_subscribe, watch).run()


class _Hub:
    def __init__(self, xsub: zmq.Socket[bytes], xpub: zmq.Socket[bytes],
                 may_subscribe: MaySubscribe, watch: HubWatch) -> None:
        self.xsub, self.xpub = xsub, xpub
        self.watch = watch
        self.may_subscribe = may_subscribe
        self.subscribers = Subscribers()
        self.refused = 0

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.xsub, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        poller.register(self.watch.monitor, zmq.POLLIN)
        next_check = time.monotonic() + CHECK_S
        while True:
            ready = dict(poller.poll(int(CHECK_S * 1000)))
            if self.xsub in ready:
                self._forward()
            if self.xpub in ready:
                self._subscriptions()
            if self.watch.monitor in ready:
                self._connections()
            if time.monotonic() >= next_check:
                self.watch.guard.check()
                next_check = time.monotonic() + CHECK_S

    def _forward(self) -> None:
        for _ in range(1000):
            try:  # frames as libzmq holds them: no copy into bytes and out again
                self.xpub.send_multipart(self.xsub.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                return

    def _connections(self) -> None:
        """The monitor's news: a connection that began (on a descriptor whose previous
        connection has ended) or ended lets go of the topics it held."""
        while True:
            try:
                frames = self.watch.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event, fd = EVENT_STRUCT.unpack_from(frames[0])
            if event in (zmq.EVENT_ACCEPTED, zmq.EVENT_DISCONNECTED):
                for topic in self.subscribers.ended(fd):
                    self.xsub.send(b"\x00" + topic)
            self.watch.guard.on_monitor_event(frames, lambda event: self.watch.on_refusal())

    def _subscriptions(self) -> None:
        while True:
            try:
                frame = self.xpub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            # The monitor read after the message: libzmq reports a connection's accept
            # before its first message reaches the XPUB, so the descriptor is the
            # sender's. (Its end, read now too, leaves the topic counted until the
            # descriptor's next accept: more listeners than there are, never fewer.)
            self._connections()
            try:
                fd = frame.get(zmq.SRCFD)
            except zmq.ZMQError:
                continue  # libzmq's own for a subscriber that left: see the module's text
            with contextlib.suppress(zmq.ZMQError):  # one the socket made itself
                self.watch.guard.count_frame(fd, len(frame.bytes))
            self._on_subscription(fd, frame)

    def _on_subscription(self, fd: int, frame: zmq.Frame) -> None:
        message = frame.bytes
        if not message or message[0] not in (0, 1):
            return
        topic = message[1:]
        if message[0] == 1:
            if not self.may_subscribe(str(frame.get("User-Id")), topic):
                self.refused += 1
                return
            self.xpub.setsockopt(zmq.SUBSCRIBE, topic)
            if self.subscribers.subscribe(fd, topic):
                self.xsub.send(b"\x01" + topic)
        elif self.subscribers.holds(fd, topic):
            self.xpub.setsockopt(zmq.UNSUBSCRIBE, topic)
            if self.subscribers.unsubscribe(fd, topic):
                self.xsub.send(b"\x00" + topic)

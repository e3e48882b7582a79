"""A ZeroMQ socket driven by the asyncio loop without one await per message.

The loop watches the socket's file descriptor (``add_reader``). ZeroMQ's FD is
edge-triggered: it signals "something changed", after which ``EVENTS`` must be
checked and the socket drained until ``zmq.Again``. Sending can consume that edge
(a send that fails too), so after every send a drain is scheduled with ``call_soon``.
One drain handles at most ``BATCH`` messages (envelopes, when the handler counts a
batch's) or ``BATCH_BYTES`` and then yields to the loop, so one busy socket cannot
starve the others. Sends never block: if the high-water mark is reached the frames
wait in an outbox that is flushed when the socket is writable again.

Bounded in bytes, per peer. On a ROUTER each peer has its own outbox: a peer that
does not read holds up only its own messages (ROUTER_MANDATORY makes a send to it
fail with EAGAIN while every other peer's pipe takes messages). What waits for one
peer is bounded by ``OUTBOX_PEER_BYTES`` and what waits in all by
``OUTBOX_TOTAL_BYTES``: past either, that peer loses its oldest waiting messages
(counted in ``dropped``, logged at most a few times a minute).

Each channel owns its socket; nobody else touches it, which is what keeps the
wake-ups from being swallowed (see DESIGN.md).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

import zmq

from cinderblock.protocol.wire.codec import MAX_FRAME
from cinderblock.protocol.wire.errors import Closed, PeerGone
from cinderblock.protocol.wire.pending_guard import PendingGuard
from cinderblock.protocol.wire.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
BATCH = 512
# A pass also ends once it has read this many bytes: a peer sending large messages
# (up to a frame each) would otherwise hold the loop for a whole BATCH of them, and
# every other peer's request with it (512 requests of 1 MiB: about 0.4 s).
BATCH_BYTES = 4 << 20
# Plain ints: pyzmq's enum flags cost a conversion on every call.
NOBLOCK, SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
EVENTS, POLLIN, RCVMORE = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.RCVMORE)
SRCFD = int(zmq.SRCFD)
HWM = 100_000
OUTBOX_PEER_BYTES = 8 << 20
OUTBOX_TOTAL_BYTES = 64 << 20
# A handler may say how many envelopes a message carried (a batch); the drain counts
# those against BATCH, so a batch buys its sender no more of a turn than single messages.
FramesHandler = Callable[[list[bytes]], int | None]
PeerFramesHandler = Callable[[str, list[bytes]], int | None]  # (ZAP User-Id, frames)
_throttled = ThrottledLog(log)


def tune(sock: zmq.Socket[bytes]) -> None:
    """Options every cinderblock socket shares."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME + 4096)


class Channel:
    """One socket, read by draining on readiness; written without blocking."""

    def __init__(self, sock: zmq.Socket[bytes], on_frames: FramesHandler | None,
                 on_peer_frames: PeerFramesHandler | None = None, routed: bool = False,
                 guard: PendingGuard | None = None) -> None:
        """``on_peer_frames`` instead of ``on_frames``: each message comes with the
        User-Id the ZAP handler gave its connection (a CURVE server socket). ``routed``:
        a ROUTER, whose frames[0] names the peer (an outbox per peer). ``guard``: told
        what each message took off its connection (with ``on_peer_frames``)."""
        self.sock = sock
        self.guard = guard
        self._on_frames = on_frames
        self._on_peer_frames = on_peer_frames
        self._routed = routed
        self._loop = asyncio.get_running_loop()
        self._outbox: dict[bytes, collections.deque[list[bytes]]] = {}  # per peer
        self._outbox_bytes: dict[bytes, int] = {}
        self._outbox_total = 0
        self.dropped = 0
        self._scheduled = False
        self._closed = False
        self._fd: int = sock.getsockopt(zmq.FD)  # type: ignore[assignment]
        self._loop.add_reader(self._fd, self._ready)
        self._schedule()  # what came before the reader was added set no edge it will see

    @property
    def queued(self) -> int:
        """Messages waiting in the outbox (the socket was past its high-water mark)."""
        return len(self._outbox)

    def send(self, frames: list[bytes]) -> None:
        """Queue frames for sending; raises Closed if we closed this channel, PeerGone
        if (ROUTER_MANDATORY) the addressed peer is not connected."""
        if self._closed:
            raise Closed("channel is closed")
        peer = frames[0] if self._routed else b""
        try:
            if peer in self._outbox:
                self._wait(peer, frames)  # behind this peer's earlier messages
            else:
                self._send_now(peer, frames)
        finally:  # a send that failed may have taken the reader's edge all the same
            self._schedule()

    def _send_now(self, peer: bytes, frames: list[bytes]) -> None:
        try:
            _send(self.sock, frames)
        except zmq.Again:
            self._wait(peer, frames)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                name = frames[0].decode(errors="replace") if frames else "?"
                raise PeerGone(f"peer {name!r} is not connected", {"peer": name}) from exc
            raise

    def _schedule(self) -> None:
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self._ready)

    def _ready(self) -> None:
        self._scheduled = False
        if self._closed:
            return
        if self._outbox:
            self._flush_outbox()
        self._drain()

    def _wait(self, peer: bytes, frames: list[bytes]) -> None:
        """Keep a message until its peer's pipe takes it; over the bounds, the peer's
        oldest waiting messages go."""
        size = sum(len(f) for f in frames)
        self._outbox.setdefault(peer, collections.deque()).append(frames)
        self._outbox_bytes[peer] = self._outbox_bytes.get(peer, 0) + size
        self._outbox_total += size
        while self._outbox_bytes.get(peer, 0) > OUTBOX_PEER_BYTES or \
                (peer in self._outbox and self._outbox_total > OUTBOX_TOTAL_BYTES):
            self._pop(peer)
            self.dropped += 1
            _throttled.warning("outbox", "dropped a message for %r, which does not read "
                               "(%d dropped so far)", peer[:64], self.dropped)

    def _pop(self, peer: bytes) -> None:
        waiting = self._outbox[peer]
        size = sum(len(f) for f in waiting.popleft())
        self._outbox_total -= size
        self._outbox_bytes[peer] -= size
        if not waiting:
            del self._outbox[peer], self._outbox_bytes[peer]

    def _flush_outbox(self) -> None:
        for peer, waiting in list(self._outbox.items()):
            while peer in self._outbox:
                try:
                    _send(self.sock, waiting[0])
                except zmq.Again:
                    break  # this peer is still full; the others go on
                except zmq.ZMQError as exc:
                    _throttled.warning("unreachable", "dropping a message for an unreachable "
                                       "peer: %s", exc)
                self._pop(peer)

    def statistics(self) -> dict[str, int]:
        return {"outbox_peers": len(self._outbox), "outbox_bytes": self._outbox_total,
                "dropped": self.dropped}

    def _drain(self) -> None:
        if self._on_peer_frames is not None:
            self._drain_with_peers(self._on_peer_frames)
            return
        sock, handle = self.sock, self._on_frames
        if handle is None:  # a send-only socket (PUB): reading EVENTS processes the
            sock.getsockopt(EVENTS)  # socket's pending commands, which clears the FD
            return
        n = size = 0
        while sock.getsockopt(EVENTS) & POLLIN:  # type: ignore[operator]
            if n >= BATCH or size >= BATCH_BYTES:
                self._schedule()  # more is waiting: yield to the loop, then go on
                return
            frames = sock.recv_multipart(NOBLOCK)
            size += sum(map(len, frames))
            n += handle(frames) or 1
            if self._closed:
                return

    def _drain_with_peers(self, handle: PeerFramesHandler) -> None:
        """As ``_drain``; the first frame is read without copying, for its User-Id."""
        sock, n, size = self.sock, 0, 0
        while sock.getsockopt(EVENTS) & POLLIN:  # type: ignore[operator]
            if n >= BATCH or size >= BATCH_BYTES:
                self._schedule()
                return
            first = sock.recv(NOBLOCK, copy=False)
            frames = [first.bytes]
            while sock.getsockopt(RCVMORE):
                frames.append(sock.recv(NOBLOCK))
            size += sum(map(len, frames))
            if self.guard is not None:
                self.guard.count(first.get(SRCFD), frames)
            n += handle(str(first.get("User-Id")), frames) or 1
            if self._closed:
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.guard is not None:
            self.guard.close()
        self._loop.remove_reader(self._fd)
        self.sock.close(linger=0)


def _send(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send a multipart message without blocking (small frames: copying is cheapest).
    A message is atomic in ZeroMQ: if the first frame goes, the rest go too."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        sock.send(frame, NOBLOCK | SNDMORE if i < last else NOBLOCK)

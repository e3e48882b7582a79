"""A ZeroMQ socket driven by the asyncio loop without one await per message.

The loop watches the socket's file descriptor (``add_reader``). ZeroMQ's FD is
edge-triggered: it signals "something changed", after which ``EVENTS`` must be
checked and the socket drained until ``zmq.Again``. Sending can consume that
edge, so after every send a drain is scheduled with ``call_soon``. One drain
handles at most ``BATCH`` messages and then yields to the loop, so one busy
socket cannot starve the others. Sends never block: if the high-water mark is
reached the frames wait in an outbox that is flushed when the socket is
writable again.

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

log = logging.getLogger(__name__)
BATCH = 512
# Plain ints: pyzmq's enum flags cost a conversion on every call.
NOBLOCK, SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
EVENTS, POLLIN, RCVMORE = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.RCVMORE)
HWM = 100_000
FramesHandler = Callable[[list[bytes]], None]
PeerFramesHandler = Callable[[str, list[bytes]], None]  # (ZAP User-Id, frames)


def tune(sock: zmq.Socket[bytes]) -> None:
    """Options every cinderblock socket shares."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME + 4096)


class Channel:
    """One socket, read by draining on readiness; written without blocking."""

    def __init__(self, sock: zmq.Socket[bytes], on_frames: FramesHandler | None,
                 on_peer_frames: PeerFramesHandler | None = None) -> None:
        """``on_peer_frames`` instead of ``on_frames``: each message comes with the
        User-Id the ZAP handler gave its connection (a CURVE server socket)."""
        self.sock = sock
        self._on_frames = on_frames
        self._on_peer_frames = on_peer_frames
        self._loop = asyncio.get_running_loop()
        self._outbox: collections.deque[list[bytes]] = collections.deque()
        self._scheduled = False
        self._closed = False
        self._fd: int = sock.getsockopt(zmq.FD)  # type: ignore[assignment]
        self._loop.add_reader(self._fd, self._ready)

    @property
    def queued(self) -> int:
        """Messages waiting in the outbox (the socket was past its high-water mark)."""
        return len(self._outbox)

    def send(self, frames: list[bytes]) -> None:
        """Queue frames for sending; raises Closed if we closed this channel, PeerGone
        if (ROUTER_MANDATORY) the addressed peer is not connected."""
        if self._closed:
            raise Closed("channel is closed")
        if self._outbox:
            self._outbox.append(frames)
        else:
            self._send_now(frames)
        self._schedule()

    def _send_now(self, frames: list[bytes]) -> None:
        try:
            _send(self.sock, frames)
        except zmq.Again:
            self._outbox.append(frames)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                peer = frames[0].decode(errors="replace") if frames else "?"
                raise PeerGone(f"peer {peer!r} is not connected", {"peer": peer}) from exc
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

    def _flush_outbox(self) -> None:
        while self._outbox:
            frames = self._outbox[0]
            try:
                _send(self.sock, frames)
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                log.warning("dropping a message for an unreachable peer: %s", exc)
            self._outbox.popleft()

    def _drain(self) -> None:
        if self._on_peer_frames is not None:
            self._drain_with_peers(self._on_peer_frames)
            return
        sock, handle = self.sock, self._on_frames
        if handle is None:  # a send-only socket (PUB): reading EVENTS processes the
            sock.getsockopt(EVENTS)  # socket's pending commands, which clears the FD
            return
        n = 0
        while sock.getsockopt(EVENTS) & POLLIN:  # type: ignore[operator]
            if n == BATCH:
                self._schedule()  # more is waiting: yield to the loop, then go on
                return
            n += 1
            handle(sock.recv_multipart(NOBLOCK))
            if self._closed:
                return

    def _drain_with_peers(self, handle: PeerFramesHandler) -> None:
        """As ``_drain``; the first frame is read without copying, for its User-Id."""
        sock, n = self.sock, 0
        while sock.getsockopt(EVENTS) & POLLIN:  # type: ignore[operator]
            if n == BATCH:
                self._schedule()
                return
            n += 1
            first = sock.recv(NOBLOCK, copy=False)
            frames = [first.bytes]
            while sock.getsockopt(RCVMORE):
                frames.append(sock.recv(NOBLOCK))
            handle(str(first.get("User-Id")), frames)
            if self._closed:
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self.sock.close(linger=0)


def _send(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send a multipart message without blocking (small frames: copying is cheapest).
    A message is atomic in ZeroMQ: if the first frame goes, the rest go too."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        sock.send(frame, NOBLOCK | SNDMORE if i < last else NOBLOCK)

"""What one connection holds inside libzmq, counted in bytes, and cut when too much.

Why this exists. libzmq hands the application only whole messages, and every limit
it offers counts something else: ``ZMQ_MAXMSGSIZE`` is checked per frame (the
v2 decoder's ``size_ready``), and ``ZMQ_RCVHWM`` counts whole messages (a pipe's
``_msgs_written`` grows only when a frame without ``more`` is written). The frames
of a multipart message that never ends are therefore taken from the socket, kept in
the connection's pipe, and neither limit ever fires: memory grows with what the peer
sends (measured: 1 GiB in one never-ending message took a CURVE ROUTER from 16 MB to
902 MB; ``bench/hostile.py``). libzmq itself never sends such a message (its pipes
release frames to the wire only once the message is complete), so the peer is one
that writes ZMTP by hand; with CURVE it must hold a key the ZAP handler admits, since
frames are read only after the handshake.

What libzmq does tell us, with which the bytes held can be counted from outside:
the monitor's ``ACCEPTED`` event carries each connection's file descriptor, every
message carries the descriptor it came from (``ZMQ_SRCFD``), and the kernel counts
the bytes each TCP connection received (``TCP_INFO``'s ``tcpi_bytes_received``). What
a connection received minus what came out of it as whole messages (each frame's
ZMTP and CURVE overhead included) is what libzmq holds for it: unread whole messages
and an incomplete one. Checked every ``CHECK_S``: past ``PEER_BYTES`` for one
connection, or ``TOTAL_BYTES`` for all (then the biggest goes), the connection is cut
(``shutdown(2)`` on its socket; libzmq sees the end of the stream, drops the pipe
and the incomplete message with it, and the peer finds itself disconnected).

A connection that merely sends whole messages faster than we read them is held back
by ``RCVHWM`` before it gets near ``PEER_BYTES`` unless its messages are large; one
that does get there is over its byte budget as surely as the endless one, and is cut
the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Callable

import zmq

from cinderblock.protocol.wire.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
_throttled = ThrottledLog(log)
PEER_BYTES = 32 << 20
TOTAL_BYTES = 128 << 20
CHECK_S = 0.05
HANDSHAKE_SLACK = 64 << 10  # greeting, HELLO, INITIATE: what precedes the first message
TCPI_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in struct tcp_info
CURVE_FRAME = 33  # "\x07MESSAGE", nonce, MAC, flags: what CURVE adds to each frame
EVENT_STRUCT = struct.Struct("=HI")  # a monitor event's first frame: event, value
WATCHED = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED


def wire_bytes(frames: list[bytes], curve: bool) -> int:
    """The bytes ``frames`` took on the wire (a ROUTER's routing-id frame, the first,
    never travelled)."""
    total = 0
    for frame in frames[1:]:
        body = len(frame) + (CURVE_FRAME if curve else 0)
        total += body + (2 if body <= 255 else 9)
    return total


def bytes_received(fd: int) -> int | None:
    """What the kernel received on this TCP connection (None: not a TCP socket now)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    if len(info) < TCPI_BYTES_RECEIVED + 8:
        return None
    received: int = struct.unpack_from("=Q", info, TCPI_BYTES_RECEIVED)[0]
    return received


def local_port(fd: int) -> int | None:
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            name = sock.getsockname()
    except OSError:
        return None
    return name[1] if isinstance(name, tuple) and len(name) >= 2 else None


def cut(fd: int) -> None:
    """End the TCP connection under libzmq's feet; libzmq closes its side."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class PendingGuard:
    """The bytes each connection of one bound socket holds in libzmq, and the cut past
    the bounds. ``count`` is called for every message read; ``on_monitor_event`` with
    the socket's monitor events (``WATCHED``); the check runs on the running loop every
    ``CHECK_S`` while there are connections, or, ``on_loop=False`` (a thread of its
    own, as the event hub), whenever its owner calls ``check``."""

    def __init__(self, curve: bool, peer_bytes: int = PEER_BYTES,
                 total_bytes: int = TOTAL_BYTES, on_loop: bool = True) -> None:
        self.curve = curve
        self.peer_bytes, self.total_bytes = peer_bytes, total_bytes
        self._read: dict[int, int] = {}  # fd -> wire bytes of the whole messages read
        self._loop = asyncio.get_running_loop() if on_loop else None
        self._timer: asyncio.TimerHandle | None = None
        self.local_port = 0  # the ROUTER's port, once bound: only its connections are cut
        self.cuts = 0

    def count(self, fd: int, frames: list[bytes]) -> None:
        if fd in self._read:
            self._read[fd] += wire_bytes(frames, self.curve)

    def count_frame(self, fd: int, size: int) -> None:
        """One frame of ``size`` bytes read (a socket read frame by frame); a CURVE
        subscription travels as a command up to 9 bytes longer than the frame read."""
        if fd in self._read:
            body = size + (CURVE_FRAME + 9 if self.curve else 0)
            self._read[fd] += body + (2 if body <= 255 else 9)

    def on_monitor_event(self, frames: list[bytes], other: Callable[[int], None]) -> None:
        """ACCEPTED starts counting a connection, DISCONNECTED ends it; any other event
        goes to ``other`` (the handshake failures the actor counts)."""
        event, value = EVENT_STRUCT.unpack_from(frames[0])
        if event == zmq.EVENT_ACCEPTED:
            self._read[value] = 0
            if self._timer is None and self._loop is not None:
                self._timer = self._loop.call_later(CHECK_S, self._tick)
        elif event == zmq.EVENT_DISCONNECTED:
            self._read.pop(value, None)
        else:
            other(event)

    def held(self) -> dict[int, int]:
        """Bytes held in libzmq per connection (fd), as the kernel's count says now."""
        held = {}
        for fd, read in list(self._read.items()):
            received = bytes_received(fd)
            if received is None:
                self._read.pop(fd, None)
                continue
            held[fd] = max(0, received - read - HANDSHAKE_SLACK)
        return held

    def _tick(self) -> None:
        self._timer = None
        self.check()
        if self._read and self._loop is not None:
            self._timer = self._loop.call_later(CHECK_S, self._tick)

    def check(self) -> None:
        """Cut the connections over the bounds."""
        held = self.held()
        for fd, size in held.items():
            if size > self.peer_bytes:
                self._cut(fd, size, "its own bound")
        over = sum(held.values()) - self.total_bytes
        for fd, size in sorted(held.items(), key=lambda item: -item[1]):
            if over <= 0:
                break
            if fd in self._read:
                self._cut(fd, size, "the bound on all connections")
                over -= size

    def _cut(self, fd: int, size: int, bound: str) -> None:
        self._read.pop(fd, None)
        if self.local_port and local_port(fd) != self.local_port:
            return  # the fd was closed and reused before its DISCONNECTED was read
        cut(fd)
        self.cuts += 1
        _throttled.warning("cut", "cut a connection holding %d bytes of unread or "
                           "unfinished messages, over %s (%d cut so far)", size, bound,
                           self.cuts)

    def statistics(self) -> dict[str, int]:
        return {"connections": len(self._read), "cuts": self.cuts}

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""Whether the client's connection to the gateway closed while somebody waits on it.

A DEALER hides its connection: when the gateway stops or is restarted the socket
connects again by itself, and a request the old gateway took is never answered. A
ZeroMQ monitor on the socket reports each handshake done and each disconnection on
an inproc PAIR socket.
``ConnectionWatch`` reads that PAIR every ``LOOK_S`` while a call or a status wait is
outstanding (nobody waiting, nobody looks), so what waits hears of a closed
connection within a tenth of a second instead of at its deadline.

libzmq's I/O thread sends each event to the PAIR and blocks while it cannot: when the
PAIR is full, or closed while the monitor is still on. Either stalls every socket of
the process's context (the suite found it: with the PAIR closed first, an actor in
the same process as the client now and then never got its next request). So the
PAIR takes any number of events (``RCVHWM`` 0: two per connection, read at the
next look) and ``close`` turns the monitor off before it closes the PAIR; a client
must be closed, not left to the garbage collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import zmq
from zmq.utils.monitor import parse_monitor_message

from cinderblock.protocol.wire.codec import next_id

LOOK_S = 0.1
NOBLOCK = int(zmq.NOBLOCK)
DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
SUCCEEDED = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)


class ConnectionWatch:
    def __init__(self, sock: zmq.Socket[bytes], on_closed: Callable[[], None],
                 waiting: Callable[[], bool]) -> None:
        """``on_closed``: what to do when the connection closed; ``waiting``: whether
        anybody still waits (else the looking stops until ``look_soon``)."""
        self._sock = sock
        address = f"inproc://cinderblock-client-watch-{next_id()}"
        sock.monitor(address, SUCCEEDED | DISCONNECTED)
        self._monitor: zmq.Socket[bytes] | None = sock.context.socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.RCVHWM, 0)  # never full (see the module's text)
        self._monitor.connect(address)
        self._on_closed = on_closed
        self._waiting = waiting
        self._timer: asyncio.TimerHandle | None = None
        self._connected = False  # a handshake succeeded since the last disconnection

    def look_soon(self) -> None:
        """Somebody is about to wait (called before the call or wait is registered):
        look every ``LOOK_S`` from now on while anybody waits. A disconnection from
        before, when nobody waited, is no news to them (and a look still due from then,
        in a loop that was not running meanwhile, must not take it for news)."""
        if self._monitor is None:
            return
        if not self._waiting():
            self._closed_since_last_look()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LOOK_S, self._look)

    def _look(self) -> None:
        self._timer = None
        if self._monitor is None:
            return
        if self._closed_since_last_look():
            self._on_closed()
        if self._waiting():
            self.look_soon()

    def _closed_since_last_look(self) -> bool:
        """Whether a connection that had been made (its handshake done) closed. A
        connection the gateway refused (a key it does not know) is never made: what is
        sent over it gets nothing at all, as from a gateway that never answers."""
        assert self._monitor is not None
        closed = False
        while True:
            try:
                frames = self._monitor.recv_multipart(NOBLOCK)
            except zmq.Again:
                return closed
            event = parse_monitor_message(frames)["event"]
            if event == SUCCEEDED:
                self._connected = True
            elif event == DISCONNECTED:
                closed = closed or self._connected
                self._connected = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._monitor is not None:
            self._sock.disable_monitor()  # first: the monitor must not outlive its reader
            self._monitor.close(linger=0)
            self._monitor = None

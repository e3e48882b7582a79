"""What one loop turn sends to one peer, as one ZeroMQ message.

Every ZeroMQ message costs its sender a ``send`` (often a syscall that wakes
libzmq's I/O thread, and a release of the GIL), the I/O thread a CURVE box and a
TCP write, and its receiver a wake-up and a ``recv``; a busy actor sends dozens
of envelopes to the same peer in one turn of its loop (replies to one client,
calls to quota, casts to the scheduler). ``Batcher`` sends the first envelope of a
turn to a peer at once, as before (one at a time, nothing waits, and a send to a
ROUTER peer that is not connected fails right there with ``PeerGone``, which
callers rely on: the scheduler places a volume elsewhere when its node left).
Whatever follows it to the same peer in the same turn waits for the end of the
turn (one ``call_soon``) and goes as one frame: the envelope alone if it is the
only one, else a batch (``codec.pack_batch``: at most ``MAX_BATCH`` envelopes and
``MAX_FRAME`` bytes; past either, what waits goes at once and a new batch starts).
A turn can be long (a drain of large frames can take seconds), so what an actor
answers while it drains goes ``now``, as it always did (a plain handler's reply, a
refusal: a ping answered in the middle of a flood is not held to the end of it),
after whatever waits for that peer. Batches are for what tasks and callbacks send
(flow steps, replies after a commit), where the volume is. An envelope sent
``hold`` waits for the next one to its peer in the turn and goes with it, as one
message (the gateway's owed quota changes go so with its next call to the quota
actor, which then wakes and commits once for both), or at the turn's end.
Order per peer is kept: what waits for a peer goes before anything later to it,
and the socket keeps messages in order.

Should a peer that was reached at the start of a turn be gone by its end (it left
within the turn), the calls among its waiting envelopes fail with ``PeerGone``
(``on_lost``) and the rest are counted in ``lost`` and logged, as messages in a
departed peer's pipe are lost.

Who reads batches. A frame that is a batch is new to the wire, so it goes only to
peers known to read it: a DEALER sends batches (it dialled a cinderblock actor),
and a ROUTER batches to a peer only once that peer has sent it a batch, or is
known by its key to be one of the cluster's actors (``reads_batches``, which the
actor calls; at most ``MAX_BATCHING_PEERS`` are remembered, then they start over
and each is learnt again from its next message). A peer that never batches (one
request at a time, or a hand-written one) gets its envelopes one message each,
exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cinderblock.protocol.wire.codec import (
    BATCH_ITEM_OVERHEAD,
    MAX_BATCH,
    MAX_FRAME,
    pack_batch,
)
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.throttled_log import ThrottledLog
from cinderblock.protocol.wire.transport import Channel

log = logging.getLogger(__name__)
_throttled = ThrottledLog(log)
LostCalls = Callable[[list[int], CinderblockError], None]  # (msg ids of calls, why)
MAX_BATCHING_PEERS = 4096


class _Waiting:
    """One peer's envelopes of this turn, and which of them are calls."""

    __slots__ = ("calls", "payloads", "size")

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.calls: list[int] = []
        self.size = BATCH_ITEM_OVERHEAD

    def fits(self, payload: bytes) -> bool:
        return (len(self.payloads) < MAX_BATCH
                and self.size + len(payload) + BATCH_ITEM_OVERHEAD <= MAX_FRAME)


class Batcher:
    """Sends envelopes (encoded) on a channel, one message per peer per loop turn."""

    def __init__(self, channel: Channel, routed: bool, on_lost: LostCalls | None = None
                 ) -> None:
        self._channel = channel
        self._routed = routed
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[bytes, _Waiting] = {}
        self._reached: set[bytes] = set()  # peers a message went to at once this turn
        self._batching: set[bytes] = set()  # ROUTER peers that read batches
        self._due = False
        self.messages = 0  # ZeroMQ messages sent
        self.envelopes = 0  # envelopes in them
        self.lost = 0  # envelopes whose peer was gone by the end of the turn

    def send(self, peer: bytes, payload: bytes, call: int | None = None,
             now: bool = False, hold: bool = False) -> None:
        """Send ``payload`` (one encoded envelope) to ``peer`` (b"" on a DEALER): at once
        if it is the first to that peer in this turn, or ``now`` (``PeerGone``,
        ``Closed`` raise here), else with the rest of the turn's; ``call``: the msg id
        of a call in it. ``hold``: not at once, but with the next envelope to that peer
        in this turn, as one message (or at the turn's end if none follows)."""
        waiting = self._waiting.get(peer)
        if not hold and (now or peer not in self._reached):
            self._reached.add(peer)
            self._schedule()  # the end of this turn: then the next goes at once again
            if waiting is not None:  # what waits for this peer goes first: order is kept
                del self._waiting[peer]
                if not now and waiting.fits(payload):  # held: this one goes with them
                    self._wait(waiting, payload, call)
                    self._send_held(peer, waiting, call)
                    return
                self._deliver(peer, waiting)
            self._channel.send([peer, payload] if self._routed else [payload])
            self.messages += 1
            self.envelopes += 1
            return
        if hold:
            self._schedule()
        if waiting is None:
            waiting = self._waiting[peer] = _Waiting()
        elif not waiting.fits(payload):
            self._deliver(peer, waiting)
            waiting = self._waiting[peer] = _Waiting()
        self._wait(waiting, payload, call)

    @staticmethod
    def _wait(waiting: _Waiting, payload: bytes, call: int | None) -> None:
        waiting.payloads.append(payload)
        waiting.size += len(payload) + BATCH_ITEM_OVERHEAD
        if call is not None:
            waiting.calls.append(call)

    def _send_held(self, peer: bytes, waiting: _Waiting, call: int | None) -> None:
        """Held envelopes with the one sent at once after them: one message, and what
        stops it raises, as an envelope sent at once does (the held calls fail)."""
        try:
            self._put(peer, waiting.payloads)
        except CinderblockError as exc:
            held = [c for c in waiting.calls if c != call]
            if held and self._on_lost is not None:
                self._on_lost(held, exc)
            raise

    def reads_batches(self, peer: bytes) -> None:
        """``peer`` sent us a batch, so it reads them: batch what goes to it."""
        if peer not in self._batching:
            if len(self._batching) >= MAX_BATCHING_PEERS:
                self._batching.clear()
            self._batching.add(peer)

    def _schedule(self) -> None:
        if not self._due:
            self._due = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what waits (the end of a turn, or a close)."""
        self._due = False
        self._reached.clear()
        waiting, self._waiting = self._waiting, {}
        for peer, batch in waiting.items():
            self._deliver(peer, batch)

    def move_to(self, channel: Channel) -> None:
        """What waits goes on the channel it was sent to; what is sent next, on
        ``channel`` (a DEALER made anew under a new routing id)."""
        self.flush()
        self._channel = channel

    def _deliver(self, peer: bytes, waiting: _Waiting) -> None:
        payloads = waiting.payloads
        try:
            self._put(peer, payloads)
        except CinderblockError as exc:
            self.lost += len(payloads)
            if waiting.calls and self._on_lost is not None:
                self._on_lost(waiting.calls, exc)
            _throttled.warning("lost", "%d message(s) for %r were not sent: %s",
                               len(payloads), peer[:64], exc.message)

    def _put(self, peer: bytes, payloads: list[bytes]) -> None:
        """``payloads`` on the socket: one message (a batch if several), or one each to
        a ROUTER peer that does not read batches; what stops it raises."""
        if len(payloads) == 1:
            self._channel.send([peer, payloads[0]] if self._routed else payloads)
        elif not self._routed:
            self._channel.send([pack_batch(payloads)])
        elif peer in self._batching:
            self._channel.send([peer, pack_batch(payloads)])
        else:
            for payload in payloads:
                self._channel.send([peer, payload])
            self.messages += len(payloads) - 1
        self.messages += 1
        self.envelopes += len(payloads)

    def statistics(self) -> dict[str, int]:
        return {"messages": self.messages, "envelopes": self.envelopes, "lost": self.lost}

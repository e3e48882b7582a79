"""Requests in flight: correlation ids, deadlines, and no caller left waiting.

``Calls`` is bookkeeping with no I/O: ``start`` registers a request with its
deadline and returns a future, ``settle`` resolves it from a reply envelope,
``fail_all`` fails every pending call (an actor or client stopping), ``lost``
every call a closed connection took with it, ``lost_to`` those that went to one peer,
``given_up_on`` those to a peer judged frozen or cut off before their deadline.
A call remembers the peer it went to, and only a reply from that peer settles
it: a reply from anyone else is ignored and the call keeps waiting.
Deadlines are kept by one sweep every ``SWEEP_S`` while calls are pending
(deadlines are honoured to within that), not by a timer per call: a timer
per call costs more than the rest of the bookkeeping on a busy actor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

from cinderblock.protocol.wire.codec import Envelope
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    Closed,
    PeerGone,
    Timeout,
    error_from_wire,
)

SWEEP_S = 0.1


class _Pending(NamedTuple):
    fut: asyncio.Future[Any]
    deadline: float
    op: str
    timeout: float
    peer: object  # who must answer (None: whoever can reach the socket is the peer)


class Calls:
    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, msg_id: int, op: str, timeout: float, peer: object = None
              ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[msg_id] = _Pending(fut, loop.time() + timeout, op, timeout, peer)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_S, self._sweep)
        return fut

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        expired = [msg_id for msg_id, p in self._pending.items() if p.deadline <= now]
        for msg_id in expired:
            p = self._pending.pop(msg_id)
            if not p.fut.done():
                p.fut.set_exception(
                    Timeout(f"no reply to {p.op} within {p.timeout:g}s", {"op": p.op})
                )
        self._sweeper = loop.call_later(SWEEP_S, self._sweep) if self._pending else None

    def settle(self, reply: Envelope, peer: object = None) -> bool:
        """Resolve the call a reply answers; False if nobody waits for it (late or
        unknown) or the reply comes from another peer than the call went to."""
        pending = self._pending.get(reply.corr_id) if reply.corr_id is not None else None
        if pending is None or pending.peer != peer:
            return False
        del self._pending[reply.corr_id]  # type: ignore[arg-type]
        if pending.fut.done():
            return False
        if reply.error is not None:
            pending.fut.set_exception(error_from_wire(reply.error))
        else:
            pending.fut.set_result(reply.body)
        return True

    def forget(self, msg_id: int) -> None:
        self._pending.pop(msg_id, None)

    def fail(self, msg_ids: list[int], error: CinderblockError) -> None:
        """Fail these calls (their request could not be sent after all)."""
        for msg_id in msg_ids:
            p = self._pending.pop(msg_id, None)
            if p is not None and not p.fut.done():
                p.fut.set_exception(error)

    def lost(self, reason: str) -> None:
        """Fail every call with ``PeerGone``: the connection they went out on closed
        before they were answered (``reason`` says which), so no answer can come."""
        self._fail_every(lambda p: PeerGone(f"{p.op}: {reason}", {"op": p.op}))

    def lost_to(self, peer: object, reason: str) -> int:
        """Fail with ``PeerGone`` the calls that went to ``peer``: the connection they
        went out on closed before they were answered (``reason`` says so). How many."""
        return self._fail_to(peer, lambda p: PeerGone(f"{p.op}: {reason}", {"op": p.op}))

    def given_up_on(self, peer: object, reason: str) -> int:
        """Fail with ``Timeout`` the calls that went to ``peer`` before their deadline:
        an answer may still come, but nobody is to wait for it (``reason`` says why; a
        peer frozen or cut off with its connection open). How many."""
        return self._fail_to(peer, lambda p: Timeout(f"no reply to {p.op}: {reason}",
                                                     {"op": p.op}))

    def _fail_to(self, peer: object, error_for: Callable[[_Pending], CinderblockError]
                 ) -> int:
        gone = [msg_id for msg_id, p in self._pending.items() if p.peer == peer]
        for msg_id in gone:
            p = self._pending.pop(msg_id)
            if not p.fut.done():
                p.fut.set_exception(error_for(p))
        return len(gone)

    def fail_all(self, error: CinderblockError) -> None:
        self._fail_every(lambda p: error)

    def _fail_every(self, error_for: Callable[[_Pending], CinderblockError]) -> None:
        pending, self._pending = self._pending, {}
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for p in pending.values():
            if not p.fut.done():
                p.fut.set_exception(error_for(p))


STOPPING = Closed("the actor is stopping")

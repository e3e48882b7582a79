"""Requests in flight: correlation ids, deadlines, and no caller left waiting.

``Calls`` is bookkeeping with no I/O: ``start`` registers a request with its
deadline and returns a future, ``settle`` resolves it from a reply envelope,
``fail_all`` fails every pending call (an actor or client stopping). A
deadline is one loop timer per call (cancelled when the reply comes), which
costs far less than an ``asyncio.timeout`` context around every await.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.codec import Envelope
from protocol.errors import CinderblockError, Timeout, Unavailable, error_from_wire


class Calls:
    def __init__(self) -> None:
        self._pending: dict[int, tuple[asyncio.Future[Any], asyncio.TimerHandle]] = {}
        self.completed = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, msg_id: int, op: str, timeout: float) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        timer = loop.call_later(timeout, self._expire, msg_id, op, timeout)
        self._pending[msg_id] = (fut, timer)
        return fut

    def _expire(self, msg_id: int, op: str, timeout: float) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry is not None and not entry[0].done():
            self.timed_out += 1
            entry[0].set_exception(Timeout(f"no reply to {op} within {timeout:g}s", {"op": op}))

    def settle(self, reply: Envelope) -> bool:
        """Resolve the call a reply answers; False if nobody waits for it (late or unknown)."""
        entry = self._pending.pop(reply.corr_id, None) if reply.corr_id is not None else None
        if entry is None:
            return False
        fut, timer = entry
        timer.cancel()
        if fut.done():
            return False
        self.completed += 1
        if reply.error is not None:
            fut.set_exception(error_from_wire(reply.error))
        else:
            fut.set_result(reply.body)
        return True

    def forget(self, msg_id: int) -> None:
        entry = self._pending.pop(msg_id, None)
        if entry is not None:
            entry[1].cancel()

    def fail_all(self, error: CinderblockError) -> None:
        pending, self._pending = self._pending, {}
        for fut, timer in pending.values():
            timer.cancel()
            if not fut.done():
                fut.set_exception(error)


STOPPING = Unavailable("the actor is stopping")

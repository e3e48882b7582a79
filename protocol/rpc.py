"""Requests in flight: correlation ids, deadlines, and no caller left waiting.

``Calls`` is plain bookkeeping with no I/O: ``start`` registers a request and
returns a future, ``settle`` resolves it from a reply envelope, ``fail_all``
fails every pending call (an actor or client stopping), and ``wait`` applies
the deadline. Both the actors and the client library use it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.codec import Envelope
from protocol.errors import CinderblockError, Timeout, Unavailable, error_from_wire


class Calls:
    def __init__(self) -> None:
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.completed = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._pending)

    def start(self, msg_id: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        return fut

    def settle(self, reply: Envelope) -> bool:
        """Resolve the call a reply answers; False if nobody waits for it (late or unknown)."""
        fut = self._pending.pop(reply.corr_id, None) if reply.corr_id is not None else None
        if fut is None or fut.done():
            return False
        self.completed += 1
        if reply.error is not None:
            fut.set_exception(error_from_wire(reply.error))
        else:
            fut.set_result(reply.body)
        return True

    def forget(self, msg_id: int) -> None:
        self._pending.pop(msg_id, None)

    def fail_all(self, error: CinderblockError) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(error)

    async def wait(self, msg_id: int, fut: asyncio.Future[Any], op: str, timeout: float) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            self.timed_out += 1
            raise Timeout(f"no reply to {op} within {timeout:g}s", {"op": op}) from None
        finally:
            self._pending.pop(msg_id, None)


STOPPING = Unavailable("the actor is stopping")

"""Turns per peer: how many of one peer's requests run at once, the rest wait in line.

A handler that awaits (a create's flow) runs as a task, and asyncio runs every
callback that became ready in one turn of the loop before it looks at its sockets
again. A peer that sends 20,000 creates without waiting for the answers would have
20,000 flows running, and a group commit that settles them all at once makes one
loop turn of them: another client's ping waited 0.5 s behind it. So a peer has at
most ``running`` requests running; the next ones wait here, in order, and start as
earlier ones finish; past ``waiting`` in line (or the byte bounds the actor keeps)
the peer is told the actor is busy. A peer that pipelines a hundred requests
(the client library, a REST front) never notices; one that floods is served at the
pace of ``running`` requests at a time while everyone else is served as usual.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

T = TypeVar("T")
RUNNING_PER_PEER = 128
WAITING_PER_PEER = 4096


class PeerTurns(Generic[T]):
    def __init__(self, running: int = RUNNING_PER_PEER, waiting: int = WAITING_PER_PEER
                 ) -> None:
        self.max_running, self.max_waiting = running, waiting
        self._running: dict[bytes, int] = {}
        self._waiting: dict[bytes, collections.deque[T]] = {}

    def full(self, peer: bytes) -> bool:
        """True when a new request of this peer could neither run nor wait."""
        return len(self._waiting.get(peer, ())) >= self.max_waiting

    def take(self, peer: bytes, item: T) -> bool:
        """True: ``item`` may run now (it counts as running); False: it waits."""
        running = self._running.get(peer, 0)
        if running < self.max_running:
            self._running[peer] = running + 1
            return True
        self._waiting.setdefault(peer, collections.deque()).append(item)
        return False

    def done(self, peer: bytes) -> T | None:
        """One of the peer's requests finished: the next in line, which now runs."""
        waiting = self._waiting.get(peer)
        if waiting:
            item = waiting.popleft()
            if not waiting:
                del self._waiting[peer]
            return item
        left = self._running[peer] - 1
        if left:
            self._running[peer] = left
        else:
            del self._running[peer]
        return None

    def clear(self) -> list[T]:
        """Everything in line, taken out (the actor is stopping)."""
        items = [item for line in self._waiting.values() for item in line]
        self._waiting.clear()
        return items

    def statistics(self) -> dict[str, int]:
        return {"running": sum(self._running.values()),
                "waiting": sum(len(line) for line in self._waiting.values())}

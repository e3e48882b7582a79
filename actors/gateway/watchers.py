"""Who watches which volume or snapshot, and the pushes they get.

A client that asks to watch an object (``watch=True`` on an operation, or a
``*.watch`` request) gets every status change of it pushed over its own
connection until the object reaches a stable status (the push of that status
is the last) or goes away. A watcher whose connection is gone is dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.protocol.wire.errors import CinderblockError

log = logging.getLogger(__name__)
Watcher = tuple[Link, bytes]


class Watchers:
    def __init__(self) -> None:
        self._by_object: dict[str, list[Watcher]] = {}

    def __len__(self) -> int:
        return len(self._by_object)

    def add(self, object_id: str, req: Request) -> None:
        self._by_object.setdefault(object_id, []).append((req.link, req.sender))

    def remove(self, object_id: str, req: Request) -> None:
        watchers = self._by_object.get(object_id, [])
        if (req.link, req.sender) in watchers:
            watchers.remove((req.link, req.sender))
            if not watchers:
                del self._by_object[object_id]

    def drop(self, object_id: str) -> None:
        self._by_object.pop(object_id, None)

    def push(self, object_id: str, op: str, view: Any, last: bool) -> None:
        """Push ``view`` to everyone watching; ``last`` ends their watch."""
        watchers = self._by_object.get(object_id)
        if not watchers:
            return
        if last:
            del self._by_object[object_id]
        for link, identity in watchers:
            try:
                link.push(identity, op, view)
            except CinderblockError as exc:  # the watcher went away; it is simply dropped
                log.info("dropping watcher %r: %s", identity, exc.message)

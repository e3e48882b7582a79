"""Reading a paged listing to the end (or to a limit), for the client library."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

Fetch = Callable[[int | None, str | None], Awaitable[tuple[Sequence[T], str | None]]]


async def read_pages(fetch: Fetch[T], limit: int | None, marker: str | None) -> list[T]:
    """Ask ``fetch(limit_left, marker)`` for pages until the gateway says none
    follow or ``limit`` items are in hand. ``limit=None`` reads everything."""
    found: list[T] = []
    while True:
        left = None if limit is None else limit - len(found)
        items, marker = await fetch(left, marker)
        found.extend(items)
        if marker is None or (limit is not None and len(found) >= limit):
            return found

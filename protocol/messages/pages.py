"""A listing's page as a reply holds it: the first items after a key, and the key to ask
after next. The listings small enough to be sorted whole at each page use it (a node's
manageable files and its exports, projects' default types); the gateway's large
listings page through indexes (``actors.gateway.paging``), and the client reads any of
them to the end (``protocol.client.pages``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def page_after(items: Iterable[T], key: Callable[[T], str], after: str | None, limit: int
               ) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``items`` by ``key`` whose key is past ``after`` (all,
    for None), and the last one's key when more follow (None: this is the last page, or
    an empty one)."""
    found = sorted((item for item in items if after is None or key(item) > after), key=key)
    page = found[:limit]
    return page, key(page[-1]) if page and len(found) > len(page) else None


def page_within(items: Iterable[T], key: Callable[[T], str], after: str | None, limit: int,
                size_of: Callable[[T], int], max_bytes: int) -> tuple[list[T], str | None]:
    """``page_after``, and no more items than fit in ``max_bytes`` by ``size_of`` (one
    at least, so that a page always moves on)."""
    page, next_marker = page_after(items, key, after, limit)
    size = 0
    for kept, item in enumerate(page):
        size += size_of(item)
        if kept and size > max_bytes:
            return page[:kept], key(page[kept - 1])
    return page, next_marker

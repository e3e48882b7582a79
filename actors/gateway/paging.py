"""Paged listing, as Cinder's ``limit`` and ``marker``: newest first, a page at a time.

A page holds at most ``PAGE_MAX`` records (Cinder's ``osapi_max_limit``) and
at most about ``PAGE_BYTES`` of them on the wire (a volume may carry 128
metadata items), so one reply stays below the 1 MiB frame limit however many
volumes exist and whatever they carry.
``marker`` is the id of the last record of the previous page; the reply's
``next_marker`` is set when more records follow. Records are ordered by
(created_at, id), newest first, so pages neither repeat nor skip a record
that existed throughout the listing.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from cinderblock.protocol.wire.errors import InvalidInput

PAGE_MAX = 1000
PAGE_BYTES = 512 * 1024
FIXED_BYTES = 512  # ids, numbers, statuses, a host and the field names of one record


class Listed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def name(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, str]: ...


R = TypeVar("R", bound=Listed)


def _order(rec: Listed) -> tuple[float, str]:
    return (rec.created_at, rec.id)


def page(
    everything: Mapping[str, R], visible: Callable[[R], bool], matches: Callable[[R], bool],
    marker: str | None, limit: int | None,
) -> tuple[list[R], str | None]:
    """The records of ``everything`` (id -> record) that the caller can see and
    that match the filter, after ``marker``, newest first, at most ``limit`` (and
    ``PAGE_MAX``) of them; and the marker of the next page (None on the last).

    A marker that names no record the caller can see is refused. It need not
    match the filter: a volume may change status while its lister pages on.
    """
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit must be >= 0, not {limit}", {"limit": limit})
    size = PAGE_MAX if limit is None else min(limit, PAGE_MAX)
    chosen = (r for r in everything.values() if visible(r) and matches(r))
    if marker is not None:
        after = everything.get(marker)
        if after is None or not visible(after):
            raise InvalidInput(f"marker {marker} not found", {"marker": marker})
        below = _order(after)
        chosen = (r for r in chosen if _order(r) < below)
    found = heapq.nlargest(size + 1, chosen, key=_order)
    budget = PAGE_BYTES
    for n, rec in enumerate(found[:size]):
        budget -= wire_bytes(rec)
        if budget < 0 and n:
            return found[:n], found[n - 1].id
    if len(found) > size:
        return found[:size], found[size - 1].id if size else None
    return found, None


def wire_bytes(rec: Listed) -> int:
    """About how many bytes the record's view takes in a reply (an upper bound
    for the text, which is what can be large)."""
    text = (rec.name or "") + (rec.description or "") + (rec.reason or "")
    meta = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in rec.metadata.items())
    return FIXED_BYTES + len(text.encode()) + meta

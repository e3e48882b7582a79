"""Paged listing, as Cinder's ``limit`` and ``marker``: newest first, a page at a time.

A page holds at most ``PAGE_MAX`` records (Cinder's ``osapi_max_limit``) and
at most about ``PAGE_BYTES`` of them on the wire, by its caller's measure (a volume
may carry 128 metadata items, an attachment its NBD credentials), so one reply stays
below the 1 MiB frame limit however many records exist and whatever they carry.
``marker`` is the id of the last record of the previous page; the reply's
``next_marker`` is set when more records follow. Records are ordered by
(created_at, id), newest first, so pages neither repeat nor skip a record
that existed throughout the listing.

``page`` takes the records in that order from its caller, below the marker's key, and
reads only as many as it returns (and one more), so a page costs the same with a
hundred records or a million (a scan of every record took 98 ms at 100,000). Volumes,
snapshots and attachments come from the gateway's file through their listing indexes on
(created_at, id) and (project_id, created_at, id) (``volume_store.Volumes``,
``snapshot_store.SnapshotStore``, ``attachment_store.AttachmentStore``), each record as
memory holds it; a page is read in one synchronous step on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

from cinderblock.protocol.wire.errors import InvalidInput

PAGE_MAX = 1000
PAGE_BYTES = 512 * 1024
FIXED_BYTES = 512  # ids, numbers, statuses, a host and the field names of one record


class Ordered(Protocol):
    """What orders a record in a listing, and whose it is."""

    @property
    def id(self) -> str: ...
    @property
    def project_id(self) -> str: ...
    @property
    def created_at(self) -> float: ...


class Listed(Ordered, Protocol):
    """A volume or a snapshot: a record whose texts make its size on the wire."""

    @property
    def name(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, str]: ...


R = TypeVar("R", bound=Ordered)


Key = tuple[float, str]  # (created_at, id)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BoundedScan(Generic[T]):
    """What a listing found in at most a bounded number of its rows (a filter no index
    serves): ``records``, in listing order, and ``stopped_at``, the id of the last row
    it looked at when rows below it were left unread (None: it read to the end). A page
    that is not full by then ends there, and its next marker is that row's: the next
    page reads on from it, so a page costs at most that many rows however few match."""

    records: Iterable[T]
    stopped_at: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.records)


# (created_at, id) of a record (a marker's key)
_order: Callable[[Ordered], Key] = attrgetter("created_at", "id")


def page(
    find: Callable[[str], R | None],
    newest_first: Callable[[Key | None], Iterable[R] | BoundedScan[R]],
    project: str | None, matches: Callable[[R], bool], marker: str | None, limit: int | None,
    size_of: Callable[[R], int],
) -> tuple[list[R], str | None]:
    """The records of ``project`` (None: every project) that match the filter, after
    ``marker``, newest first, at most ``limit`` (and ``PAGE_MAX``) of them, and about
    ``PAGE_BYTES`` by ``size_of``; and the marker of the next page (None on the last).
    ``find`` finds a record by id; ``newest_first`` gives the records of ``project`` in
    listing order, after a key in that order (newest first, or oldest first for a
    listing asked that way: ``Volumes.listing``), or those of a ``BoundedScan``: a page
    that is not full when its rows ran out ends where they did.

    A marker that names no record of ``project`` is refused. It need not match the
    filter: a volume may change status while its lister pages on.
    """
    size = page_size(limit)
    after = marker_record(find, project, marker)
    listed = newest_first(None if after is None else _order(after))
    records, stopped_at = ((listed.records, listed.stopped_at)
                           if isinstance(listed, BoundedScan) else (listed, None))
    found: list[R] = []
    for rec in records:
        if len(found) > size:
            break
        if matches(rec):
            found.append(rec)
    return cut_page(found, size, size_of, stopped_at)


class _Named(Protocol):
    @property
    def id(self) -> str: ...


N = TypeVar("N", bound=_Named)


def cut_page(found: list[N], size: int, size_of: Callable[[N], int],
             stopped_at: str | None = None) -> tuple[list[N], str | None]:
    """A page of ``found`` (the records after the marker in listing order, ``size`` and
    one more if there are more): at most ``size`` and about ``PAGE_BYTES`` by
    ``size_of``, and the next page's marker (``stopped_at`` when ``found`` ran out)."""
    budget = PAGE_BYTES
    for n, rec in enumerate(found[:size]):
        budget -= size_of(rec)
        if budget < 0 and n:
            return found[:n], found[n - 1].id
    if len(found) > size:
        return found[:size], found[size - 1].id if size else None
    return found, stopped_at if size else None


def sort_direction(sort_dir: str | None, listed: str) -> bool:
    """Whether a listing by creation is asked oldest first: ``sort_dir`` "asc" (else
    "desc" or None, newest first); anything else is refused, naming ``listed``."""
    if sort_dir not in (None, "asc", "desc"):
        raise InvalidInput(f"sort_dir {sort_dir!r}: {listed} are ordered by creation, asc "
                           "or desc", {"sort_dir": sort_dir})
    return sort_dir == "asc"


def in_listing_order(records: Iterable[R], oldest_first: bool, beyond: Key | None
                     ) -> Iterator[R]:
    """Records held in memory (messages, transfers), in listing order by (created_at, id),
    newest first beyond (below) a marker's key, or oldest first above it: sorted, as the
    order they were kept in need not be that one (two made at the same time; a clock set
    back)."""
    for rec in sorted(records, key=_order, reverse=not oldest_first):
        if beyond is None or (_order(rec) > beyond if oldest_first else _order(rec) < beyond):
            yield rec


def read_already(scan: BoundedScan[T]) -> Callable[[Key | None], BoundedScan[T]]:
    """A page's rows read already (one in another order than by creation, ordered by
    SQLite off the loop: ``GatewayStore.sorted_page``), as ``page`` asks a listing for
    them."""
    return lambda below: scan


def marker_record(find: Callable[[str], R | None], project: str | None, marker: str | None
                  ) -> R | None:
    """The record ``marker`` names (None without one), refused unless it is one of
    ``project``'s (any project's for None)."""
    if marker is None:
        return None
    after = find(marker)
    if after is None or (project is not None and after.project_id != project):
        raise InvalidInput(f"marker {marker} not found", {"marker": marker})
    return after


def page_size(limit: int | None) -> int:
    """How many records a page of ``limit`` holds at most (``PAGE_MAX`` without one)."""
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit must be >= 0, not {limit}", {"limit": limit})
    return PAGE_MAX if limit is None else min(limit, PAGE_MAX)


class Filtered(Listed, Protocol):
    """A volume or a snapshot, as a listing's filters see it."""

    @property
    def status(self) -> StrEnum: ...


def passes_filters(rec: Filtered, status: str | None, name: str | None,
                   metadata: dict[str, str] | None) -> bool:
    """Whether ``rec``, as memory holds it, passes a listing's filters (status, name,
    metadata items): the rows' SQL finds the candidates, this says which are shown."""
    return ((status is None or rec.status.value == status)
            and (name is None or rec.name == name)
            and all(rec.metadata.get(k) == v for k, v in (metadata or {}).items()))


def wire_bytes(rec: Listed) -> int:
    """About how many bytes the record's view takes in a reply (an upper bound
    for the text, which is what can be large)."""
    text = (rec.name or "") + (rec.description or "") + (rec.reason or "")
    meta = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in rec.metadata.items())
    return FIXED_BYTES + len(text.encode()) + meta

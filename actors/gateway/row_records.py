"""Records read from their rows when asked for: what the gateway's volumes, snapshots and
attachments share (``volume_store.Volumes``, ``snapshot_store.SnapshotStore``,
``attachment_store.AttachmentStore``).

A record is read from its row (on the store's read-only connection, on the loop: an
indexed read of one row; in WAL mode a reader never waits for the writer) when it is
asked for, and stays in memory while anything holds it (a flow, a page being answered),
while a write of it is not yet committed (``writing``), and for the next ``recent``
reads after its own. So a record has one object at a time, which flows change in
place, and memory that is ahead of its row is never dropped. A new one is kept from its
create until its row is committed (``new``); one being removed, until its removal is
(``removing``: a failed removal brings it back), and meanwhile it is not found.

The read-only connection sees committed rows only: what it reads is judged against
memory first (``rows``), so a record whose newer state is not yet written is seen as
memory has it, and one being removed is not seen at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import weakref
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from cinderblock.actors.gateway.paging import BoundedScan, Key
from cinderblock.protocol.wire.errors import InvalidInput

Condition = tuple[str, tuple[Any, ...]]  # SQL with its "?"s, and their parameters
SCAN_ROWS = 10_000  # rows a page filtered by a name or metadata items looks at, at most
# A page in another order than by creation reads every row of its listing; one of a
# listing this small costs under a millisecond and is read on the loop (``SortedRead``).
SMALL_LISTING_ROWS = 1_000
# SQLite is asked for the first few items of a metadata filter only: each is a condition
# of its own (a thousand would pass SQLite's limit on an expression's depth, and each
# costs every row looked at); the caller matches every item on the records.
SQL_METADATA_ITEMS = 4
COUNT_METADATA_ITEMS = 64  # a count's metadata items, each a condition (SQLite's depth)


def named_sql(alias: str, name: str | None, metadata: dict[str, str] | None,
              items: int = SQL_METADATA_ITEMS) -> tuple[Condition, ...]:
    """Conditions no index serves: the row's name, and the first ``items`` items of its
    metadata (a JSON object of strings: the key, and a text value equal)."""
    found: list[Condition] = []
    if name is not None:
        found.append((f"{alias}name=?", (name,)))
    for key, value in list((metadata or {}).items())[:items]:
        found.append((f"EXISTS (SELECT 1 FROM json_each({alias}metadata) WHERE "
                      "json_each.key=? AND json_each.value=? AND json_each.type='text')",
                      (key, value)))
    return tuple(found)


def count_sql(select: str, alias: str, project: str | None, more: tuple[Condition, ...],
              name: str | None, metadata: dict[str, str] | None, what: str
              ) -> tuple[str, list[Any]]:
    """The statement (and its parameters) that counts ``select``'s rows (a ``count(*)``)
    of ``project`` (every project's for None) with the conditions ``more``, the name
    and every metadata item (a page's SQL takes the first few items and its records the
    rest; a count has no records to look at): Cinder's ``with_count``. More than
    ``COUNT_METADATA_ITEMS`` items are refused, as each is a condition of its own."""
    items = len(metadata or {})
    if items > COUNT_METADATA_ITEMS:
        raise InvalidInput(f"with_count counts {what} by at most {COUNT_METADATA_ITEMS} "
                           f"metadata items, not {items}", {"field": "metadata"})
    where, params = conditions_sql(alias, project,
                                   more + named_sql(alias, name, metadata, items))
    return select + (f" WHERE {' AND '.join(where)}" if where else ""), params


def conditions_sql(alias: str, project: str | None, more: tuple[Condition, ...]
                ) -> tuple[list[str], list[Any]]:
    """A listing's conditions and their parameters: its project's (none for every
    project's), then ``more``."""
    where: list[str] = []
    params: list[Any] = []
    if project is not None:
        where.append(f"{alias}project_id=?")
        params.append(project)
    for condition, values in more:
        where.append(condition)
        params.extend(values)
    return where, params


def newest_first_sql(select: str, project: str | None, below: Key | None,
                     alias: str = "", more: tuple[Condition, ...] = (),
                     down_to: Key | None = None, oldest_first: bool = False,
                     ) -> tuple[str, list[Any]]:
    """The statement (and its parameters) that lists ``select``'s rows of ``project``
    (every project's for None) newest first, below ``below`` (a marker's key) when given,
    down to ``down_to`` (a key, included) when given: through the table's listing indexes
    on (project_id, created_at, id) and (created_at, id). ``alias`` is the table's in
    ``select`` ("v."); ``more``, further conditions, each with its parameters.
    ``oldest_first``: the other way, through the same indexes read backwards (``below``
    is then the key the rows are above, and ``down_to`` the last one, included)."""
    where, params = conditions_sql(alias, project, more)
    after, through, direction = (">", "<=", "ASC") if oldest_first else ("<", ">=", "DESC")
    if below is not None:
        where.append(f"({alias}created_at, {alias}id) {after} (?, ?)")
        params.extend(below)
    if down_to is not None:
        where.append(f"({alias}created_at, {alias}id) {through} (?, ?)")
        params.extend(down_to)
    order = f" ORDER BY {alias}created_at {direction}, {alias}id {direction}"
    return select + (f" WHERE {' AND '.join(where)}" if where else "") + order, params


def sorted_sql(select: str, alias: str, project: str | None, key: tuple[str, ...],
               ascending: bool, after: tuple[tuple[Any, ...], Key] | None,
               more: tuple[Condition, ...], rows: int) -> tuple[str, list[Any]]:
    """The statement that lists ``select``'s rows of ``project`` (every project's for
    None) by ``key`` (SQL expressions, compared together as one row value), ascending or
    not, ties newest first (``created_at`` and ``id`` descending, as a listing's order),
    after ``after`` (the key's values and the (created_at, id) of the last row of the
    previous page) when given, with the conditions ``more``, at most ``rows`` of them. No
    index serves such an order: SQLite reads every row of the listing and keeps the
    first ``rows`` of them (its sort with a limit), so a caller runs it off the loop."""
    where, params = conditions_sql(alias, project, more)
    if after is not None:
        values, (created_at, last_id) = after
        row, holes = f"({', '.join(key)})", f"({', '.join('?' * len(key))})"
        beyond = ">" if ascending else "<"
        where.append(f"({row} {beyond} {holes} OR ({row} = {holes} AND "
                     f"({alias}created_at, {alias}id) < (?, ?)))")
        params.extend((*values, *values, created_at, last_id))
    direction = "ASC" if ascending else "DESC"
    order = ", ".join(f"{column} {direction}" for column in key)
    sql = (select + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {order}, {alias}created_at DESC, {alias}id DESC LIMIT ?")
    return sql, [*params, rows]


class SortedRead(NamedTuple):
    """The statement of a page in another order than by creation (``sorted_sql``), and
    whether its listing holds at most ``SMALL_LISTING_ROWS`` rows (``small``): such a
    page is read on the loop; a larger one aside, where it holds up nothing else
    (``GatewayStore.sorted_page``)."""

    sql: str
    params: list[Any]
    small: bool


class ListingSql(Protocol):
    """``newest_first_sql`` with its project, marker and order given: a select, its
    conditions and how far down, into a statement and its parameters."""

    def __call__(self, select: str, *, more: tuple[Condition, ...] = (),
                 down_to: Key | None = None) -> tuple[str, list[Any]]: ...


class Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Identified)


class Counted(Identified, Protocol):
    """A record a project's totals count (a volume, a snapshot)."""

    @property
    def project_id(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def status(self) -> Enum: ...

    @property
    def volume_type_id(self) -> str | None: ...


C = TypeVar("C", bound=Counted)
TypeTotals = Mapping[str | None, tuple[int, int]]  # volume type id -> (count, size)


@dataclass(frozen=True, slots=True)
class Totals:
    """What a project has of one kind: how many, the sum of their sizes, and one that is
    in the middle of a change (its id and status), if any."""

    count: int = 0
    size: int = 0
    busy: tuple[str, str] | None = None
    by_type: TypeTotals = field(default_factory=dict)  # the count and size, by volume type

    def __add__(self, other: Totals) -> Totals:
        by_type = dict(self.by_type)
        for type_id, (count, size) in other.by_type.items():
            had = by_type.get(type_id, (0, 0))
            by_type[type_id] = (had[0] + count, had[1] + size)
        return Totals(self.count + other.count, self.size + other.size,
                      self.busy or other.busy, by_type)


class Sortable(Counted, Protocol):
    """A record a listing may be ordered by Cinder's sort keys (a volume, a snapshot)."""

    @property
    def name(self) -> str | None: ...

    @property
    def created_at(self) -> float: ...

    @property
    def updated_at(self) -> float: ...


S = TypeVar("S", bound=Sortable)


def _sort_values(key: str, rec: Sortable) -> tuple[Any, ...]:
    """A record's values of a sort key, as ``SORT_COLUMNS`` has them of its row."""
    if key == "name":
        return (rec.name is None, rec.name or "")
    if key == "status":
        return (rec.status.value,)
    return (getattr(rec, key),)


# Orders other than by creation (Cinder's sort keys): the row's expressions ("{a}" the
# table's alias). A name that is null sorts after every name.
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "size": ("{a}size",), "name": ("{a}name IS NULL", "ifnull({a}name, '')"),
    "status": ("{a}status",), "updated_at": ("{a}updated_at",), "id": ("{a}id",),
    "created_at": ("{a}created_at",),  # (volumes page it through their indexes instead)
}


def sort_order(sort: str) -> tuple[str, bool]:
    """``key:asc`` or ``key:desc`` (``desc`` when left out) for a key of
    ``SORT_COLUMNS``: the key, and whether ascending."""
    key, _, direction = sort.partition(":")
    direction = direction or "desc"
    if key not in SORT_COLUMNS or direction not in ("asc", "desc"):
        raise InvalidInput(f"invalid sort {sort[:80]!r}: keys are "
                           f"{', '.join(sorted(SORT_COLUMNS))}, directions asc and desc",
                           {"sort": sort[:80]})
    return key, direction == "asc"


def totals_of(records: Iterable[Counted], busy: Collection[str]) -> Totals:
    """``records`` counted, as they are (a status whose value is in ``busy`` is a change
    under way)."""
    count = size = 0
    changing: tuple[str, str] | None = None
    by_type: dict[str | None, tuple[int, int]] = {}
    for rec in records:
        count += 1
        size += rec.size
        had = by_type.get(rec.volume_type_id, (0, 0))
        by_type[rec.volume_type_id] = (had[0] + 1, had[1] + rec.size)
        status = rec.status.value
        if changing is None and status in busy:
            changing = (rec.id, status)
    return Totals(count, size, changing, by_type)


class RowRecords(Generic[R]):
    """The records of one table; subclasses say how a row becomes a record
    (``from_row``) and how a held record is made its row again (``reset``)."""

    def __init__(self, read_only: Callable[[], sqlite3.Connection], select_one: str,
                 table: str, recent: int) -> None:
        self._read_only = read_only
        self._table = table
        self._select_one = select_one  # a record's row by id
        self._count_sql = f"SELECT count(*) FROM {table}"
        self._live: weakref.WeakValueDictionary[str, R] = weakref.WeakValueDictionary()
        self._recent: deque[R] = deque(maxlen=recent)
        self.new: dict[str, R] = {}  # added, row not committed yet
        self.removing: dict[str, R] = {}  # forgotten, removal not settled yet
        self._count: int | None = None  # counted when first asked for, then kept

    def from_row(self, row: Any) -> R:
        raise NotImplementedError

    def reset(self, held: R, read: R) -> None:
        """``held`` (in memory, flows hold it) made what ``read`` (its row) says."""
        raise NotImplementedError

    # ---- reads -------------------------------------------------------------
    def get(self, record_id: str) -> R | None:
        rec = self._live.get(record_id)
        if rec is not None or record_id in self.removing:
            return rec
        row = self._read_only().execute(self._select_one, (record_id,)).fetchone()
        return None if row is None else self.keep(self.from_row(row))

    def __getitem__(self, record_id: str) -> R:
        rec = self.get(record_id)
        if rec is None:
            raise KeyError(record_id)
        return rec

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and self.get(record_id) is not None

    def __len__(self) -> int:
        if self._count is None:
            (rows,) = self._read_only().execute(self._count_sql).fetchone()
            self._count = rows + len(self.new) - len(self.removing)
        return self._count

    def in_memory(self) -> dict[str, R]:
        """The records memory holds now (not those being removed)."""
        return dict(self._live.items())

    def keep(self, rec: R) -> R:
        self._live[rec.id] = rec
        self._recent.append(rec)
        return rec

    def rows(self, sql: str, params: tuple[Any, ...] | list[Any] = (), kept: bool = False
             ) -> Iterator[R]:
        """The records of the rows ``sql`` selects (id first), a row at a time (a page
        reads one past its end, no more), each as memory holds it; one being removed is
        left out. A record memory did not hold is read from its row and, if ``kept``,
        held from now on as a read by id would be (a caller that may change it)."""
        rows = self._read_only().execute(sql, params)
        try:
            yield from self.records_of(rows, kept)
        finally:
            rows.close()

    def sorted_sql(self: RowRecords[S], select: str, alias: str, project: str | None,
                   sort: str, after: S | None, more: tuple[Condition, ...], rows: int,
                   looked_at: tuple[str, list[Any]]) -> SortedRead:
        """The statement of a page in another order than by creation (``sort``, as
        ``sort_order`` reads it), after the marker's record ``after``: ``sorted_sql``. It
        reads every row of the listing (no index holds the order). ``looked_at`` selects
        through an index the rows the sort looks at, or more (the listing with the
        conditions an index serves): whether they are few (``SortedRead.small``) is read
        through it, no more than ``SMALL_LISTING_ROWS`` + 1 of them. The marker's values
        are its row's, the order the sort reads (memory may be ahead of the row: a status
        changed and not yet committed), or memory's if it has no row yet."""
        key, ascending = sort_order(sort)
        columns = tuple(column.format(a=alias) for column in SORT_COLUMNS[key])
        marker = None
        if after is not None:
            row = self._read_only().execute(self._select_one, (after.id,)).fetchone()
            as_read = after if row is None else self.from_row(row)
            marker = (_sort_values(key, as_read), (after.created_at, after.id))
        sql, params = sorted_sql(select, alias, project, columns, ascending, marker, more,
                                 rows)
        bound, bound_params = looked_at
        beyond = self._read_only().execute(f"{bound} LIMIT 1 OFFSET ?",
                                           (*bound_params, SMALL_LISTING_ROWS)).fetchone()
        return SortedRead(sql, params, beyond is None)

    def records_of(self, rows: Iterable[Any], kept: bool = False) -> Iterator[R]:
        """``rows`` (id first, as ``rows`` reads them, read elsewhere: in the database
        thread) as memory holds their records; one being removed is left out."""
        for row in rows:
            rec = self._live.get(row[0])
            if rec is None and row[0] not in self.removing:
                rec = self.from_row(row)
                if kept:
                    self.keep(rec)
            if rec is not None:
                yield rec

    def listed_rows(self, listed: ListingSql, select: str, keys: str,
                    indexed: tuple[Condition, ...], matched: tuple[Condition, ...]
                    ) -> Iterator[R] | BoundedScan[R]:
        """The records of the rows ``listed(select)`` finds with the conditions
        ``indexed`` (an index serves them) and ``matched`` (none does). With ``matched``,
        among no more than ``SCAN_ROWS`` of the rows with ``indexed`` alone: first the key
        of the last of those (``keys``: a select of id and created_at, read through the
        index), then the matching rows down to it. So a page filtered by a name or
        metadata costs the same however few rows match (``paging.BoundedScan``)."""
        if not matched:
            return self.rows(*listed(select, more=indexed))
        sql, params = listed(keys, more=indexed)
        last = self._read_only().execute(f"{sql} LIMIT 2 OFFSET ?",
                                         (*params, SCAN_ROWS - 1)).fetchall()
        down_to = (last[0][1], last[0][0]) if last else None
        records = self.rows(*listed(select, more=indexed + matched, down_to=down_to))
        return BoundedScan(records, last[0][0] if len(last) == 2 else None)

    def totals(self: RowRecords[C], project: str, busy: Collection[str]) -> Totals:
        """``project``'s records at this instant, as memory holds them (``totals_of``):
        those memory holds are counted from memory, and the rows of the rest by SQLite,
        through the project's index, no record made; one being removed is not counted.
        A project's whole count without a record per row: a quota sync of a million
        volumes holds the loop for the rows' sum, not for a million records."""
        held = [rec for rec in list(self._live.values()) if rec.project_id == project]
        skipped = [rec.id for rec in held]
        skipped += [rid for rid, rec in self.removing.items() if rec.project_id == project]
        marks = ", ".join("?" * len(busy)) or "NULL"
        rows = self._read_only().execute(
            "SELECT volume_type_id, count(*), total(size), "
            f"max(CASE WHEN status IN ({marks}) THEN id END) "
            f"FROM {self._table} WHERE project_id=? "
            "AND id NOT IN (SELECT value FROM json_each(?)) GROUP BY volume_type_id",
            (*busy, project, json.dumps(skipped))).fetchall()
        by_type = {type_id: (count, int(size)) for type_id, count, size, _ in rows}
        changing = next((row[3] for row in rows if row[3] is not None), None)
        busy_row: tuple[str, str] | None = None
        if changing is not None:
            (status,) = self._read_only().execute(
                f"SELECT status FROM {self._table} WHERE id=?", (changing,)).fetchone()
            busy_row = (changing, status)
        counted = Totals(sum(c for c, _ in by_type.values()),
                         sum(s for _, s in by_type.values()), busy_row, by_type)
        return totals_of(held, busy) + counted

    # ---- changes -----------------------------------------------------------
    def added(self, rec: R) -> None:
        """A new record: in memory until its row is committed (``written``), and after."""
        self.keep(rec)
        self.new[rec.id] = rec
        if self._count is not None:
            self._count += 1

    def written(self, rec: R) -> None:
        if self.new.get(rec.id) is rec:
            del self.new[rec.id]

    def forget(self, rec: R) -> bool:
        """No longer found (its create failed, or it is being removed); whether it was."""
        self.written(rec)
        if self._live.get(rec.id) is not rec:
            return False
        del self._live[rec.id]
        if self._count is not None:
            self._count -= 1
        return True

    def removed(self, rec: R, written: asyncio.Future[None]) -> None:
        """``rec`` is being removed by ``written``: not found meanwhile, and brought back
        if that write fails (``read_back``)."""
        self.forget(rec)
        self.removing[rec.id] = rec
        written.add_done_callback(partial(_settled_removal, self.removing, rec))

    @staticmethod
    def writing(rec: R, done: asyncio.Future[None]) -> asyncio.Future[None]:
        """Keep ``rec`` in memory at least until ``done`` (a write of it) is settled: the
        future holds it, in a callback that has nothing else to do."""
        done.add_done_callback(partial(_held, rec))
        return done

    def read_back(self) -> None:
        """On the loop, after a failed write: every record memory holds (and every one
        being removed) made what its row says, in place (flows hold them); one with no
        row is dropped."""
        held = {**self.removing, **self.in_memory()}
        self.removing, self.new, self._count = {}, {}, None
        for record_id, rec in held.items():
            row = self._read_only().execute(self._select_one, (record_id,)).fetchone()
            if row is None:
                if self._live.get(record_id) is rec:
                    del self._live[record_id]
                continue
            self.reset(rec, self.from_row(row))
            self.keep(rec)


def _held(rec: Any, written: asyncio.Future[None]) -> None:
    """Nothing to do: the callback holds ``rec`` in memory until its write is settled."""


def _settled_removal(removing: dict[str, R], rec: R, written: asyncio.Future[None]) -> None:
    """A removal's batch ended (committed, or failed and memory read back from the file):
    the record no longer needs bringing back."""
    if removing.get(rec.id) is rec:
        del removing[rec.id]

"""Paged listings: newest first, by limit and marker, never over a page's bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from cinderblock.actors.gateway.paging import (
    PAGE_BYTES,
    PAGE_MAX,
    BoundedScan,
    Key,
    page,
    wire_bytes,
)
from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.messages.pages import page_after, page_within
from cinderblock.protocol.wire.errors import InvalidInput


@dataclass
class Rec:
    id: str
    created_at: float
    project_id: str = "p"
    status: str = "available"
    name: str | None = None
    description: str | None = None
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def book(n: int, **kw: object) -> dict[str, Rec]:
    # pairs share a created_at, so the id must break the tie
    return {f"v{i:05d}": Rec(f"v{i:05d}", float(i // 2), **kw) for i in range(n)}  # type: ignore[arg-type]


def everyone(rec: Rec) -> bool:
    return True


def newest_first(records: dict[str, Rec], project: str | None
                 ) -> Callable[[Key | None], Iterator[Rec]]:
    """What a store's listing index gives ``page``: the project's records newest first,
    below a key."""
    ordered = sorted((r for r in records.values() if project in (None, r.project_id)),
                     key=lambda r: (r.created_at, r.id), reverse=True)

    def below(key: Key | None) -> Iterator[Rec]:
        return (r for r in ordered if key is None or (r.created_at, r.id) < key)
    return below


def listed(records: dict[str, Rec], marker: str | None = None, limit: int | None = None,
           matches: Callable[[Rec], bool] = everyone, project: str | None = None,
           ) -> tuple[list[str], str | None]:
    found, nxt = page(records.get, newest_first(records, project), project,
                      matches, marker, limit, wire_bytes)
    return [r.id for r in found], nxt


def test_pages_walk_every_record_once_newest_first_with_ties_broken_by_id() -> None:
    records = book(25)
    seen: list[str] = []
    marker: str | None = None
    while True:
        ids, marker = listed(records, marker, limit=4)
        seen += ids
        if marker is None:
            break
    assert seen == sorted(records, reverse=True)


def test_a_page_never_holds_more_than_page_max() -> None:
    records = book(PAGE_MAX + 5)
    ids, marker = listed(records)
    assert len(ids) == PAGE_MAX and marker == ids[-1]
    rest, marker = listed(records, marker, limit=10_000)
    assert len(rest) == 5 and marker is None


def test_big_metadata_cuts_a_page_short_of_the_frame_limit() -> None:
    meta = {f"key-{i:03d}": "x" * 255 for i in range(128)}
    records = book(100, metadata=meta)
    ids, marker = listed(records)
    assert 0 < len(ids) < 100 and marker == ids[-1]
    assert sum(wire_bytes(records[i]) for i in ids) <= PAGE_BYTES


def test_limit_zero_is_empty_and_a_negative_limit_or_unknown_marker_is_refused() -> None:
    records = book(3)
    assert listed(records, limit=0) == ([], None)
    with pytest.raises(InvalidInput, match="limit must be >= 0"):
        listed(records, limit=-1)
    with pytest.raises(InvalidInput, match="marker nope not found"):
        listed(records, "nope")


def test_a_marker_of_another_project_is_not_found() -> None:
    records = book(3)
    records["v00001"].project_id = "other"
    with pytest.raises(InvalidInput, match="not found"):
        listed(records, "v00001", project="p")
    assert listed(records, "v00001")[0] == ["v00000"], "an admin's all-projects page sees it"


def test_a_project_lists_only_its_own_records_in_order() -> None:
    records = book(10)
    for rid in ("v00002", "v00005", "v00007"):
        records[rid].project_id = "other"
    assert listed(records, project="other") == (["v00007", "v00005", "v00002"], None)
    assert listed(records, project="p", limit=3) == (["v00009", "v00008", "v00006"], "v00006")


def test_a_page_reads_only_the_records_it_returns_whatever_the_store_holds() -> None:
    records = book(100_000)
    read: list[str] = []

    def counting(rec: Rec) -> bool:
        read.append(rec.id)
        return True

    found, marker = page(records.get, newest_first(records, "p"), "p", counting, "v50000",
                         20, wire_bytes)
    assert len(found) == 20 and marker == found[-1].id
    assert len(read) == 21, "one record past the page tells whether another page follows"


def test_the_marker_need_not_match_the_filter() -> None:
    records = book(6)
    creating = {"v00005", "v00003", "v00001"}
    for rid in creating:
        records[rid].status = "creating"
    ids, _ = listed(records, limit=1, matches=lambda r: r.status == "creating")
    assert ids == ["v00005"]
    records["v00005"].status = "available"  # changed between pages
    ids, _ = listed(records, "v00005", matches=lambda r: r.status == "creating")
    assert ids == ["v00003", "v00001"]


async def test_read_pages_follows_markers_and_stops_at_the_limit() -> None:
    records = book(11)
    asked: list[tuple[int | None, str | None]] = []

    async def fetch(left: int | None, marker: str | None) -> tuple[list[str], str | None]:
        asked.append((left, marker))
        ids, nxt = listed(records, marker, 3 if left is None else min(left, 3))
        return ids, nxt

    assert await read_pages(fetch, None, None) == sorted(records, reverse=True)
    assert len(asked) == 4
    assert await read_pages(fetch, 5, None) == sorted(records, reverse=True)[:5]
    assert await read_pages(fetch, 0, None) == []


def test_a_bounded_scan_ends_a_page_where_its_rows_ran_out_and_the_next_reads_on() -> None:
    """A listing that looks at no more than 7 rows a page (a filter no index serves):
    a page that is not full by then ends at the last row it looked at, whether or not
    that row matched; paging on finds every match once, in order; a limit of 0 has no
    next page."""
    records = book(50)
    wanted = {f"v{i:05d}" for i in (48, 47, 30, 3, 2, 0)}
    ordered = newest_first(records, None)
    looked: list[int] = []

    def bounded(key: Key | None) -> BoundedScan[Rec]:
        rows = list(ordered(key))
        looked.append(min(len(rows), 7))
        return BoundedScan((r for r in rows[:7] if r.id in wanted),
                           rows[6].id if len(rows) > 7 else None)

    def one(marker: str | None, limit: int | None) -> tuple[list[str], str | None]:
        found, nxt = page(records.get, bounded, None, lambda r: True, marker, limit,
                          wire_bytes)
        return [r.id for r in found], nxt

    assert one(None, 20) == (["v00048", "v00047"], "v00043")  # 7 rows looked at
    assert one("v00043", 20) == ([], "v00036")  # none matched: an empty page, and on
    assert one(None, 1) == (["v00048"], "v00048")  # full before its rows ran out
    assert one(None, 0) == ([], None)

    async def pages(left: int | None, marker: str | None) -> tuple[list[str], str | None]:
        return one(marker, left)

    looked.clear()
    assert asyncio.run(read_pages(pages, None, None)) == sorted(wanted, reverse=True)
    assert max(looked) == 7 and sum(looked) == 50  # every row looked at once


def test_page_after_takes_the_first_items_past_a_key_and_says_where_to_go_on() -> None:
    names = ["c", "a", "d", "b"]
    assert page_after(names, str, None, 2) == (["a", "b"], "b")
    assert page_after(names, str, "b", 2) == (["c", "d"], None)
    assert page_after(names, str, "d", 2) == ([], None)
    assert page_after(names, str, None, 0) == ([], None)  # an empty page names no next


def test_page_within_stops_at_its_bytes_but_never_before_one_item() -> None:
    sizes = {"a": 300, "b": 300, "c": 300, "d": 2000}
    assert page_within(sizes, str, None, 10, sizes.__getitem__, 700) == (["a", "b"], "b")
    assert page_within(sizes, str, "b", 10, sizes.__getitem__, 700) == (["c"], "c")
    assert page_within(sizes, str, "c", 10, sizes.__getitem__, 700) == (["d"], None)  # alone
    assert page_within(sizes, str, None, 1, sizes.__getitem__, 700) == (["a"], "a")  # limit
    pages, marker = [], None
    while True:  # every item once, in order
        page, marker = page_within(sizes, str, marker, 10, sizes.__getitem__, 700)
        pages.append(page)
        if marker is None:
            break
    assert pages == [["a", "b"], ["c"], ["d"]]

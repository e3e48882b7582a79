"""Snapshots read from gateway.db when asked for: each read through its own index, a
record held while anything holds it (one object per snapshot, memory ahead of its row
never dropped), pages and a project's snapshots from the file, new ones included where
they must be."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.gateway import row_records, snapshot_store
from cinderblock.actors.gateway.paging import BoundedScan, page, wire_bytes
from cinderblock.actors.gateway.row_records import newest_first_sql
from cinderblock.actors.gateway.snapshot_store import (
    IN_TRANSITION_SINCE,
    SELECT_OF_VOLUME,
    SELECT_SNAPSHOT,
    SELECT_SNAPSHOTS,
    SnapshotRecord,
)
from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION, VolumeRecord
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from tests.conftest import listing_plan, open_gateway_store, query_plan

P = SnapshotStatus


def snapshot(sid: str, vid: str, created_at: float, project: str = "demo",
             status: SnapshotStatus = P.AVAILABLE) -> SnapshotRecord:
    return SnapshotRecord(sid, project, "alice", vid, 1, status, host="node-1@file",
                          created_at=created_at)


async def test_each_read_of_a_snapshot_goes_through_its_own_index(tmp_path: Path) -> None:
    """Not a timing: the plans SQLite makes for the store's reads, on a file with rows."""
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(50):
            await store.snapshots.add(snapshot(f"snap-{n}", f"vol-{n % 5}", now - n))
        reader = store.read_only()

        plan, listing = partial(query_plan, reader), partial(listing_plan, reader)

        assert "sqlite_autoindex_snapshots_1 (id=?)" in plan(SELECT_SNAPSHOT, "snap-1")
        assert "snapshots_volume (volume_id=?)" in plan(SELECT_OF_VOLUME, "vol-1")
        own = listing(newest_first_sql(SELECT_SNAPSHOTS, "demo", (now, "snap-9")))
        assert "snapshots_project_listing (project_id=? AND (created_at,id)<(?,?))" in own
        every = listing(newest_first_sql(SELECT_SNAPSHOTS, None, None))
        assert "snapshots_listing" in every
        assert "TEMP B-TREE" not in every + own  # no sort
        assert "snapshots_in_transition (updated_at<?)" in plan(IN_TRANSITION_SINCE, now, 5)

        def statement(**filters: Any) -> str:
            """The plan of the page's statement the store runs (its parameters inlined)."""
            sql: list[str] = []
            reader.set_trace_callback(sql.append)
            list(store.snapshots.newest_first(filters.pop("project"), (now, "x"), **filters))
            reader.set_trace_callback(None)
            (page,) = [q for q in sql if q.startswith("SELECT")]
            return plan(page)

        assert "snapshots_volume (volume_id=?)" in statement(project="demo", volume_id="vol-1"), \
            "a volume's snapshots through its index, not a scan of the project's"
        assert "snapshots_volume (volume_id=?)" in statement(
            project="demo", volume_id="vol-1", status="error")
        own_error = statement(project="demo", status="error")
        assert ("snapshots_project_status_listing (project_id=? AND status=? AND "
                "(created_at,id)<(?,?))") in own_error, own_error
        every_error = statement(project=None, status="error")
        assert "snapshots_status_listing (status=? AND (created_at,id)<(?,?))" in every_error
        assert "TEMP B-TREE" not in own_error + every_error


async def test_a_snapshot_keeps_its_volume_s_image_metadata_until_it_is_removed(
    tmp_path: Path,
) -> None:
    """The copy of its volume's image metadata a snapshot is made with (a row only when
    there is some), read back after a restart, gone with the snapshot; and counts."""
    now = time.time()
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await store.snapshots.add(snapshot("snap-img", "vol-1", now), None, {"os_type": "linux"})
        await store.snapshots.add(snapshot("snap-plain", "vol-1", now - 1), None, {})
        await store.snapshots.add(snapshot("snap-gone", "vol-2", now - 2), None, {"a": "b"})
        await store.snapshots.remove(store.snapshots["snap-gone"])
        assert await store.snapshots.count("demo", "vol-1", None, None, None, "demo") == 2
        assert await store.snapshots.count(None, None, "error", None, None, "demo") == 0
    async with open_gateway_store(path) as again:
        assert again.snapshots.image_metadata("snap-img") == {"os_type": "linux"}
        assert again.snapshots.image_metadata("snap-plain") == {}
        rows = again.read_only().execute("SELECT id FROM snapshot_image_metadata").fetchall()
        assert rows == [("snap-img",)]


async def test_a_snapshot_is_one_record_while_held_and_memory_ahead_of_its_row_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(snapshot_store, "RECENT", 1)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        snapshots = store.snapshots
        for n in range(3):
            await snapshots.add(snapshot(f"snap-{n}", "vol-a", now + n))
        held = snapshots["snap-0"]
        assert snapshots.of_volume("vol-a")[0] is held  # the same object, by volume too
        held.move(P.DELETING)  # memory ahead of its row, as a flow leaves it
        saving = asyncio.ensure_future(snapshots.save_status(held))
        await asyncio.sleep(0)  # the write is queued, not committed
        del held
        snapshots.get("snap-1")
        snapshots.get("snap-2")  # snap-0 is no longer among the recent reads
        gc.collect()
        assert snapshots["snap-0"].status is P.DELETING, "a record whose write is pending"
        await saving
        gc.collect()
        assert snapshots["snap-0"].status is P.DELETING  # read from its row again


async def test_pages_and_a_projects_snapshots_come_from_the_file(tmp_path: Path) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        snapshots = store.snapshots
        for n in range(5):
            await snapshots.add(snapshot(f"snap-{n}", f"vol-{n % 2}", now + n))
        await snapshots.add(snapshot("theirs", "vol-t", now + 9, project="other"))
        await snapshots.remove(snapshots["snap-3"])

        def listed(project: str | None, marker: str | None, volume_id: str | None = None
                   ) -> tuple[list[str], str | None]:
            found, after = page(snapshots.get,
                                partial(snapshots.newest_first, project, volume_id=volume_id),
                                project, lambda rec: True, marker, 2, wire_bytes)
            return [rec.id for rec in found], after

        assert listed("demo", None) == (["snap-4", "snap-2"], "snap-2")
        assert listed("demo", "snap-2") == (["snap-1", "snap-0"], None)
        assert listed(None, None) == (["theirs", "snap-4"], "snap-4")
        assert listed("demo", None, "vol-0") == (["snap-4", "snap-2"], "snap-2")

        adding = asyncio.ensure_future(snapshots.add(snapshot("snap-new", "vol-0", now + 20)))
        await asyncio.sleep(0)  # queued, not committed: counted for quota, not yet listed
        assert snapshots.totals("demo", ("creating",)) == row_records.Totals(
            5, 5, by_type={None: (5, 5)})
        assert [s.id for s in snapshots.of_volume("vol-0")] == [
            "snap-0", "snap-2", "snap-4", "snap-new"]
        assert listed("demo", None)[0] == ["snap-4", "snap-2"]
        await adding
        assert listed("demo", None)[0] == ["snap-new", "snap-4"]


async def test_snapshots_are_filtered_by_name_and_metadata_a_bounded_number_of_rows_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cinder's snapshot filters ``name`` and ``metadata`` (the REST front had ignored
    them, and listed every snapshot): matched by SQLite in no more than ``SCAN_ROWS``
    rows a page (here 5), as volumes' are; a volume's snapshots through its index."""
    monkeypatch.setattr(row_records, "SCAN_ROWS", 5)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(12):
            rec = snapshot(f"snap-{n:02d}", f"vol-{n % 2}", now - n)
            rec.name, rec.metadata = ("nightly" if n % 4 == 0 else f"s{n}"), {"n": str(n % 3)}
            await store.snapshots.add(rec)
        snapshots = store.snapshots

        def every(**filters: Any) -> list[list[str]]:
            got, marker = [], None
            while True:
                found, marker = page(snapshots.get, partial(snapshots.newest_first, "demo",
                                                            **filters), "demo",
                                     lambda rec: True, marker, 20, wire_bytes)
                got.append([rec.id for rec in found])
                if marker is None:
                    return got

        assert every(name="nightly") == [["snap-00", "snap-04"], ["snap-08"], []]
        assert every(metadata={"n": "2"}) == [["snap-02"], ["snap-05", "snap-08"],
                                              ["snap-11"]]
        assert every(name="nightly", metadata={"n": "1"}) == [["snap-04"], [], []]
        assert every(volume_id="vol-0", name="nightly") == [["snap-00", "snap-04",
                                                              "snap-08"]]


async def test_snapshots_are_filtered_by_their_volumes_zone_through_the_volumes_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cinder's snapshot filter ``availability_zone`` (its volume's): in a bounded
    number of rows a page, sorted or counted too; each row's volume found by its key,
    never a scan of the volumes."""
    monkeypatch.setattr(row_records, "SCAN_ROWS", 5)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n, zone in enumerate(("nova", "east", "nova")):
            await store.add_volume(VolumeRecord(
                f"vol-{n}", "demo", "alice", 1, VolumeStatus.AVAILABLE, VolumeType("t", "t"),
                zone, created_at=now))
        for n in range(12):
            await store.snapshots.add(snapshot(f"snap-{n:02d}", f"vol-{n % 3}", now - n))
        snapshots = store.snapshots

        def every(**filters: Any) -> list[str]:
            got, marker = [], None
            while True:
                found, marker = page(snapshots.get, partial(snapshots.newest_first, "demo",
                                                            **filters), "demo",
                                     lambda rec: True, marker, 20, wire_bytes)
                got += [rec.id for rec in found]
                if marker is None:
                    return got

        east = [f"snap-{n:02d}" for n in range(12) if n % 3 == 1]
        assert every(availability_zone="east") == east
        assert every(availability_zone="nova") == [
            f"snap-{n:02d}" for n in range(12) if n % 3 != 1]
        assert every(availability_zone="west") == []
        assert every(availability_zone="east", volume_id="vol-1") == east
        assert every(availability_zone="east", volume_id="vol-0") == []
        assert await snapshots.count("demo", None, None, None, None, "demo",
                                     availability_zone="east") == 4
        read = snapshots.sorted_listing("demo", "created_at:asc", None, None, None, None,
                                        None, 20, availability_zone="east")
        found = store.read_only().execute(read.sql, read.params).fetchall()
        assert [row[0] for row in found] == east[::-1]
        plan = query_plan(store.read_only(), read.sql, *read.params)
        assert "SEARCH volumes USING INDEX sqlite_autoindex_volumes_1 (id=?)" in plan, plan
        assert "SCAN volumes" not in plan, plan


def _read(scan: BoundedScan[SnapshotRecord], below: Any) -> BoundedScan[SnapshotRecord]:
    return scan


@pytest.mark.parametrize("small_listing_rows", [1000, 0])  # read on the loop, or aside
@pytest.mark.parametrize("sort", ["name:asc", "name:desc", "size:desc", "created_at:asc",
                                  "status:asc"])
async def test_snapshots_sorted_by_another_key_page_as_the_whole_listing_sorts(
    tmp_path: Path, sort: str, small_listing_rows: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_records, "SMALL_LISTING_ROWS", small_listing_rows)
    now = time.time()
    names = [None, "b", "a", "b", None, "c"]
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        snapshots = store.snapshots
        for n, name in enumerate(names):
            rec = snapshot(f"snap-{n}", f"vol-{n % 2}", now + n // 2,
                           status=P.ERROR if n % 3 == 0 else P.AVAILABLE)
            rec.name, rec.size = name, 1 + n % 3
            await snapshots.add(rec)
        await snapshots.add(snapshot("theirs", "vol-t", now, project="other"))
        key, _, direction = sort.partition(":")
        newest = [rec.id for rec in snapshots.newest_first("demo", None)]

        def value(sid: str) -> tuple[bool, Any]:
            got = getattr(snapshots[sid], key)
            got = got.value if isinstance(got, P) else got
            return (got is None, got or "")

        seen: list[str] = []
        marker: str | None = None
        while True:
            after = None if marker is None else snapshots[marker]
            scan = await store.sorted_page(snapshots, snapshots.sorted_listing(
                "demo", sort, after, None, None, None, None, 3), 2, "demo")
            found, marker = page(snapshots.get, partial(_read, scan), "demo",
                                 lambda rec: True, marker, 2, wire_bytes)
            seen += [rec.id for rec in found]
            if marker is None:
                break
        assert seen == sorted(newest, key=value, reverse=direction == "desc")
        scan = await store.sorted_page(snapshots, snapshots.sorted_listing(
            "demo", sort, None, "vol-1", None, None, None, 11), 10, "demo")
        assert [rec.id for rec in scan] == [s for s in seen if s in {"snap-1", "snap-3",
                                                                     "snap-5"}]
        # whether a page is read on the loop: by the rows it looks at, through an index
        monkeypatch.setattr(row_records, "SMALL_LISTING_ROWS", 3)
        listing = partial(snapshots.sorted_listing, "demo", sort, None)
        assert listing("vol-1", None, None, None, 11).small  # 3 of the volume's
        assert not listing(None, None, None, None, 11).small  # 6 of the project's
        assert listing(None, "error", None, None, 11).small  # 2 in error
        plan = query_plan(store.read_only(), f"{snapshot_store.SELECT_OF_VOLUME_IDS} "
                          "LIMIT 1 OFFSET ?", "vol-1", 3)
        assert "snapshots_volume (volume_id=?)" in plan, plan


async def test_a_version_10_file_gets_unmanaging_in_its_partial_index(tmp_path: Path) -> None:
    """Version 11 counts a snapshot's ``unmanaging`` among the statuses in transition: a
    file of version 10 has the partial index made again with it, so the reconciler finds
    an unmanage left behind (its query names the index, which without the migration
    would not hold the status: SQLite would refuse the query)."""
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await store.snapshots.add(snapshot("snap-x", "vol-1", 1.0, status=P.UNMANAGING))
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX snapshots_in_transition;"
        "CREATE INDEX snapshots_in_transition ON snapshots (updated_at) WHERE status IN "
        "('creating', 'deleting'); PRAGMA user_version=10;")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as again:
        stuck = [rec.id for rec in again.snapshots.in_transition_since(time.time() + 60, 10)]
        found = again.read_only().execute("PRAGMA user_version").fetchone()[0]
    assert (stuck, found) == (["snap-x"], SCHEMA_VERSION)

"""The gateway's volume store on a real file: what a start loads, what a request id
names and for how long (a snapshot's too), and what a volume costs in memory."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import json
import math
import random
import sqlite3
import time
import tracemalloc
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.gateway import row_records, volume_store
from cinderblock.actors.gateway.guards import REQUEST_ID_TTL_S, fingerprint, stored_fingerprint
from cinderblock.actors.gateway.lost_casts import CreateRoute
from cinderblock.actors.gateway.paging import BoundedScan, page, wire_bytes
from cinderblock.actors.gateway.quota_sync import SNAPSHOT_BUSY, VOLUME_BUSY
from cinderblock.actors.gateway.row_records import newest_first_sql
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import (
    IN_TRANSITION_SINCE,
    MADE_BY,
    SCHEMA_VERSION,
    SELECT_LISTING_KEYS,
    SELECT_SOURCES_OF_CREATING,
    SELECT_UNLIKE_ATTACHMENTS,
    SELECT_VOLUME,
    SELECT_VOLUMES,
    GatewayStore,
    VolumeMatch,
    VolumeRecord,
)
from cinderblock.actors.rest.views import iso
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import dump
from tests.conftest import SLOW_COUNT, listing_plan, open_gateway_store, query_plan

PLAIN = VolumeType("type-plain", "plain")


def volume(vid: str, created_at: float, request_id: str = "", **kw: object) -> VolumeRecord:
    fields: dict[str, object] = {
        "id": vid, "project_id": "demo", "user_id": "alice", "size": 1,
        "status": VolumeStatus.AVAILABLE, "volume_type": PLAIN, "availability_zone": "nova",
        "host": "node-1@file", "created_at": created_at, "request_id": request_id,
        "request_fp": fingerprint(VolumeCreate(size=1)) if request_id else "", **kw}
    return VolumeRecord(**fields)  # type: ignore[arg-type]


async def test_a_request_id_names_its_volume_for_a_day_and_then_makes_a_new_one(
    tmp_path: Path,
) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.add_volume(volume("vol-new", now - 60, "req-new"))
        await store.add_volume(volume("vol-old", now - REQUEST_ID_TTL_S - 60, "req-old"))

        made = store.made_by("demo", "req-new")
        assert made is not None
        assert made[0].id == "vol-new"
        assert made[1] == fingerprint(VolumeCreate(size=1))
        assert store.made_by("demo", "req-old") is None  # a day old: forgotten
        assert store.made_by("other", "req-new") is None  # another project's id
        assert store.volumes["vol-new"].request_id == ""  # the row keeps it, not memory


async def test_a_request_id_of_a_removed_volume_names_nothing(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        rec = volume("vol-1", time.time(), "req-1")
        await store.add_volume(rec)
        await store.remove_volume(rec)

        assert store.made_by("demo", "req-1") is None


def snapshot(sid: str, created_at: float, request_id: str) -> SnapshotRecord:
    return SnapshotRecord(id=sid, project_id="demo", user_id="alice", volume_id="vol-1",
                          size=1, status=SnapshotStatus.AVAILABLE, created_at=created_at,
                          request_id=request_id, request_fp=f"fp-{request_id}")


async def test_a_snapshot_manage_keeps_its_name_while_it_is_creating(tmp_path: Path) -> None:
    """What a gateway started again needs to send a snapshot manage again
    (``create_routes``): the name it adopts, kept while the snapshot is ``creating``
    and dropped with the write that settles it (or by the start after, if that write
    was not this process's); a plain snapshot keeps none."""
    path = tmp_path / "gateway.db"
    now = time.time()
    creating = partial(dataclasses.replace, status=SnapshotStatus.CREATING)
    async with open_gateway_store(path) as store:
        await store.snapshots.add(creating(snapshot("snap-m", now, "req-m")),
                                  route=CreateRoute(manage_ref="data-1").to_row())
        await store.snapshots.add(creating(snapshot("snap-p", now, "req-p")))
        await store.snapshots.add(snapshot("snap-done", now, "req-d"),
                                  route=CreateRoute(manage_ref="data-2").to_row())
    async with open_gateway_store(path) as again:
        await again.load_volumes({})
        left = again.snapshots.create_left("snap-m")
        assert left is not None and left[0] == "req-m"
        assert CreateRoute.from_row(left[1]).manage_ref == "data-1"
        assert again.snapshots.create_left("snap-p") == ("req-p", None)
        await again.db.settled()  # the start's drop of the settled creates' routes
        assert await again.db.fetchall("SELECT id FROM create_routes") == [("snap-m",)]
        await again.snapshots.add(creating(snapshot("snap-n", now, "req-n")),
                                  route=CreateRoute(manage_ref="data-3").to_row())
        made = again.snapshots["snap-n"]
        made.status = SnapshotStatus.AVAILABLE  # its node adopted it
        await again.snapshots.queue_status(made)
        assert await again.db.fetchall("SELECT id FROM create_routes") == [("snap-m",)]


async def test_a_snapshot_request_id_names_its_snapshot_for_a_day_from_the_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        snapshots = store.snapshots
        adding = asyncio.ensure_future(snapshots.add(snapshot("snap-new", now - 60, "req-new")))
        await asyncio.sleep(0)  # its row is queued, not yet committed: found in memory
        assert snapshots.made_by("demo", "req-new") == (snapshots["snap-new"],
                                                        "fp-req-new")
        await adding
        await snapshots.add(snapshot("snap-old", now - REQUEST_ID_TTL_S - 60, "req-old"))
        gone = snapshot("snap-gone", now - 30, "req-gone")
        await snapshots.add(gone)
        await snapshots.remove(gone)

        new = snapshots["snap-new"]
        assert snapshots.made_by("demo", "req-new") == (new, "fp-req-new")  # from the row
        assert new.request_id == "" and new.request_fp == ""  # not held in memory
        assert snapshots.made_by("demo", "req-old") is None  # a day old: forgotten
        assert snapshots.made_by("other", "req-new") is None  # another project's id
        assert snapshots.made_by("demo", "req-gone") is None  # its snapshot was deleted

    async with open_gateway_store(path) as again:  # a start loads records without them
        await again.load_volumes({})
        loaded = again.snapshots["snap-new"]
        assert loaded.request_id == "" and loaded.request_fp == ""
        assert again.snapshots.made_by("demo", "req-new") == (loaded, "fp-req-new")


async def test_the_volumes_in_transition_come_from_the_index_oldest_first(
    tmp_path: Path,
) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for vid, status, age in (("old-creating", VolumeStatus.CREATING, 900),
                                 ("new-creating", VolumeStatus.CREATING, 5),
                                 ("old-deleting", VolumeStatus.DELETING, 1200),
                                 ("old-available", VolumeStatus.AVAILABLE, 3000),
                                 ("old-extending", VolumeStatus.EXTENDING, 600)):
            await store.add_volume(volume(vid, now - age, status=status))
        await store.snapshots.add(snapshot("snap-available", now - 800, ""))
        await store.snapshots.add(dataclasses.replace(
            snapshot("snap-creating", now - 700, ""), status=SnapshotStatus.CREATING))

        found = store.in_transition_since(now - 60, 10)
        assert [r.id for r in found] == ["old-deleting", "old-creating", "old-extending"]
        assert [r.id for r in store.in_transition_since(now - 60, 2)] == [
            "old-deleting", "old-creating"]
        assert [r.id for r in store.snapshots.in_transition_since(now - 60, 10)] == [
            "snap-creating"]
        plan = store.read_only().execute(f"EXPLAIN QUERY PLAN {IN_TRANSITION_SINCE}",
                                         (now, 10)).fetchall()
        assert "COVERING INDEX volumes_unsettled (status=?)" in str(plan)  # not a million


async def test_a_start_loads_every_volume_in_listing_order_with_what_it_carries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        await store.add_type(PLAIN)
        for n, created in enumerate((now - 5, now - 50, now - 1, now - 30)):  # out of order
            await store.add_volume(volume(f"vol-{n}", created, f"req-{n}", size=n + 1))
        named = store.volumes["vol-2"]
        named.name, named.metadata, named.bootable = "boot", {"k": "v"}, True
        await store.save_details(named)

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        newest_first = [rec.id for rec in again.volumes.listing("demo", None)]
        one, other = again.volumes["vol-0"], again.volumes["vol-1"]
        made = again.made_by("demo", "req-3")

    assert newest_first == ["vol-2", "vol-0", "vol-3", "vol-1"]
    assert again.volumes["vol-2"].view() == named.view()
    assert one.project_id is other.project_id and one.host is other.host  # held once
    assert one.metadata == {} and one.volume_type is PLAIN
    assert made is not None and made[0] is again.volumes["vol-3"]


async def test_a_volume_made_bootable_keeps_the_flag_across_a_restart(tmp_path: Path) -> None:
    """A managed volume may be made bootable from the start: its flag is written with
    its row, not only by a later change."""
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await store.add_type(PLAIN)
        await store.add_volume(volume("vol-boot", time.time(), bootable=True))
    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        assert again.volumes["vol-boot"].bootable


async def test_a_start_reads_the_sources_only_of_the_copies_still_being_made(
    tmp_path: Path,
) -> None:
    """A copy still ``creating`` locks its source across a restart; one made earlier
    locks nothing and is not read at start (a cloud cloned from a few images holds a
    source row for most volumes)."""
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        await store.add_type(PLAIN)
        await store.add_volume(volume("vol-src", now - 9))
        for n, status in enumerate((VolumeStatus.CREATING, VolumeStatus.AVAILABLE)):
            await store.add_volume(volume(f"copy-{n}", now - n, status=status,
                                          source_volid="vol-src"))

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        clones = {source: set(ids) for source, ids in again.snapshots.clones.items()}
        holders = again.snapshots.copying_from("vol-src", again.volumes.get)
        plan = str(again.read_only().execute(
            f"EXPLAIN QUERY PLAN {SELECT_SOURCES_OF_CREATING}").fetchall())
        done = again.volumes["copy-1"]

    assert clones == {"vol-src": {"copy-0"}}
    assert holders == ["copy-0"]
    assert done.source_volid == "vol-src"  # its row still says where it came from
    assert "volumes_unsettled (status=?)" in plan, plan


def test_a_fingerprint_kept_as_json_by_an_older_row_still_matches_its_request() -> None:
    body = VolumeCreate(size=3, name="x")
    legacy = _legacy_json(body)

    assert stored_fingerprint(legacy) == fingerprint(body)
    assert stored_fingerprint(fingerprint(body)) == fingerprint(body)
    assert len(fingerprint(body)) == 32


def _legacy_json(body: VolumeCreate) -> str:
    """What ``fingerprint`` returned before digests: the fields, as JSON."""
    fields = dump(body)
    fields.pop("watch", None)
    return json.dumps(fields, sort_keys=True, default=str)


async def test_a_start_holds_no_volume_and_a_volume_read_a_few_hundred_bytes(
    tmp_path: Path,
) -> None:
    """Not a timing: the bytes a start and then the records read hold (tracemalloc counts
    them exactly); a start held about 1,340 a volume before the store was made compact,
    and 371 before volumes were read when asked for."""
    path = tmp_path / "gateway.db"
    count = 5000
    async with open_gateway_store(path):
        pass
    conn = sqlite3.connect(path)
    fp = fingerprint(VolumeCreate(size=1))
    conn.executemany(
        "INSERT INTO volumes (id, project_id, user_id, size, status, volume_type_id, "
        "availability_zone, host, metadata, created_at, updated_at, request_id, request_fp) "
        "VALUES (?, 'demo', 'alice', 1, 'available', ?, 'nova', 'node-1@null', '{}', ?, ?, "
        "?, ?)",
        [(f"{n:08d}-0000-4000-8000-000000000000", PLAIN.id, 1e9 + n, 1e9 + n + 0.5,
          f"req-{n:08d}-0000-4000-8000-000000000000", fp) for n in range(count)])
    conn.commit()
    conn.close()
    store = GatewayStore(path, "NORMAL")
    await store.open()
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await store.load_volumes({PLAIN.id: PLAIN})
        gc.collect()
        started = tracemalloc.get_traced_memory()[0] - before
        read = [store.volumes[f"{n:08d}-0000-4000-8000-000000000000"] for n in range(count)]
        del read
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before - started
        tracemalloc.stop()
        assert len(store.volumes) == count
    finally:
        await store.close()

    assert started / count < 5, started / count
    assert held / count < 500, held / count


async def test_a_volume_has_one_record_while_anything_holds_it_and_memory_ahead_of_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Volumes are read when asked for and let go when nothing needs them: a record a
    flow holds is the one every reader gets; one with a write not yet committed is
    kept though nothing holds it (memory is ahead of its row); the rest is let go once
    ``RECENT`` reads have passed it, and read again from its row."""
    monkeypatch.setattr(volume_store, "RECENT", 1)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n in range(4):
            await store.add_volume(volume(f"vol-{n}", now + n))

        held = store.volumes["vol-0"]
        writing = store.volumes["vol-1"]
        writing.status = VolumeStatus.ERROR
        written = store.queue_status(writing)
        del writing
        store.volumes.get("vol-2")  # reads of others: what was kept for a read is let go
        store.volumes.get("vol-3")
        gc.collect()
        assert set(store.volumes.in_memory()) >= {"vol-0", "vol-1"}
        assert store.volumes["vol-0"] is held
        assert store.volumes["vol-1"].status is VolumeStatus.ERROR  # not the row's yet
        await written

        del held
        store.volumes.get("vol-3")
        gc.collect()
        assert "vol-0" not in store.volumes.in_memory()  # let go, and read again:
        again = store.volumes["vol-0"]
        assert again.status is VolumeStatus.AVAILABLE and again.created_at == now
        assert [rec.id for rec in store.volumes.listing("demo", None)] == [
            "vol-3", "vol-2", "vol-1", "vol-0"]


async def test_each_read_of_a_volume_goes_through_its_own_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a timing: the plans SQLite makes for the store's reads, on a file with rows
    (a read that scans the project's volumes instead made a create 10 times slower at
    20,000 volumes)."""
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(50):
            await store.add_volume(volume(f"vol-{n}", now - n, f"req-{n}"))
        reader = store.read_only()

        plan, listing = partial(query_plan, reader), partial(listing_plan, reader)

        assert "volumes_made_by (project_id=? AND request_id=? AND created_at>?)" in plan(
            MADE_BY, "demo", "req-1", now - 60)
        assert "sqlite_autoindex_volumes_1 (id=?)" in plan(SELECT_VOLUME, "vol-1")
        own = listing(newest_first_sql(SELECT_VOLUMES, "demo", (now, "vol-9"), alias="v."))
        assert "volumes_project_listing (project_id=? AND (created_at,id)<(?,?))" in own
        every = listing(newest_first_sql(SELECT_VOLUMES, None, (now, "x"), alias="v."))
        assert "volumes_listing ((created_at,id)<(?,?))" in every
        assert "TEMP B-TREE" not in every + own  # no sort
        error = (("v.status=?", ("error",)),)
        own_error = listing(newest_first_sql(SELECT_VOLUMES, "demo", (now, "vol-9"),
                                             alias="v.", more=error))
        assert ("volumes_project_status_listing (project_id=? AND status=? AND "
                "(created_at,id)<(?,?))") in own_error, own_error
        every_error = listing(newest_first_sql(SELECT_VOLUMES, None, (now, "x"), alias="v.",
                                               more=error))
        assert "volumes_status_listing (status=? AND (created_at,id)<(?,?))" in every_error
        assert "TEMP B-TREE" not in own_error + every_error
        unlike = plan(SELECT_UNLIKE_ATTACHMENTS)
        assert "COVERING INDEX volumes_unsettled (status=?)" in unlike, unlike
        assert "MULTI-INDEX OR" not in unlike, unlike  # one walk, in (status, id) order
        monkeypatch.setattr(row_records, "SCAN_ROWS", 10)
        for project, index in (("demo", "volumes_project_status_listing"),
                               (None, "volumes_status_listing")):
            sql: list[str] = []  # a bounded scan's two statements, as the store runs them
            reader.set_trace_callback(sql.append)
            list(store.volumes.listing(project, (now, "x"), status="available",
                                            name="web", metadata={"k": "v"}))
            reader.set_trace_callback(None)
            keys, rows = (plan(q) for q in sql if q.startswith("SELECT"))
            assert f"COVERING INDEX {index}" in keys, keys
            assert f"USING INDEX {index}" in rows and "(created_at,id)>" in rows, rows
            assert "SCAN v" not in keys + rows and "TEMP B-TREE" not in keys + rows
        assert "COVERING INDEX attachments_volume (volume_id=? AND status=?)" in unlike, unlike


async def test_an_extending_volume_needs_nothing_only_memory_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An extend's volume is its row (``extending``) and its reservation (the
    ``extends`` the file keeps): its record may be let go meanwhile and read back, and
    the extend's end (the status its attachments make it, set by its caller) is saved."""
    monkeypatch.setattr(volume_store, "RECENT", 1)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n in range(3):
            await store.add_volume(volume(f"vol-{n}", now + n, status=VolumeStatus.IN_USE))
        rec = store.volumes["vol-0"]
        rec.status = VolumeStatus.EXTENDING
        await store.start_extend(rec, "reservation-1", 2)
        del rec
        store.volumes.get("vol-1")
        store.volumes.get("vol-2")
        gc.collect()
        assert "vol-0" not in store.volumes.in_memory()
        extended = store.volumes["vol-0"]
        assert extended.status is VolumeStatus.EXTENDING
        assert (store.extends, store.extend_sizes) == ({"vol-0": "reservation-1"}, {"vol-0": 2})

        extended.status, extended.size = VolumeStatus.IN_USE, 2
        await store.end_extend(extended, extended.id, "commit")
        del extended
        store.volumes.get("vol-1")
        store.volumes.get("vol-2")
        gc.collect()
        assert "vol-0" not in store.volumes.in_memory()
        assert store.extends == {} and store.extend_sizes == {}
        again = store.volumes["vol-0"]
        assert (again.status, again.size) == (VolumeStatus.IN_USE, 2)


async def test_a_store_in_a_directory_named_like_a_uri_reads_its_own_file(
    tmp_path: Path,
) -> None:
    """The read-only connection opens the file by URI; a data directory named with what
    a URI takes for its own (#, ?, %20) still means that directory."""
    odd = tmp_path / "data #1?x=%20y"
    odd.mkdir()
    now = time.time()
    async with open_gateway_store(odd / "gateway.db") as store:
        await store.add_volume(volume("vol-1", now, "req-1"))
    async with open_gateway_store(odd / "gateway.db") as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        assert again.volumes["vol-1"].created_at == now
        made = again.made_by("demo", "req-1")
        assert made is not None and made[0] is again.volumes["vol-1"]


@pytest.mark.parametrize(("version", "status", "older"), [
    (6, VolumeStatus.REVERTING, "'creating', 'deleting', 'extending'"),
    (9, VolumeStatus.UNMANAGING, "'creating', 'deleting', 'extending', 'reverting'"),
])
async def test_a_file_of_an_older_version_gets_a_newer_status_in_its_partial_index(
    tmp_path: Path, version: int, status: VolumeStatus, older: str,
) -> None:
    """Version 7 counts ``reverting`` among the statuses in transition, version 10
    ``unmanaging``: a file of the version before has its partial index made again with
    it, so the reconciler's query finds such a volume there through the index (SQLite
    uses a partial index only for a query that states the index's own condition; with
    the old index every round would read every volume)."""
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await store.add_volume(volume("vol-x", 1.0, status=status))
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX volumes_unsettled;"
        "CREATE INDEX volumes_unsettled ON volumes (status, id, updated_at) WHERE status IN "
        f"({older}, 'reserved', 'attaching', 'in-use', 'detaching');"
        f"PRAGMA user_version={version};")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        stuck = [rec.id for rec in again.in_transition_since(time.time() + 60, 10)]
        found = again.read_only().execute("PRAGMA user_version").fetchone()[0]
        plan = again.read_only().execute(f"EXPLAIN QUERY PLAN {IN_TRANSITION_SINCE}",
                                         (time.time(), 10)).fetchall()
    assert (stuck, found) == (["vol-x"], SCHEMA_VERSION)
    assert "volumes_unsettled" in str(plan), plan  # through the index, not every row


async def test_a_revert_s_id_is_kept_with_its_volume_and_a_version_7_file_gets_one(
    tmp_path: Path,
) -> None:
    """The id of a revert in progress is in the file (what a start reads back, and what
    the node's report must name); its end drops it. A file of version 7 knew no ids: a
    volume reverting there gets the empty id, which its node's report names too."""
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        for vid in ("vol-r", "vol-s", "vol-old"):
            await store.add_volume(volume(vid, 1.0, status=VolumeStatus.REVERTING))
        await store.queue_revert("vol-r", "revert-1")
        await store.queue_revert("vol-s", "revert-2")
        await store.queue_revert("vol-s", None)  # ended
    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        assert again.reverts == {"vol-r": "revert-1"}

    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE pending_reverts; PRAGMA user_version=7;")
    conn.commit()
    conn.close()
    async with open_gateway_store(path) as migrated:
        await migrated.load_volumes({PLAIN.id: PLAIN})
        version = migrated.read_only().execute("PRAGMA user_version").fetchone()[0]
        assert (migrated.reverts, version) == ({"vol-r": "", "vol-s": "", "vol-old": ""},
                                               SCHEMA_VERSION)


async def test_a_file_of_version_3_gets_the_listing_indexes_and_its_volumes_read(
    tmp_path: Path,
) -> None:
    """gateway.db of version 3 (every volume loaded at start; indexes on project, on
    (project, request id) and on the volumes in transition) is migrated: its old
    indexes go, the schema's are made (version 6's listing indexes with the status too),
    and its volumes are read and listed as before."""
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        for n in range(3):
            await store.add_volume(volume(f"vol-{n}", now + n, f"req-{n}"))
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND "
                                "tbl_name='volumes' AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.executescript(
        "CREATE INDEX volumes_project ON volumes (project_id);"
        "CREATE INDEX volumes_request ON volumes (project_id, request_id);"
        "CREATE INDEX volumes_in_transition ON volumes (updated_at) "
        "WHERE status IN ('creating', 'deleting', 'extending');"
        "PRAGMA user_version=3;")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        indexes = {name for (name,) in again.read_only().execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='volumes' "
            "AND sql IS NOT NULL")}
        version = again.read_only().execute("PRAGMA user_version").fetchone()[0]
        listed = [rec.id for rec in again.volumes.listing("demo", None)]
        made = again.made_by("demo", "req-1")

    assert version == SCHEMA_VERSION
    assert indexes == {"volumes_listing", "volumes_project_listing", "volumes_type",
                       "volumes_made_by", "volumes_unsettled", "volumes_status_listing",
                       "volumes_project_status_listing"}
    assert listed == ["vol-2", "vol-1", "vol-0"]
    assert made is not None and made[0].id == "vol-1"


async def test_a_page_filtered_by_status_reads_only_the_rows_of_that_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a timing: the records a listing reads from the file. A status none of a
    thousand volumes has reads none of them (it had read them all: 0.5 s a page at
    100,000 volumes, on the gateway's loop); a name is matched by SQLite, not by a
    record read for it."""
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        for n in range(1000):
            status = VolumeStatus.ERROR if n in (10, 500) else VolumeStatus.AVAILABLE
            await store.add_volume(volume(f"vol-{n}", now - n, name=f"name-{n % 7}",
                                          status=status))
        await store.add_volume(volume("vol-other", now, project_id="other",
                                      status=VolumeStatus.ERROR))

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        volumes = again.volumes
        read: list[str] = []
        from_row = volumes.from_row

        def counted(row: Any) -> VolumeRecord:
            read.append(row[0])
            return from_row(row)

        monkeypatch.setattr(volumes, "from_row", counted)

        def listed(project: str | None, **filters: Any) -> list[str]:
            read.clear()
            return [rec.id for rec in volumes.listing(project, None, **filters)]

        assert listed("demo", status="error") == ["vol-10", "vol-500"] == read
        assert listed(None, status="error") == ["vol-other", "vol-10", "vol-500"] == read
        assert listed("demo", status="deleting") == [] == read
        assert listed(None, status="creating") == [] == read
        named = listed("demo", name="name-3")
        assert named == [f"vol-{n}" for n in range(3, 1000, 7)] == read
        assert listed("demo", status="error", name="name-3") == ["vol-10", "vol-500"] == read
        assert listed("demo", status="error", name="name-1") == [] == read


async def test_bootable_zone_and_size_filter_rows_by_sqlite_and_records_as_memory_holds(
    tmp_path: Path,
) -> None:
    """Cinder's ``bootable``, ``availability_zone`` and ``size`` filters: SQLite
    matches the rows (a volume without a flags row is not bootable), in creation order
    and in another sort, and ``VolumeMatch.passes`` judges a record as memory holds it."""
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(9):
            await store.add_volume(volume(f"vol-{n}", now - n, size=1 + n % 3,
                                          availability_zone="east" if n < 4 else "nova"))
        for vid in ("vol-2", "vol-5"):
            rec = store.volumes[vid]
            rec.bootable = True
            await store.save_details(rec)
        rec = store.volumes["vol-5"]  # its row made, then unmade, bootable: a row of 0
        rec.bootable = False
        await store.save_details(rec)
        rec.bootable = True
        await store.save_details(rec)
        store.volumes["vol-7"].bootable = True  # made and then unmade: a flags row of 0
        await store.save_details(store.volumes["vol-7"])
        store.volumes["vol-7"].bootable = False
        await store.save_details(store.volumes["vol-7"])

    async with open_gateway_store(tmp_path / "gateway.db") as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        volumes = again.volumes

        def listed(match: VolumeMatch, status: str | None = None) -> list[str]:
            return [rec.id for rec in volumes.listing("demo", None, status=status,
                                                      wanted=match)]

        assert listed(VolumeMatch(bootable=True)) == ["vol-2", "vol-5"]
        not_bootable = [f"vol-{n}" for n in range(9) if n not in (2, 5)]
        assert listed(VolumeMatch(bootable=False)) == not_bootable
        assert listed(VolumeMatch(availability_zone="east")) == [f"vol-{n}" for n in range(4)]
        assert listed(VolumeMatch(availability_zone="west")) == []
        assert listed(VolumeMatch(size=3)) == ["vol-2", "vol-5", "vol-8"]
        assert listed(VolumeMatch(True, "east", 3)) == ["vol-2"]
        assert listed(VolumeMatch(bootable=True), status="error") == []
        scan = await again.sorted_page(volumes, volumes.sorted_listing(
            "demo", "size:desc", None, None, None, None, 10, VolumeMatch(availability_zone="nova")),
            10, "demo")
        assert [rec.id for rec in scan] == ["vol-5", "vol-8", "vol-4", "vol-7", "vol-6"]
        for vid in ("vol-2", "vol-3"):
            rec = volumes[vid]
            assert VolumeMatch().passes(rec)
            assert VolumeMatch(bootable=vid == "vol-2", availability_zone="east").passes(rec)
            assert not VolumeMatch(bootable=vid != "vol-2").passes(rec)
            assert not VolumeMatch(size=rec.size + 1).passes(rec)


async def test_time_comparisons_are_a_range_of_the_listing_index_and_updates_are_matched(
    tmp_path: Path,
) -> None:
    """``created_at`` comparisons (3.60) narrow the walk of the listing's index (its
    order holds the creation time); ``updated_at`` ones are matched in the rows; both
    are counted; a comparison Cinder does not have is refused."""
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(10):
            await store.add_volume(volume(f"vol-{n}", now - 100 * n))
        rec = store.volumes["vol-7"]
        rec.status = VolumeStatus.ERROR
        await store.save_status(rec)  # updated now: the others' updated_at is created_at
        volumes = store.volumes

        def listed(**wanted: Any) -> list[str]:
            return [r.id for r in volumes.listing("demo", None, wanted=VolumeMatch(**wanted))]

        assert listed(created_at={"gt": now - 350}) == ["vol-0", "vol-1", "vol-2", "vol-3"]
        assert listed(created_at={"lte": now - 800, "neq": now - 900}) == ["vol-8"]
        assert listed(created_at={"eq": now - 500}) == ["vol-5"]
        assert listed(updated_at={"gte": now - 1}) == ["vol-0", "vol-7"]
        assert await store.count_volumes("demo", None, None, None, VolumeMatch(
            created_at={"lt": now - 450}, updated_at={"lt": now - 1}), "demo") == 4
        assert VolumeMatch(created_at={"gte": now - 700}).passes(rec)
        assert not VolumeMatch(created_at={"gt": now - 700}).passes(rec)
        with pytest.raises(InvalidInput, match="Invalid created_at comparison after"):
            VolumeMatch(created_at={"after": now})
        for bound in (math.nan, math.inf, 1e308, -1e308, 253402300800.0 + 10):
            with pytest.raises(InvalidInput, match="Invalid updated_at time"):
                VolumeMatch(updated_at={"lt": bound})  # the wire's floats: no view's time
        for bound in (0.0, 1e-300, -0.5, 9.9e9):  # tiny or huge steps between doubles
            assert VolumeMatch(created_at={"eq": bound}).passes(volume("v", bound))
        plans: list[str] = []
        reader = store.read_only()
        reader.set_trace_callback(plans.append)
        listed(created_at={"gt": now - 350})
        reader.set_trace_callback(None)
        (statement,) = [q for q in plans if q.startswith("SELECT")]
        assert "volumes_project_listing (project_id=? AND created_at>?)" in query_plan(
            reader, statement), query_plan(reader, statement)


def test_a_time_compares_as_the_views_show_it_to_the_microsecond() -> None:
    """For times as ``time.time()`` gives them, and the time a view shows for each read
    back as the REST front reads it (a double's steps are about 0.24 µs now): ``gt``
    and ``lt`` the shown time leave the volume out, ``eq``, ``gte`` and ``lte`` find it,
    in memory and in SQLite alike (a bound of the shown time plus half a microsecond,
    in doubles, had listed one volume in eight with its own ``gt``). A bound that is the
    volume's own time, unrounded, is taken as the view shows it too."""
    rng = random.Random(7)
    sql = sqlite3.connect(":memory:")
    outcomes = {"gt": False, "lt": False, "eq": True, "gte": True, "lte": True,
                "neq": False}
    for _ in range(3000):
        when = time.time() + rng.uniform(-1e8, 1e8)
        rec = volume("v", when)
        shown = datetime.fromisoformat(iso(when) or "").replace(tzinfo=UTC).timestamp()
        for (op, found), bound in itertools.product(outcomes.items(), (shown, when)):
            wanted = VolumeMatch(created_at={op: bound})  # the time shown, or the time
            assert wanted.passes(rec) is found, (when, op)
            ((condition, params),) = wanted.indexed()
            selected = sql.execute(
                f"SELECT count(*) FROM (SELECT ? AS created_at) v WHERE "
                f"{condition.replace('v.created_at', 'created_at')}",
                (when, *params)).fetchone()[0]
            assert selected == int(found), (when, op)


async def test_a_count_takes_every_filter_and_every_metadata_item(tmp_path: Path) -> None:
    """``with_count``: the committed rows a listing with these filters has, each of many
    metadata items a condition (a page's SQL takes the first few and the records the
    rest); a count past ``COUNT_METADATA_ITEMS`` items is refused, not miscounted."""
    now = time.time()
    many = {f"k{n}": "v" for n in range(6)}
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        for n in range(6):
            await store.add_volume(volume(f"vol-{n}", now - n, size=1 + n % 2,
                                          metadata=many if n < 3 else {"k0": "v"},
                                          bootable=n == 0))
        await store.add_volume(volume("vol-other", now, project_id="other"))

        async def count(project: str | None, status: str | None = None,
                        metadata: dict[str, str] | None = None,
                        match: VolumeMatch | None = None) -> int:
            return await store.count_volumes(project, status, None, metadata,
                                             match or VolumeMatch(), "demo")

        assert (await count("demo"), await count(None)) == (6, 7)
        assert await count("demo", metadata=many) == 3  # the sixth item decides the rest
        assert await count("demo", metadata={"k0": "v"}) == 6
        assert await count("demo", match=VolumeMatch(bootable=True)) == 1
        assert await count("demo", match=VolumeMatch(size=2)) == 3
        assert await count("demo", status="error") == 0
        with pytest.raises(InvalidInput, match="at most 64 metadata items, not 65"):
            await count("demo", metadata={f"k{n}": "v" for n in range(65)})


async def test_image_metadata_is_kept_in_its_own_rows_and_read_back_with_its_volume(
    tmp_path: Path,
) -> None:
    """A volume's image metadata (Cinder's ``volume_image_metadata``): a row only for a
    volume that has some, written with a new record or its details, gone with it."""
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        await store.add_volume(volume("vol-clone", now, bootable=True,
                                      image_metadata={"hw_disk_bus": "scsi"}))
        await store.add_volume(volume("vol-set", now - 1))
        await store.add_volume(volume("vol-cleared", now - 2))
        await store.add_volume(volume("vol-gone", now - 3, image_metadata={"a": "b"}))
        for vid, items in (("vol-set", {"os_type": "linux"}), ("vol-cleared", {"x": "y"})):
            store.volumes[vid].image_metadata = items
            await store.save_details(store.volumes[vid])
        store.volumes["vol-cleared"].image_metadata = {}
        await store.save_details(store.volumes["vol-cleared"])
        await store.remove_volume(store.volumes["vol-gone"])
        assert store.volumes["vol-set"].view().image_metadata == {"os_type": "linux"}

    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        read = {rec.id: (rec.bootable, rec.image_metadata)
                for rec in again.volumes.listing("demo", None)}
        assert read == {"vol-clone": (True, {"hw_disk_bus": "scsi"}),
                        "vol-set": (False, {"os_type": "linux"}),
                        "vol-cleared": (False, {})}
        rows = again.read_only().execute(
            "SELECT id FROM volume_image_metadata ORDER BY id").fetchall()
        assert rows == [("vol-clone",), ("vol-set",)]


async def test_a_listing_filters_by_what_is_committed_and_shows_what_memory_holds(
    tmp_path: Path,
) -> None:
    """A change of status not committed yet: the volume is listed under neither its old
    status (memory has moved on) nor its new one (not told yet); once committed, under
    its new one."""
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.add_volume(volume("vol-1", time.time()))
        rec = store.volumes["vol-1"]
        rec.status = VolumeStatus.ERROR
        written = store.queue_status(rec)

        def listed(status: str) -> list[str]:
            return [r.id for r in store.volumes.listing("demo", None, status=status)
                    if r.status.value == status]  # as the gateway filters the records too

        assert listed("available") == [] and listed("error") == []
        await written
        assert listed("error") == ["vol-1"] and listed("available") == []


async def test_a_name_or_metadata_filter_looks_at_a_bounded_number_of_rows_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a timing: the rows a page filtered by name or metadata items looks at. No
    index serves them, so a page looks at ``SCAN_ROWS`` rows at most (here 10) and, not
    full by then, ends at the last of them; paging on finds every match once, newest
    first. The items are matched by SQLite, whatever their text."""
    monkeypatch.setattr(row_records, "SCAN_ROWS", 10)
    odd = {'k"ey': "v'al", "ünï": "{}", "n": "1"}
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n in range(45):
            await store.add_volume(volume(
                f"vol-{n:02d}", now - n, name="web" if n % 9 == 0 else f"db-{n}",
                metadata=odd if n in (3, 40) else {"n": str(n)},
                status=VolumeStatus.ERROR if n % 2 else VolumeStatus.AVAILABLE))
        volumes = store.volumes

        def pages(**filters: Any) -> list[tuple[list[str], str | None]]:
            """Every page of 20 the gateway would answer, following each next marker."""
            got: list[tuple[list[str], str | None]] = []
            marker = None
            while True:
                found, marker = page(volumes.get, partial(volumes.listing, "demo",
                                                          **filters), "demo",
                                     lambda rec: True, marker, 20, wire_bytes)
                got.append(([rec.id for rec in found], marker))
                if marker is None:
                    return got

        named = pages(name="web")
        assert [ids for ids, _ in named] == [["vol-00", "vol-09"], ["vol-18"], ["vol-27"],
                                             ["vol-36"], []]
        assert [m for _, m in named] == ["vol-09", "vol-19", "vol-29", "vol-39", None]
        by_items = pages(metadata={'k"ey': "v'al", "ünï": "{}"})
        assert [i for ids, _ in by_items for i in ids] == ["vol-03", "vol-40"]
        assert len(by_items) == 5  # ten rows a page
        assert [i for ids, _ in pages(metadata={"n": "7"}) for i in ids] == ["vol-07"]
        assert [i for ids, _ in pages(metadata={"n": "1"}) for i in ids] == [
            "vol-01", "vol-03", "vol-40"]  # "n": "1" is one of the odd items too
        assert [i for ids, _ in pages(name="web", status="error") for i in ids] == [
            "vol-09", "vol-27"]
        assert pages(metadata={"k": 1}) == [([], "vol-09"), ([], "vol-19"), ([], "vol-29"),
                                           ([], "vol-39"), ([], None)]  # 1 is not "1"


async def test_oldest_first_pages_the_other_way_through_the_same_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Horizon's page back (``sort=created_at:asc``, a marker): the volumes created after
    the marker's, oldest first, ties by id, filtered and bounded as newest first is, with
    no sort in SQLite."""
    monkeypatch.setattr(row_records, "SCAN_ROWS", 4)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n in range(10):  # vol-0 and vol-1 made at the same time: the id decides
            await store.add_volume(volume(f"vol-{n}", now + max(n, 1), name=f"n{n % 3}",
                                          status=VolumeStatus.ERROR if n % 2 else
                                          VolumeStatus.AVAILABLE))
        volumes = store.volumes

        def pages(**filters: Any) -> list[list[str]]:
            got, marker = [], None
            while True:
                found, marker = page(volumes.get, partial(volumes.listing, "demo",
                                                          oldest_first=True, **filters),
                                     "demo", lambda rec: True, marker, 3, wire_bytes)
                got.append([rec.id for rec in found])
                if marker is None:
                    return got

        assert pages() == [["vol-0", "vol-1", "vol-2"], ["vol-3", "vol-4", "vol-5"],
                           ["vol-6", "vol-7", "vol-8"], ["vol-9"]]
        assert pages(status="error") == [["vol-1", "vol-3", "vol-5"], ["vol-7", "vol-9"]]
        assert pages(name="n1") == [["vol-1"], ["vol-4", "vol-7"], []]  # 4 rows a page
        reader, sql = store.read_only(), list[str]()
        reader.set_trace_callback(sql.append)
        list(volumes.listing("demo", (now, "x"), status="error", oldest_first=True))
        list(volumes.listing(None, (now, "x"), oldest_first=True))
        reader.set_trace_callback(None)
        plans = [query_plan(reader, q) for q in sql if q.startswith("SELECT")]
        assert "volumes_project_status_listing (project_id=? AND status=? AND " \
               "(created_at,id)>(?,?))" in plans[0], plans
        assert "volumes_listing ((created_at,id)>(?,?))" in plans[1], plans
        assert not any("TEMP B-TREE" in plan for plan in plans)


async def test_a_filter_of_many_metadata_items_is_asked_of_sqlite_in_part(
    tmp_path: Path,
) -> None:
    """SQLite gets the first ``SQL_METADATA_ITEMS`` items of a metadata filter (each is a
    condition: a thousand passed its limit on an expression's depth, an internal error);
    the rest are matched on the records, as the gateway matches them all."""
    wanted = {f"k{n}": "v" for n in range(2000)}
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        await store.add_volume(volume("vol-all", time.time(), metadata=wanted))
        await store.add_volume(volume("vol-most", time.time() - 1,
                                      metadata={**wanted, "k1999": "other"}))
        await store.add_volume(volume("vol-none", time.time() - 2))
        read = list(store.volumes.listing("demo", None, metadata=wanted))
        found = [rec.id for rec in read if all(rec.metadata.get(k) == v
                                                for k, v in wanted.items())]
    assert [rec.id for rec in read] == ["vol-all", "vol-most"]  # SQLite's part
    assert found == ["vol-all"]


async def test_a_projects_totals_take_memory_where_it_is_ahead_and_sum_the_other_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``quota sync`` counts: the project's records as memory holds them (a change
    not committed, a size changed in place, a create not committed, a removal not
    committed) and the rest summed by SQLite without a record made: the same as counting
    every record of the project, which is what the sync did."""
    monkeypatch.setattr(volume_store, "RECENT", 1)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        volumes = store.volumes
        for n in range(8):
            await store.add_volume(volume(f"vol-{n}", now + n, size=n + 1))
        await store.add_volume(volume("theirs", now, project_id="other", size=50))
        await store.snapshots.add(snapshot("snap-1", now, ""))
        gc.collect()

        def both() -> tuple[row_records.Totals, row_records.Totals]:
            """The totals, and every record of the project counted (what the sync did)."""
            every = {rec.id: rec for rec in volumes.listing("demo", None)}
            every.update((vid, rec) for vid, rec in volumes.new.items()
                         if rec.project_id == "demo")
            return (volumes.totals("demo", VOLUME_BUSY),
                    row_records.totals_of(every.values(), VOLUME_BUSY))

        assert both()[0] == both()[1] == row_records.Totals(8, 36, by_type={PLAIN.id: (8, 36)})
        assert "vol-3" not in volumes.in_memory()  # summed from its row, not read

        grown = volumes["vol-1"]
        grown.size = 20  # a flow changed it in place: memory is ahead of the row
        failed = volumes["vol-2"]
        failed.status = VolumeStatus.ERROR
        written = store.queue_status(failed)
        adding = asyncio.ensure_future(store.add_volume(
            volume("vol-new", now + 9, status=VolumeStatus.CREATING, size=4)))
        removing = asyncio.ensure_future(store.remove_volume(volumes["vol-7"]))
        await asyncio.sleep(0)  # both queued, neither committed
        assert "vol-new" in volumes.new and "vol-7" in volumes.removing

        during = both()
        assert during[0] == during[1] == row_records.Totals(
            8, 36 + 18 - 8 + 4, ("vol-new", "creating"), {PLAIN.id: (8, 36 + 18 - 8 + 4)})
        await asyncio.gather(written, adding, removing)
        volumes["vol-new"].status = VolumeStatus.AVAILABLE
        await store.queue_status(volumes["vol-new"])
        del failed
        gc.collect()
        after = both()
        assert after[0] == after[1] == row_records.Totals(
            8, 36 + 18 - 8 + 4, by_type={PLAIN.id: (8, 36 + 18 - 8 + 4)})

        volumes["vol-3"].status = VolumeStatus.DELETING
        await store.queue_status(volumes["vol-3"])
        volumes.get("vol-0")  # the last read is kept: another's lets it go
        gc.collect()
        assert "vol-3" not in volumes.in_memory()
        assert volumes.totals("demo", VOLUME_BUSY).busy == ("vol-3", "deleting")  # a row's
        assert store.snapshots.totals("demo", SNAPSHOT_BUSY) == row_records.Totals(
            1, 1, by_type={None: (1, 1)})
        assert store.snapshots.totals("other", SNAPSHOT_BUSY) == row_records.Totals()


def _this(scan: BoundedScan[VolumeRecord], below: Any) -> BoundedScan[VolumeRecord]:
    return scan


@pytest.mark.parametrize("where", ["on the loop", "aside"])
@pytest.mark.parametrize("sort", ["size:asc", "size:desc", "name:asc", "name:desc",
                                  "status:asc", "status:desc", "updated_at:asc", "id:desc",
                                  "created_at:asc"])
async def test_a_listing_sorted_by_another_key_pages_as_the_whole_listing_sorts(
    tmp_path: Path, sort: str, where: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages of two in another order than by creation (SQLite's sort: a small listing's
    on the loop, a larger one's aside) are the whole listing sorted as the REST front
    sorted it before: by the key, a name that is null after every name, ties newest
    first; none repeated or skipped, and a page that memory's filter leaves short reads
    on."""
    if where == "aside":
        monkeypatch.setattr(row_records, "SMALL_LISTING_ROWS", 0)
    now = time.time()
    names = [None, "b", "", "a", "b", None, "c", "a"]
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n, name in enumerate(names):
            status = VolumeStatus.ERROR if n % 3 == 0 else VolumeStatus.AVAILABLE
            await store.add_volume(volume(f"vol-{n}", now + n // 2, name=name,
                                          size=1 + n % 3, status=status, updated_at=now - n))
        await store.add_volume(volume("theirs", now, project_id="other"))
        key, _, direction = sort.partition(":")
        newest = [rec.id for rec in store.volumes.listing("demo", None)]

        def value(vid: str) -> tuple[bool, Any]:
            got = getattr(store.volumes[vid], key)
            got = got.value if isinstance(got, VolumeStatus) else got
            return (got is None, got or "")

        expected = sorted(newest, key=value, reverse=direction == "desc")

        async def pages(status: str | None) -> list[str]:
            seen: list[str] = []
            marker: str | None = None
            while True:
                after = None if marker is None else store.volumes[marker]
                scan = await store.sorted_page(store.volumes, store.volumes.sorted_listing(
                    "demo", sort, after, status, None, None, 3), 2, "demo")
                found, marker = page(store.volumes.get, partial(_this, scan), "demo",
                                     lambda rec: status in (None, rec.status.value),
                                     marker, 2, wire_bytes)
                seen += [rec.id for rec in found]
                if marker is None:
                    return seen

        assert await pages(None) == expected
        assert await pages("error") == [v for v in expected if v in {"vol-0", "vol-3", "vol-6"}]
        store.volumes["vol-1"].status = VolumeStatus.ERROR  # memory ahead of its row
        written = store.queue_status(store.volumes["vol-1"])
        assert await pages("available") == [
            v for v in expected if v not in {"vol-0", "vol-1", "vol-3", "vol-6"}]
        await written


async def test_a_small_listings_sorted_page_is_read_on_the_loop_not_behind_a_large_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page in another order than by creation of a listing of at most
    ``SMALL_LISTING_ROWS`` rows (with its status, if filtered) is read on the loop:
    another project's page does not wait for a large listing's read aside."""
    monkeypatch.setattr(row_records, "SMALL_LISTING_ROWS", 5)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n in range(8):
            status = VolumeStatus.ERROR if n < 2 else VolumeStatus.AVAILABLE
            await store.add_volume(volume(f"big-{n}", now + n, project_id="big", status=status))
        for n in range(3):
            await store.add_volume(volume(f"small-{n}", now + n, project_id="small", size=3 - n))
        volumes = store.volumes

        def small(project: str | None, status: str | None = None, name: str | None = None
                  ) -> bool:
            return volumes.sorted_listing(project, "size:asc", None, status, name, None,
                                          21).small

        assert small("small") and small("big", "error")
        assert not small("big") and not small(None) and not small("big", "available")
        assert not small("big", None, "big-1")  # a name filter looks at every row still
        assert small(None, "error")  # 2 rows of every project's
        for project, wanted, index in (("big", None, "volumes_project_listing"),
                                       ("big", "error", "volumes_project_status_listing"),
                                       (None, "error", "volumes_status_listing")):
            more = () if wanted is None else (("v.status=?", (wanted,)),)
            sql, params = newest_first_sql(SELECT_LISTING_KEYS, project, None, "v.", more=more)
            plan = query_plan(store.read_only(), f"{sql} LIMIT 1 OFFSET ?", *params, 5)
            assert f"COVERING INDEX {index}" in plan, plan  # no more rows read than asked
        # a large listing's read aside runs (SLOW_COUNT holds the reader a second or more)
        slow = asyncio.create_task(store.db.read_aside(SLOW_COUNT, whose="big"))
        await asyncio.sleep(0.05)
        scan = await asyncio.wait_for(store.sorted_page(volumes, volumes.sorted_listing(
            "small", "size:asc", None, None, None, None, 21), 20, "small"), 0.5)
        assert [rec.id for rec in scan] == ["small-2", "small-1", "small-0"]
        assert not slow.done()
        assert await slow == [(10_000_000,)]


async def test_an_extend_in_progress_keeps_its_size_and_a_file_from_before_migrates(
    tmp_path: Path,
) -> None:
    """The size an extend grows to is kept with its reservation (the reconciler sends an
    extend cut short again); a file of version 21 keeps its extends, with no size."""
    path, now = tmp_path / "gateway.db", time.time()
    async with open_gateway_store(path) as store:
        await store.load_volumes({PLAIN.id: PLAIN})
        for n, size in ((0, 3), (1, 4)):
            await store.add_volume(volume(f"vol-{n}", now + n))
            rec = store.volumes[f"vol-{n}"]
            rec.status = VolumeStatus.EXTENDING
            await store.start_extend(rec, f"reservation-{n}", size)
    async with open_gateway_store(path) as again:
        await again.load_volumes({PLAIN.id: PLAIN})
        assert again.extends == {"vol-0": "reservation-0", "vol-1": "reservation-1"}
        assert again.extend_sizes == {"vol-0": 3, "vol-1": 4}
    conn = sqlite3.connect(path)  # the table as version 21 made it: no sizes
    conn.executescript(
        "CREATE TABLE old AS SELECT volume_id, reservation_id, outcome FROM pending_extends;"
        "DROP TABLE pending_extends; ALTER TABLE old RENAME TO pending_extends;"
        "PRAGMA user_version=21;")
    conn.commit()
    conn.close()
    async with open_gateway_store(path) as migrated:
        await migrated.load_volumes({PLAIN.id: PLAIN})
        version = migrated.read_only().execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION
        assert migrated.extends == {"vol-0": "reservation-0", "vol-1": "reservation-1"}
        assert migrated.extend_sizes == {}
        rec = migrated.volumes["vol-0"]
        await migrated.start_extend(rec, "reservation-2", 5)
        assert migrated.extend_sizes == {"vol-0": 5}

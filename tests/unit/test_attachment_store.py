"""Attachments read from gateway.db when asked for: each read through its own index, a
record held while anything holds it (one object per attachment), and a file of
version 4 (every attachment loaded at start) migrated."""

from __future__ import annotations

import gc
import itertools
import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest

from cinderblock.actors.gateway import attachment_store
from cinderblock.actors.gateway.attachment_store import (
    IN_TRANSITION_SINCE,
    SELECT,
    SELECT_OF_VOLUME,
    SELECT_ONE,
    AttachmentRecord,
    AttachmentStore,
    attachment_bytes,
)
from cinderblock.actors.gateway.paging import page
from cinderblock.actors.gateway.row_records import newest_first_sql
from cinderblock.actors.gateway.volume_store import (
    ATTACHED,
    INSERT_VOLUME,
    SCHEMA_VERSION,
    SELECT_UNLIKE_ATTACHMENTS,
)
from cinderblock.actors.gateway.volume_store import SCHEMA as VOLUME_SCHEMA
from cinderblock.protocol.states import AttachmentStatus, volume_status_for
from tests.conftest import listing_plan, open_gateway_store, query_plan

A = AttachmentStatus


def attachment(aid: str, vid: str, created_at: float, project: str = "demo",
               status: AttachmentStatus = A.ATTACHED) -> AttachmentRecord:
    return AttachmentRecord(aid, vid, project, status, created_at=created_at,
                            connector={"host": "compute-1"},
                            connection_info={"driver_volume_type": "nbd"})


async def test_each_read_of_an_attachment_goes_through_its_own_index(tmp_path: Path) -> None:
    """Not a timing: the plans SQLite makes for the store's reads, on a file with rows."""
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        attachments = AttachmentStore(store.db, store.read_only)
        for n in range(50):
            await attachments.add(attachment(f"att-{n}", f"vol-{n}", now - n))
        reader = store.read_only()

        plan, listing = partial(query_plan, reader), partial(listing_plan, reader)

        assert "sqlite_autoindex_attachments_1 (id=?)" in plan(SELECT_ONE, "att-1")
        assert "attachments_volume (volume_id=?)" in plan(SELECT_OF_VOLUME, "vol-1")
        own = listing(newest_first_sql(SELECT, "demo", (now, "att-9")))
        assert "attachments_project_listing (project_id=? AND (created_at,id)<(?,?))" in own
        every = listing(newest_first_sql(SELECT, None, (now, "x")))
        assert "attachments_listing ((created_at,id)<(?,?))" in every
        assert "TEMP B-TREE" not in every + own  # no sort
        assert "attachments_in_transition (updated_at<?)" in plan(IN_TRANSITION_SINCE, now, 5)


async def test_an_attachment_is_one_record_while_held_and_read_again_when_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attachment_store, "RECENT", 1)
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        attachments = AttachmentStore(store.db, store.read_only)
        for n in range(3):
            await attachments.add(attachment(f"att-{n}", "vol-a", now + n))
        held = attachments["att-0"]
        assert attachments.of_volume("vol-a")[0] is held  # the same object, by volume too
        held.connector = {"host": "compute-2"}  # memory ahead of its row, as a flow does
        saving = attachments.queue_save(held)
        del held
        attachments.get("att-1")
        attachments.get("att-2")  # att-0 is no longer among the recent reads
        gc.collect()
        assert attachments["att-0"].connector == {"host": "compute-2"}, \
            "a record whose write is pending is kept"
        await saving
        gc.collect()
        again = attachments["att-0"]
        assert again.connector == {"host": "compute-2"}  # read from its row
        assert len(attachments) == 3


async def test_pages_of_attachments_come_from_the_file_newest_first_or_oldest_first(
    tmp_path: Path,
) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        attachments = AttachmentStore(store.db, store.read_only)
        for n in range(5):
            await attachments.add(attachment(f"att-{n}", f"vol-{n}", now + n))
        await attachments.add(attachment("theirs", "vol-t", now + 9, project="other"))
        await attachments.remove(attachments["att-3"])

        def listed(project: str | None, marker: str | None, oldest_first: bool = False
                   ) -> tuple[list[str], str | None]:
            found, after = page(attachments.get,
                                partial(attachments.listing, project, oldest_first),
                                project, lambda rec: True, marker, 2, attachment_bytes)
            return [rec.id for rec in found], after

        assert listed("demo", None) == (["att-4", "att-2"], "att-2")
        assert listed("demo", "att-2") == (["att-1", "att-0"], None)
        assert listed(None, None) == (["theirs", "att-4"], "att-4")
        assert listed("demo", None, oldest_first=True) == (["att-0", "att-1"], "att-1")
        assert listed("demo", "att-1", oldest_first=True) == (["att-2", "att-4"], None)
        assert listed(None, "att-4", oldest_first=True) == (["theirs"], None)


async def test_a_file_of_version_4_gets_the_attachment_indexes_and_reads_its_attachments(
    tmp_path: Path,
) -> None:
    """gateway.db of version 4 (every attachment loaded at start, one index on the
    volume id; the volumes' partial index on (status, updated_at)) is migrated: the
    volume index gains the status, the listing and in-transition indexes are made, the
    volumes' partial index gains the id, and its attachments are read as before."""
    path = tmp_path / "gateway.db"
    now = time.time()
    async with open_gateway_store(path) as store:
        attachments = AttachmentStore(store.db, store.read_only)
        await attachments.add(attachment("att-1", "vol-1", now, status=A.DETACHING))
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND "
                                "tbl_name='attachments' AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.executescript("CREATE INDEX attachments_volume ON attachments (volume_id);"
                       "DROP INDEX volumes_unsettled;"
                       "CREATE INDEX volumes_unsettled ON volumes (status, updated_at) WHERE "
                       "status IN ('creating', 'deleting', 'extending', 'reserved', "
                       "'attaching', 'in-use', 'detaching');"
                       "PRAGMA user_version=4;")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as again:
        reader = again.read_only()
        indexes = dict(reader.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND "
            "tbl_name='attachments' AND sql IS NOT NULL").fetchall())
        (unsettled,) = reader.execute(
            "SELECT sql FROM sqlite_master WHERE name='volumes_unsettled'").fetchone()
        version = reader.execute("PRAGMA user_version").fetchone()[0]
        read = AttachmentStore(again.db, again.read_only)
        found = [a.id for a in read.of_volume("vol-1")]
        stuck = [a.id for a in read.in_transition_since(float("inf"))]

    assert version == SCHEMA_VERSION  # and on to the version of now
    assert set(indexes) == {"attachments_volume", "attachments_listing",
                            "attachments_project_listing", "attachments_in_transition"}
    assert "(volume_id, status)" in indexes["attachments_volume"]
    assert "(status, id, updated_at)" in unsettled and "'reverting'" in unsettled
    assert found == ["att-1"] and stuck == ["att-1"]


def test_the_start_s_query_finds_exactly_the_volumes_their_attachments_contradict() -> None:
    """``UNLIKE_ITS_ATTACHMENTS`` is ``volume_status_for`` in SQL: for every status of an
    attached volume and every set of up to two attachments' statuses, the query names the
    volume exactly when ``volume_status_for`` gives it another status."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(VOLUME_SCHEMA + attachment_store.SCHEMA)
    now = time.time()
    expected = set()
    sets = [()] + [(s,) for s in A] + list(itertools.combinations_with_replacement(A, 2))
    for n, (status, attached) in enumerate(itertools.product(ATTACHED, sets)):
        vid = f"vol-{n}"
        conn.execute(INSERT_VOLUME, (vid, "demo", "alice", None, None, 1, status.value,
                                     "type", "nova", "node-1@file", "{}", now, now, None,
                                     None, None))
        for k, att in enumerate(attached):
            conn.execute(attachment_store.INSERT,
                         attachment(f"att-{n}-{k}", vid, now, status=att).row())
        if volume_status_for(attached) is not status:
            expected.add(vid)
    found = {vid for (vid,) in conn.execute(SELECT_UNLIKE_ATTACHMENTS)}
    assert found == expected
    assert len(expected) > 10 and len(found) < n  # both kinds were there


async def test_a_file_of_version_13_gets_the_table_that_names_creates_by_request_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path) as store:
        await AttachmentStore(store.db, store.read_only).add(
            attachment("att-1", "vol-1", time.time()))
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE attachment_requests; PRAGMA user_version=13;")
    conn.commit()
    conn.close()

    async with open_gateway_store(path) as again:
        version = again.read_only().execute("PRAGMA user_version").fetchone()[0]
        read = AttachmentStore(again.db, again.read_only)
        assert [a.id for a in read.of_volume("vol-1")] == ["att-1"]
        assert read.made_by("demo", "req-x") is None  # made before: no request id
        await read.queue_request("demo", "req-x", "fp", "att-1")
        assert read.made_by("demo", "req-x") == ("att-1", "fp")
    assert version == SCHEMA_VERSION

"""The gateway's memory after a failed write to gateway.db: exactly the file again, the
records that flows hold changed in place (never swapped for copies), the listing
rebuilt, and the next write works. The failure is real: a row that clashes with a
primary key fails its whole batch in SQLite, as a full disk does."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest

from cinderblock.actors.gateway.attachment_store import (
    AttachmentRecord,
    AttachmentStore,
    cut_short,
)
from cinderblock.actors.gateway.paging import page, wire_bytes
from cinderblock.actors.gateway.row_records import Totals
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import INSERT_VOLUME, GatewayStore
from cinderblock.actors.runtime.database import WriteFailed, failure_reason
from cinderblock.protocol.states import AttachmentStatus, SnapshotStatus, VolumeStatus
from tests.conftest import open_gateway_store
from tests.unit.test_volume_store import PLAIN, volume

V = VolumeStatus


def _listed(store: GatewayStore) -> list[str]:
    found, _ = page(store.volumes.get, partial(store.volumes.listing, None), None,
                    lambda rec: True, None, None, wire_bytes)
    return [rec.id for rec in found]


async def test_a_failed_batch_brings_every_record_back_to_its_row_in_place(
    tmp_path: Path,
) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        attachments = AttachmentStore(store.db, store.read_only)
        store.reread_with(attachments.reread)
        await store.add_type(PLAIN)
        kept, gone = volume("vol-kept", now - 2), volume("vol-gone", now - 1)
        for rec in (kept, gone):
            await store.add_volume(rec)
        snap = SnapshotRecord("snap-1", "demo", "alice", kept.id, 1, SnapshotStatus.AVAILABLE,
                              host=kept.host, request_id="req-snap", request_fp="fp")
        await store.snapshots.add(snap)
        att = AttachmentRecord("att-1", kept.id, "demo", AttachmentStatus.RESERVED)
        await attachments.add(att)

        # a status move, a removal, a new volume, an attachment's removal, a snapshot's
        # move, and a row that clashes: its batch fails as a whole, and what is queued
        # on top of it fails with it
        kept.status, kept.reason = V.DELETING, "going"
        moved = store.queue_status(kept)
        removing = asyncio.ensure_future(store.remove_volume(gone))
        new = volume("vol-new", now, "req-new")
        adding = asyncio.ensure_future(store.add_volume(new))
        detaching = attachments.queue_remove(att)
        snap.move(SnapshotStatus.DELETING)
        clash = store.db.write(INSERT_VOLUME, kept.row())
        await asyncio.sleep(0)  # the coroutines queue their writes
        outcomes = await asyncio.gather(moved, removing, adding, detaching, clash,
                                        return_exceptions=True)

        for outcome in outcomes:
            assert isinstance(outcome, WriteFailed), outcome
            assert outcome.message.startswith("database write failed: "), outcome.message
            assert "UNIQUE constraint failed: volumes.id" in outcome.message
        held = store.volumes.in_memory()
        assert held == {kept.id: kept, gone.id: gone}  # the same objects
        assert held[kept.id] is kept and held[gone.id] is gone
        view = kept.view()  # through view(): mypy narrowed the fields at their assignment
        assert (view.status, view.reason) == (V.AVAILABLE, None)
        assert _listed(store) == [gone.id, kept.id]  # newest first, new one dropped
        assert store.made_by("demo", "req-new") is None
        assert attachments.get(att.id) is att and att.status is AttachmentStatus.RESERVED
        assert len(attachments) == 1
        assert attachments.of_volume(kept.id) == [att]  # found by its volume again
        assert store.snapshots.get(snap.id) is snap
        assert store.snapshots.totals("demo", ()) == Totals(
            1, snap.size, by_type={snap.volume_type_id: (1, snap.size)})
        assert snap.status is SnapshotStatus.AVAILABLE
        assert store.snapshots.made_by("demo", "req-snap") == (snap, "fp")
        assert store.db.statistics()["failed_batches"] == 1

        await store.remove_volume(gone)  # the file works on
        assert _listed(store) == [kept.id]
        rows = await store.db.fetchall("SELECT id, status FROM volumes")
        assert rows == [(kept.id, "available")]


async def test_writes_queued_after_a_failed_batch_fail_too_and_say_why(tmp_path: Path) -> None:
    now = time.time()
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        rec = volume("vol-1", now)
        await store.add_volume(rec)
        clash = store.db.write(INSERT_VOLUME, rec.row())
        flushing = asyncio.ensure_future(store.db.flush())
        await asyncio.sleep(0)  # the batch is in the database thread now
        rec.size = 5
        later = store.db.write("UPDATE volumes SET size=? WHERE id=?", (5, rec.id))
        await flushing
        with pytest.raises(WriteFailed, match=r"not saved, an earlier write to gateway\.db"):
            await later
        with pytest.raises(WriteFailed):
            await clash
        assert rec.size == 1 and store.volumes[rec.id] is rec


def test_a_failure_is_named_in_a_few_words() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert failure_reason(full) == "disk full"
    assert failure_reason(sqlite3.OperationalError("disk I/O error")) == "I/O error"
    assert failure_reason(OSError(28, "No space left on device")) == "No space left on device"


async def test_a_volumes_attachments_and_those_in_transition_follow_every_change(
    tmp_path: Path,
) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        attachments = AttachmentStore(store.db, store.read_only)
        first = AttachmentRecord("att-1", "vol-a", "demo", AttachmentStatus.RESERVED,
                                 created_at=2.0)
        second = AttachmentRecord("att-2", "vol-a", "demo", AttachmentStatus.RESERVED,
                                  created_at=1.0)
        other = AttachmentRecord("att-3", "vol-b", "demo", AttachmentStatus.RESERVED)
        for att in (first, second, other):
            await attachments.add(att)
        assert attachments.of_volume("vol-a") == [second, first]  # oldest first
        assert attachments.of_volume("vol-b") == [other]
        await attachments.remove(second)
        await attachments.remove(other)
        assert attachments.of_volume("vol-a") == [first]
        assert attachments.of_volume("vol-b") == [] and attachments.of_volume("none") == []

        first.move(AttachmentStatus.ATTACHING)
        await attachments.save(first)
        stuck = attachments.in_transition_since(float("inf"))
        assert stuck == [first]  # the reconciler's one candidate, as memory holds it
        assert attachments.in_transition_since(first.updated_at) == []  # not stuck before

        again = AttachmentStore(store.db, store.read_only)  # a start: read from the rows
        assert [a.id for a in again.of_volume("vol-a")] == ["att-1"]
        assert [a.id for a in again.in_transition_since(float("inf"))] == ["att-1"]
        first.connection_info = {"driver_volume_type": "nbd"}  # its update ended: it waits
        await attachments.save(first)  # for its host's complete, not cut short
        assert not cut_short(first) and attachments.in_transition_since(float("inf")) == []
        first.move(AttachmentStatus.ATTACHED)
        await attachments.save(first)
        assert attachments.in_transition_since(float("inf")) == []
        first.move(AttachmentStatus.DETACHING)
        await attachments.save(first)
        await attachments.remove(first)
        assert attachments.in_transition_since(float("inf")) == []
        assert attachments.of_volume("vol-a") == [] and len(attachments) == 0

"""The groups' and group snapshots' rows in gateway.db: the request id each create keeps
(what a retry under it answers), read back after a restart, forgotten after a day, and
added to a file from before it was kept (gateway.db 20 -> 21); and who may make volumes
in a group a create-from-src is filling."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cinderblock.actors.gateway.create_flow import group_of_create
from cinderblock.actors.gateway.group_store import GroupRecord, GroupSnapshotRecord
from cinderblock.actors.gateway.guards import REQUEST_ID_TTL_S
from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION
from cinderblock.protocol.states import GroupStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidState
from tests.conftest import open_gateway_store

# The two tables as gateway.db 20 made them: no request id, no fingerprint.
TABLES_V20 = """
DROP TABLE groups; DROP TABLE group_snapshots;
CREATE TABLE groups (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT,
    description TEXT, status TEXT NOT NULL, group_type_id TEXT NOT NULL,
    volume_type_ids TEXT NOT NULL, availability_zone TEXT NOT NULL, host TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT,
    group_snapshot_id TEXT, source_group_id TEXT
);
CREATE TABLE group_snapshots (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
    group_id TEXT NOT NULL, group_type_id TEXT NOT NULL, name TEXT, description TEXT,
    deleting INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
INSERT INTO groups VALUES ('g-1', 'p', 'u', 'old', NULL, 'available', 'gt', '["vt"]',
                           'nova', 'node-1@file', 1.0, 1.0, NULL, NULL, NULL);
INSERT INTO group_snapshots VALUES ('gs-1', 'p', 'u', 'g-1', 'gt', NULL, NULL, 0, 1.0, 1.0);
"""


def group(gid: str, project: str, request_id: str, created_at: float) -> GroupRecord:
    return GroupRecord(gid, project, "u", None, None, GroupStatus.AVAILABLE, "gt", ("vt",),
                       "nova", "node-1@file", created_at, created_at, request_id=request_id,
                       request_fp=f"fp-{gid}" if request_id else "")


async def test_a_create_s_request_id_is_read_back_after_a_restart_and_kept_a_day(
    tmp_path: Path,
) -> None:
    path, now = tmp_path / "gateway.db", time.time()
    async with open_gateway_store(path) as store:
        await store.groups.queue_save(group("g-new", "p", "rid", now))
        await store.groups.queue_save(group("g-old", "p", "rid-old", now - REQUEST_ID_TTL_S - 60))
        await store.groups.queue_save(group("g-none", "p", "", now))
        await store.group_snapshots.queue_save(GroupSnapshotRecord(
            "gs-new", "p", "u", "g-new", "gt", None, None, False, now, now, "rid", "fp-gs"))
    async with open_gateway_store(path) as store:
        await store.groups.load()
        await store.group_snapshots.load()
        found = store.groups.made_by("p", "rid")
        assert found is not None and (found[0].id, found[1]) == ("g-new", "fp-g-new")
        assert store.groups.made_by("other", "rid") is None  # another project's id
        assert store.groups.made_by("p", "rid-old") is None  # more than a day ago
        assert store.groups.made_by("p", "") is None  # made without one
        snap = store.group_snapshots.made_by("p", "rid")
        assert snap is not None and (snap[0].id, snap[1]) == ("gs-new", "fp-gs")


async def test_a_file_from_before_request_ids_gains_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path):
        pass
    conn = sqlite3.connect(path)
    conn.executescript(TABLES_V20)
    conn.execute("PRAGMA user_version=20")
    conn.commit()
    conn.close()
    async with open_gateway_store(path) as store:
        await store.groups.load()
        await store.group_snapshots.load()
        (version,) = (await store.db.fetchall("PRAGMA user_version"))[0]
        for table in ("groups", "group_snapshots"):
            columns = [r[1] for r in await store.db.fetchall(f"PRAGMA table_info({table})")]
            assert columns[-2:] == ["request_id", "request_fp"]
        assert version == SCHEMA_VERSION
        old = store.groups.by_id["g-1"]
        assert (old.name, old.request_id, old.request_fp) == ("old", "", "")
        assert store.group_snapshots.by_id["gs-1"].request_id == ""
        assert store.groups.made_by("p", "") is None


async def test_only_its_create_from_src_makes_volumes_in_a_creating_group(
    tmp_path: Path,
) -> None:
    """A group made from a source is ``creating`` while its create-from-src makes its
    volumes: those copies go in; a create of the project's own waits for ``available``
    (and once the gateway restarted, nothing is filling it)."""
    now, ctx = time.time(), Context("p", "u", ("member",), request_id="req-1")
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        made = group("g-copy", "p", "", now)
        made.status = GroupStatus.CREATING
        await store.groups.queue_save(made)
        store.groups.filling.add("g-copy")
        assert group_of_create(store, "g-copy", ctx, filling=True) is made
        with pytest.raises(InvalidState, match="must be available, not creating"):
            group_of_create(store, "g-copy", ctx)
        store.groups.filling.discard("g-copy")  # as after a restart: nobody fills it
        with pytest.raises(InvalidState, match="must be available, not creating"):
            group_of_create(store, "g-copy", ctx, filling=True)

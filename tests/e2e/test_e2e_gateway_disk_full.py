"""A full disk under gateway.db (issue 9, item 4): a gateway write that fails fails its
operation with a clear error ("database write failed: disk full ..."), the gateway's
memory stays what gateway.db holds (its volume and snapshot lists equal the rows, read
with sqlite3), and once space returns creates, deletes and snapshots work again
without restarting anything, and the cluster settles exact.

Only gateway.db lives on the small loop-mounted file system (the data directory links
to it; SQLite follows the link, so its WAL is there too): quota.db and the rest stay
on the roomy disk, so every failure seen here is the gateway's own."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.storage_node.backends.faults import DELAY_S
from tests.cluster_invariants import settled_violations
from tests.conftest import (
    E2ECluster,
    eventually,
    make_config,
    require_root,
    require_tool,
    running_cluster,
)
from tests.e2e.test_e2e_refuse import _fill, small_file_system

Rows = dict[str, tuple[str, int]]  # id -> (status, size)


def test_a_full_disk_under_gateway_db_fails_gateway_writes_clearly_keeps_memory_equal_to_the_file_and_heals(  # noqa: E501
    tmp_path: Path,
) -> None:
    require_root("loop-mount a small file system for gateway.db")
    require_tool("mkfs.ext4", "mount", "umount")
    with small_file_system(tmp_path) as mount:
        slow = {"faults": ("delay:create_volume", "delay:create_snapshot")}
        cfg = make_config(tmp_path / "data", backend="file", reconcile_after_s=1.0,
                          reconcile_every_s=0.5, quota={"volumes": 200, "gigabytes": 1000},
                          node_overrides={"node-1": slow, "node-2": slow})
        data = Path(cfg.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        (data / "gateway.db").symlink_to(mount / "gateway.db")
        with running_cluster(cfg) as cluster:
            asyncio.run(_fill_then_free(cluster, mount))


async def _fill_then_free(cluster: E2ECluster, mount: Path) -> None:
    project = f"gwfull-{uuid.uuid4().hex[:8]}"
    gateway_pid = cluster.cluster.procs["gateway"].pid
    async with cluster.client(project, timeout=15.0) as client, \
            cluster.client("admin", admin=True) as admin:
        kept = list(await asyncio.gather(*(client.create_volume(1, wait=True)
                                           for _ in range(8))))
        await client.create_snapshot(kept[0].id, wait=True)
        # the nodes' reports of these come while the disk is full: their writes fail
        reported = [await client.create_volume(1) for _ in range(2)]
        snapshot = await client.create_snapshot(kept[7].id)
        db = mount / "gateway.db"
        _empty_the_wal(db)  # so that on the full disk the next write needs room
        filler = mount / "filler"
        _fill(filler)

        created = await _until_failures(lambda: client.create_volume(1), "create")
        deletable = iter(v.id for v in kept[1:7])
        await _until_failures(lambda: client.delete_volume(next(deletable)), "delete", tries=6)
        await _until_failures(lambda: client.create_snapshot(kept[0].id), "snapshot create")
        await asyncio.sleep(DELAY_S + 1.0)  # the reports came, and their writes failed
        assert _rows(db, "snapshots")[snapshot.id][0] == "creating"
        assert {_rows(db, "volumes")[v.id][0] for v in reported} == {"creating"}
        assert await eventually(lambda: _memory_is_the_file(admin, mount), timeout=15)

        filler.unlink()
        await _everything_works(client, kept[0].id)
        assert await eventually(lambda: _memory_is_the_file(admin, mount), timeout=15)
        for volume in [*created, *reported]:  # what got through while full is cleaned up
            await _delete_when_settled(client, volume)
        assert cluster.cluster.procs["gateway"].pid == gateway_pid  # never restarted
        assert cluster.cluster.procs["gateway"].poll() is None
        problems: list[str] = []

        async def settled() -> bool:
            problems[:] = await settled_violations(cluster, admin, [project])
            return not problems

        try:
            await eventually(settled, timeout=30, every=0.5)
        except TimeoutError:
            raise AssertionError(f"not settled: {problems}") from None


async def _until_failures(op: Callable[[], Awaitable[Any]], what: str, tries: int = 60
                          ) -> list[Any]:
    """Run ``op`` until a write fails twice; every failure names the database write
    and why. What got through (none, unless the file system found a few bytes) is
    returned."""
    failures: list[CinderblockError] = []
    done = []
    for _ in range(tries):
        try:
            done.append(await op())
        except CinderblockError as exc:
            failures.append(exc)
            if len(failures) >= 2:
                break
    assert failures, f"no {what} failed on a full file system"
    for failure in failures:
        assert failure.code == "internal", failure
        assert failure.message.startswith("database write failed: "), failure.message
        assert "disk full" in failure.message, failure.message
    return done


def _empty_the_wal(db: Path) -> None:
    """Checkpoint gateway.db and truncate its WAL (safe beside its owner: WAL's own
    protocol), so that writes cannot go on reusing the WAL's pages on a full disk."""
    conn = sqlite3.connect(db, timeout=10.0)
    try:
        for _ in range(50):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"{db}: the WAL could not be checkpointed")


def _rows(db: Path, table: str) -> Rows:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT id, status, size FROM {table}").fetchall()
    finally:
        conn.close()
    return {i: (status, size) for i, status, size in rows}


async def _memory_is_the_file(admin: Client, mount: Path) -> bool:
    """The gateway's lists (memory) equal gateway.db's rows, volumes and snapshots."""
    volumes = {v.id: (v.status, v.size) for v in await admin.list_volumes(all_projects=True)}
    snapshots = {s.id: (s.status, s.size)
                 for s in await admin.list_snapshots(all_projects=True)}
    db = mount / "gateway.db"
    return volumes == _rows(db, "volumes") and snapshots == _rows(db, "snapshots")


async def _everything_works(client: Client, snapshot_source: str) -> None:
    made = await client.create_volume(1, wait=True)
    assert made.status == "available"
    snap = await client.create_snapshot(snapshot_source, wait=True)
    assert snap.status == "available"
    assert (await client.delete_snapshot(snap.id, wait=True)).status == "deleted"
    assert (await client.delete_volume(made.id, wait=True)).status == "deleted"


async def _delete_when_settled(client: Client, volume: Any) -> None:
    current = await eventually(lambda: _stable(client, volume.id), timeout=20)
    if current.status != "deleted":
        await client.delete_volume(volume.id, wait=True)


async def _stable(client: Client, volume_id: str) -> Any:
    try:
        current = await client.show_volume(volume_id)
    except CinderblockError as exc:
        if exc.code == "not_found":
            return _Gone()
        raise
    return current if current.status in ("available", "error") else None


class _Gone:
    status = "deleted"

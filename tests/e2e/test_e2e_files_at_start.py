"""Files checked at start: ``cinderblock up`` over a data directory whose gateway.db or
quota.db is empty (where it held data), foreign, damaged or newer stops with one
clear line naming the file and the problem, exits non-zero, leaves no actor behind
and leaves the file as it was. A file too large to be checked before the start is
checked right after it: damage found then stops the cluster the same way, and the
next start refuses the file before answering."""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION as GATEWAY_VERSION
from cinderblock.actors.quota.quota import SCHEMA_VERSION as QUOTA_VERSION
from cinderblock.actors.runtime.cluster import Cluster, ClusterError
from cinderblock.actors.runtime.config import ClusterConfig, load
from cinderblock.actors.runtime.parent import EXIT_CANNOT_START
from cinderblock.protocol.client.client import SyncClient
from tests.conftest import _DATA_DIRS, actor_pids_for, make_config, run_cli, running_cluster


@pytest.fixture(scope="module")
def used_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory a real cluster made and wrote to (a volume and its quota)."""
    data_dir = tmp_path_factory.mktemp("used")
    with running_cluster(make_config(data_dir)) as c, \
            SyncClient(c.gateway, project="demo", key=c.user_key("demo")) as client:
        client.create_volume(1, wait=True, timeout=30.0)
    return data_dir


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign(path: Path) -> None:
    path.write_text("this is a backup script, not a database\n" * 50)


def _damaged(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(100)  # the header's magic stays; the schema page behind it does not
        f.write(b"\xff" * 3000)


def _newer(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("file", "spoil", "problem"), [
    ("gateway.db", _empty, "is empty (0 bytes), but it held data"),
    ("quota.db", _empty, "is empty (0 bytes), but it held data"),
    ("quota.db", _foreign, "is not an SQLite database"),
    ("gateway.db", _damaged, "is damaged"),
    ("quota.db", _newer, "is newer than this cinderblock"),
])
def test_up_refuses_a_database_file_it_must_not_start_over(
    used_data_dir: Path, tmp_path: Path, file: str, spoil: Callable[[Path], None],
    problem: str,
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(used_data_dir, data_dir)
    _DATA_DIRS.append(data_dir.resolve())
    for suffix in ("-wal", "-shm"):
        Path(f"{data_dir / file}{suffix}").unlink(missing_ok=True)
    spoil(data_dir / file)
    before = (data_dir / file).read_bytes()
    done = run_cli("up", "--data-dir", str(data_dir), timeout=90.0)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    actor = file.removesuffix(".db")
    # Refused before the cluster was ready, or just after (its supervisor then stops it):
    assert lines[0].startswith((
        f"ERROR (usage): the cluster did not start: {actor} exited with 78",
        f"ERROR (usage): the cluster was stopped: {actor} (pid ")), lines[0]
    assert f"{actor} cannot start" in lines[0]
    assert f"{data_dir / file} {problem}" in lines[0]
    assert "not ready" not in lines[0] and "Traceback" not in done.stderr
    assert (data_dir / file).read_bytes() == before
    assert not actor_pids_for(data_dir.resolve())


def _damaged_freelist(path: Path) -> None:
    """Damage no read of a start meets: pages are freed (a table made and dropped),
    then the first page of the free list is zeroed; ``PRAGMA quick_check`` finds it."""
    _free_pages(path)
    _zero_the_free_list(path)


def _free_pages(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE spare (x BLOB)")
    conn.executemany("INSERT INTO spare VALUES (?)", [(b"x" * 3000,)] * 20)
    conn.commit()
    conn.execute("DROP TABLE spare")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _zero_the_free_list(path: Path) -> None:
    """Zeros over the first page of the free list ``_free_pages`` made (a write of the
    disk's, not SQLite's: as a bad sector or a stray write would)."""
    with open(path, "r+b") as f:
        header = f.read(100)
        (page_size,), (trunk,) = struct.unpack(">H", header[16:18]), struct.unpack(
            ">I", header[32:36])
        assert trunk > 1, "no free pages"
        f.seek((trunk - 1) * page_size)
        f.write(bytes(page_size))
        f.flush()
        os.fsync(f.fileno())


def _copy_of(used_data_dir: Path, tmp_path: Path, **settings: Any) -> tuple[Path, ClusterConfig]:
    """A copy of the used data directory, and its cluster file with ``settings``."""
    data_dir = tmp_path / "data"
    shutil.copytree(used_data_dir, data_dir)
    _DATA_DIRS.append(data_dir.resolve())
    return data_dir, replace(load(data_dir / "cluster.json"), data_dir=str(data_dir),
                             **settings)


def _gateway_stops(cluster: Cluster) -> str:
    return _stops(cluster, "gateway")


def _stops(cluster: Cluster, name: str) -> str:
    """Start ``cluster``; its actor ``name`` exits with ``EXIT_CANNOT_START``, before the
    cluster is ready or after: its last words."""
    try:
        cluster.start(timeout=30.0)
    except ClusterError as exc:
        assert f"{name} exited with 78: " in str(exc), exc
        return str(exc)
    try:
        assert cluster.procs[name].wait(30.0) == EXIT_CANNOT_START
        return cluster.last_words(name)
    finally:
        cluster.stop()


def test_damage_found_after_the_start_stops_the_actor_and_the_next_start_refuses_it(
    used_data_dir: Path, tmp_path: Path,
) -> None:
    # every file is checked after the start (a cluster file's setting)
    data_dir, cfg = _copy_of(used_data_dir, tmp_path, check_before_start_mb=0)
    gateway_db = data_dir / "gateway.db"
    _damaged_freelist(gateway_db)
    marker = data_dir / "gateway.db.damaged"

    said = _gateway_stops(Cluster(cfg))
    assert "gateway stopped: " in said, said
    assert (f"{gateway_db} is damaged (PRAGMA quick_check: Main freelist: size is 1 but "
            "should be") in said
    assert "found by the check after the start" in said and "\n" not in said
    assert marker.read_text().startswith(f"{gateway_db} is damaged (PRAGMA quick_check: ")
    assert not actor_pids_for(data_dir.resolve())

    # The next start checks the file before the gateway answers, whatever its size
    with pytest.raises(ClusterError, match="gateway exited with 78: ") as refused:
        Cluster(cfg).start(timeout=30.0)
    assert f"gateway cannot start: {gateway_db} is damaged (PRAGMA quick_check: " in str(
        refused.value)
    assert marker.exists() and not actor_pids_for(data_dir.resolve())

    # Restored from a backup: the cluster starts with what it held, and the mark goes
    shutil.copy(used_data_dir / "gateway.db", gateway_db)
    with running_cluster(cfg) as c, \
            SyncClient(c.gateway, project="demo", key=c.user_key("demo")) as client:
        assert [v.status for v in client.list_volumes()] == ["available"]
        assert not marker.exists()


def test_damage_appearing_while_the_cluster_runs_is_found_by_a_check_and_stops_the_actor(
    used_data_dir: Path, tmp_path: Path,
) -> None:
    # checked before the start (small), then again every second while it runs
    data_dir, cfg = _copy_of(used_data_dir, tmp_path, check_every_hours=1 / 3600)
    quota_db = data_dir / "quota.db"
    _free_pages(quota_db)  # whole: it starts
    cluster = Cluster(cfg)
    cluster.start(timeout=30.0)
    try:
        log = cluster.log_path("quota")
        deadline = time.monotonic() + 30
        while f"{quota_db} checked again: whole" not in log.read_text():
            assert time.monotonic() < deadline, "no check while the cluster ran"
            time.sleep(0.1)
        _zero_the_free_list(quota_db)  # nothing reads or writes that page
        assert cluster.procs["quota"].wait(30.0) == EXIT_CANNOT_START
        said = cluster.last_words("quota")
        assert f"quota stopped: {quota_db} is damaged (PRAGMA quick_check: " in said, said
        assert "found by the check again" in said
        assert (data_dir / "quota.db.damaged").exists()
    finally:
        cluster.stop()
    # the next start checks the file before the quota actor answers, and refuses it
    said = _stops(Cluster(cfg), "quota")
    assert f"quota cannot start: {quota_db} is damaged (PRAGMA quick_check: " in said, said
    assert not actor_pids_for(data_dir.resolve())


def test_a_cluster_starts_again_over_its_own_files_with_what_they_hold(
    used_data_dir: Path, tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(used_data_dir, data_dir)
    cfg = replace(load(data_dir / "cluster.json"), data_dir=str(data_dir))
    with running_cluster(cfg) as c, \
            SyncClient(c.gateway, project="demo", key=c.user_key("demo")) as client:
        assert [v.status for v in client.list_volumes()] == ["available"]
        assert client.show_quota().in_use["volumes"] == 1
    for name, version in (("gateway.db", GATEWAY_VERSION), ("quota.db", QUOTA_VERSION)):
        conn = sqlite3.connect(data_dir / name)
        assert conn.execute("PRAGMA user_version").fetchone() == (version,)
        conn.close()

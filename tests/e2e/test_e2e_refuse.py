"""Refuse what cannot be stored: numbers past what SQLite, msgpack or Cinder's caps
hold are ``invalid_input`` at every edge (CLI, client library, gateway and quota
actor) and change nothing; a write that fails on a full disk fails its operation
with a clear error, leaves the quota actor's memory equal to its file, and once
space returns everything works again without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.quota import QuotaUpdate, split_typed
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput
from tests.conftest import E2ECluster, make_config, run_cli, running_cluster

HUGE = "18446744073709551615"  # 2^64 - 1: msgpack holds it, SQLite does not


def _one_error_line(done: subprocess.CompletedProcess[str], code: str, *parts: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR ({code}): "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for part in parts:
        assert part in lines[0], lines[0]


def test_the_cli_refuses_a_limit_or_size_that_cannot_be_stored_in_one_line(
    cluster: E2ECluster,
) -> None:
    base = ("--gateway", cluster.gateway)
    done = run_cli("quota", "set", "demo", "--gigabytes", HUGE, "--admin", *base)
    _one_error_line(done, "invalid_input",
                    "gigabytes must be an integer from -1 to 2147483647, got 18446744073709551615")
    done = run_cli("volume", "create", "99999999999999999999999", *base)
    _one_error_line(done, "invalid_input", "size must be an integer from 1 to 2147483647")
    done = run_cli("volume", "extend", "some-volume", HUGE, *base)
    _one_error_line(done, "invalid_input", "new_size must be an integer from 1 to 2147483647")


async def test_a_huge_limit_sent_past_the_client_is_refused_and_the_limit_stays(
    cluster: E2ECluster, project: str,
) -> None:
    async with cluster.client(project, admin=True) as admin:
        before = await admin.show_quota(project)
        for limit in (2**64 - 1, 2**31):
            with pytest.raises(InvalidInput, match="must be an integer from -1 to 2147483647"):
                await admin.call("quota.set", QuotaUpdate(project, {"gigabytes": limit}))
        after = await admin.show_quota(project)
        assert after.limits == before.limits
        done = await admin.set_quota(project, gigabytes=2**31 - 1)
        assert done.limits["gigabytes"] == 2**31 - 1


async def test_a_size_past_sqlites_range_sent_past_the_client_is_invalid_input(
    cluster: E2ECluster, project: str,
) -> None:
    async with cluster.client(project) as client:
        with pytest.raises(InvalidInput, match="size"):
            await client.call("volume.create", {"size": 2**64 - 1, "metadata": {}})
        assert await client.list_volumes() == []
        assert (await client.show_quota()).in_use["volumes"] == 0


# ---- a full disk ------------------------------------------------------------------
def _need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full test needs root (a loop-mounted file system) under CI")
        pytest.skip("the disk-full test needs root to loop-mount a small file system")


@contextlib.contextmanager
def small_file_system(where: Path, size_mb: int = 24) -> Iterator[Path]:
    """An ext4 file system of ``size_mb`` in a file, loop-mounted; unmounted and removed."""
    image, mount = where / "fs.img", where / "mnt"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        image.unlink(missing_ok=True)


def _fill(path: Path) -> None:
    """Take every free byte of the file system ``path`` is on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (1 << 20, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
        os.fsync(fd)
    finally:
        os.close(fd)


def _quota_on_disk(db: Path, project: str, type_names: dict[str, str]
                   ) -> tuple[dict[str, int], dict[str, int], int]:
    """in_use, reserved and the reservation rows of a project, read from quota.db (a
    volume type's own by the type's name, as the gateway shows it: ``type_names``)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT resource, in_use, reserved FROM quota_usages "
                            "WHERE project=?", (project,)).fetchall()
        count = conn.execute("SELECT count(*) FROM reservations WHERE project=?",
                             (project,)).fetchone()[0]
    finally:
        conn.close()
    named = [(_named(r, type_names), u, v) for r, u, v in rows]
    return {r: u for r, u, _ in named}, {r: v for r, _, v in named}, count


def _named(resource: str, type_names: dict[str, str]) -> str:
    typed = split_typed(resource)
    return resource if typed is None else f"{typed[0]}_{type_names[typed[1]]}"


async def _quota_in_memory(client: Client) -> tuple[dict[str, int], dict[str, int]]:
    shown = await client.show_quota()
    return ({r: v for r, v in shown.in_use.items() if v},
            {r: v for r, v in shown.reserved.items() if v})


def _nonzero(values: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def test_a_full_disk_fails_operations_clearly_keeps_memory_equal_to_disk_and_heals(
    tmp_path: Path,
) -> None:
    _need_root()
    with small_file_system(tmp_path) as mount:
        cfg = make_config(mount / "data", backend="null")
        with running_cluster(cfg) as cluster:
            asyncio.run(_fill_then_free(cluster, mount))


async def _fill_then_free(cluster: E2ECluster, mount: Path) -> None:
    project = f"full-{uuid.uuid4().hex[:8]}"
    db = mount / "data" / "quota.db"
    async with cluster.client(project, timeout=15.0) as client:
        await client.create_volume(1, wait=True)
        filler = mount / "filler"
        _fill(filler)
        failures: list[CinderblockError] = []
        for _ in range(40):  # the WAL's free pages take some writes first
            try:
                await client.create_volume(1)
            except CinderblockError as exc:
                failures.append(exc)
                if len(failures) >= 3:
                    break
        assert failures, "no write failed on a full file system"
        for failure in failures:
            assert "not saved" in failure.message or "full" in failure.message, \
                failure.message
        type_names = {t.id: t.name for t in await client.list_types()}
        in_use, reserved = await _quota_in_memory(client)
        disk_in_use, disk_reserved, rows = _quota_on_disk(db, project, type_names)
        assert (in_use, reserved) == (_nonzero(disk_in_use), _nonzero(disk_reserved))
        assert (rows == 0) == (not reserved)
        filler.unlink()
        made = await client.create_volume(1, wait=True)
        assert made.status == "available"
        in_use, reserved = await _quota_in_memory(client)
        disk_in_use, disk_reserved, _ = _quota_on_disk(db, project, type_names)
        assert (in_use, reserved) == (_nonzero(disk_in_use), _nonzero(disk_reserved))

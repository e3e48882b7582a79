"""Helpers for the lifecycle end-to-end tests: quota usage, node files, byte comparisons."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import NotFound
from cinderblock.storage_node.backends import Driver
from cinderblock.storage_node.backends.file import data_extents
from tests.conftest import E2ECluster


async def usage(admin: Client, project: str) -> dict[str, tuple[int, int]]:
    """(in_use, reserved) per usage resource."""
    q = await admin.show_quota(project)
    return {r: (q.in_use.get(r, 0), q.reserved.get(r, 0))
            for r in ("volumes", "gigabytes", "snapshots")}


async def what_exists(client: Client) -> dict[str, tuple[int, int]]:
    """The usage the project's volumes and snapshots account for (nothing reserved)."""
    vols = await client.list_volumes()
    snaps = await client.list_snapshots()
    return {"volumes": (len(vols), 0), "snapshots": (len(snaps), 0),
            "gigabytes": (sum(v.size for v in vols) + sum(s.size for s in snaps), 0)}


async def assert_nodes_hold_exactly_what_the_gateway_lists(
    cluster: E2ECluster, admin: Client
) -> None:
    vols = await admin.list_volumes(all_projects=True)
    snaps = await admin.list_snapshots(all_projects=True)
    node_of = {v.id: (v.host or "").partition("@")[0] for v in vols}
    listed = {f"{node_of[v.id]}/volume-{v.id}" for v in vols if v.host}
    listed |= {f"{node_of[s.volume_id]}/snapshot-{s.id}" for s in snaps}
    assert cluster.all_files() == listed


def write_pattern(path: Path, pattern: list[tuple[int, bytes]]) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset, data in pattern:
            assert os.pwrite(fd, data, offset) == len(data)
    finally:
        os.close(fd)


async def volume_holding(driver: Driver, volume_id: str, pattern: list[tuple[int, bytes]]
                         ) -> Path:
    """A new 1 GiB volume of a file backend ``driver`` with ``pattern`` written into it."""
    await driver.create_volume(volume_id, 1)
    path = driver.volume_path(volume_id)
    assert path is not None
    write_pattern(path, pattern)
    return path


def holds_bytes(path: Path, pattern: list[tuple[int, bytes]]) -> bool:
    """Whether the file holds each (offset, bytes) of ``pattern``."""
    with open(path, "rb") as f:
        for offset, data in pattern:
            f.seek(offset)
            if f.read(len(data)) != data:
                return False
    return True


def _extents(path: Path) -> set[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return set(data_extents(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def same_bytes(a: Path, b: Path, length: int | None = None) -> bool:
    """Byte for byte equal (the first ``length`` bytes, else all), read sparse-aware:
    every data region of either file is compared; outside them both read as zeros."""
    if length is None and a.stat().st_size != b.stat().st_size:
        return False
    limit = length if length is not None else a.stat().st_size
    for start, stop in sorted(_extents(a) | _extents(b)):
        end = min(stop, limit)
        for offset in range(start, end, 8 << 20):
            length = min(8 << 20, end - offset)
            if read(a, offset, length) != read(b, offset, length):
                return False
    return True


def zeros_from(path: Path, offset: int) -> bool:
    """Nothing but zeros from ``offset`` on (holes, or data regions of zeros)."""
    for start, end in _extents(path):
        if end > offset:
            data = read(path, max(start, offset), end - max(start, offset))
            if data.count(0) != len(data):
                return False
    return True


async def _not_found(shown: Awaitable[object]) -> bool:
    """Whether the gateway answers the show with ``NotFound``: the record is gone."""
    try:
        await shown
    except NotFound:
        return True
    return False


async def gone(client: Client, volume_id: str) -> bool:
    return await _not_found(client.show_volume(volume_id))


async def snapshot_gone(client: Client, snapshot_id: str) -> bool:
    return await _not_found(client.show_snapshot(snapshot_id))


async def group_snapshot_gone(client: Client, group_snapshot_id: str) -> bool:
    return await _not_found(client.show_group_snapshot(group_snapshot_id))


async def group_gone(client: Client, group_id: str) -> bool:
    return await _not_found(client.show_group(group_id))


def file_of(cluster: E2ECluster, vol: Volume) -> Path:
    assert vol.host is not None
    return cluster.volume_file(vol.host, vol.id)

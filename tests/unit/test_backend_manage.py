"""The drivers' manage and unmanage: a file in the directory becomes a volume (or a
snapshot of one) with its bytes, a volume or snapshot becomes a file again, and nothing
outside the directory, nothing in progress and nothing already a volume or snapshot can
be taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinderblock.storage_node.backends.base import GIB, DriverError
from cinderblock.storage_node.backends.file import FileDriver
from cinderblock.storage_node.backends.null import NullDriver
from tests.unit.test_backend_file import read_at

VOL = "vol-1"


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return tmp_path / "pool"


@pytest.fixture
def driver(pool: Path) -> FileDriver:
    return FileDriver(pool, capacity_gb=50.0, clone_method="copy")


def image(pool: Path, name: str, data: bytes = b"image bytes", size: int | None = None
          ) -> Path:
    path = pool / name
    path.write_bytes(data)
    if size is not None:
        os.truncate(path, size)
    return path


async def test_a_file_becomes_a_volume_with_its_bytes_and_a_scan_finds_it(
    driver: FileDriver, pool: Path,
) -> None:
    source = image(pool, "disk.img", size=GIB + 1)
    (listed,) = driver.manageable_volumes()
    assert (listed.name, listed.size_gb, listed.reason_not_safe) == ("disk.img", 2, None)

    await driver.manage_existing(VOL, "disk.img", 2)
    path = driver.volume_path(VOL)
    assert not source.exists() and read_at(path, 0, 11) == b"image bytes"
    assert path.stat().st_size == 2 * GIB and driver.volumes() == {VOL: 2}
    (listed,) = driver.manageable_volumes()
    assert (listed.name, listed.reason_not_safe, listed.object_id) == (
        f"volume-{VOL}", "already managed", VOL)
    assert FileDriver(pool, clone_method="copy").volumes() == {VOL: 2}  # after a restart


async def test_an_unmanaged_volume_is_a_file_again_and_manageable_once_more(
    driver: FileDriver, pool: Path,
) -> None:
    await driver.create_volume(VOL, 1)
    driver.volume_path(VOL).write_bytes(b"written")
    await driver.create_snapshot("snap-1", VOL)

    kept = await driver.unmanage_volume(VOL)
    assert kept == f"unmanaged-volume-{VOL}" and driver.volumes() == {}
    assert read_at(pool / kept, 0, 7) == b"written"
    assert [m.name for m in driver.manageable_volumes()] == [kept]  # snapshots are not
    assert await driver.unmanage_volume(VOL) is None  # again: nothing is here, fine
    assert FileDriver(pool, clone_method="copy").volumes() == {}  # a scan leaves it alone

    await driver.manage_existing("vol-2", kept, 1)
    assert read_at(driver.volume_path("vol-2"), 0, 7) == b"written"


async def test_what_is_not_plain_data_in_the_directory_is_not_safe_or_refused(
    driver: FileDriver, pool: Path, tmp_path: Path,
) -> None:
    outside = image(tmp_path, "outside.img")
    os.symlink(outside, pool / "link.img")
    (pool / "subdir").mkdir()
    await driver.create_volume(VOL, 1)
    await driver.create_snapshot("snap-1", VOL)
    reasons = {m.name: m.reason_not_safe for m in driver.manageable_volumes()}
    assert reasons == {"link.img": "a symbolic link, not the data itself",
                       "subdir": "not a regular file", f"volume-{VOL}": "already managed"}
    assert driver.manageable_volumes("no-such") == []
    for name, why in (("link.img", "a symbolic link"), ("subdir", "not a regular file"),
                      (f"volume-{VOL}", "already managed"),
                      ("snapshot-snap-1", "a snapshot's data"),
                      ("no-such", "not in the backend's directory"),
                      ("../outside.img", "not a file name"), ("..", "not a file name"),
                      ("", "not a file name"), (".tmp-x", "work in progress")):
        with pytest.raises(DriverError, match=why):
            await driver.manage_existing("vol-2", name, 1)
    assert outside.exists() and driver.volumes() == {VOL: 1}
    with pytest.raises(DriverError, match="already exists"):
        await driver.manage_existing(VOL, "link.img", 1)


async def test_a_file_grown_past_what_was_reserved_is_refused_and_stays(
    driver: FileDriver, pool: Path,
) -> None:
    source = image(pool, "growing.img", size=3 * GIB)
    grown = r"has grown to 3 GiB since it was listed \(the volume was given 2 GiB\)"
    with pytest.raises(DriverError, match=grown):
        await driver.manage_existing(VOL, "growing.img", 2)
    assert source.exists() and driver.volumes() == {}


async def test_an_unmanage_never_renames_over_an_entry(driver: FileDriver, pool: Path) -> None:
    await driver.create_volume(VOL, 1)
    image(pool, "taken")
    with pytest.raises(DriverError, match="failed"):
        await driver.unmanage_volume(VOL, "taken")
    assert driver.volumes() == {VOL: 1} and driver.volume_path(VOL).exists()
    assert await driver.unmanage_volume(VOL, "given-back") == "given-back"


async def test_the_null_backend_has_nothing_to_manage_and_unmanages_by_forgetting() -> None:
    driver = NullDriver()
    assert driver.manageable_volumes() == [] and driver.manageable_snapshots() == []
    with pytest.raises(DriverError, match="holds nothing to manage"):
        await driver.manage_existing(VOL, "anything", 1)
    await driver.create_volume(VOL, 1)
    with pytest.raises(DriverError, match="holds nothing to manage"):
        await driver.manage_existing_snapshot("snap-1", VOL, "anything", 1)
    await driver.create_snapshot("snap-1", VOL)
    assert await driver.unmanage_snapshot("snap-1") is None and driver.snapshots() == {}
    assert await driver.unmanage_volume(VOL) is None and driver.volumes() == {}


async def test_a_file_becomes_a_snapshot_of_a_volume_that_reverts_and_clones_from_it(
    driver: FileDriver, pool: Path,
) -> None:
    await driver.create_volume(VOL, 2)
    driver.volume_path(VOL).write_bytes(b"now")
    source = image(pool, "backup.img", b"then")
    assert [(m.name, m.reason_not_safe) for m in driver.manageable_snapshots()] == [
        ("backup.img", None)]  # the volume's own file is not listed as a snapshot

    await driver.manage_existing_snapshot("snap-1", VOL, "backup.img", 2)
    assert not source.exists() and driver.snapshots() == {"snap-1": 2}
    assert (pool / "snapshot-snap-1").stat().st_size == 2 * GIB
    (listed,) = driver.manageable_snapshots()
    assert (listed.name, listed.reason_not_safe, listed.object_id) == (
        "snapshot-snap-1", "already managed", "snap-1")
    assert [m.name for m in driver.manageable_volumes()] == [f"volume-{VOL}"]
    await driver.create_volume_from_snapshot("vol-2", "snap-1", 2)
    assert read_at(driver.volume_path("vol-2"), 0, 4) == b"then"
    await driver.revert_to_snapshot(VOL, "snap-1")
    assert read_at(driver.volume_path(VOL), 0, 4) == b"then"
    assert FileDriver(pool, clone_method="copy").snapshots() == {"snap-1": 2}  # a restart


async def test_a_snapshot_manage_refuses_what_its_volume_could_not_hold(
    driver: FileDriver, pool: Path,
) -> None:
    await driver.create_volume(VOL, 1)
    big = image(pool, "big.img", size=2 * GIB)
    image(pool, "small.img")
    for snapshot_id, volume_id, name, size, why in (
        ("snap-1", VOL, "big.img", 2, "cannot be 2 GiB"),  # more than its volume
        ("snap-1", VOL, "big.img", 1, "has grown to 2 GiB"),
        ("snap-1", "vol-9", "small.img", 1, "volume vol-9 does not exist"),
        ("snap-1", VOL, f"volume-{VOL}", 1, "a volume's data"),
        ("snap-1", VOL, "../x", 1, "not a file name"),
    ):
        with pytest.raises(DriverError, match=why):
            await driver.manage_existing_snapshot(snapshot_id, volume_id, name, size)
    assert big.exists() and driver.snapshots() == {}
    await driver.create_snapshot("snap-1", VOL)
    with pytest.raises(DriverError, match="already exists"):
        await driver.manage_existing_snapshot("snap-1", VOL, "small.img", 1)


async def test_an_unmanaged_snapshot_is_a_file_again(driver: FileDriver, pool: Path) -> None:
    await driver.create_volume(VOL, 1)
    driver.volume_path(VOL).write_bytes(b"kept")
    await driver.create_snapshot("snap-1", VOL)
    kept = await driver.unmanage_snapshot("snap-1")
    assert kept == "unmanaged-snapshot-snap-1" and driver.snapshots() == {}
    assert read_at(pool / kept, 0, 4) == b"kept"
    assert await driver.unmanage_snapshot("snap-1") is None  # again: fine
    assert [m.name for m in driver.manageable_snapshots()] == [kept]
    assert FileDriver(pool, clone_method="copy").snapshots() == {}

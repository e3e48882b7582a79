"""Tests for the file driver: sparse files, copies, reflinks, the start-up scan."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cinderblock.storage_node.backends import file as file_module
from cinderblock.storage_node.backends.base import GIB, DriverError
from cinderblock.storage_node.backends.file import CloneMethod, FileDriver, probe_clone_method
from tests.conftest import require_root, require_tool, unavailable

MIB = 2**20
VOL = "11111111-2222-3333-4444-555555555555"
SNAP = "snap-1"
CLONE = "clone-1"
# (offset, bytes) written into a 10 GiB volume: start, middle, unaligned, the very end.
PATTERN = [
    (0, b"first block"),
    (3 * GIB + 123, os.urandom(5000)),
    (7 * GIB - 4096, b"\xaa" * 8192),
    (10 * GIB - 16, b"the last sixteen"),
]
HOSTILE_IDS = ["../etc/passwd", "a/b", "", "x" * 65, ".", "..", "id\n", "ïd", "a b", "a_b"]


# --- helpers ---------------------------------------------------------------------------


def write_pattern(path: Path, pattern: list[tuple[int, bytes]] = PATTERN) -> None:
    with open(path, "r+b") as f:
        for offset, data in pattern:
            f.seek(offset)
            f.write(data)


def read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def assert_holds_pattern(path: Path, pattern: list[tuple[int, bytes]] = PATTERN) -> None:
    for offset, data in pattern:
        assert read_at(path, offset, len(data)) == data, f"mismatch at offset {offset}"
    assert read_at(path, 5 * GIB, 4096) == bytes(4096), "a hole should read as zeros"


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def filesystem_type(path: Path) -> str:
    """The type of the filesystem `path` lives on, from /proc/self/mounts."""
    best, fstype = "", "unknown"
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, mount_point, kind, *_ = line.split()
            inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, fstype = mount_point, kind
    return fstype


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return tmp_path / "pool"


@pytest.fixture
def driver(pool: Path) -> FileDriver:
    """A driver on tmp_path, forced onto the sparse-copy path."""
    return FileDriver(pool, capacity_gb=50.0, clone_method="copy")


async def volume_with_pattern(driver: FileDriver) -> Path:
    await driver.create_volume(VOL, 10)
    path = driver.volume_path(VOL)
    write_pattern(path)
    return path


# --- creating, extending, deleting -----------------------------------------------------


async def test_a_new_volume_is_a_sparse_file_of_the_requested_size(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 10)
    path = driver.volume_path(VOL)
    assert path == driver.directory / f"volume-{VOL}"
    assert os.stat(path).st_size == 10 * GIB
    assert allocated_bytes(path) < MIB
    assert driver.volumes() == {VOL: 10}


async def test_creating_a_volume_that_exists_is_refused(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 1)
    with pytest.raises(DriverError, match="already exists"):
        await driver.create_volume(VOL, 2)
    assert driver.volumes() == {VOL: 1}


async def test_a_volume_size_must_be_a_positive_whole_number(driver: FileDriver) -> None:
    for size in (0, -1):
        with pytest.raises(DriverError, match="invalid size"):
            await driver.create_volume(VOL, size)
    assert list(driver.directory.iterdir()) == []


async def test_extend_grows_the_file_and_never_shrinks_it(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 2)
    await driver.extend_volume(VOL, 5)
    assert os.stat(driver.volume_path(VOL)).st_size == 5 * GIB
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.extend_volume(VOL, 4)
    assert driver.volumes() == {VOL: 5}


async def test_extending_a_missing_volume_is_refused(driver: FileDriver) -> None:
    with pytest.raises(DriverError, match="does not exist"):
        await driver.extend_volume(VOL, 5)


async def test_deleting_twice_is_fine(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 1)
    await driver.create_snapshot(SNAP, VOL)
    for _ in range(2):
        await driver.delete_snapshot(SNAP)
        await driver.delete_volume(VOL)
    assert list(driver.directory.iterdir()) == []
    assert driver.volumes() == {} and driver.snapshots() == {}


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_hostile_ids_are_refused_by_every_operation(driver: FileDriver, hostile: str) -> None:
    await driver.create_volume(VOL, 1)
    attempts = [
        driver.create_volume(hostile, 1),
        driver.delete_volume(hostile),
        driver.extend_volume(hostile, 2),
        driver.create_snapshot(hostile, VOL),
        driver.create_snapshot(SNAP, hostile),
        driver.delete_snapshot(hostile),
        driver.create_volume_from_snapshot(hostile, SNAP, 1),
        driver.create_cloned_volume(hostile, VOL, 1),
        driver.create_cloned_volume(CLONE, hostile, 1),
    ]
    for attempt in attempts:
        with pytest.raises(DriverError, match="invalid"):
            await attempt
    with pytest.raises(DriverError, match="invalid"):
        driver.volume_path(hostile)
    assert sorted(p.name for p in driver.directory.parent.rglob("*")) == [
        "pool",
        f"volume-{VOL}",
    ]


# --- capacity --------------------------------------------------------------------------


async def test_capacity_counts_volumes_and_snapshots(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 10)
    await driver.create_volume("other", 5)
    await driver.create_snapshot(SNAP, "other")
    capacity = driver.capacity()
    stat = os.statvfs(driver.directory)
    assert capacity.total_capacity_gb == 50.0
    assert capacity.free_capacity_gb == pytest.approx(
        min(stat.f_bavail * stat.f_frsize / GIB, 50.0), abs=0.01
    )
    assert capacity.allocated_capacity_gb == 15.0
    assert capacity.provisioned_capacity_gb == 20.0
    assert capacity.thin_provisioning_support and not capacity.thick_provisioning_support


def test_capacity_without_a_limit_is_the_filesystem_size(pool: Path) -> None:
    driver = FileDriver(pool, clone_method="copy")
    stat = os.statvfs(pool)
    capacity = driver.capacity()
    assert capacity.total_capacity_gb == stat.f_blocks * stat.f_frsize / GIB
    assert capacity.free_capacity_gb <= capacity.total_capacity_gb


def test_capabilities_say_how_clones_are_made(driver: FileDriver) -> None:
    capabilities = driver.capabilities()
    assert capabilities["clone_method"] == "copy"
    assert capabilities["storage_protocol"] == "nbd"
    assert capabilities["multiattach"] is True


# --- snapshots and clones on the sparse-copy path --------------------------------------


async def test_a_snapshot_holds_exactly_the_volume_bytes_and_stays_sparse(
    driver: FileDriver,
) -> None:
    volume = await volume_with_pattern(driver)
    await driver.create_snapshot(SNAP, VOL)
    snapshot = driver.directory / f"snapshot-{SNAP}"
    assert os.stat(snapshot).st_size == 10 * GIB
    assert_holds_pattern(snapshot)
    assert allocated_bytes(snapshot) < 4 * MIB
    write_pattern(volume, [(0, b"changed after")])
    assert read_at(snapshot, 0, 11) == b"first block", "a snapshot is a point in time"
    assert driver.snapshots() == {SNAP: 10}


async def test_a_clone_with_a_bigger_size_is_extended(driver: FileDriver) -> None:
    await volume_with_pattern(driver)
    await driver.create_cloned_volume(CLONE, VOL, 12)
    clone = driver.volume_path(CLONE)
    assert os.stat(clone).st_size == 12 * GIB
    assert_holds_pattern(clone)
    assert read_at(clone, 11 * GIB, 4096) == bytes(4096)
    assert allocated_bytes(clone) < 4 * MIB
    assert driver.volumes() == {VOL: 10, CLONE: 12}


async def test_a_volume_from_a_snapshot_holds_the_snapshot_bytes(driver: FileDriver) -> None:
    await volume_with_pattern(driver)
    await driver.create_snapshot(SNAP, VOL)
    await driver.create_volume_from_snapshot(CLONE, SNAP, 10)
    assert_holds_pattern(driver.volume_path(CLONE))
    assert driver.volumes()[CLONE] == 10


async def test_a_revert_gives_the_volume_the_snapshot_bytes_at_its_own_size(
    driver: FileDriver, pool: Path,
) -> None:
    path = await volume_with_pattern(driver)
    await driver.create_snapshot(SNAP, VOL)
    write_pattern(path, [(0, b"changed after"), (5 * GIB, b"x" * 4096)])
    await driver.revert_to_snapshot(VOL, SNAP)
    assert_holds_pattern(driver.volume_path(VOL))  # the hole at 5 GiB is a hole again
    assert os.path.getsize(path) == 10 * GIB and driver.volumes()[VOL] == 10
    assert allocated_bytes(path) < 64 * MIB, "the revert keeps the file sparse"
    await driver.revert_to_snapshot(VOL, SNAP)  # again is the same
    assert_holds_pattern(driver.volume_path(VOL))
    assert sorted(p.name for p in pool.iterdir()) == [f"snapshot-{SNAP}", f"volume-{VOL}"]


async def test_a_failed_revert_leaves_the_volume_as_it_was_and_no_temp_file(
    driver: FileDriver, pool: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = await volume_with_pattern(driver)
    await driver.create_snapshot(SNAP, VOL)
    write_pattern(path, [(0, b"kept")])

    def broken(source: Path, dst_fd: int) -> None:
        os.ftruncate(dst_fd, 4096)
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(file_module, "sparse_copy", broken)
    with pytest.raises(DriverError, match="reverting volume"):
        await driver.revert_to_snapshot(VOL, SNAP)
    assert read_at(path, 0, 4) == b"kept" and os.path.getsize(path) == 10 * GIB
    assert sorted(p.name for p in pool.iterdir()) == [f"snapshot-{SNAP}", f"volume-{VOL}"]
    with pytest.raises(DriverError):
        await driver.revert_to_snapshot(VOL, "snap-missing")
    await driver.create_volume(CLONE, 1)
    with pytest.raises(DriverError, match="reverting volume"):
        await driver.revert_to_snapshot(CLONE, SNAP)  # a volume smaller than the snapshot


async def test_a_new_volume_smaller_than_its_source_is_refused(driver: FileDriver) -> None:
    await driver.create_volume(VOL, 10)
    await driver.create_snapshot(SNAP, VOL)
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.create_cloned_volume(CLONE, VOL, 9)
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.create_volume_from_snapshot(CLONE, SNAP, 9)
    assert CLONE not in driver.volumes()


async def test_copying_from_a_missing_source_is_refused(driver: FileDriver) -> None:
    with pytest.raises(DriverError, match="does not exist"):
        await driver.create_snapshot(SNAP, VOL)
    with pytest.raises(DriverError, match="does not exist"):
        await driver.create_volume_from_snapshot(CLONE, SNAP, 1)


async def test_a_mostly_empty_ten_gib_volume_copies_in_milliseconds(driver: FileDriver) -> None:
    await volume_with_pattern(driver)
    started = time.perf_counter()
    await driver.create_cloned_volume(CLONE, VOL, 10)
    assert time.perf_counter() - started < 0.5


async def test_the_copy_falls_back_to_read_write_without_copy_file_range(
    driver: FileDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: object) -> int:
        raise OSError(errno.ENOSYS, "copy_file_range unsupported")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    await volume_with_pattern(driver)
    await driver.create_cloned_volume(CLONE, VOL, 10)
    assert_holds_pattern(driver.volume_path(CLONE))
    assert allocated_bytes(driver.volume_path(CLONE)) < 8 * MIB


async def test_a_failed_copy_leaves_no_temp_file(
    driver: FileDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_copy(source: Path, dst_fd: int) -> None:
        os.pwrite(dst_fd, b"half written", 0)
        raise OSError(errno.EIO, "disk on fire")

    await driver.create_volume(VOL, 1)
    monkeypatch.setattr(file_module, "sparse_copy", failing_copy)
    with pytest.raises(DriverError, match="disk on fire"):
        await driver.create_snapshot(SNAP, VOL)
    assert [p.name for p in driver.directory.iterdir()] == [f"volume-{VOL}"]
    assert driver.snapshots() == {}


async def test_two_copies_into_one_id_cannot_both_win(driver: FileDriver) -> None:
    await volume_with_pattern(driver)
    results = await asyncio.gather(
        driver.create_cloned_volume(CLONE, VOL, 10),
        driver.create_cloned_volume(CLONE, VOL, 11),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], DriverError)
    assert driver.volumes()[CLONE] == 10
    with pytest.raises(DriverError, match="already exists"):
        await driver.create_volume(CLONE, 1)


async def test_after_a_cancelled_copy_the_inventory_matches_the_directory(
    driver: FileDriver,
) -> None:
    await volume_with_pattern(driver)
    task = asyncio.create_task(driver.create_snapshot(SNAP, VOL))
    await asyncio.sleep(0)  # the copy is now running in its worker thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    on_disk = {p.name for p in driver.directory.iterdir()}
    assert on_disk == {f"volume-{VOL}", f"snapshot-{SNAP}"}, "the copy finished, no temp left"
    assert driver.snapshots() == {SNAP: 10}, "and was recorded"


# --- the start-up scan -----------------------------------------------------------------


async def test_a_restarted_driver_finds_its_volumes_and_removes_temp_files(
    driver: FileDriver,
) -> None:
    await driver.create_volume(VOL, 3)
    await driver.create_snapshot(SNAP, VOL)
    directory = driver.directory
    (directory / f".tmp-volume-{CLONE}.0badf00d").write_bytes(b"half a copy")
    (directory / "notes.txt").write_text("not a volume")
    (directory / "volume-bad_id").write_bytes(b"")
    (directory / "subdir").mkdir()

    restarted = FileDriver(directory, clone_method="copy")
    assert restarted.volumes() == {VOL: 3}
    assert restarted.snapshots() == {SNAP: 3}
    assert restarted.stray_files == ("notes.txt", "subdir", "volume-bad_id")
    assert not list(directory.glob(".tmp-*"))
    assert (directory / "notes.txt").exists(), "strays are reported, not deleted"


# --- unnamed files ---------------------------------------------------------------------


def refuse_unnamed_files(monkeypatch: pytest.MonkeyPatch, refusal: int) -> None:
    """Make ``O_TMPFILE`` fail with `refusal`, as on a filesystem without it (or where
    something else refuses it: a node starts with temp names whatever the reason)."""
    real_open = os.open

    def open_without_tmpfile(path: str | Path, flags: int, *args: object, **kw: object) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(refusal, os.strerror(refusal))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_without_tmpfile)


async def test_a_volume_is_built_unnamed_and_a_failed_build_leaves_nothing(
    driver: FileDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert driver.unnamed_files  # ext4, XFS, btrfs and tmpfs all have O_TMPFILE

    def failing_grow(size: int, fd: int) -> None:
        os.pwrite(fd, b"half made", 0)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_module, "_grow_to", failing_grow)
    with pytest.raises(DriverError, match="No space left"):
        await driver.create_volume(VOL, 1)
    assert list(driver.directory.iterdir()) == [] and driver.volumes() == {}
    monkeypatch.undo()
    await driver.create_volume(VOL, 2)
    assert [p.name for p in driver.directory.iterdir()] == [f"volume-{VOL}"]
    assert driver.volume_path(VOL).stat().st_size == 2 * GIB


def test_an_unnamed_file_never_replaces_a_name_that_exists(tmp_path: Path) -> None:
    target = tmp_path / "volume-x"
    target.write_bytes(b"someone's data")
    with pytest.raises(FileExistsError):
        file_module.write_unnamed(target, lambda fd: os.ftruncate(fd, GIB), durable=False)
    assert target.read_bytes() == b"someone's data" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("refusal", [errno.EOPNOTSUPP, errno.EACCES])
async def test_without_unnamed_files_images_are_built_under_temp_names(
    pool: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    refuse_unnamed_files(monkeypatch, refusal)
    driver = FileDriver(pool, capacity_gb=50.0, clone_method="copy")
    assert not driver.unnamed_files
    renamed: list[str] = []
    real_rename = os.rename

    def recorded_rename(source: str | Path, target: str | Path) -> None:
        renamed.append(Path(target).name)
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", recorded_rename)
    await volume_with_pattern(driver)
    await driver.create_snapshot(SNAP, VOL)
    await driver.create_cloned_volume(CLONE, VOL, 11)
    assert renamed == [f"volume-{VOL}", f"snapshot-{SNAP}", f"volume-{CLONE}"]
    assert_holds_pattern(driver.volume_path(CLONE))
    assert sorted(p.name for p in pool.iterdir()) == sorted(
        [f"volume-{VOL}", f"snapshot-{SNAP}", f"volume-{CLONE}"])


# --- choosing the clone method ---------------------------------------------------------


def test_the_probe_chooses_copy_where_reflink_is_unsupported(tmp_path: Path) -> None:
    fstype = filesystem_type(tmp_path)
    if fstype not in {"ext2", "ext3", "ext4", "tmpfs", "overlay"}:
        pytest.skip(f"tmp_path is on {fstype}, which may support reflink")
    assert probe_clone_method(tmp_path) is CloneMethod.COPY
    assert FileDriver(tmp_path / "pool").capabilities()["clone_method"] == "copy"
    assert [p.name for p in tmp_path.iterdir()] == ["pool"], "the probe cleans up"


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def xfs_directory(tmp_path: Path) -> Iterator[Path]:
    """A 512 MiB XFS (reflink=1) mounted from a loop device; always torn down."""
    require_root("mount a loop device")
    require_tool("mkfs.xfs", "losetup", "mount", "umount")
    image, mount_point = tmp_path / "xfs.img", tmp_path / "mnt"
    mount_point.mkdir()
    with open(image, "wb") as f:
        f.truncate(512 * MIB)
    try:
        _run("mkfs.xfs", "-q", "-m", "reflink=1", str(image))
        device = _run("losetup", "--find", "--show", str(image))
    except subprocess.CalledProcessError as exc:
        unavailable(f"no XFS loop mount: {exc.cmd[0]} failed: {exc.stderr.strip()}")
    try:
        _run("mount", device, str(mount_point))
        try:
            yield mount_point
        finally:
            _run("umount", str(mount_point))
    finally:
        _run("losetup", "-d", device)


async def test_the_reflink_path_on_a_real_xfs_filesystem(xfs_directory: Path) -> None:
    driver = FileDriver(xfs_directory / "pool")
    assert driver.clone_method is CloneMethod.REFLINK
    assert driver.capabilities()["clone_method"] == "reflink"
    volume = await volume_with_pattern(driver)
    dense = [(GIB + i * MIB, os.urandom(MIB)) for i in range(100)]
    write_pattern(volume, dense)
    os.sync()
    free_before = driver.capacity().free_capacity_gb

    await driver.create_snapshot(SNAP, VOL)
    await driver.create_cloned_volume(CLONE, VOL, 12)
    os.sync()

    for copy in (driver.directory / f"snapshot-{SNAP}", driver.volume_path(CLONE)):
        assert_holds_pattern(copy)
        assert_holds_pattern(copy, dense[:3] + dense[-3:])
    assert os.stat(driver.volume_path(CLONE)).st_size == 12 * GIB
    used_by_copies = (free_before - driver.capacity().free_capacity_gb) * GIB
    assert used_by_copies < 20 * MIB, "reflinked copies share the 100 MiB of data"


async def test_a_backup_reads_the_volume_as_of_one_instant_where_it_reflinks(
    xfs_directory: Path,
) -> None:
    driver = FileDriver(xfs_directory / "pool")
    volume = await volume_with_pattern(driver)
    before = read_at(volume, 0, MIB)  # of 10 GiB: not the whole file
    async with driver.backup_view(VOL) as view:
        assert view is not None and view != volume
        write_pattern(volume, [(0, b"a guest writes meanwhile")])  # after the instant
        assert read_at(view, 0, MIB) == before
        assert os.stat(view).st_size == os.stat(volume).st_size
    assert sorted(p.name for p in driver.directory.iterdir()) == [volume.name]  # no clone left
    await driver.create_snapshot(SNAP, VOL)
    async with driver.backup_view(VOL, SNAP) as view:  # a snapshot does not change
        assert view == driver.directory / f"snapshot-{SNAP}"


async def test_without_reflinks_a_backup_reads_a_copy_made_while_the_guest_s_writes_wait(
    tmp_path: Path,
) -> None:
    """A volume a guest writes (a ``hold`` given): its copy, made while the hold lasts;
    one nothing writes: its own file."""
    driver = FileDriver(tmp_path / "pool", clone_method="copy")
    volume = await volume_with_pattern(driver)
    before = read_at(volume, 0, MIB)
    steps: list[str] = []

    @contextlib.asynccontextmanager
    async def hold() -> AsyncIterator[None]:
        steps.append("held")
        yield
        steps.append("let go")

    async with driver.backup_view(VOL, hold=hold) as view:
        assert steps == ["held", "let go"]  # the copy is made: the guest writes again
        assert view is not None and view != volume
        write_pattern(volume, [(0, b"a guest writes meanwhile")])  # after the instant
        assert read_at(view, 0, MIB) == before
        assert os.stat(view).st_size == os.stat(volume).st_size
    assert sorted(p.name for p in driver.directory.iterdir()) == [volume.name]  # no copy left
    async with driver.backup_view(VOL) as view:
        assert view == volume
    with pytest.raises(DriverError, match="volume vol-missing does not exist"):
        async with driver.backup_view("vol-missing"):
            pass

"""The backup repository on real files: sparse round trips, damage found before use,
crashes that leave no backup, deletes that never leave half of one."""

from __future__ import annotations

import json
import os
import random
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cinderblock.storage_node.backends.base import GIB, DriverError
from cinderblock.storage_node.backends.file import FileDriver
from cinderblock.storage_node.backends.null import NullDriver
from cinderblock.storage_node.backup_repository import (
    CHUNK_SIZE,
    MANIFEST,
    BackupDamaged,
    BackupNotFound,
    BackupRepository,
    chunk_name,
    compresses,
    parse_manifest,
    temp_prefix,
)
from tests.lifecycle_helpers import holds_bytes, same_bytes, volume_holding, write_pattern

HOST = "node-1"
VOL = "vol-1"
# (offset, bytes) in a 1 GiB volume: the first byte, across the boundary of chunks 5
# and 6, the very last byte; chunks 20 and 21 are written with zeros (data to the
# filesystem, nothing to the backup).
PATTERN = [
    (0, b"first"),
    (6 * CHUNK_SIZE - 3, b"ACROSS!!"),
    (20 * CHUNK_SIZE, bytes(2 * CHUNK_SIZE)),
    (GIB - 1, b"\xff"),
]
CHUNKS_WITH_DATA = [0, 5, 6, GIB // CHUNK_SIZE - 1]
OLD_BYTES = [(4096, b"the volume's own bytes"), (GIB - 7, b"its end")]


@pytest.fixture
def repo(tmp_path: Path) -> BackupRepository:
    repository = BackupRepository(tmp_path / "backups", HOST)
    repository.prepare()
    return repository


@pytest.fixture
def driver(tmp_path: Path) -> FileDriver:
    return FileDriver(tmp_path / "pool", clone_method="copy")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A sparse 1 GiB volume file holding PATTERN."""
    path = tmp_path / "source"
    with open(path, "wb") as f:
        f.truncate(GIB)
    write_pattern(path, PATTERN)
    return path


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512


# ---- round trips --------------------------------------------------------------------


async def test_a_sparse_volume_round_trips_byte_for_byte_and_only_its_data_is_stored(
    repo: BackupRepository, driver: FileDriver, source: Path
) -> None:
    count = await repo.write("b1", VOL, 1, source)

    stored = sorted(p.name for p in (repo.root / "b1").iterdir())
    assert count == len(CHUNKS_WITH_DATA)
    assert stored == sorted([MANIFEST, *(chunk_name(i) for i in CHUNKS_WITH_DATA)])
    target = await volume_holding(driver, "vol-2", OLD_BYTES)
    backup = await repo.open_backup("b1")
    await driver.restore_volume("vol-2", backup.write_into)
    assert same_bytes(source, target)
    assert allocated_bytes(target) < 2**20, "the restored volume stays sparse"
    assert driver.volumes() == {"vol-2": 1}


async def test_the_manifest_says_what_the_backup_is_in_cinders_chunked_shape(
    repo: BackupRepository, source: Path
) -> None:
    await repo.write("b1", VOL, 1, source)

    doc = json.loads((repo.root / "b1" / MANIFEST).read_bytes())
    assert {k: doc[k] for k in ("version", "backup_id", "volume_id", "size_gb", "chunk_size")
            } == {"version": 1, "backup_id": "b1", "volume_id": VOL, "size_gb": 1,
                  "chunk_size": 8 * 2**20}
    first = doc["chunks"][0]
    assert first["index"] == 0 and first["offset"] == 0 and first["length"] == CHUNK_SIZE
    assert first["compression"] == "zlib" and first["name"] == "chunk-00000000"
    assert zlib.decompress((repo.root / "b1" / first["name"]).read_bytes())[:5] == b"first"
    assert parse_manifest((repo.root / "b1" / MANIFEST).read_bytes()).backup_id == "b1"


async def test_a_backup_of_a_volume_without_data_holds_no_chunks_and_restores_zeros(
    repo: BackupRepository, driver: FileDriver, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    with open(empty, "wb") as f:
        f.truncate(GIB)

    assert await repo.write("b1", VOL, 1, empty) == 0

    target = await volume_holding(driver, "vol-2", OLD_BYTES)
    await driver.restore_volume("vol-2", (await repo.open_backup("b1")).write_into)
    assert same_bytes(empty, target)


async def test_writing_a_backup_that_is_there_whole_returns_its_count_and_rewrites_nothing(
    repo: BackupRepository, source: Path
) -> None:
    count = await repo.write("b1", VOL, 1, source)
    before = {p.name: os.stat(p).st_ino for p in (repo.root / "b1").iterdir()}

    assert await repo.write("b1", VOL, 1, source) == count
    assert {p.name: os.stat(p).st_ino for p in (repo.root / "b1").iterdir()} == before
    with pytest.raises(DriverError, match="already one of volume vol-1, not of vol-9"):
        await repo.write("b1", "vol-9", 1, source)
    assert [p.name for p in repo.root.iterdir()] == ["b1"]


# ---- what is compressed ---------------------------------------------------------------


def test_only_data_that_compresses_is_given_to_zlib() -> None:
    noise = random.Random(7).randbytes(CHUNK_SIZE)
    assert not compresses(noise)
    assert compresses(bytes(CHUNK_SIZE - 5) + b"tail!")
    assert compresses(b"a log line that repeats itself\n" * 1000)
    half = noise[: CHUNK_SIZE // 2] + b"text " * (CHUNK_SIZE // 10)
    assert compresses(half[:CHUNK_SIZE])  # half of it compresses: worth it


async def test_a_chunk_that_would_not_compress_is_stored_as_it_is_and_restored(
    repo: BackupRepository, driver: FileDriver, source: Path
) -> None:
    noise = random.Random(3).randbytes(CHUNK_SIZE)
    write_pattern(source, [(2 * CHUNK_SIZE, noise)])
    await repo.write("b1", VOL, 1, source)

    manifest = parse_manifest((repo.root / "b1" / MANIFEST).read_bytes())
    kinds = {c.index: c.compression for c in manifest.chunks}
    assert kinds[2] == "none" and kinds[0] == "zlib"
    assert (repo.root / "b1" / chunk_name(2)).read_bytes() == noise
    target = await volume_holding(driver, "vol-2", OLD_BYTES)
    await driver.restore_volume("vol-2", (await repo.open_backup("b1")).write_into)
    assert same_bytes(source, target)

    with open(repo.root / "b1" / chunk_name(2), "r+b") as f:
        f.truncate(CHUNK_SIZE - 1)
    with pytest.raises(BackupDamaged, match="holds 8388607 bytes, not the 8388608"):
        await driver.restore_volume("vol-2", (await repo.open_backup("b1")).write_into)
    assert same_bytes(source, target)  # the volume kept the bytes it had


# ---- incremental backups ----------------------------------------------------------------


async def test_an_incremental_backup_links_what_did_not_change_and_restores_whole(
    repo: BackupRepository, driver: FileDriver, source: Path
) -> None:
    await repo.write("b1", VOL, 1, source)
    # chunk 0 changes, chunk 5's data is zeroed (a chunk of zeros is not stored), chunk 9
    # gets data; 6 and the last are as they were
    write_pattern(source, [(0, b"FIRST"), (5 * CHUNK_SIZE, bytes(CHUNK_SIZE)),
                           (9 * CHUNK_SIZE, b"new data")])

    count = await repo.write("b2", VOL, 1, source, parent_id="b1")

    last = GIB // CHUNK_SIZE - 1
    assert count == 4  # chunks 0, 6, 9 and the last: what b2 holds
    inode = {(b, i): os.stat(repo.root / b / chunk_name(i)).st_ino
             for b, i in [("b1", 0), ("b1", 6), ("b1", last), ("b2", 0), ("b2", 6),
                          ("b2", 9), ("b2", last)]}
    assert inode["b2", 6] == inode["b1", 6] and inode["b2", last] == inode["b1", last]
    assert inode["b2", 0] != inode["b1", 0]  # changed: written anew
    assert not (repo.root / "b2" / chunk_name(5)).exists()
    assert parse_manifest((repo.root / "b2" / MANIFEST).read_bytes()).parent_id == "b1"
    assert parse_manifest((repo.root / "b1" / MANIFEST).read_bytes()).parent_id is None

    await repo.delete("b1")  # the links keep what b2 shares with it
    target = await volume_holding(driver, "vol-2", OLD_BYTES)
    await driver.restore_volume("vol-2", (await repo.open_backup("b2")).write_into)
    assert same_bytes(source, target)


async def test_an_incremental_backup_needs_its_parent_here_and_of_its_volume(
    repo: BackupRepository, source: Path
) -> None:
    with pytest.raises(BackupNotFound, match="parent backup b0 of an incremental backup"):
        await repo.write("b2", VOL, 1, source, parent_id="b0")
    await repo.write("b1", "vol-9", 1, source)
    with pytest.raises(DriverError, match="one of volume vol-9, not of vol-1: it cannot"):
        await repo.write("b2", VOL, 1, source, parent_id="b1")
    assert sorted(p.name for p in repo.root.iterdir()) == ["b1"]


async def test_a_repository_that_cannot_link_copies_the_unchanged_chunks(
    repo: BackupRepository, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await repo.write("b1", VOL, 1, source)

    def no_links(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")  # EXDEV

    monkeypatch.setattr(os, "link", no_links)
    await repo.write("b2", VOL, 1, source, parent_id="b1")
    for index in CHUNKS_WITH_DATA:
        mine, theirs = repo.root / "b2" / chunk_name(index), repo.root / "b1" / chunk_name(index)
        assert os.stat(mine).st_ino != os.stat(theirs).st_ino
        assert mine.read_bytes() == theirs.read_bytes()


async def test_the_null_backend_makes_backups_without_chunks_and_restores_them(
    repo: BackupRepository,
) -> None:
    null = NullDriver()
    await null.create_volume(VOL, 1)
    async with null.backup_view(VOL) as source:
        assert source is None
        assert await repo.write("b1", VOL, 1, source) == 0
    await null.restore_volume(VOL, (await repo.open_backup("b1")).write_into)


async def test_a_restore_into_a_null_volume_reads_and_checks_every_chunk(
    repo: BackupRepository, source: Path
) -> None:
    null = NullDriver()
    await null.create_volume(VOL, 1)
    await repo.write("b1", VOL, 1, source)
    await null.restore_volume(VOL, (await repo.open_backup("b1")).write_into)

    (repo.root / "b1" / chunk_name(CHUNKS_WITH_DATA[-1])).write_bytes(zlib.compress(b"x"))

    with pytest.raises(BackupDamaged, match=r"backup b1 .* chunk-00000127"):
        await null.restore_volume(VOL, (await repo.open_backup("b1")).write_into)


async def test_a_backup_is_not_written_into_a_volume_smaller_than_it(
    repo: BackupRepository, driver: FileDriver, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 * GIB)
    await repo.write("b1", VOL, 2, big)
    target = await volume_holding(driver, "vol-2", OLD_BYTES)

    with pytest.raises(DriverError, match="backup b1 is 2 GiB: it does not fit a volume of 1"):
        await driver.restore_volume("vol-2", (await repo.open_backup("b1")).write_into)
    assert holds_bytes(target, OLD_BYTES)


async def test_a_source_larger_than_the_backups_size_is_refused_and_leaves_nothing(
    repo: BackupRepository, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 * GIB)

    with pytest.raises(DriverError, match="more than the backup's 1 GiB"):
        await repo.write("b1", VOL, 1, big)
    assert list(repo.root.iterdir()) == []


@pytest.mark.parametrize("bad", ["../b1", "a/b", "", ".tmp-node-1@x", "x" * 65])
async def test_an_id_that_could_name_a_path_outside_the_repository_is_refused(
    repo: BackupRepository, source: Path, bad: str
) -> None:
    with pytest.raises(DriverError, match="invalid backup id"):
        await repo.write(bad, VOL, 1, source)
    with pytest.raises(DriverError, match="invalid backup id"):
        await repo.open_backup(bad)
    with pytest.raises(DriverError, match="invalid backup id"):
        await repo.delete(bad)
    assert not repo.holds(bad)
    assert list(repo.root.iterdir()) == []


# ---- damage --------------------------------------------------------------------------


def flip_a_byte(path: Path) -> None:
    """The last byte: zlib's own check of what it made. (A flip in the middle of a
    stream of zeros may change only a distance to copy zeros from: the same bytes.)"""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def rewrite_with_other_bytes(path: Path) -> None:
    """A well-formed zlib stream of the same length, one byte changed: only the sha256
    tells."""
    data = bytearray(zlib.decompress(path.read_bytes()))
    data[1] ^= 0x01
    path.write_bytes(zlib.compress(bytes(data), 1))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def manifest_of(directory: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((directory / MANIFEST).read_bytes())
    return doc


def write_manifest(directory: Path, doc: dict[str, object]) -> None:
    (directory / MANIFEST).write_text(json.dumps(doc))


def chunk_named_outside(directory: Path) -> None:
    doc = manifest_of(directory)
    chunks = doc["chunks"]
    assert isinstance(chunks, list)
    chunks[0]["name"] = "../../pool/volume-vol-2"
    write_manifest(directory, doc)


def chunk_past_the_volume(directory: Path) -> None:
    doc = manifest_of(directory)
    chunks = doc["chunks"]
    assert isinstance(chunks, list)
    index = GIB // CHUNK_SIZE
    chunks.append({**chunks[-1], "index": index, "offset": index * CHUNK_SIZE,
                   "name": chunk_name(index)})
    write_manifest(directory, doc)


CHUNK_DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "a flipped byte": (flip_a_byte, "chunk-00000005 is not a zlib stream"),
    "other bytes": (rewrite_with_other_bytes, "chunk-00000005 does not match its sha256"),
    "a truncated file": (truncate, "chunk-00000005"),
    "a missing file": (Path.unlink, "chunk-00000005 is missing"),
}
MANIFEST_DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "not JSON": (lambda d: (d / MANIFEST).write_text("{not json"), "manifest.json"),
    "missing": (lambda d: (d / MANIFEST).unlink(), "manifest.json is missing"),
    "nested past the stack": (lambda d: (d / MANIFEST).write_text("[" * 100_000),
                              "nested too deep"),
    "a chunk named outside": (chunk_named_outside, "name '../../pool/volume-vol-2'"),
    "a chunk past the volume's end": (chunk_past_the_volume,
                                      "chunk 128: length .* does not fit"),
}


@pytest.mark.parametrize("damage", list(CHUNK_DAMAGE), ids=str)
async def test_a_damaged_chunk_fails_the_restore_by_name_and_leaves_the_volume_whole(
    repo: BackupRepository, driver: FileDriver, source: Path, damage: str
) -> None:
    await repo.write("b1", VOL, 1, source)
    target = await volume_holding(driver, "vol-2", OLD_BYTES)
    spoil, mentions = CHUNK_DAMAGE[damage]
    spoil(repo.root / "b1" / chunk_name(5))
    backup = await repo.open_backup("b1")

    with pytest.raises(BackupDamaged, match=f"backup b1 in the backup repository at .* on "
                                            f"{HOST} is damaged: {mentions}"):
        await driver.restore_volume("vol-2", backup.write_into)
    assert holds_bytes(target, OLD_BYTES)
    assert not holds_bytes(target, PATTERN[:1])
    assert sorted(p.name for p in driver.directory.iterdir()) == ["volume-vol-2"]


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE), ids=str)
async def test_a_damaged_manifest_fails_before_anything_is_written(
    repo: BackupRepository, source: Path, damage: str
) -> None:
    await repo.write("b1", VOL, 1, source)
    spoil, mentions = MANIFEST_DAMAGE[damage]
    spoil(repo.root / "b1")

    with pytest.raises(BackupDamaged, match=f"backup b1 .* is damaged: .*{mentions}"):
        await repo.open_backup("b1")


async def test_a_backup_that_is_not_there_says_where_it_was_looked_for(
    repo: BackupRepository,
) -> None:
    with pytest.raises(BackupNotFound, match=f"backup b9 is not in the backup repository at "
                                             f"{repo.root} on {HOST}"):
        await repo.open_backup("b9")


# ---- crashes and deletes -------------------------------------------------------------


def leave_a_temp(root: Path, host: str, what: str) -> str:
    """What a node killed while writing leaves: a temp directory with part of a backup."""
    name = f"{temp_prefix(host)}{what}-0badc0de"
    (root / name).mkdir()
    (root / name / chunk_name(0)).write_bytes(zlib.compress(b"part"))
    return name


async def test_a_crash_while_writing_leaves_no_backup_and_the_start_sweeps_only_its_own(
    repo: BackupRepository, source: Path
) -> None:
    mine = leave_a_temp(repo.root, HOST, "b1")
    also_mine = leave_a_temp(repo.root, HOST, "deleting-b0")
    longer_name = leave_a_temp(repo.root, "node-10", "b2")
    shorter_name = leave_a_temp(repo.root, "node", "b3")

    assert not repo.holds("b1")
    with pytest.raises(BackupNotFound):
        await repo.open_backup("b1")
    assert repo.prepare() == sorted([mine, also_mine])
    assert sorted(p.name for p in repo.root.iterdir()) == sorted([longer_name, shorter_name])
    assert BackupRepository(repo.root, "node").prepare() == [shorter_name]
    assert await repo.write("b1", VOL, 1, source) == len(CHUNKS_WITH_DATA)
    assert sorted(p.name for p in repo.root.iterdir()) == sorted(["b1", longer_name])


async def test_a_failed_write_leaves_nothing_behind(
    repo: BackupRepository, tmp_path: Path
) -> None:
    with pytest.raises(DriverError, match=r"writing backup b1 of volume vol-1 into the backup "
                                          r"repository at .* failed"):
        await repo.write("b1", VOL, 1, tmp_path / "no-such-volume")
    assert list(repo.root.iterdir()) == []


async def test_a_delete_is_idempotent_and_leaves_nothing(
    repo: BackupRepository, source: Path
) -> None:
    await repo.write("b1", VOL, 1, source)

    await repo.delete("b1")
    await repo.delete("b1")
    await repo.delete("never-made")

    assert not repo.holds("b1")
    assert list(repo.root.iterdir()) == []


async def test_a_delete_cut_short_never_leaves_part_of_the_backup_under_its_name(
    repo: BackupRepository, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await repo.write("b1", VOL, 1, source)

    def remove_one_file_then_die(path: Path) -> None:
        (Path(path) / MANIFEST).unlink()
        raise OSError("the node died here")

    with monkeypatch.context() as patched:
        patched.setattr(shutil, "rmtree", remove_one_file_then_die)
        await repo.delete("b1")

    assert not repo.holds("b1")
    with pytest.raises(BackupNotFound):
        await repo.open_backup("b1")
    (left,) = [p.name for p in repo.root.iterdir()]
    assert left.startswith(f"{temp_prefix(HOST)}deleting-b1-")
    assert repo.prepare() == [left]
    assert list(repo.root.iterdir()) == []

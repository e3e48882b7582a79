"""The backup repository: whole volume backups kept in one directory, in a format close
to Cinder's chunked backup drivers (its posix driver).

Layout::

    <root>/<backup_id>/manifest.json            what the backup is, and its chunks
    <root>/<backup_id>/chunk-00000003           zlib of bytes [3 * CHUNK_SIZE, 4 * CHUNK_SIZE)
    <root>/.tmp-<host>@<backup_id>-<random>/    a backup node <host> is writing
    <root>/.tmp-<host>@deleting-<backup_id>-<random>/   one node <host> is removing

The manifest (JSON, ``FORMAT_VERSION`` 1)::

    {"version": 1, "backup_id": "...", "volume_id": "...", "size_gb": 10,
     "chunk_size": 8388608, "created_at": 1700000000.0,
     "chunks": [{"index": 3, "offset": 25165824, "length": 8388608,
                 "sha256": "<of the uncompressed bytes>", "compression": "zlib",
                 "name": "chunk-00000003"}, ...]}

Only chunks that hold data are stored: the holes of a sparse file are skipped without
being read (``SEEK_DATA``/``SEEK_HOLE``) and a chunk of zeros is left out, so the backup
of a mostly-empty 10 GiB volume is a few files. A chunk is zlib-compressed unless
samples of it show it will not compress (encrypted or already compressed data: zlib
spends 15 ms an 8 MiB chunk on it to save nothing), and is then stored as it is
(``"compression": "none"``). A restore writes each stored chunk at
its offset into a new, all-zero file: what no chunk holds stays zero.

An incremental backup names its parent (``"parent_id"`` in its manifest): every chunk
whose bytes are the parent's chunk's (the same sha256 and length) is a hard link to
the parent's file, not a new one (a copy where the repository cannot link), and only
the chunks that changed are compressed and written. Each backup's directory still holds
every chunk it needs, so a restore reads one backup, and deleting a parent never takes
a chunk from the backups made after it (the gateway refuses that delete all the same,
as Cinder does: ``Incremental backups exist for this backup.``).

Invariants, and how they are kept:

* **A backup under its real name is whole.** It is built in a temp directory (each
  file fsynced, then the directory), renamed into place, and the root fsynced. A
  delete renames it to a temp name first (the root fsynced) and only then removes it.
  A crash leaves a whole backup or a temp directory, never a part under the real name.
* **A node sweeps only its own temp directories.** The repository may be a mount
  that several nodes share; each temp name carries its maker's host, ended by ``@``
  (which host names and ids never hold: host ``node`` never takes ``node-1``'s).
* **Nothing damaged is used.** A restore checks each chunk's length and sha256
  before it writes the chunk; a damaged manifest or chunk is a `BackupDamaged` that
  names the backup and what is wrong. The driver writes into a file the volume's
  replaces only once the restore is whole (``Driver.restore_volume``), so a damaged
  backup leaves the volume's bytes as they were.
* **Ids cannot escape the root**: they are checked by `base.validate_id`; chunk names
  are derived from their index, never taken from the manifest as they are.

Every file operation runs in a worker thread (zlib and hashlib let go of the GIL on
large buffers); only `holds` (one stat) runs on the caller's thread.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinderblock.actors.runtime.failpoints import declare
from cinderblock.storage_node.backends.base import (
    GIB,
    DriverError,
    is_valid_id,
    validate_id,
    validate_size,
)
from cinderblock.storage_node.backends.file import data_extents

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHUNK_SIZE = 8 * 2**20  # Cinder's chunked drivers use a few MiB per object as well
COMPRESSION = "zlib"
STORED = "none"  # a chunk kept as it is: it would not compress
COMPRESSIONS = (COMPRESSION, STORED)
ZLIB_LEVEL = 1  # fast: backups of mostly-empty volumes are I/O, not compression, bound
SAMPLES, SAMPLE_BYTES = 8, 8192  # pieces of a chunk compressed to judge it
INCOMPRESSIBLE = 0.9  # samples that keep more than this of their size: stored as they are
MANIFEST = "manifest.json"

# the failpoint matrix kills the node here (in the worker thread: the process dies)
WRITE_BEFORE_RENAME = declare("node.create_backup.before_rename")
DELETE_AFTER_RENAME = declare("node.delete_backup.after_rename")
RESTORE_BEFORE_REPLACE = declare("node.restore_backup.before_replace")
TEMP_PREFIX = ".tmp-"
_ZEROS = bytes(CHUNK_SIZE)
_BLOCK = 64 * 1024  # a restore leaves the zero blocks of a chunk as holes, at this grain
_ZERO_BLOCK = bytes(_BLOCK)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupNotFound(DriverError):
    """The repository holds no backup of that id."""


class BackupDamaged(DriverError):
    """A backup's manifest or one of its chunks is not what it must be."""


# ---- the manifest (plain data, no I/O) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stored piece of a backup: the volume's bytes ``[offset, offset + length)``."""

    index: int  # offset // chunk size
    offset: int
    length: int
    sha256: str  # of the uncompressed bytes
    name: str  # the file in the backup's directory
    compression: str = COMPRESSION


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup is: whose data, how big, and which chunks hold it."""

    backup_id: str
    volume_id: str
    size_gb: int  # the volume's when the backup was made: a restore needs this much
    chunk_size: int
    created_at: float
    chunks: tuple[Chunk, ...]
    version: int = FORMAT_VERSION
    parent_id: str | None = None  # an incremental backup's: the one it shares chunks with

    def to_json(self) -> bytes:
        parent = {} if self.parent_id is None else {"parent_id": self.parent_id}
        return json.dumps({
            "version": self.version, "backup_id": self.backup_id,
            "volume_id": self.volume_id, "size_gb": self.size_gb,
            "chunk_size": self.chunk_size, "created_at": self.created_at, **parent,
            "chunks": [{"index": c.index, "offset": c.offset, "length": c.length,
                        "sha256": c.sha256, "compression": c.compression, "name": c.name}
                       for c in self.chunks],
        }, indent=1).encode()


def chunk_name(index: int) -> str:
    return f"chunk-{index:08d}"


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest `raw` holds, every field checked; ValueError says what is wrong."""
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    version = _integer(doc, "version")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version} is not {FORMAT_VERSION}")
    size_gb, chunk_size = _integer(doc, "size_gb"), _integer(doc, "chunk_size")
    if size_gb < 1 or chunk_size < 1:
        raise ValueError(f"size_gb {size_gb} and chunk_size {chunk_size} must be positive")
    listed = doc.get("chunks")
    if not isinstance(listed, list):
        raise ValueError("chunks is not a list")
    chunks = tuple(_parse_chunk(entry, chunk_size, size_gb * GIB) for entry in listed)
    if any(a.index >= b.index for a, b in itertools.pairwise(chunks)):
        raise ValueError("chunks are not in ascending order of index, each once")
    created_at = doc.get("created_at")
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        raise ValueError("created_at is not a number")
    parent_id = None if doc.get("parent_id") is None else _text(doc, "parent_id")
    return Manifest(_text(doc, "backup_id"), _text(doc, "volume_id"), size_gb, chunk_size,
                    float(created_at), chunks, version, parent_id)


def _parse_chunk(entry: object, chunk_size: int, size: int) -> Chunk:
    if not isinstance(entry, dict):
        raise ValueError("a chunk entry is not a JSON object")
    index, offset, length = (_integer(entry, k) for k in ("index", "offset", "length"))
    where = f"chunk {index}"
    if index < 0 or offset != index * chunk_size:
        raise ValueError(f"{where}: offset {offset} is not index * chunk_size")
    if not 0 < length <= chunk_size or offset + length > size:
        raise ValueError(f"{where}: length {length} does not fit the chunk or the volume")
    sha256, name, compression = (_text(entry, k) for k in ("sha256", "name", "compression"))
    if _SHA256.fullmatch(sha256) is None:
        raise ValueError(f"{where}: sha256 {sha256!r} is not 64 hex digits")
    if name != chunk_name(index):
        raise ValueError(f"{where}: name {name!r} is not {chunk_name(index)!r}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"{where}: compression {compression!r} is not one of "
                         f"{', '.join(COMPRESSIONS)}")
    return Chunk(index, offset, length, sha256, name, compression)


def _integer(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is not an integer")
    return value


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


# ---- blocking file work (runs in worker threads) ---------------------------------------


def _chunk_indexes(fd: int, size: int) -> Iterator[int]:
    """The index of every chunk that a data region of `fd` touches, ascending, each once
    (holes are never read)."""
    next_index = 0
    for start, end in data_extents(fd, size):
        first, last = max(start // CHUNK_SIZE, next_index), (end - 1) // CHUNK_SIZE
        yield from range(first, last + 1)
        next_index = last + 1


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes at `offset`, fewer only at the end of the file."""
    parts, done = [], 0
    while done < length:
        part = os.pread(fd, length - done, offset + done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _pwrite_sparse(fd: int, data: bytes, offset: int) -> None:
    """Write the `_BLOCK`-sized pieces of `data` that are not all zero, each run of them
    in one write, into a file that is all zero already: a chunk with a few bytes in it
    stays a few blocks on the restored volume, not `CHUNK_SIZE` of them."""
    view, run_start = memoryview(data), None
    for at in range(0, len(data), _BLOCK):
        piece = data[at:at + _BLOCK]
        if piece != _ZERO_BLOCK[: len(piece)]:  # (a whole block: no copy is sliced)
            run_start = at if run_start is None else run_start
        elif run_start is not None:
            _pwrite_all(fd, view[run_start:at], offset + run_start)
            run_start = None
    if run_start is not None:
        _pwrite_all(fd, view[run_start:], offset + run_start)


def _write_durably(path: Path, data: bytes) -> None:
    """A new file holding `data`, fsynced."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    try:
        _pwrite_all(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_chunks(source: Path, size_gb: int, directory: Path,
                  parent: StoredBackup | None = None) -> tuple[list[Chunk], int]:
    """Each chunk of `source` that holds data, in `directory`: a link to `parent`'s file
    where the parent holds the same bytes, else compressed anew. Returns the chunks and
    how many of them are new."""
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    shared = ({} if parent is None or parent.manifest.chunk_size != CHUNK_SIZE
              else {c.index: c for c in parent.manifest.chunks})
    try:
        size = os.fstat(fd).st_size
        if size > size_gb * GIB:
            raise DriverError(f"{source.name} holds {size} bytes: more than the backup's "
                              f"{size_gb} GiB")
        chunks, new = [], 0
        for index in _chunk_indexes(fd, size):
            offset = index * CHUNK_SIZE
            data = _pread_all(fd, min(CHUNK_SIZE, size - offset), offset)
            if not data or data == _ZEROS[: len(data)]:
                continue
            sha256 = hashlib.sha256(data).hexdigest()
            before = shared.get(index)
            if (parent is not None and before is not None and before.sha256 == sha256
                    and before.length == len(data)):
                chunk = before  # its file, compressed (or not) as the parent stored it
                _link_or_copy(parent.directory / before.name, directory / chunk.name)
            else:
                compress = compresses(data)
                chunk = Chunk(index, offset, len(data), sha256, chunk_name(index),
                              COMPRESSION if compress else STORED)
                _write_durably(directory / chunk.name,
                               zlib.compress(data, ZLIB_LEVEL) if compress else data)
                new += 1
            chunks.append(chunk)
        return chunks, new
    finally:
        os.close(fd)


def compresses(data: bytes) -> bool:
    """Whether zlib is worth running on ``data``: ``SAMPLES`` pieces spread over it,
    compressed together, keep at most ``INCOMPRESSIBLE`` of their size."""
    if len(data) <= SAMPLES * SAMPLE_BYTES:
        sample = data
    else:
        step = len(data) // SAMPLES
        sample = b"".join(data[at:at + SAMPLE_BYTES] for at in range(0, step * SAMPLES, step))
    return len(zlib.compress(sample, ZLIB_LEVEL)) <= INCOMPRESSIBLE * len(sample)


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` holds `source`'s bytes: a hard link, or (a repository that cannot link:
    another file system, too many links) a copy, fsynced."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP):
            raise
        _write_durably(target, source.read_bytes())


def _compressed_limit(length: int) -> int:
    """More than zlib makes of `length` bytes, however incompressible (a bound on what a
    chunk file is read for: a damaged repository cannot make a restore read a huge file)."""
    return length + length // 64 + 1024


# ---- what a restore reads ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredBackup:
    """A backup found whole in the repository (its manifest read and checked), ready
    to be written into a volume by `write_into`."""

    directory: Path
    manifest: Manifest
    where: str  # "the backup repository at <root> on <host>", for messages

    def write_into(self, fd: int) -> None:
        """Write the backup's data at its offsets into `fd`: a new, all-zero file of the
        volume's size (what no chunk holds stays zero, a hole), or a sink such as
        /dev/null.
        Each chunk is checked (length, sha256) before it is written: `BackupDamaged`
        names the chunk. Blocking: the driver runs it in a worker thread."""
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size < self.manifest.size_gb * GIB:
            raise DriverError(f"backup {self.manifest.backup_id} is {self.manifest.size_gb} "
                              f"GiB: it does not fit a volume of {st.st_size / GIB:g} GiB")
        for chunk in self.manifest.chunks:
            _pwrite_sparse(fd, self.read_chunk(chunk), chunk.offset)
        RESTORE_BEFORE_REPLACE()  # written whole; the driver's file not yet renamed

    def read_chunk(self, chunk: Chunk) -> bytes:
        """The chunk's uncompressed bytes, checked against the manifest."""
        try:
            with open(self.directory / chunk.name, "rb") as f:
                raw = f.read(_compressed_limit(chunk.length) + 1)
        except FileNotFoundError:
            raise self.damaged(f"{chunk.name} is missing") from None
        except OSError as exc:
            raise self.damaged(f"{chunk.name} cannot be read: {exc}") from exc
        if len(raw) > _compressed_limit(chunk.length):
            raise self.damaged(f"{chunk.name} is larger than any compressed "
                               f"{chunk.length} bytes")
        data = self._decompress(chunk, raw)
        if hashlib.sha256(data).hexdigest() != chunk.sha256:
            raise self.damaged(f"{chunk.name} does not match its sha256 in the manifest")
        return data

    def _decompress(self, chunk: Chunk, raw: bytes) -> bytes:
        if chunk.compression == STORED:
            if len(raw) != chunk.length:
                raise self.damaged(f"{chunk.name} holds {len(raw)} bytes, not the "
                                   f"{chunk.length} the manifest says")
            return raw
        inflate = zlib.decompressobj()
        try:
            data = inflate.decompress(raw, chunk.length + 1)
        except zlib.error as exc:
            raise self.damaged(f"{chunk.name} is not a zlib stream: {exc}") from exc
        if len(data) > chunk.length or inflate.unconsumed_tail or inflate.unused_data:
            raise self.damaged(f"{chunk.name} holds more than the {chunk.length} bytes "
                               "the manifest says")
        if len(data) < chunk.length or not inflate.eof:
            raise self.damaged(f"{chunk.name} is cut short: {len(data)} of the "
                               f"{chunk.length} bytes the manifest says")
        return data

    def damaged(self, what: str) -> BackupDamaged:
        return BackupDamaged(f"backup {self.manifest.backup_id} in {self.where} is "
                             f"damaged: {what}")


# ---- the repository ------------------------------------------------------------------


def temp_prefix(host: str) -> str:
    """How the names of node `host`'s temp directories begin (and no other node's)."""
    return f"{TEMP_PREFIX}{host}@"


class BackupRepository:
    """The backups under `root`, as the node `host` writes, restores and deletes them."""

    def __init__(self, root: Path, host: str) -> None:
        """Touches nothing: `prepare` makes the root and sweeps (in a thread)."""
        self.root = Path(root)
        self.host = host
        self.where = f"the backup repository at {self.root} on {host}"

    def prepare(self) -> list[str]:
        """Make the root if it is missing and remove the temp directories this host left
        (a crash while writing or deleting); another node's are never touched. Returns
        the names removed. Blocking: the node runs it in a worker thread at start."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            mine = temp_prefix(self.host)
            leftovers = sorted(n for n in os.listdir(self.root) if n.startswith(mine))
            for name in leftovers:
                log.warning("%s: removing leftover %s", self.where, name)
                shutil.rmtree(self.root / name)
        except OSError as exc:
            raise DriverError(f"preparing {self.where} failed: {exc}") from exc
        return leftovers

    def holds(self, backup_id: str) -> bool:
        """Whether a whole backup of this id is here (one stat)."""
        return is_valid_id(backup_id) and (self.root / backup_id).is_dir()

    async def write(self, backup_id: str, volume_id: str, size_gb: int,
                    source: Path | None, parent_id: str | None = None) -> int:
        """Store `source`'s data (None: a backend with no bytes, a backup with no chunks)
        as backup `backup_id` of `volume_id`, `size_gb` GiB; the number of chunks it holds.
        With `parent_id` (an incremental backup), the chunks that backup holds unchanged
        are linked, not written. A backup already here whole (the request sent again) is
        not written again: its chunk count is returned."""
        validate_id(backup_id, "backup")
        validate_id(volume_id, "volume")
        validate_size(size_gb)
        if parent_id is not None:
            validate_id(parent_id, "backup")
        return await asyncio.to_thread(self._write, backup_id, volume_id, size_gb, source,
                                       parent_id)

    async def open_backup(self, backup_id: str) -> StoredBackup:
        """The backup `backup_id`, its manifest read and checked: `BackupNotFound` if it
        is not here, `BackupDamaged` if its manifest is not whole."""
        validate_id(backup_id, "backup")
        return await asyncio.to_thread(self._open, backup_id)

    async def delete(self, backup_id: str) -> None:
        """Remove the backup: first renamed out of sight (the root fsynced), then removed,
        so a part of it never shows under its name. A backup not here is fine."""
        validate_id(backup_id, "backup")
        await asyncio.to_thread(self._delete, backup_id)

    # ---- the threaded halves

    def _temp(self, what: str) -> Path:
        return self.root / f"{temp_prefix(self.host)}{what}-{secrets.token_hex(4)}"

    def _write(self, backup_id: str, volume_id: str, size_gb: int, source: Path | None,
               parent_id: str | None) -> int:
        final = self.root / backup_id
        if final.exists():
            return self._existing_count(backup_id, volume_id)
        parent = None if parent_id is None else self._parent(parent_id, volume_id)
        try:
            temp = self._temp(backup_id)
            temp.mkdir()
        except OSError as exc:
            raise DriverError(f"writing backup {backup_id} into {self.where} failed: "
                              f"{exc}") from exc
        try:
            placed, count = self._build(temp, final, backup_id, volume_id, size_gb, source,
                                        parent)
        except OSError as exc:
            raise DriverError(f"writing backup {backup_id} of volume {volume_id} into "
                              f"{self.where} failed: {exc}") from exc
        finally:
            shutil.rmtree(temp, ignore_errors=True)  # gone already when it was placed
        return count if placed else self._existing_count(backup_id, volume_id)

    def _build(self, temp: Path, final: Path, backup_id: str, volume_id: str, size_gb: int,
               source: Path | None, parent: StoredBackup | None) -> tuple[bool, int]:
        """Fill `temp` and rename it `final`: (False, 0) if another writer's got there
        first."""
        chunks, new = (_store_chunks(source, size_gb, temp, parent) if source is not None
                       else ([], 0))
        parent_id = None if parent is None else parent.manifest.backup_id
        if parent_id is not None:
            log.info("%s: backup %s of %s: %d chunks new, %d shared with backup %s",
                     self.where, backup_id, volume_id, new, len(chunks) - new, parent_id)
        manifest = Manifest(backup_id, volume_id, size_gb, CHUNK_SIZE, time.time(),
                            tuple(chunks), parent_id=parent_id)
        _write_durably(temp / MANIFEST, manifest.to_json())
        _fsync_directory(temp)
        WRITE_BEFORE_RENAME()
        try:
            os.rename(temp, final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and final.exists():
                return False, 0
            raise
        _fsync_directory(self.root)
        return True, len(chunks)

    def _parent(self, parent_id: str, volume_id: str) -> StoredBackup:
        """The backup an incremental one shares chunks with: here, and of the same volume."""
        try:
            parent = self._open(parent_id)
        except BackupNotFound:
            raise BackupNotFound(f"the parent backup {parent_id} of an incremental backup is "
                                 f"not in {self.where}") from None
        if parent.manifest.volume_id != volume_id:
            raise DriverError(f"backup {parent_id} in {self.where} is one of volume "
                              f"{parent.manifest.volume_id}, not of {volume_id}: it cannot "
                              "be an incremental backup's parent")
        return parent

    def _existing_count(self, backup_id: str, volume_id: str) -> int:
        found = self._open(backup_id)
        if found.manifest.volume_id != volume_id:
            raise DriverError(f"backup {backup_id} in {self.where} is already one of volume "
                              f"{found.manifest.volume_id}, not of {volume_id}")
        return len(found.manifest.chunks)

    def _open(self, backup_id: str) -> StoredBackup:
        directory = self.root / backup_id
        try:
            raw = (directory / MANIFEST).read_bytes()
        except FileNotFoundError:
            if not directory.is_dir():
                raise BackupNotFound(f"backup {backup_id} is not in {self.where}") from None
            raise BackupDamaged(f"backup {backup_id} in {self.where} is damaged: "
                                f"{MANIFEST} is missing") from None
        except OSError as exc:
            raise DriverError(f"reading backup {backup_id} in {self.where} failed: "
                              f"{exc}") from exc
        try:
            manifest = parse_manifest(raw)
            if manifest.backup_id != backup_id:
                raise ValueError(f"it is the manifest of backup {manifest.backup_id}")
        except RecursionError:
            raise BackupDamaged(f"backup {backup_id} in {self.where} is damaged: {MANIFEST} "
                                "is nested too deep to be a manifest") from None
        except ValueError as exc:
            raise BackupDamaged(f"backup {backup_id} in {self.where} is damaged: "
                                f"{MANIFEST}: {exc}") from exc
        return StoredBackup(directory, manifest, self.where)

    def _delete(self, backup_id: str) -> None:
        doomed = self._temp(f"deleting-{backup_id}")
        try:
            os.rename(self.root / backup_id, doomed)
        except FileNotFoundError:
            return  # not here (deleted already): fine
        except OSError as exc:
            raise DriverError(f"deleting backup {backup_id} from {self.where} failed: "
                              f"{exc}") from exc
        try:
            _fsync_directory(self.root)
        except OSError as exc:
            raise DriverError(f"deleting backup {backup_id} from {self.where}: the rename "
                              f"out of sight may not survive a crash: {exc}") from exc
        DELETE_AFTER_RENAME()
        try:
            shutil.rmtree(doomed)
        except OSError as exc:  # out of sight already; the next start's sweep removes it
            log.warning("%s: %s stays until the node starts again: %s", self.where,
                        doomed.name, exc)

"""Backup and restore throughput on real files: how fast a storage node copies a volume
into the backup repository and back, whole and incremental, and what the repository
holds afterwards (operators' figures; ``docs/performance.md`` quotes them).

    python -m cinderblock.bench.backups [--size-gb 2] [--fill 0.5] [--change 0.1]
                                        [--data random|text] [--seed 1] [--json]

On ``cinderblock up`` (file backend, two nodes, a temporary data directory): one volume
of ``--size-gb`` GiB whose first ``--fill`` of its extent holds data, written into its
file directly, where a guest's writes land: ``random`` bytes (what encrypted or
compressed data looks like: nothing to compress) or ``text`` (log lines with numbers in
them: zlib keeps about a third). Then, each timed from the request to the status it
waits for, through the client library:

* ``backup``: a whole backup (``available``);
* ``incremental``: after ``--change`` of the data's 8 MiB chunks were rewritten, an
  incremental backup (only those chunks are new; the rest are links to the first's);
* ``restore``: the incremental backup into the volume (its bytes replaced);
* ``restore_new``: the whole backup into a new volume.

Each row reports its seconds and MiB/s of the volume's data (the bytes that hold data,
not the holes), and each backup the bytes it added to the repository (hard links
counted once). The restores are checked: the volume restored from the incremental
backup must hold the bytes the volume held when it was made, and the new volume those
of the whole backup (sha256 of both files compared), so a fast wrong answer fails
(exit 1) instead of being reported.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cinderblock.actors.runtime.config import host_of
from cinderblock.bench.up_cluster import UpCluster, on_a_fresh_cluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.storage_node.backup_repository import CHUNK_SIZE

GIB = 2**30
MIB = 2**20
CHUNK = CHUNK_SIZE  # the repository's chunk: what an incremental backup stores anew
TIMEOUT_S = 600.0
POLL_S = 0.01


@dataclass
class Step:
    name: str
    seconds: float
    data_mib: float  # the volume's bytes that hold data
    mib_per_s: float
    repository_added_mib: float | None = None  # a backup's: new bytes on disk


@dataclass
class Report:
    size_gb: int
    fill: float
    change: float
    data: str
    steps: list[Step] = field(default_factory=list)
    repository_mib: float = 0.0  # at the end, hard links counted once
    problems: list[str] = field(default_factory=list)


def chunk_of(kind: str, length: int, rng: random.Random) -> bytes:
    """``length`` bytes of ``kind``: random, or text that compresses."""
    if kind == "random":
        return rng.randbytes(length)
    lines, size = [], 0
    while size < length:
        line = (f"{rng.randrange(10**9):09d} node-{rng.randrange(8)} volume "
                f"{rng.randrange(10**6):06d} created in {rng.random():.6f} s\n").encode()
        lines.append(line)
        size += len(line)
    return b"".join(lines)[:length]


def fill_volume(path: Path, data_bytes: int, kind: str, rng: random.Random) -> None:
    """Data of ``kind`` over the first ``data_bytes`` of the file, a chunk at a time."""
    with open(path, "r+b") as f:
        for offset in range(0, data_bytes, CHUNK):
            f.seek(offset)
            f.write(chunk_of(kind, min(CHUNK, data_bytes - offset), rng))
        f.flush()
        os.fsync(f.fileno())


def rewrite_chunks(path: Path, data_bytes: int, fraction: float, rng: random.Random) -> int:
    """Rewrite ``fraction`` of the data's chunks (4 KiB at each one's start); how many."""
    chunks = max(1, data_bytes // CHUNK)
    picked = rng.sample(range(chunks), max(1, round(chunks * fraction)))
    with open(path, "r+b") as f:
        for index in picked:
            f.seek(index * CHUNK)
            f.write(rng.randbytes(4096))
        f.flush()
        os.fsync(f.fileno())
    return len(picked)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def disk_bytes(root: Path) -> int:
    """Bytes the files under ``root`` hold on disk, each inode once."""
    seen: set[int] = set()
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


async def timed(make: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = await make()
    return result, time.perf_counter() - began


async def until(show: Callable[[], Awaitable[Any]], status: str) -> Any:
    """``show()`` every ``POLL_S`` until what it shows has ``status`` (the client's own
    waits back off to a second: too coarse to time a step of a second or two); an error
    status or ``TIMEOUT_S`` raises."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = await show()
        if found.status == status:
            return found
        if "error" in found.status or time.monotonic() > deadline:
            raise RuntimeError(f"{found.id} is {found.status}, not {status}: "
                               f"{getattr(found, 'fail_reason', None) or ''}")
        await asyncio.sleep(POLL_S)


async def run(up: UpCluster, args: argparse.Namespace) -> Report:
    report = Report(args.size_gb, args.fill, args.change, args.data)
    rng = random.Random(args.seed)
    data = int(args.size_gb * GIB * args.fill) // 4096 * 4096
    data_mib = data / MIB
    repository = up.cfg.path("backups")

    def file_of(vol: Volume) -> Path:
        assert vol.host is not None
        return up.cfg.path("nodes", host_of(vol.host), f"volume-{vol.id}")

    async def backup_step(c: Client, name: str, vol: Volume, incremental: bool
                          ) -> str:
        before = disk_bytes(repository) if repository.exists() else 0

        async def back_up() -> Any:
            made = await c.create_backup(vol.id, incremental=incremental)
            return await until(lambda: c.show_backup(made.id), "available")

        made, seconds = await timed(back_up)
        added = (disk_bytes(repository) - before) / MIB
        report.steps.append(Step(name, seconds, data_mib, data_mib / seconds, added))
        return str(made.id)

    async with up.client("demo", timeout=30.0) as c:
        vol = await c.create_volume(args.size_gb, name="bench-backups", wait=True)
        fill_volume(file_of(vol), data, args.data, rng)
        whole = await backup_step(c, "backup", vol, False)
        whole_digest = file_digest(file_of(vol))
        rewrite_chunks(file_of(vol), data, args.change, rng)
        incremental = await backup_step(c, "incremental", vol, True)
        expected = file_digest(file_of(vol))
        rewrite_chunks(file_of(vol), data, 1.0, rng)  # the restore must undo all of it

        async def restore() -> Any:
            await c.restore_backup(incremental, vol.id)  # the backup is restoring: wait
            return await until(lambda: c.show_backup(incremental), "available")

        _, seconds = await timed(restore)
        report.steps.append(Step("restore", seconds, data_mib, data_mib / seconds))
        if file_digest(file_of(vol)) != expected:
            report.problems.append("the volume restored from the incremental backup does "
                                   "not hold the bytes it was made of")

        async def restore_new() -> Volume:
            info = await c.restore_backup(whole)
            found: Volume = await until(lambda: c.show_volume(info.volume_id), "available")
            return found

        new, seconds = await timed(restore_new)
        report.steps.append(Step("restore_new", seconds, data_mib, data_mib / seconds))
        if file_digest(file_of(new)) != whole_digest:
            report.problems.append("the new volume restored from the whole backup does not "
                                   "hold its bytes")
        report.repository_mib = disk_bytes(repository) / MIB
    return report


def print_table(report: Report) -> None:
    print(f"volume {report.size_gb} GiB, {report.fill:.0%} of it {report.data} data, "
          f"{report.change:.0%} of its chunks changed before the incremental backup")
    print(f"{'step':<12} {'seconds':>8} {'data MiB':>9} {'MiB/s':>8} {'repository +MiB':>16}")
    for s in report.steps:
        added = "" if s.repository_added_mib is None else f"{s.repository_added_mib:.1f}"
        print(f"{s.name:<12} {s.seconds:>8.2f} {s.data_mib:>9.0f} {s.mib_per_s:>8.1f} "
              f"{added:>16}")
    print(f"repository at the end: {report.repository_mib:.1f} MiB on disk")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.backups",
                                description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--size-gb", type=int, default=2)
    p.add_argument("--fill", type=float, default=0.5, help="fraction holding data")
    p.add_argument("--change", type=float, default=0.1,
                   help="fraction of the data's chunks changed before the incremental")
    p.add_argument("--data", choices=("random", "text"), default="random")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not (args.size_gb >= 1 and 0 < args.fill <= 1 and 0 < args.change <= 1):
        p.error("--size-gb must be at least 1; --fill and --change in (0, 1]")
    report = on_a_fresh_cluster("backups", lambda up: run(up, args), "--backend", "file")
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_table(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast a volume migrates between the nodes of ``cinderblock up`` (file backends).

    python -m cinderblock.bench.migration [--size-gb N] [--data-mb M] [--rounds R] [--json]

Makes a volume of ``--size-gb`` GiB whose first ``--data-mb`` MiB hold random bytes (the
rest: holes, as a thin volume's unwritten space is), then migrates it to the other node
and back ``--rounds`` times as an admin would (``volume.migrate``, waiting until the
volume is on its new backend). Each move reports its seconds and the bytes the source
node's NBD server read for it: with block status the holes are not read. Every move's
result is checked byte for byte against the volume as it was made; a mismatch is a
problem and the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cinderblock.actors.runtime.config import host_of
from cinderblock.bench.backups import GIB, MIB, file_digest, fill_volume
from cinderblock.bench.up_cluster import UpCluster, on_a_fresh_cluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume


@dataclass
class Move:
    source: str
    destination: str
    seconds: float
    nbd_read_mib: float  # what the source's NBD server read for the copy


@dataclass
class Report:
    size_gb: int
    data_mib: int
    moves: list[Move] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def nbd_bytes_read(admin: Client) -> dict[str, int]:
    """Each node's NBD bytes read since it started."""
    stats = await admin.cluster_stats(timeout=10.0)
    return {s.actor: int(s.details.get("nbd_bytes_read", 0)) for s in stats.actors
            if "nbd_bytes_read" in s.details}


async def run(up: UpCluster, args: argparse.Namespace) -> Report:
    report = Report(args.size_gb, args.data_mb)

    def file_of(vol: Volume) -> Path:
        assert vol.host is not None
        return up.cfg.path("nodes", host_of(vol.host), f"volume-{vol.id}")

    backends = [n.backend_id for n in up.cfg.nodes]
    async with up.client("demo", timeout=30.0) as c, up.client("admin", timeout=30.0) as admin:
        vol = await c.create_volume(args.size_gb, name="bench-migration", wait=True)
        fill_volume(file_of(vol), args.data_mb * MIB, "random", random.Random(args.seed))
        expected = file_digest(file_of(vol))
        for _ in range(args.rounds * 2):
            source = vol.host
            assert source is not None
            destination = next(b for b in backends if b != source)
            before = await nbd_bytes_read(admin)
            began = time.monotonic()
            vol = await admin.migrate_volume(vol.id, destination, wait=True,
                                             timeout=args.timeout)
            seconds = time.monotonic() - began
            after = await nbd_bytes_read(admin)
            node = host_of(source)
            read = (after.get(node, 0) - before.get(node, 0)) / MIB
            report.moves.append(Move(source, destination, seconds, read))
            if vol.host != destination or file_digest(file_of(vol)) != expected:
                report.problems.append(f"after the move to {destination} the volume is on "
                                       f"{vol.host} or does not hold its bytes")
        await c.delete_volume(vol.id, wait=True)
    return report


def print_table(report: Report) -> None:
    print(f"volume {report.size_gb} GiB holding {report.data_mib} MiB of random data")
    print(f"{'from':<14} {'to':<14} {'seconds':>8} {'NBD MiB read':>13}")
    for m in report.moves:
        print(f"{m.source:<14} {m.destination:<14} {m.seconds:>8.2f} {m.nbd_read_mib:>13.1f}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.migration",
                                description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--size-gb", type=int, default=20)
    p.add_argument("--data-mb", type=int, default=256, help="MiB of data at its start")
    p.add_argument("--rounds", type=int, default=2, help="there and back, this many times")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a move may take")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not (args.size_gb >= 1 and 0 <= args.data_mb <= args.size_gb * GIB // MIB
            and args.rounds >= 1):
        p.error("--size-gb at least 1, --data-mb within it, --rounds at least 1")
    report = on_a_fresh_cluster("migration", lambda up: run(up, args), "--backend", "file")
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_table(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

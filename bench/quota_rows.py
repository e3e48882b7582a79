"""What a create's rows cost the quota actor's SQLite, in CPU, as its history grows.

    python -m cinderblock.bench.quota_rows [--creates N] [--prefill N] [--batch N]
                                           [--repeat R] [--json]

quota.db is made with the quota actor's own schema (``quota.SCHEMA``) in a temporary
directory, and ``finished_ops`` is filled with ``--prefill`` ids that the same gateway
made before: up to a week of a gateway's finished reservations (the actor keeps each
for ``KEEP_FINISHED_S``, 7 days).
Then ``--creates`` creates are written as the quota actor writes them: the book's
(``QuotaBook``) reserve of each, then its commit (the gateway's journal op), each
``Change`` by the statements the actor runs (``quota.change_writes``), in group
commits of ``--batch`` reserves and then their ``--batch`` commits, on one connection
in WAL mode with ``synchronous=NORMAL``, as the actor runs it. It prints the process's
CPU per create (the best of ``--repeat`` runs, each on a new file) with reservation ids
as the gateway makes them (``ReservationIds``: in order), and, beside it, with ids whose
part after the incarnation is random (a uuid4, as they were before): what the order
saves. No actor runs; the figures are SQLite's and the book's, without the loop.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from cinderblock.actors.quota.book import JournalOp, QuotaBook
from cinderblock.actors.quota.quota import SCHEMA, change_writes
from cinderblock.bench.gateway_rows import new_database, rows_arguments
from cinderblock.protocol.messages.quota import ReservationIds, incarnation_of

DELTAS = {"volumes": 1, "gigabytes": 1}
MakeId = Callable[[], str]


def ordered_ids(incarnation: str) -> MakeId:
    return ReservationIds(incarnation).next


def random_ids(incarnation: str) -> MakeId:
    return lambda: f"{incarnation}.{uuid.uuid4().hex}"


IDS: dict[str, Callable[[str], MakeId]] = {"ordered": ordered_ids, "random": random_ids}


def _run(conn: sqlite3.Connection, writes: list[tuple[str, Any]]) -> None:
    conn.execute("BEGIN")
    for sql, params in writes:
        conn.execute(sql, params)
    conn.execute("COMMIT")


def cpu_per_create_us(directory: str, ids: str, creates: int, prefill: int,
                      batch: int) -> float:
    """Process CPU (µs) per create of reserving and committing ``creates`` volumes."""
    with new_database(directory) as conn:
        conn.executescript(SCHEMA)
        now = time.time()
        make_id = IDS[ids](incarnation_of(now, uuid.uuid4().hex))
        conn.execute("BEGIN")  # what this gateway's earlier creates left
        conn.executemany("INSERT INTO finished_ops VALUES (?, 'committed', ?)",
                         [(make_id(), now) for _ in range(prefill)])
        conn.execute("COMMIT")
        book = QuotaBook({"volumes": -1, "gigabytes": -1})
        made = [make_id() for _ in range(creates)]
        started = time.process_time()
        for start in range(0, creates, batch):
            reserved = made[start:start + batch]
            writes = []
            for rid in reserved:
                writes += change_writes(book.reserve("bench", DELTAS, now, reservation_id=rid)[1])
            _run(conn, writes)
            _, change = book.apply([JournalOp("commit", rid, rid, "bench") for rid in reserved],
                                   now)
            _run(conn, change_writes(change))
        return (time.process_time() - started) / creates * 1e6


def run(creates: int = 5000, prefill: int = 200_000, batch: int = 10,
        repeat: int = 5, within: str | None = None) -> dict[str, Any]:
    """Best of ``repeat`` runs, in a temporary directory (made in ``within``, or the
    system's), gone after."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="quota-rows-", dir=within) as directory:
        for _ in range(repeat):  # interleaved, so a noisy minute touches both
            for ids in IDS:
                us = cpu_per_create_us(directory, ids, creates, prefill, batch)
                best[ids] = min(best.get(ids, us), us)
    return {"creates": creates, "prefill": prefill, "batch": batch, "repeat": repeat,
            "cpu_us_per_create": {ids: round(us, 1) for ids, us in best.items()}}


def main(argv: list[str] | None = None) -> int:
    args = rows_arguments(argv, "quota_rows", __doc__, prefill=200_000, repeat=5)
    result = run(args.creates, args.prefill, args.batch, args.repeat)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['creates']} creates, {result['batch']} a commit, over "
          f"{result['prefill']} finished ids (best of {result['repeat']} runs):")
    for ids, us in result["cpu_us_per_create"].items():
        print(f"  reservation ids {ids:8s} {us:7.1f} µs of CPU per create")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

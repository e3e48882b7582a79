"""What a create's rows cost the gateway's SQLite, in CPU, and what each index adds.

    python -m cinderblock.bench.gateway_rows [--creates N] [--prefill N] [--batch N]
                                             [--repeat R] [--json]

The gateway's volumes table is made with its own schema (``volume_store.SCHEMA``) in a
temporary directory and filled with ``--prefill`` rows; then ``--creates`` volumes are
written as the gateway writes them in its group commits of ``--batch`` creates: each
create's row (``INSERT_VOLUME``, status ``creating``) and, in the same transaction, the
status change to ``available`` (``UPDATE_STATUS``) of the batch before, on one
connection in WAL mode with ``synchronous=NORMAL``, as the actor runs it. It prints the
process's CPU per create (the best of ``--repeat`` runs, each on a new file) with every
index, with the table alone, and without each index in turn: what each index costs a
create. No actor runs; the figures are SQLite's own, without the loop around it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from cinderblock.actors.gateway.volume_store import INSERT_VOLUME, SCHEMA, UPDATE_STATUS

Row = tuple[Any, ...]


def volume_ddl() -> tuple[str, list[tuple[str, str]]]:
    """The volumes table's CREATE TABLE, and (name, CREATE INDEX) of each of its indexes."""
    statements = [s.strip() for s in SCHEMA.split(";") if s.strip()]
    table = next(s for s in statements if re.match(r"CREATE TABLE IF NOT EXISTS volumes\b", s))
    indexes = []
    for s in statements:
        found = re.match(r"CREATE INDEX IF NOT EXISTS (\w+)\s+ON volumes\b", s)
        if found:
            indexes.append((found.group(1), s))
    return table, indexes


def _row(now: float) -> Row:
    return (str(uuid.uuid4()), "bench", "bench", None, None, 1, "creating", None, "nova",
            None, "{}", now, now, None, str(uuid.uuid4()), "fingerprint")


@contextlib.contextmanager
def new_database(directory: str) -> Iterator[sqlite3.Connection]:
    """A new file in ``directory``, in WAL mode with ``synchronous=NORMAL`` as the actors
    run theirs (transactions begun by hand); closed and removed, WAL and all, after."""
    path = os.path.join(directory, f"{uuid.uuid4().hex}.db")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        yield conn
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            with_suffix = path + suffix
            if os.path.exists(with_suffix):
                os.unlink(with_suffix)


def cpu_per_create_us(directory: str, ddl: list[str], creates: int, prefill: int,
                      batch: int) -> float:
    """Process CPU (µs) per create of writing ``creates`` volumes, ``batch`` a commit."""
    with new_database(directory) as conn:
        for statement in ddl:
            conn.execute(statement)
        conn.execute("BEGIN")  # created_at grows, as it does: the listings append
        conn.executemany(INSERT_VOLUME, [_row(time.time()) for _ in range(prefill)])
        conn.execute("COMMIT")
        rows = [_row(time.time()) for _ in range(creates)]
        started = time.process_time()
        previous: list[Row] = []
        for start in range(0, creates, batch):
            chunk = rows[start:start + batch]
            conn.execute("BEGIN")
            conn.executemany(INSERT_VOLUME, chunk)
            conn.executemany(UPDATE_STATUS, [("available", "node-1@null", None, time.time(),
                                              row[0]) for row in previous])
            conn.execute("COMMIT")
            previous = chunk
        return (time.process_time() - started) / creates * 1e6


def run(creates: int = 5000, prefill: int = 20000, batch: int = 10,
        repeat: int = 5, within: str | None = None) -> dict[str, Any]:
    """Best of ``repeat`` runs, in a temporary directory (made in ``within``, or the
    system's), gone after."""
    table, indexes = volume_ddl()
    layouts = {"all": [table, *(ddl for _, ddl in indexes)], "table only": [table]}
    for name, _ in indexes:
        layouts[f"without {name}"] = [table, *(ddl for other, ddl in indexes if other != name)]
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gateway-rows-", dir=within) as directory:
        for _ in range(repeat):  # interleaved, so a noisy minute touches every layout
            for label, ddl in layouts.items():
                us = cpu_per_create_us(directory, ddl, creates, prefill, batch)
                best[label] = min(best.get(label, us), us)
    every = best["all"]
    return {
        "creates": creates, "prefill": prefill, "batch": batch, "repeat": repeat,
        "cpu_us_per_create": round(every, 1),
        "table_only_us": round(best["table only"], 1),
        "index_us": {name: round(every - best[f"without {name}"], 1) for name, _ in indexes},
    }


def rows_arguments(argv: list[str] | None, module: str, doc: str, prefill: int,
                   repeat: int) -> argparse.Namespace:
    """The options of a benchmark of one actor's rows (this one, ``quota_rows``), checked."""
    p = argparse.ArgumentParser(prog=f"python -m cinderblock.bench.{module}",
                                description=doc.split("\n\n")[0])
    p.add_argument("--creates", type=int, default=5000)
    p.add_argument("--prefill", type=int, default=prefill)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--repeat", type=int, default=repeat)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    for name in ("creates", "batch", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.prefill < 0:
        p.error("--prefill must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = rows_arguments(argv, "gateway_rows", __doc__, prefill=20000, repeat=5)
    result = run(args.creates, args.prefill, args.batch, args.repeat)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['creates']} creates, {result['batch']} a commit, over "
          f"{result['prefill']} rows (best of {result['repeat']} runs):")
    print(f"  every index     {result['cpu_us_per_create']:7.1f} µs of CPU per create")
    print(f"  the table alone {result['table_only_us']:7.1f} µs")
    for name, us in sorted(result["index_us"].items(), key=lambda item: -item[1]):
        print(f"  {name:32s} {us:+7.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

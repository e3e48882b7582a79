"""What the two fuzzers share (``bench.rest_fuzz`` over HTTP, ``bench.wire_fuzz`` over
the gateway's socket): the report, the settling afterwards, and the command around a
run on a cluster of its own.

Settling ends what waits for a client nobody is (attachments, reservations) and deletes
the backups the run made (each once its node is done with it), then waits for the
cluster to be exact: ``bench.invariants`` (nothing stuck, quota equal to what exists,
node files equal to the records) and ``backup_violations`` (no backup left).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinderblock.bench.invariants import settled_violations
from cinderblock.bench.up_cluster import UpCluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.states import BackupStatus
from cinderblock.protocol.wire.errors import CinderblockError

# a backup that may be deleted; one in another status is its node's work, waited for
BACKUP_DELETABLE = frozenset({BackupStatus.AVAILABLE, BackupStatus.ERROR,
                              BackupStatus.ERROR_DELETING})


@dataclass(slots=True)
class FuzzReport:
    requests: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)  # an HTTP status, "ok", a code
    problems: list[str] = field(default_factory=list)  # "<request>: <what was wrong>"
    unsettled: list[str] = field(default_factory=list)  # bench.invariants' violations
    made: Counter[str] = field(default_factory=Counter)  # what accepted requests made, by kind

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": round(self.seconds, 1),
                "outcomes": dict(sorted(self.outcomes.items())), "problems": self.problems,
                "unsettled": self.unsettled, "made": dict(sorted(self.made.items()))}

    def text(self, seed: int, clients: int) -> str:
        lines = [f"{self.requests} requests in {self.seconds:.1f} s "
                 f"({self.requests / max(self.seconds, 1e-9):.0f}/s), seed {seed}, "
                 f"{clients} senders; outcomes "
                 + ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items())),
                 f"problems: {len(self.problems)}; unsettled: {len(self.unsettled)}"]
        if self.made:
            lines.insert(1, "made: " + ", ".join(f"{k}: {v}" for k, v in
                                                 sorted(self.made.items())))
        return "\n".join([*lines, *("  " + p for p in [*self.problems[:50],
                                                      *self.unsettled[:50]])])


async def settle(admin: Client, node_files: Callable[[], Mapping[str, set[str]]],
                 projects: Iterable[str], backup_files: Callable[[], set[str]] | None = None,
                 wait_s: float = 30.0) -> list[str]:
    """Delete the attachments of ``projects`` (one left ``attaching`` waits for an
    ``os-complete`` nobody sends, as Cinder's do), unreserve their volumes an
    ``os-reserve`` left ``attaching`` (they wait for an ``os-unreserve``) and delete their
    backups, then wait up to ``wait_s`` in all for the cluster to settle exact; what is
    still wrong then ([] when settled)."""
    projects = tuple(projects)
    for att in await admin.list_attachments(all_projects=True):
        if att.project_id in projects:
            await admin.delete_attachment(att.id)
    for vol in await admin.list_volumes(all_projects=True, status="attaching"):
        if vol.project_id in projects:
            await admin.unreserve_volume(vol.id)
    deadline = time.monotonic() + wait_s
    await delete_backups(admin, projects, deadline)
    while True:
        problems = [*await settled_violations(admin, node_files, projects, backup_files),
                    *await backup_violations(admin, projects)]
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.5)


async def delete_backups(admin: Client, projects: tuple[str, ...], deadline: float) -> None:
    """Delete the backups of ``projects``, each once it may be (available or in error):
    one its node is working on (creating, restoring, deleting) is looked at again until
    ``deadline``. What is left then is for ``backup_violations`` to name."""
    while time.monotonic() < deadline:
        left = [b for b in await admin.list_backups(all_projects=True)
                if b.project_id in projects]
        if not left:
            return
        for backup in left:
            if backup.status in BACKUP_DELETABLE:
                # it may have moved on since it was listed: the next look says
                with contextlib.suppress(CinderblockError):
                    await admin.delete_backup(backup.id)
        await asyncio.sleep(0.5)


async def backup_violations(admin: Client, projects: Iterable[str]) -> list[str]:
    """The backups of ``projects`` still there when ``settle`` has deleted every one
    (a delete that failed, or one never ended); [] when none. What backups hold and
    count (a volume still ``backing-up``, a backup stuck, their quota) is
    ``bench.invariants``'."""
    projects = tuple(projects)
    return [f"backup {b.id} of {b.project_id} left {b.status}"
            for b in await admin.list_backups(all_projects=True) if b.project_id in projects]


Run = Callable[[UpCluster, argparse.Namespace], Coroutine[Any, Any, FuzzReport]]


def fuzz_command(doc: str, default_requests: int, run: Run,
                 up_args: Callable[[], tuple[str, ...]] = tuple) -> None:
    """``python -m cinderblock.bench.X``: a cluster of its own (``cinderblock up`` with
    ``up_args()`` and the chosen backend), ``run`` on it, the report; exit 1 on any
    problem."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--requests", type=int, default=default_requests)
    p.add_argument("--clients", type=int, default=4, help="concurrent senders")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backend", choices=("file", "null"), default="file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cb-fuzz-") as tmp:
        cluster = UpCluster(Path(tmp) / "data", *up_args(), "--backend", args.backend)
        cluster.start()
        try:
            report = asyncio.run(run(cluster, args))
        finally:
            cluster.stop()
    print(json.dumps(report.as_dict(), indent=2) if args.json
          else report.text(args.seed, args.clients))
    sys.exit(1 if report.problems or report.unsettled else 0)

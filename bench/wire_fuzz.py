"""Hostile bodies on the gateway's own socket: every op a user or an admin may send,
its body built from the op's message type with each field of its own type (an id the
run has seen, a size, a flag) or, one request in two, some fields of any other shape
(``None``, 2^63, 1e308, a NUL, bytes, a list, a map), left out, or joined by a stray
key. Four senders at once, as a member and as the admin, through the client library
(CURVE keys, as any user).

Every reply must be an answer: a result, or one of the protocol's errors that says what
was wrong (``invalid_input``, ``not_found``, ``forbidden``, ``invalid_state``,
``over_quota``, ``no_valid_host``), within ``SLOW_S``; never ``internal`` (a bug the
gateway caught), a timeout, or nothing. Afterwards the run deletes its attachments and
the cluster must settle exact (``bench.invariants``).

    python -m cinderblock.bench.wire_fuzz [--requests N] [--clients C] [--seed S] [--json]

starts its own cluster (``cinderblock up``); the suite runs a short version
(``tests/e2e/test_e2e_wire_fuzz.py``). ``bench.rest_fuzz`` does the same over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import time
import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from cinderblock.bench.fuzzing import FuzzReport, fuzz_command, settle
from cinderblock.bench.up_cluster import UpCluster
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.ops import OP_TABLE
from cinderblock.protocol.wire.errors import CinderblockError

SLOW_S = 5.0  # an answer later than this is a problem
KEEP = 60  # ids the run remembers
BROKEN = 0.5  # a body with some fields of another shape this often
ANSWERS = frozenset({"invalid_input", "not_found", "forbidden", "invalid_state", "over_quota",
                     "no_valid_host"})
USER_OPS = tuple(sorted(op for op, (_, roles) in OP_TABLE.items()
                        if roles & {"member", "admin"}))
CONNECTOR = {"host": "fuzz-host", "ip": "127.0.0.1", "platform": "x86_64",
             "os_type": "linux", "multipath": False}
PROJECT = "wire-fuzz"


@dataclass(slots=True)
class Bodies:
    """The body generator: plain code over a seeded ``random.Random``."""

    rng: random.Random
    ids: list[str] = field(default_factory=list)  # of volumes, snapshots, attachments...

    def learn(self, reply: Any) -> None:
        if isinstance(reply, dict):
            for key in ("id", "volume_id"):
                if isinstance(reply.get(key), str):
                    self.ids = [*self.ids, reply[key]][-KEEP:]

    def next(self) -> tuple[str, dict[str, Any]]:
        op = self.rng.choice(USER_OPS)
        cls = OP_TABLE[op][0]
        hints = typing.get_type_hints(cls)
        broken = self.rng.random() < BROKEN
        body: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if self.rng.random() < 0.1:
                continue  # left out (a required one: the schema says so)
            wrong = broken and self.rng.random() < 0.3
            body[f.name] = self.value() if wrong else self.typed(f.name, hints[f.name], broken)
        if broken and self.rng.random() < 0.2:
            body["stray"] = self.value()
        return op, body

    def typed(self, name: str, hint: Any, broken: bool = False) -> Any:
        """A value of the field's own type, as a real request would carry."""
        r, text = self.rng, str(hint)
        if "None" in text and r.random() < (0.5 if broken else 0.9):
            return None  # an optional field, as most requests leave it
        if name == "volume_type":
            return r.choice(["__DEFAULT__", "FCVolumeType"] * 3 + ["no-such-type"])
        if name == "availability_zone":
            return r.choice(["nova"] * 4 + ["atlantis"])
        if name in ("size", "new_size"):  # opaque on the wire (Cinder takes "1" too)
            return r.randrange(1, 4)
        if name == "multiattach":
            return None  # Cinder's removed parameter: any value is refused
        if name == "metadata":
            return r.choice([{}, {"k": "v"}])
        if "bool" in text:
            return r.random() < 0.5
        if "int" in text:
            return r.randrange(0, 4)
        if "dict" in text or "Mapping" in text:
            return r.choice([{}, {"k": "v"}, dict(CONNECTOR)])
        if "tuple" in text or "list" in text or "Sequence" in text:
            return [self.an_id()] if r.random() < 0.5 else []
        if name.endswith(("_id", "_ids")) or name in ("id", "volume", "snapshot"):
            return self.an_id()
        if name == "status":
            return r.choice(["available", "error", "in-use", "deleting"])
        return r.choice(["n", "demo", "FCVolumeType", "__DEFAULT__", "rw", "ro", "never",
                         "on-demand", "node-1@file", PROJECT])

    def an_id(self) -> str:
        return self.rng.choice(self.ids) if self.ids and self.rng.random() < 0.9 \
            else str(uuid.uuid4())

    def value(self, depth: int = 0) -> Any:
        """A value of any shape msgpack carries."""
        r = self.rng
        kind = r.randrange(10)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([-1, 2**31, 2**63 - 1, -(2**63), 0])
        if kind == 2:
            return r.choice([0.5, -1.5, 1e308])
        if kind == 3:
            return r.choice(["", "x" * 300, "\x00", "é", "available"])
        if kind == 4:
            return b"\xff\x00"
        if kind == 5 and depth < 2:
            return [self.value(depth + 1) for _ in range(r.randrange(3))]
        if kind == 6 and depth < 2:
            return {str(self.value(depth + 1))[:20]: self.value(depth + 1)
                    for _ in range(r.randrange(3))}
        if kind == 7:
            return r.random() < 0.5
        return self.an_id()


async def fuzz(member: Client, admin: Client, requests: int, seed: int,
               clients: int = 4) -> FuzzReport:
    """``requests`` requests from ``clients`` concurrent senders (each its own seeded
    stream, three in ten of its requests as the admin); every answer judged."""
    report, left = FuzzReport(), iter(range(requests))
    started = time.monotonic()

    async def sender(index: int) -> None:
        bodies = Bodies(random.Random(seed * 1000 + index))
        for _ in left:
            op, body = bodies.next()
            who = admin if bodies.rng.random() < 0.3 else member
            began, outcome, reply = time.monotonic(), "ok", None
            try:
                reply = await who.call(op, body, timeout=SLOW_S * 2)
            except CinderblockError as exc:
                outcome = exc.code
            took = time.monotonic() - began
            report.requests += 1
            report.outcomes[outcome] += 1
            problem = (outcome if outcome != "ok" and outcome not in ANSWERS
                       else f"answered after {took:.1f} s" if took > SLOW_S else None)
            if problem is not None:
                report.problems.append(f"{op} {json.dumps(body, default=repr)[:300]}: {problem}")
            bodies.learn(reply)

    await asyncio.gather(*(sender(i) for i in range(clients)))
    report.seconds = time.monotonic() - started
    return report


async def _run(cluster: UpCluster, args: argparse.Namespace) -> FuzzReport:
    async with cluster.client("admin", timeout=30.0) as admin, \
            cluster.client("demo", timeout=30.0) as member:
        report = await fuzz(member, admin, args.requests, args.seed, args.clients)
        report.unsettled = await settle(admin, cluster.node_files, ("demo", "admin"),
                                       cluster.backup_files)
    return report


if __name__ == "__main__":
    fuzz_command(__doc__ or "", 20_000, _run)

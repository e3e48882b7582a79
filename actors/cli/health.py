"""``cinderblock health``: is every actor alive, and how is it doing? For people, scripts
and probes (exit status 0 when healthy, 1 otherwise).

Each actor is asked twice where it can be: through the gateway (``cluster.stats``: the
gateway asks the quota actor, the scheduler and every node) and directly (``stats`` on
the gateway's, the quota actor's and the scheduler's own endpoints; nodes bind nothing,
so they are reached through the gateway only). The actors expected are those of the
cluster file (``DATA_DIR/cluster.json``), else those the gateway knows.

Healthy means: every expected actor answered, and every database answers a query.
Restarts are shown when the actors report them (their supervisor tells them,
``CINDERBLOCK_RESTARTS``) or when the supervisor of ``cinderblock up`` counts them in
``DATA_DIR/status.json`` (``{"actors": {NAME: {"restarts": N, ...}}}``); otherwise the
column is empty and the output says that restarts are not reported.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinderblock.actors.cli.base import UsageError, key_for, read_endpoints
from cinderblock.actors.cli.format import Column, output_format, record, render_listing, show
from cinderblock.actors.cli.format import Listing as Rows
from cinderblock.actors.runtime.restarts import supervised_restarts
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.health import ActorStats
from cinderblock.protocol.wire.errors import CinderblockError

TIMEOUT_S = 3.0
DIRECT = ("gateway", "quota", "scheduler")  # the actors that bind an endpoint of their own
COLUMNS = (Column("actor", "Actor"), Column("healthy", "Healthy"),
           Column("via_gateway", "Via Gateway"), Column("direct", "Direct"),
           Column("pid", "PID"), Column("uptime_s", "Uptime (s)"),
           Column("restarts", "Restarts"), Column("handled", "Handled"),
           Column("pending_calls", "Pending Calls"), Column("queued", "Queued"),
           Column("database", "Database"), Column("integrity", "Integrity"),
           Column("flows_running", "Flows Running"),
           Column("flows_failed", "Flows Failed"))


@dataclass
class ActorHealth:
    actor: str
    via_gateway: str = "no answer"  # up | no answer | - (not asked)
    direct: str = "-"
    stats: ActorStats | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.stats is not None and not self.problems

    def row(self) -> tuple[Any, ...]:
        s = self.stats
        if s is None:
            return (self.actor, False, self.via_gateway, self.direct, *([None] * 10))
        return (self.actor, self.healthy, self.via_gateway, self.direct, s.pid, s.uptime_s,
                s.restarts, s.handled, s.pending_calls,
                sum(n for q, n in s.queues.items() if q != "tasks"),
                s.database.get("state"), integrity_word(s.database.get("integrity")),
                s.flows.get("running"), s.flows.get("failed"))


def integrity_word(integrity: str | None) -> str | None:
    """What the last check of an actor's file found, without when and how long: "whole",
    "being checked", "not checked" or "damaged" (the JSON output has the whole text)."""
    if integrity is None:
        return None
    return integrity.split(" (", 1)[0].split(":", 1)[0]


def add_health(sub: Any, common: argparse.ArgumentParser,
               leaf: Callable[..., argparse.ArgumentParser]) -> None:
    p = leaf(sub, common, "health", "every actor's liveness, uptime, restarts, queues and "
             "database; exit status 0 when healthy, 1 otherwise", cmd_health)
    p.add_argument("--timeout", type=float, default=TIMEOUT_S,
                   help=f"seconds to wait for each answer (default {TIMEOUT_S:g})")


def cmd_health(args: argparse.Namespace) -> int:
    endpoints = _endpoints(args)
    gateway = args.gateway or endpoints.get("gateway")
    if not isinstance(gateway, str):
        raise UsageError(f"no gateway endpoint: give --gateway, or start a cluster in "
                         f"{args.data_dir}")
    key = key_for(args if args.user else argparse.Namespace(**{**vars(args), "admin": True}))
    report = check(gateway, endpoints, _expected(args.data_dir), args.project, args.timeout,
                   key)
    counted = supervised_restarts(args.data_dir)
    for entry in report:
        if entry.stats is not None and entry.stats.restarts is None and entry.actor in counted:
            entry.stats = dataclasses.replace(entry.stats, restarts=counted[entry.actor])
    healthy = all(a.healthy for a in report)
    restarts_known = any(a.stats is not None and a.stats.restarts is not None for a in report)
    if output_format(args) in ("json", "yaml"):
        show(args, {"healthy": healthy, "restarts_reported": restarts_known,
                    "actors": [_detail(a) for a in report]})
    else:
        print(render_listing(Rows(COLUMNS, [a.row() for a in report]), output_format(args),
                             args.columns))
        if output_format(args) == "table":
            _summary(report, healthy, restarts_known)
    return 0 if healthy else 1


def check(gateway: str, endpoints: dict[str, Any], expected: list[str], project: str,
          timeout: float, key: Path | None = None) -> list[ActorHealth]:
    """Ask the gateway for everyone, then each actor with an endpoint of its own (with
    keys, only the gateway: the quota actor and the scheduler admit actors' keys alone)."""
    found: dict[str, ActorHealth] = {name: ActorHealth(name) for name in expected}
    try:
        with SyncClient(gateway, project=project, admin=True, timeout=timeout,
                        key=key) as c:
            gathered = c.cluster_stats()
        for s in gathered.actors:
            entry = found.setdefault(s.actor, ActorHealth(s.actor))
            entry.via_gateway, entry.stats = "up", s
    except CinderblockError as exc:
        for entry in found.values():
            entry.via_gateway = f"gateway: {exc.code}"
    for name in DIRECT if key is None else ("gateway",):
        endpoint = gateway if name == "gateway" else endpoints.get(name)
        if isinstance(endpoint, str):
            _direct(found.setdefault(name, ActorHealth(name)), endpoint, project, timeout, key)
    for entry in found.values():
        _judge(entry)
    return list(found.values())


def _direct(entry: ActorHealth, endpoint: str, project: str, timeout: float,
            key: Path | None) -> None:
    try:
        with SyncClient(endpoint, project=project, admin=True, timeout=timeout, key=key) as c:
            stats = c.stats()
        entry.direct = "up"
        entry.stats = entry.stats or stats
    except CinderblockError as exc:
        entry.direct = exc.code


def _judge(entry: ActorHealth) -> None:
    if entry.stats is None:
        entry.problems.append("does not answer")
        return
    if "up" not in (entry.via_gateway, entry.direct):
        entry.problems.append("does not answer")
    state = entry.stats.database.get("state", "none")
    if state not in ("ok", "none"):
        entry.problems.append(f"database {state}")
    if integrity_word(entry.stats.database.get("integrity")) == "damaged":
        entry.problems.append(f"database {entry.stats.database['integrity']}")
    if entry.direct not in ("up", "-"):
        entry.problems.append(f"its own endpoint: {entry.direct}")


def _detail(entry: ActorHealth) -> dict[str, Any]:
    stats = record(entry.stats) if entry.stats is not None else None
    return {"actor": entry.actor, "healthy": entry.healthy, "via_gateway": entry.via_gateway,
            "direct": entry.direct, "problems": entry.problems, "stats": stats}


def _summary(report: list[ActorHealth], healthy: bool, restarts_known: bool) -> None:
    if healthy:
        print(f"healthy: {len(report)} actors answer")
    for entry in report:
        if entry.problems:
            print(f"UNHEALTHY {entry.actor}: {'; '.join(entry.problems)}")
    if not restarts_known:
        print("restarts: not reported (no supervisor has told these actors)")


def _endpoints(args: argparse.Namespace) -> dict[str, Any]:
    try:
        return read_endpoints(args.data_dir)
    except UsageError:
        if args.gateway:
            return {}
        raise


def _expected(data_dir: Path) -> list[str]:
    """The actors the cluster file names (none if there is no cluster file here)."""
    from cinderblock.actors.runtime.config import ConfigError, load

    try:
        cfg = load(data_dir / "cluster.json")
    except ConfigError:
        return []
    return ["gateway", "quota", "scheduler", *(n.host for n in cfg.nodes)]

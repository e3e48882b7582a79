"""The quota actor: limits, usages and reservations for every project.

All arithmetic is ``QuotaBook`` (plain code); this actor only parses
requests, asks the book, writes the book's ``Change`` to its own SQLite file
with group commit, and replies once the change is durable. Expired
reservations are rolled back on a timer and at start.

Exactly once: the gateway sends what its quota journal owes as ``quota.apply``
(ordered ops, each with an id); the ids of finished reservations and applied
ops are rows of ``finished_ops``, written in the same transaction as the usage
they changed, so a batch replayed after any crash changes nothing twice. They
are pruned on the expire timer once no replay can bring their op again: an hour
(``quota_keep_answered_s``) after the gateway says it has had the answer to it,
``KEEP_FINISHED_S`` (7 days) at most (``book.py``).
``quota.rollback_abandoned`` rolls back what a dead gateway reserved and can no
longer finish (see ``book.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from cinderblock.actors.quota import book as qb
from cinderblock.actors.runtime.actor import Actor, AfterCommit, Request
from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.actors.runtime.database import Database
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.quota import (
    QuotaAbandon,
    QuotaAbandoned,
    QuotaApplied,
    QuotaApply,
    QuotaDefaultsUpdate,
    QuotaReserve,
    QuotaSet,
    QuotaSets,
    QuotaShowMany,
    QuotaUpdate,
    Reservation,
    check_projects,
)
from cinderblock.protocol.messages.quota_sync import QuotaSyncResult, QuotaSyncUsage
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.errors import InvalidInput, OverQuota

SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_limits (
    project TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project, resource));
CREATE TABLE IF NOT EXISTS quota_usages (
    project TEXT NOT NULL, resource TEXT NOT NULL, in_use INTEGER NOT NULL,
    reserved INTEGER NOT NULL, PRIMARY KEY (project, resource));
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, deltas TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS finished_ops (
    id TEXT PRIMARY KEY, outcome TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS default_class_limits (
    resource TEXT PRIMARY KEY, hard_limit INTEGER NOT NULL);
"""
SCHEMA_VERSION = 3  # PRAGMA user_version of quota.db (0: a file from before versions)
MIGRATIONS = {
    # 1 -> 2: finished reservation ids and applied op ids are kept on disk, so a
    # quota change replayed after a restart is applied at most once.
    1: "CREATE TABLE IF NOT EXISTS finished_ops (id TEXT PRIMARY KEY, outcome TEXT NOT NULL, "
       "at REAL NOT NULL);",
    # 2 -> 3: the limits an admin set for the default quota class (the schema makes
    # their table; a file without it has the configured defaults only).
    2: "",
}
INSERT_FINISHED = "INSERT OR REPLACE INTO finished_ops VALUES (?, ?, ?)"
DELETE_FINISHED = "DELETE FROM finished_ops WHERE id=?"
DELETE_RESERVATION = "DELETE FROM reservations WHERE id=?"
INSERT_RESERVATION = "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?)"
UPSERT_USAGE = "INSERT OR REPLACE INTO quota_usages VALUES (?, ?, ?, ?)"
UPSERT_LIMIT = "INSERT OR REPLACE INTO quota_limits VALUES (?, ?, ?)"
DELETE_LIMITS = "DELETE FROM quota_limits WHERE project=?"
UPSERT_DEFAULT = "INSERT OR REPLACE INTO default_class_limits VALUES (?, ?)"
log = logging.getLogger(__name__)
QUOTA_APPLY_BEFORE_COMMIT = declare("quota.apply.before_commit")
QUOTA_APPLY_AFTER_COMMIT = declare("quota.apply.after_commit")
QUOTA_RESERVE_BEFORE_COMMIT = declare("quota.reserve.before_commit")
QUOTA_RESERVE_AFTER_COMMIT = declare("quota.reserve.after_commit")
RESERVATION_EXPIRE_S = 86400.0  # Cinder's reservation_expire
EXPIRE_EVERY_S = 60.0


def change_writes(change: qb.Change) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements that persist ``change``, in the order ``Change`` says."""
    writes: list[tuple[str, tuple[Any, ...]]] = [
        (DELETE_RESERVATION, (rid,)) for rid in change.removed]
    writes += [(INSERT_RESERVATION, (r.id, r.project, json.dumps(r.deltas), r.expires_at))
               for r in change.added]
    writes += [(UPSERT_USAGE, row) for row in change.usages]
    writes += [(DELETE_LIMITS, (project,)) for project in change.cleared]
    writes += [(UPSERT_LIMIT, row) for row in change.limits]
    writes += [(UPSERT_DEFAULT, row) for row in change.defaults]
    writes += [(INSERT_FINISHED, row) for row in change.finished]
    writes += [(DELETE_FINISHED, (fid,)) for fid in change.forgotten]
    return writes


class QuotaActor(Actor):
    name = "quota"
    # The gateway sends its owed changes with its next call (``quota_journal.py``): both
    # are committed together, and their replies go back together as one message.
    held_replies = frozenset({"quota.apply"})

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.heartbeat_s = cfg.heartbeat_s
        self.book = qb.QuotaBook({**qb.DEFAULT_LIMITS, **cfg.quota_defaults})
        self.db = Database(cfg.path("quota.db"), SCHEMA, cfg.synchronous,
                           version=SCHEMA_VERSION, migrations=MIGRATIONS,
                           reread=self._reread,
                           check_before_start_bytes=cfg.check_before_start_bytes,
                           check_every_s=cfg.check_every_s)

    def handlers(self) -> dict[str, Any]:
        return {
            "quota.reserve": self.on_reserve,
            "quota.apply": self.on_apply,
            "quota.rollback_abandoned": self.on_rollback_abandoned,
            "quota.show": self.on_show,
            "quota.show_many": self.on_show_many,
            "quota.set": self.on_set,
            "quota.delete": self.on_delete,
            "quota.set_defaults": self.on_set_defaults,
            "quota.sync_usage": self.on_sync_usage,
            "ping": lambda req: Empty(),
        }

    def database(self) -> Database:
        return self.db

    def statistics(self) -> dict[str, Any]:
        return {**super().statistics(), "finished_ids": self.book.finished_count()}

    async def on_start(self) -> None:
        await self.db.open()
        await self._load()
        self.spawn(self.db.flusher())
        await self._expire()
        # as often as the shorter of the windows, once a minute at most
        self.every(min(EXPIRE_EVERY_S, max(1.0, self.cfg.quota_keep_answered_s)),
                   self._expire)
        self.bind(self.cfg.quota, domain="quota")

    async def on_stop(self) -> None:
        await self.db.close()

    async def _load(self) -> None:
        (await self.db.run(self._reread))()

    def _reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: read every row; what it returns loads them into the
        book (at start, and after a failed write so that memory equals the file)."""
        limits = conn.execute("SELECT project, resource, hard_limit FROM quota_limits").fetchall()
        usages = conn.execute(
            "SELECT project, resource, in_use, reserved FROM quota_usages").fetchall()
        rows = conn.execute("SELECT id, project, deltas, expires_at FROM reservations").fetchall()
        reservations = [qb.Reservation(i, p, json.loads(d), e) for i, p, d, e in rows]
        finished = conn.execute("SELECT id, outcome, at FROM finished_ops").fetchall()
        defaults = conn.execute("SELECT resource, hard_limit FROM default_class_limits"
                                ).fetchall()
        return partial(self.book.load, limits, usages, reservations, finished, defaults)

    async def _expire(self) -> None:
        now = time.time()
        expired, change = self.book.expire(now)
        forgotten = self.book.forget_finished(now - qb.KEEP_FINISHED_S,
                                              now - self.cfg.quota_keep_answered_s)
        change = qb.Change.merge([change, forgotten])
        if change.empty:
            return
        try:
            await self._persist(change)
        except Exception as exc:  # the book is the file again; the next round retries
            log.warning("%d expired reservations not rolled back yet: %s", len(expired), exc)
            return
        log.info("rolled back %d expired reservations", len(expired))

    def _persist(self, change: qb.Change) -> asyncio.Future[None]:
        """Queue the rows a change touched; the future resolves when they are committed."""
        if change.empty:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        for sql, params in change_writes(change):
            committed = self.db.write(sql, params)
        return committed  # one future for the whole batch these writes joined

    # ---- handlers: plain functions; each reply waits for its commit ---------
    def on_reserve(self, req: Request) -> AfterCommit:
        body: QuotaReserve = req.body
        try:
            res, change = self.book.reserve(
                body.project, body.deltas, time.time(), RESERVATION_EXPIRE_S,
                body.reservation_id,
                volume_size=body.deltas.get("gigabytes") if body.volume_size is None
                else body.volume_size,
            )
        except qb.OverQuota as exc:
            raise OverQuota(str(exc), exc.details()) from exc
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        QUOTA_RESERVE_BEFORE_COMMIT()
        committed = self._persist(change)
        committed.add_done_callback(_after_reserve_commit)
        return AfterCommit(committed, Reservation(res.id, res.expires_at))

    def on_apply(self, req: Request) -> AfterCommit:
        """The gateway's journal: ordered ops, each applied at most once; the reply
        (one outcome per op) goes once their effect and ids are durable."""
        body: QuotaApply = req.body
        ops = [qb.JournalOp(op.kind, op.op_id, op.reservation_id, op.project, op.deltas)
               for op in body.ops]
        outcomes, change = self.book.apply(ops, earlier_answered=body.earlier_answered,
                                           incarnation=body.incarnation)
        for op, outcome in zip(ops, outcomes, strict=True):
            if outcome.startswith("refused"):
                log.error("quota.apply %s %s: %s", op.kind, op.op_id, outcome)
        QUOTA_APPLY_BEFORE_COMMIT()
        committed = self._persist(change)
        committed.add_done_callback(_after_apply_commit)
        return AfterCommit(committed, QuotaApplied(tuple(outcomes)))

    def on_rollback_abandoned(self, req: Request) -> AfterCommit:
        body: QuotaAbandon = req.body
        if not body.incarnation:
            raise InvalidInput("an incarnation is required", {"field": "incarnation"})
        ids, change = self.book.rollback_abandoned(body.incarnation, frozenset(body.referenced))
        if ids:
            log.warning("rolled back %d reservations a gateway left behind: %s", len(ids),
                        ", ".join(ids[:10]))
        return AfterCommit(self._persist(change), QuotaAbandoned(tuple(ids)))

    def _view(self, project: str) -> QuotaSet:
        usage = self.book.usage(project)
        return QuotaSet(
            project=project,
            limits=self.book.limits(project),
            in_use={r: u.in_use for r, u in usage.items()},
            reserved={r: u.reserved for r, u in usage.items()},
        )

    # Shown once every change made before the request is durable (or failed and was
    # read back): what a show reports is what quota.db holds.
    async def on_show(self, req: Request) -> QuotaSet:
        if req.body.defaults:
            return QuotaSet(project=req.body.project or "", limits=self.book.default_limits())
        await self.db.settled()
        return self._view(req.body.project or req.ctx.project_id)

    async def on_show_many(self, req: Request) -> QuotaSets:
        body: QuotaShowMany = req.body
        check_projects(body.projects)
        await self.db.settled()
        return QuotaSets(tuple(self._view(project) for project in body.projects))

    def on_sync_usage(self, req: Request) -> AfterCommit | QuotaSyncResult:
        body: QuotaSyncUsage = req.body
        before = {r: u.in_use for r, u in self.book.usage(body.project).items()}
        try:
            after = self.book.synced(body.project, body.in_use)
            change = qb.NO_CHANGE if body.dry_run else self.book.sync(body.project,
                                                                      body.in_use)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        if body.dry_run:
            return QuotaSyncResult(body.project, before, after, applied=False)
        log.warning("quota sync of %s: in use %s -> %s", body.project, before, after)
        return AfterCommit(self._persist(change),
                           QuotaSyncResult(body.project, before, after, applied=True))

    def on_set(self, req: Request) -> AfterCommit:
        body: QuotaUpdate = req.body
        limits = body.limits
        bad = [k for k, v in limits.items() if type(v) is not int]
        if bad:
            raise InvalidInput(f"quota limit for {bad[0]!r} must be an integer", {"field": bad[0]})
        try:
            change = self.book.set_limits(body.project, limits)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        return AfterCommit(self._persist(change), self._view(body.project))

    def on_delete(self, req: Request) -> AfterCommit:
        project = req.body.project
        if not isinstance(project, str) or not project:
            raise InvalidInput("quota.delete names the project", {"field": "project"})
        return AfterCommit(self._persist(self.book.clear_limits(project)), self._view(project))

    def on_set_defaults(self, req: Request) -> AfterCommit:
        """Cinder's quota-class update of ``default``: the limits of every project
        without its own (kept in quota.db over the configured defaults)."""
        body: QuotaDefaultsUpdate = req.body
        try:
            change = self.book.set_default_limits(body.limits)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        log.warning("default quotas set by %s: %s", req.ctx.user_id, body.limits)
        return AfterCommit(self._persist(change),
                           QuotaSet(project="", limits=self.book.default_limits()))


def _after_apply_commit(committed: asyncio.Future[None]) -> None:
    if not committed.cancelled() and committed.exception() is None:
        QUOTA_APPLY_AFTER_COMMIT()  # durable, the gateway not answered yet


def _after_reserve_commit(committed: asyncio.Future[None]) -> None:
    if not committed.cancelled() and committed.exception() is None:
        QUOTA_RESERVE_AFTER_COMMIT()

"""The quota actor: limits, usages and reservations for every project.

All arithmetic is ``QuotaBook`` (plain code); this actor only parses
requests, asks the book, writes the book's ``Change`` to its own SQLite file
with group commit, and replies once the change is durable. Expired
reservations are rolled back on a timer and at start.
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
    QuotaRelease,
    QuotaReserve,
    QuotaSet,
    QuotaUpdate,
    Reservation,
    ReservationRef,
)
from cinderblock.protocol.messages.quota_sync import QuotaSyncResult, QuotaSyncUsage
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound, OverQuota

SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_limits (
    project TEXT NOT NULL, resource TEXT NOT NULL, hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project, resource));
CREATE TABLE IF NOT EXISTS quota_usages (
    project TEXT NOT NULL, resource TEXT NOT NULL, in_use INTEGER NOT NULL,
    reserved INTEGER NOT NULL, PRIMARY KEY (project, resource));
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, deltas TEXT NOT NULL, expires_at REAL NOT NULL);
"""
SCHEMA_VERSION = 1  # PRAGMA user_version of quota.db (0: a file from before versions)
DELETE_RESERVATION = "DELETE FROM reservations WHERE id=?"
INSERT_RESERVATION = "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?)"
UPSERT_USAGE = "INSERT OR REPLACE INTO quota_usages VALUES (?, ?, ?, ?)"
UPSERT_LIMIT = "INSERT OR REPLACE INTO quota_limits VALUES (?, ?, ?)"
log = logging.getLogger(__name__)
COMMIT_RECEIVED = declare("quota.commit.received")  # a commit arrived, nothing done yet
RESERVATION_EXPIRE_S = 86400.0  # Cinder's reservation_expire
EXPIRE_EVERY_S = 60.0


class QuotaActor(Actor):
    name = "quota"

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.heartbeat_s = cfg.heartbeat_s
        self.book = qb.QuotaBook({**qb.DEFAULT_LIMITS, **cfg.quota_defaults})
        self.db = Database(cfg.path("quota.db"), SCHEMA, cfg.synchronous,
                           version=SCHEMA_VERSION, reread=self._reread)

    def handlers(self) -> dict[str, Any]:
        return {
            "quota.reserve": self.on_reserve,
            "quota.commit": self.on_commit,
            "quota.rollback": self.on_rollback,
            "quota.release": self.on_release,
            "quota.show": self.on_show,
            "quota.set": self.on_set,
            "quota.sync_usage": self.on_sync_usage,
            "ping": lambda req: Empty(),
        }

    def database(self) -> Database:
        return self.db

    async def on_start(self) -> None:
        await self.db.open()
        await self._load()
        self.spawn(self.db.flusher())
        await self._expire()
        self.every(EXPIRE_EVERY_S, self._expire)
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
        return partial(self.book.load, limits, usages, reservations)

    async def _expire(self) -> None:
        expired, change = self.book.expire(time.time())
        if not expired:
            return
        try:
            await self._persist(change)
        except Exception as exc:  # the book is the file again; the next round retries
            log.warning("%d expired reservations not rolled back yet: %s", len(expired), exc)
            return
        log.info("rolled back %d expired reservations", len(expired))

    def _persist(self, change: qb.Change) -> asyncio.Future[None]:
        """Queue the rows a change touched; the future resolves when they are committed."""
        db = self.db
        if change.empty:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        for rid in change.removed:
            committed = db.write(DELETE_RESERVATION, (rid,))
        for r in change.added:
            committed = db.write(
                INSERT_RESERVATION, (r.id, r.project, json.dumps(r.deltas), r.expires_at)
            )
        for row in change.usages:
            committed = db.write(UPSERT_USAGE, row)
        for lrow in change.limits:
            committed = db.write(UPSERT_LIMIT, lrow)
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
        return AfterCommit(self._persist(change), Reservation(res.id, res.expires_at))

    def on_commit(self, req: Request) -> AfterCommit:
        COMMIT_RECEIVED()
        return self._end_reservation(self.book.commit, req.body)

    def on_rollback(self, req: Request) -> AfterCommit:
        return self._end_reservation(self.book.rollback, req.body)

    def _end_reservation(
        self, op: Callable[[str], qb.Change], ref: ReservationRef
    ) -> AfterCommit:
        try:
            change = op(ref.reservation_id)
        except qb.ReservationNotFound as exc:
            raise NotFound(str(exc), {"reservation_id": ref.reservation_id}) from exc
        except qb.QuotaError as exc:  # e.g. committing a reservation that was rolled back
            raise InvalidState(str(exc), {"reservation_id": ref.reservation_id}) from exc
        return AfterCommit(self._persist(change), Empty())

    def on_release(self, req: Request) -> AfterCommit:
        body: QuotaRelease = req.body
        try:
            change = self.book.release(body.project, body.deltas)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        return AfterCommit(self._persist(change), Empty())

    def _view(self, project: str) -> QuotaSet:
        usage = self.book.usage(project)
        return QuotaSet(
            project=project,
            limits=self.book.limits(project),
            in_use={r: u.in_use for r, u in usage.items()},
            reserved={r: u.reserved for r, u in usage.items()},
        )

    def on_show(self, req: Request) -> QuotaSet:
        if req.body.defaults:
            return QuotaSet(project=req.body.project or "", limits=self.book.default_limits())
        return self._view(req.body.project or req.ctx.project_id)

    def on_sync_usage(self, req: Request) -> AfterCommit | QuotaSyncResult:
        body: QuotaSyncUsage = req.body
        before = {r: u.in_use for r, u in self.book.usage(body.project).items()}
        after = {**before, **body.in_use}
        if body.dry_run:
            return QuotaSyncResult(body.project, before, after, applied=False)
        try:
            change = self.book.sync(body.project, body.in_use)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
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


"""The quota actor: limits, usages and reservations for every project.

All arithmetic is ``QuotaBook`` (plain code); this actor only parses
requests, asks the book, writes the book's ``Change`` to its own SQLite file
with group commit, and replies once the change is durable. Expired
reservations are rolled back on a timer and at start.
"""

from __future__ import annotations

import json
import time
from typing import Any

from actors import quota_book as qb
from actors.config import ClusterConfig
from actors.db import Database
from actors.runtime import Actor, Request
from protocol.errors import InvalidInput, InvalidState, NotFound, OverQuota
from protocol.messages import (
    Empty,
    QuotaRelease,
    QuotaReserve,
    QuotaSet,
    QuotaUpdate,
    ReservationRef,
)

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
DELETE_RESERVATION = "DELETE FROM reservations WHERE id=?"
INSERT_RESERVATION = "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?)"
UPSERT_USAGE = "INSERT OR REPLACE INTO quota_usages VALUES (?, ?, ?, ?)"
UPSERT_LIMIT = "INSERT OR REPLACE INTO quota_limits VALUES (?, ?, ?)"
RESERVATION_EXPIRE_S = 86400.0  # Cinder's reservation_expire
EXPIRE_EVERY_S = 60.0


class QuotaActor(Actor):
    name = "quota"

    def __init__(self, cfg: ClusterConfig) -> None:
        super().__init__(cfg.events_in)
        self.cfg = cfg
        self.heartbeat_s = cfg.heartbeat_s
        self.book = qb.QuotaBook({**qb.DEFAULT_LIMITS, **cfg.quota_defaults})
        self.db = Database(cfg.path("quota.db"), SCHEMA, cfg.synchronous)

    def handlers(self) -> dict[str, Any]:
        return {
            "quota.reserve": self.on_reserve,
            "quota.commit": self.on_commit,
            "quota.rollback": self.on_rollback,
            "quota.release": self.on_release,
            "quota.show": self.on_show,
            "quota.set": self.on_set,
            "ping": lambda req: Empty(),
        }

    async def on_start(self) -> None:
        await self.db.open()
        await self._load()
        self.spawn(self.db.flusher())
        await self._expire()
        self.every(EXPIRE_EVERY_S, self._expire)
        self.bind(self.cfg.quota)

    async def on_stop(self) -> None:
        await self.db.close()

    async def _load(self) -> None:
        limits = await self.db.fetchall("SELECT project, resource, hard_limit FROM quota_limits")
        usages = await self.db.fetchall(
            "SELECT project, resource, in_use, reserved FROM quota_usages"
        )
        rows = await self.db.fetchall("SELECT id, project, deltas, expires_at FROM reservations")
        reservations = [qb.Reservation(i, p, json.loads(d), e) for i, p, d, e in rows]
        self.book.load(limits, usages, reservations)

    async def _expire(self) -> None:
        expired, change = self.book.expire(time.time())
        if expired:
            await self._persist(change)

    async def _persist(self, change: qb.Change) -> None:
        """Queue the rows a change touched and wait until they are committed."""
        db = self.db
        writes = [db.write(DELETE_RESERVATION, (rid,)) for rid in change.removed]
        writes += [
            db.write(INSERT_RESERVATION, (r.id, r.project, json.dumps(r.deltas), r.expires_at))
            for r in change.added
        ]
        writes += [db.write(UPSERT_USAGE, row) for row in change.usages]
        writes += [db.write(UPSERT_LIMIT, row) for row in change.limits]
        for write in writes:
            await write

    # ---- handlers ------------------------------------------------------
    async def on_reserve(self, req: Request) -> dict[str, Any]:
        body: QuotaReserve = req.body
        try:
            res, change = self.book.reserve(
                body.project, body.deltas, time.time(), RESERVATION_EXPIRE_S,
                body.reservation_id, volume_size=body.deltas.get("gigabytes"),
            )
        except qb.OverQuota as exc:
            raise OverQuota(str(exc), exc.details()) from exc
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        await self._persist(change)
        return {"reservation_id": res.id, "expires_at": res.expires_at}

    async def on_commit(self, req: Request) -> Empty:
        await self._end_reservation(self.book.commit, req.body)
        return Empty()

    async def on_rollback(self, req: Request) -> Empty:
        await self._end_reservation(self.book.rollback, req.body)
        return Empty()

    async def _end_reservation(self, op: Any, ref: ReservationRef) -> None:
        try:
            change = op(ref.reservation_id)
        except qb.ReservationNotFound as exc:
            raise NotFound(str(exc), {"reservation_id": ref.reservation_id}) from exc
        except qb.QuotaError as exc:  # e.g. committing a reservation that was rolled back
            raise InvalidState(str(exc), {"reservation_id": ref.reservation_id}) from exc
        await self._persist(change)

    async def on_release(self, req: Request) -> Empty:
        body: QuotaRelease = req.body
        try:
            change = self.book.release(body.project, body.deltas)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        await self._persist(change)
        return Empty()

    def _view(self, project: str) -> QuotaSet:
        usage = self.book.usage(project)
        return QuotaSet(
            project=project,
            limits=self.book.limits(project),
            in_use={r: u.in_use for r, u in usage.items()},
            reserved={r: u.reserved for r, u in usage.items()},
        )

    def on_show(self, req: Request) -> QuotaSet:
        return self._view(req.body.project or req.ctx.project_id)

    async def on_set(self, req: Request) -> QuotaSet:
        body: QuotaUpdate = req.body
        limits = body.limits
        bad = [k for k, v in limits.items() if type(v) is not int]
        if bad:
            raise InvalidInput(f"quota limit for {bad[0]!r} must be an integer", {"field": bad[0]})
        try:
            change = self.book.set_limits(body.project, limits)
        except qb.QuotaError as exc:
            raise InvalidInput(str(exc)) from exc
        await self._persist(change)
        return self._view(body.project)


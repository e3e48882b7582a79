"""Who may ask the gateway for what, and whether a retried request is the same one:
each rule written once.

- ``require_admin``: an op (or a variant of one) reserved to admins.
- ``require_reporter``: the reports only the cluster's own actors send
  (``volume.update``, ``volume.deleted``, ``snapshot.update`` ...). Over the
  ROUTER, which faces clients too, only a storage node's identity (its host name)
  may send them; ``volume.update`` may also come from the scheduler, which sends
  it over the gateway's own DEALER to the scheduler, where no client can be.
- ``require_holder``: a node's report is about what its own backend holds; a node
  cannot fail, delete or finish another node's volumes or snapshots.
- ``fingerprint``: what a request id stands for; a retry with the same id must
  carry the same request (``watch`` aside: it changes the reply, not the request).
  It is a 128-bit digest of the request's fields (32 hex digits), kept with each row:
  the fields themselves cost about 350 bytes a volume in memory and on disk. Rows
  written before kept the fields as JSON; ``stored_fingerprint`` reads either.
- ``RunningCreates``: the creates of one kind running under a request id, and what a
  retry answers (the first's outcome, or what its row says it made).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.actors.runtime.config import host_of
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput
from cinderblock.protocol.wire.schema import dump

T = TypeVar("T")
B = TypeVar("B")
# What a create's retries (same request id) wait for while its flow runs: the record
# it made, or the exception it failed with, set as a result. ``set_exception`` would
# keep the exception's traceback in the future, and with it the frame of the create
# that holds the future: a cycle per failed create, left to the cyclic collector
# (thousands a second under a flood of creates over quota, and pauses of 100 ms).
Outcome = asyncio.Future[T | Exception]


def outcome(value: T | Exception) -> T:
    """What a retry answers with: the record, or the first attempt's error raised."""
    if isinstance(value, Exception):
        raise value
    return value


class RunningCreates(Generic[T]):
    """The creates of one kind now running under a request id, by (project, request id),
    and what a retry of one answers: what an earlier request made (its row, ``made``),
    or what the one still running ends in; ``run`` makes the record otherwise, so that a
    retry arriving meanwhile waits for it rather than making a second."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, str], tuple[str, Outcome[T]]] = {}

    async def earlier(self, key: tuple[str, str], fingerprint: str,
                      made: tuple[T, str] | None) -> T | None:
        """What a create sent again under ``key``'s request id answers: while the earlier
        request still runs, what it ends in (its error is the retry's; never a record
        its failure would then remove); else the record it made (``made``: it and that
        request's fingerprint); None when none made or runs under this id (or there is
        no request id). A different request under the same id is refused."""
        request_id = key[1]
        if not request_id:
            return None
        running = self.running.get(key)
        fp = running[0] if running is not None else made[1] if made is not None else None
        if fp is not None and fp != fingerprint:
            raise InvalidInput(f"request id {request_id!r} was already used for a "
                               "different request", {"request_id": request_id})
        if running is not None:
            return outcome(await asyncio.shield(running[1]))
        return made[0] if made is not None else None

    async def once(self, ctx: Context, fingerprint: str,
                   made_by: Callable[[str, str], tuple[T, str] | None],
                   make: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """What the create under ``ctx``'s request id made or makes (``made_by``: the
        store's lookup of a made one), and whether that was an earlier request's; else
        ``make()``'s."""
        key = (ctx.project_id, ctx.request_id)
        made = made_by(*key) if ctx.request_id else None
        existing = await self.earlier(key, fingerprint, made)
        if existing is not None:
            return existing, True
        return await self.run(key, fingerprint, make), False

    async def run(self, key: tuple[str, str], fingerprint: str,
                  make: Callable[[], Awaitable[T]]) -> T:
        """``make()``, known to retries under ``key`` while it runs. Call it in the
        loop turn ``earlier`` answered None in, so that no retry slips between."""
        done: Outcome[T] = asyncio.get_running_loop().create_future()
        if key[1]:
            self.running[key] = (fingerprint, done)
        try:
            made = await make()
        except Exception as exc:
            done.set_result(exc)
            raise
        finally:
            if self.running.get(key, (None, None))[1] is done:
                del self.running[key]
        done.set_result(made)
        return made


def require_admin(ctx: Context, action: str) -> None:
    """Raise Forbidden ("only an admin may <action>") unless the caller is an admin."""
    if not ctx.is_admin:
        raise Forbidden(f"only an admin may {action}", {"project_id": ctx.project_id})


def require_reporter(req: Request, router: Link, nodes: Collection[str],
                     scheduler_too: bool = False) -> None:
    """Raise Forbidden unless a storage node (or, with ``scheduler_too``, the
    scheduler) sent this request."""
    if req.link is router:
        if req.peer in nodes:  # the node's name: its key's, when secure
            return
    elif scheduler_too:
        return
    who = "the scheduler and storage nodes" if scheduler_too else "storage nodes"
    raise Forbidden(f"{req.env.op} is reserved to {who}", {"op": req.env.op})


def require_holder(req: Request, host: str | None, what: str) -> None:
    """A storage node speaks only for what is on its own backend: its report on a volume
    or snapshot whose record (or whose report) names another node's backend is refused.
    ``host``: ``node@backend``, None while no backend holds it yet."""
    if host is not None and host_of(host) != req.peer:
        raise Forbidden(f"{req.env.op} from {req.peer} about {what}, which is on "
                        f"{host_of(host)}: a node reports on its own backend only",
                        {"op": req.env.op})


REQUEST_ID_TTL_S = 24 * 3600.0  # a request id names what it made for a day (EC2's client tokens)


def made_by_row(conn: sqlite3.Connection, made_by: str, project: str, request_id: str
                ) -> tuple[str, str] | None:
    """(id, fingerprint) of what ``request_id`` made in ``project`` within
    ``REQUEST_ID_TTL_S``, from its row (`made_by`: the table's indexed query)."""
    rows = conn.execute(made_by, (project, request_id, time.time() - REQUEST_ID_TTL_S)
                        ).fetchall()
    return (rows[0][0], stored_fingerprint(rows[0][1] or "")) if rows else None


def retry_fingerprint(request_id: str, body: B, check: Callable[[B], object]) -> str:
    """What a retry of this request (same request id) is compared by; "" without a
    request id. It costs a JSON dump of the body, so ``check`` (the checks the flow
    makes first) refuses a body the flow would refuse before it is made."""
    if not request_id:
        return ""
    check(body)
    return fingerprint(body)


def fingerprint(body: object) -> str:
    fields = dump(body)
    fields.pop("watch", None)
    return _digest(json.dumps(fields, sort_keys=True, default=str))


def stored_fingerprint(stored: str) -> str:
    """A row's fingerprint as ``fingerprint`` makes it now (older rows kept the JSON)."""
    return _digest(stored) if stored.startswith("{") else stored


def _digest(fields: str) -> str:
    return hashlib.blake2b(fields.encode(), digest_size=16).hexdigest()

"""The gateway's quota journal: what it owes the quota actor, durable, sent until taken.

Theory. Quota is exact under any crash when every quota change the gateway
owes because of a state change is written in the same transaction as that
state change, and is then applied at most once:

* an entry created (a volume or snapshot ``creating``) owes the commit of its
  reservation; a row removed by a delete owes the release of what it held; a
  revert that removes an entry owes its release, one that leaves no entry owes
  the rollback of its reservation; an extend that ends owes its commit or
  rollback.
* ``owe_*`` queues the journal row on the group-commit ``Database`` next to the
  state change's own writes, with no ``await`` between them: ``Database.flush``
  takes every write queued so far as one batch, one transaction, so the pair is
  committed together or not at all.
* the outbox (``run``) sends the durable rows in order, in batches, as
  ``quota.apply``: ahead of the gateway's next call to the quota actor (``kick``,
  on the same connection, so the quota actor has applied them before it reserves
  or reads for that call), or after ``LINGER_S`` if no call comes; the quota
  actor applies each op at most once (op ids kept in ``quota.db`` with the usage
  they changed) and answers once durable; then the rows are deleted. While the
  quota actor is away it retries with backoff; a restarted gateway loads the rows
  left and sends them again (a replay of what was applied is a ``repeat``).
* once the rows found at start are acknowledged, the gateway asks the quota
  actor to roll back the reservations of its earlier incarnations that it does
  not reference (reservation ids are ``<incarnation>.<count><random>``; an extend in
  progress references its reservation): what a dead gateway reserved and can no
  longer finish is given back at once, not after a day.

Nobody waits on the quota actor for a commit or a release: a create or delete
answers once its state change (and with it what it owes) is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from cinderblock.actors.runtime.database import Database
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.quota import QuotaOp, ReservationIds, incarnation_of
from cinderblock.protocol.wire.errors import CinderblockError

log = logging.getLogger(__name__)
JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_journal (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, op_id TEXT NOT NULL,
    reservation_id TEXT NOT NULL, project TEXT NOT NULL, deltas TEXT NOT NULL
);
"""
INSERT_OWED = "INSERT INTO quota_journal VALUES (?, ?, ?, ?, ?, ?)"
DELETE_OWED = "DELETE FROM quota_journal WHERE seq=?"
BATCH = 256  # ops per quota.apply
# How long a durable op may wait for the gateway's next quota call to carry it: one
# at a time a create's commit then goes with the next create's reserve, and the quota
# actor wakes and commits once a create instead of twice. Every quota call the
# gateway makes takes the owed ops ahead of it (``kick``), so no read through the
# gateway sees a commit late.
LINGER_S = 0.1
BACKOFF_S = (0.05, 2.0)  # first and longest wait between tries while quota is away

JOURNAL_BEFORE_SEND = declare("gateway.quota_journal.before_send")
JOURNAL_AFTER_ACK = declare("gateway.quota_journal.after_ack")

# (the ops, whether every op sent before them has been answered) -> one outcome per op
Send = Callable[[tuple[QuotaOp, ...], bool], Awaitable[tuple[str, ...]]]
Abandon = Callable[[str, tuple[str, ...]], Awaitable[tuple[str, ...]]]


@dataclass(slots=True)
class Owed:
    seq: int
    op: QuotaOp
    durable: asyncio.Future[None] | None  # None: loaded from the file (durable)
    unsaved_ok: bool = False  # sent even if its row was not saved (see owe_rollback)
    sent: bool = False  # sent before, unanswered: the quota actor may have applied it

    @property
    def owes_nothing(self) -> bool:
        """Its transaction failed: the state change did not happen, so nothing is owed."""
        d = self.durable
        return (d is not None and d.done() and d.exception() is not None
                and not self.unsaved_ok)


class QuotaJournal:
    """What the gateway owes the quota actor, in order (see the module text)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # ordered by start: the quota actor refuses a late reserve of an older one
        self.incarnation = incarnation_of(time.time(), uuid.uuid4().hex)
        self._reservation_ids = ReservationIds(self.incarnation)
        self._owed: deque[Owed] = deque()
        self._next_seq = 1
        self._wake = asyncio.Event()  # something is owed
        self._kicked = asyncio.Event()  # a quota call took the owed along, or hurry
        self._hurry = 0  # how many wait for everything owed to be taken
        self._send_ops: Send | None = None
        self._in_flight: tuple[list[Owed], Awaitable[tuple[str, ...]]] | None = None
        self.replayed = False  # the rows found at start are acknowledged
        # the deletes of answered rows: a row whose delete is not durable comes back at
        # the next start, and is sent again
        self._last_delete: asyncio.Future[None] | None = None
        self._a_delete_failed = False
        self.sent = 0
        self.retries = 0

    def reservation_id(self) -> str:
        """A new reservation id that names this incarnation of the gateway, later than
        every one it made before."""
        return self._reservation_ids.next()

    # ---- owing (call next to the state change's writes, no await between) ----
    def owe_commit(self, reservation_id: str, project: str) -> asyncio.Future[None]:
        return self._owe(QuotaOp("commit", reservation_id, reservation_id, project))

    def owe_rollback(self, reservation_id: str, project: str, *, unsaved_ok: bool = False
                     ) -> asyncio.Future[None]:
        """``unsaved_ok``: a revert's rollback of a reservation that no saved state
        refers to (its entry was never written). It is sent even if its own row cannot
        be saved (a full disk): rolling back an unused reservation is always right, and
        if the gateway dies first the sweep of its incarnation's reservations does it."""
        return self._owe(QuotaOp("rollback", reservation_id, reservation_id, project),
                         unsaved_ok)

    def owe_release(self, op_id: str, project: str, deltas: Mapping[str, int]
                    ) -> asyncio.Future[None]:
        return self._owe(QuotaOp("release", op_id, "", project, dict(deltas)))

    def _owe(self, op: QuotaOp, unsaved_ok: bool = False) -> asyncio.Future[None]:
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        durable = self.db.write(INSERT_OWED, (seq, op.kind, op.op_id, op.reservation_id,
                                              op.project, json.dumps(op.deltas)))
        self._owed.append(Owed(seq, op, durable, unsaved_ok))
        self._wake.set()
        return durable

    # ---- reads ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._owed)

    def owed(self) -> list[QuotaOp]:
        """What is owed now, in order."""
        return [o.op for o in self._owed]

    def owes(self, project: str) -> bool:
        return any(o.op.project == project for o in self._owed)

    def statistics(self) -> dict[str, int]:
        return {"owed": len(self._owed), "sent": self.sent, "retries": self.retries}

    # ---- start and the outbox ------------------------------------------------
    async def load(self) -> None:
        """The rows a previous incarnation left: owed still, sent first."""
        rows = await self.db.fetchall(
            "SELECT seq, kind, op_id, reservation_id, project, deltas FROM quota_journal "
            "ORDER BY seq")
        for seq, kind, op_id, rid, project, deltas in rows:
            self._owed.append(Owed(seq, QuotaOp(kind, op_id, rid, project, json.loads(deltas)),
                                   None))
            self._next_seq = seq + 1
        if rows:
            log.warning("quota journal: %d quota changes owed from before the restart", len(rows))

    def kick(self) -> None:
        """A quota call is about to go: what is owed and durable goes now, ahead of it on
        the same socket, so the quota actor has applied it when it reads or reserves for
        that call (``send`` puts its message on the socket before it returns)."""
        if self._in_flight is None and self._send_ops is not None and self.replayed:
            with contextlib.suppress(CinderblockError):  # the outbox tries again
                self._start()
        self._kicked.set()

    async def run(self, send: Send, abandon: Abandon,
                  referenced: Callable[[], Collection[str]]) -> None:
        """The outbox, for the gateway's life: send what is owed, in order; once what
        was found at start is taken, roll back what earlier incarnations left. A durable
        op waits up to ``LINGER_S`` for a quota call to go with (``kick``)."""
        self._send_ops = send
        backoff = BACKOFF_S[0]
        while True:
            try:
                if self._in_flight is None:
                    if not await self._head_durable():
                        if not self.replayed:
                            await self._abandon(abandon, referenced)
                        else:
                            self._wake.clear()
                            await self._wake.wait()
                        continue
                    if self._in_flight is None and self.replayed:
                        await self._linger()
                    if self._in_flight is None and not self._start():
                        continue
                await self._settle()
            except CinderblockError as exc:
                self.retries += 1
                log.info("quota journal: %d owed, quota did not take them (%s); again in "
                         "%.2fs", len(self._owed), exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])
                continue
            backoff = BACKOFF_S[0]

    async def _head_durable(self) -> bool:
        """Whether anything is owed, once the first row that may owe is durable (a row
        whose transaction failed owes nothing: its state change did not happen)."""
        while True:
            for owed in self._owed:
                if owed.durable is not None and not owed.durable.done():
                    await asyncio.wait([owed.durable])
                    break
                if not owed.owes_nothing:
                    return True
            else:
                self._drop_failed()
                return False

    async def _linger(self) -> None:
        """Up to ``LINGER_S`` for a quota call to take the owed ops along, unless a
        batch is full or somebody waits for them (``wait_sent``, ``settle``)."""
        if self._hurry or len(self._owed) >= BATCH:
            return
        self._kicked.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_S):
                await self._kicked.wait()

    def _ready_batch(self) -> list[Owed]:
        """The durable rows at the head, in order, those that owe nothing left out."""
        batch: list[Owed] = []
        for owed in self._owed:
            if owed.durable is not None and not owed.durable.done():
                break
            if owed.owes_nothing:
                continue
            batch.append(owed)
            if len(batch) == BATCH:
                break
        self._drop_failed()
        return batch

    def _drop_failed(self) -> None:
        while self._owed and self._owed[0].owes_nothing:
            self._owed.popleft()

    def _start(self) -> bool:
        """Send the durable head as one ``quota.apply``; whether there was one."""
        batch = self._ready_batch()
        if not batch:
            return False
        assert self._send_ops is not None
        JOURNAL_BEFORE_SEND()
        # Every op sent before is answered unless this batch carries it again (an op
        # once sent stays at the head until answered) or it was found at start (a
        # previous process may have sent it): the quota actor may then forget the ids
        # it finished before this batch, as none can come again.
        earlier_answered = (self.replayed and self._answered_rows_gone()
                            and not any(o.sent for o in batch))
        self._in_flight = (batch, self._send_ops(tuple(o.op for o in batch),
                                                 earlier_answered))
        for owed in batch:
            owed.sent = True
        return True

    async def _settle(self) -> None:
        """The answer to the batch in flight: its rows are taken and deleted."""
        assert self._in_flight is not None
        batch, reply = self._in_flight
        try:
            outcomes = await reply
        finally:
            self._in_flight = None
        JOURNAL_AFTER_ACK()
        self.sent += len(batch)
        for owed, outcome in zip(batch, outcomes, strict=False):
            if outcome.startswith("refused"):
                log.error("quota journal: %s %s was refused: %s", owed.op.kind,
                          owed.op.op_id, outcome)
        taken = {id(o) for o in batch}
        self._owed = deque(o for o in self._owed if id(o) not in taken)
        for owed in batch:
            # a lost delete is replayed: a repeat
            self._last_delete = self.db.write(DELETE_OWED, (owed.seq,))
        if self._last_delete is not None:
            self._last_delete.add_done_callback(self._delete_done)

    def _delete_done(self, deleted: asyncio.Future[None]) -> None:
        if deleted.cancelled() or deleted.exception() is not None:
            self._a_delete_failed = True  # its row is on disk until the next start

    def _answered_rows_gone(self) -> bool:
        """Whether every answered row is deleted, durably (the group commits run in
        order: the last delete done means the earlier ones are)."""
        d = self._last_delete
        return not self._a_delete_failed and (
            d is None or (d.done() and not d.cancelled() and d.exception() is None))

    async def _abandon(self, abandon: Abandon,
                       referenced: Callable[[], Collection[str]]) -> None:
        rolled_back = await abandon(self.incarnation, tuple(referenced()))
        self.replayed = True
        if rolled_back:
            log.warning("quota journal: %d reservations of earlier incarnations rolled back",
                        len(rolled_back))

    async def wait_sent(self) -> None:
        """Until nothing is owed (tests, and a stopping gateway that wants to)."""
        await self._hurried(lambda: not self._owed and self.replayed)

    async def settle(self, project: str, within: float) -> bool:
        """Until nothing of ``project`` is owed, ``within`` seconds at most; whether so."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._hurried(lambda: not self.owes(project))
        return not self.owes(project)

    async def _hurried(self, done: Callable[[], bool]) -> None:
        """Until ``done()``, no op lingering meanwhile."""
        self._hurry += 1
        self._kicked.set()
        try:
            while not done():
                await asyncio.sleep(0.01)
        finally:
            self._hurry -= 1

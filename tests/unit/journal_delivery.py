"""The quota journal's outbox wired to a real ``QuotaBook`` in memory: what the
quota actor would do with ``quota.apply``, for tests of the gateway's flows."""

from __future__ import annotations

import asyncio
import contextlib

from cinderblock.actors.gateway.quota_journal import Abandon, QuotaJournal, Send
from cinderblock.actors.quota.book import JournalOp, QuotaBook
from cinderblock.protocol.messages.quota import QuotaOp


def journal_op(op: QuotaOp) -> JournalOp:
    return JournalOp(op.kind, op.op_id, op.reservation_id, op.project, op.deltas)


async def deliver(journal: QuotaJournal, book: QuotaBook,
                  referenced: tuple[str, ...] = ()) -> list[str]:
    """Run the outbox until nothing is owed; the outcomes the book gave, in order."""
    outcomes: list[str] = []

    async def send(ops: tuple[QuotaOp, ...], earlier_answered: bool) -> tuple[str, ...]:
        done, _ = book.apply([journal_op(op) for op in ops],
                             earlier_answered=earlier_answered,
                             incarnation=journal.incarnation)
        outcomes.extend(done)
        return tuple(done)

    async def abandon(incarnation: str, refs: tuple[str, ...]) -> tuple[str, ...]:
        ids, _ = book.rollback_abandoned(incarnation, refs)
        return tuple(ids)

    await run_until_sent(journal, send, abandon, referenced)
    return outcomes


async def run_until_sent(journal: QuotaJournal, send: Send, abandon: Abandon,
                         referenced: tuple[str, ...] = ()) -> None:
    """Run the journal's outbox with these links until nothing is owed (5 s at most)."""
    outbox = asyncio.create_task(journal.run(send, abandon, lambda: referenced))
    try:
        async with asyncio.timeout(5):
            await journal.wait_sent()
    finally:
        outbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox

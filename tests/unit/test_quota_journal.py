"""Exact quota under faults, as plain code: the quota book applies the gateway's
journal at most once (durably: what it remembers is rows of the same Change), and
the gateway's journal is written with the state change that owes it, replayed
after a restart, retried while the quota actor is away, and followed by the
rollback of what earlier incarnations left."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.quota_journal import LINGER_S, QuotaJournal
from cinderblock.actors.gateway.volume_store import (
    INSERT_VOLUME,
    SCHEMA_VERSION,
    GatewayStore,
    VolumeRecord,
)
from cinderblock.actors.quota import quota as quota_actor
from cinderblock.actors.quota.book import KEEP_FINISHED_S, JournalOp, QuotaBook, QuotaError
from cinderblock.actors.runtime.actor import Request
from cinderblock.actors.runtime.database import Database, WriteFailed
from cinderblock.protocol.messages.quota import (
    ORDERED_INCARNATION,
    QuotaApply,
    QuotaOp,
    QuotaReserve,
    QuotaShow,
    ReservationIds,
    incarnation_of,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Unavailable
from tests.conftest import make_config, open_gateway_store
from tests.unit.journal_delivery import deliver, journal_op, run_until_sent

P = "demo"
NOW = 1_000.0


def usage(book: QuotaBook) -> tuple[int, int, int, int]:
    u = book.usage(P)
    return (u["volumes"].in_use, u["volumes"].reserved,
            u["gigabytes"].in_use, u["gigabytes"].reserved)


def restarted(book: QuotaBook) -> QuotaBook:
    """A quota actor started again: a new book loaded from the rows the old one kept."""
    again = QuotaBook()
    again.load(*book.dump(), book.finished_rows())
    return again


def volume(vid: str = "vol-1", size: int = 2) -> VolumeRecord:
    return VolumeRecord(id=vid, project_id=P, user_id=P, size=size,
                        status=VolumeStatus.CREATING, volume_type=VolumeType("t", "__DEFAULT__"),
                        availability_zone="nova")


# ---- the quota book: each op at most once ---------------------------------------


def test_a_batch_applied_twice_changes_usage_once() -> None:
    book = QuotaBook()
    res, _ = book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id="g1.a")
    ops = [JournalOp("commit", res.id, res.id, P),
           JournalOp("release", "release:volume:v", "", P, {"volumes": 1, "gigabytes": 2})]
    assert book.apply(ops, NOW)[0] == ["done", "done"]
    assert book.apply(ops, NOW)[0] == ["repeat", "repeat"]
    assert usage(book) == (0, 0, 0, 0)


def test_a_replay_after_the_quota_actor_restarted_is_a_repeat() -> None:
    """The crash between apply and ack: the quota actor had made it durable (the
    finished ids are rows of the same Change), the gateway never heard, and sends
    the batch again to a restarted quota actor."""
    book = QuotaBook()
    book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id="g1.a")
    book.reserve(P, {"volumes": 1}, NOW, reservation_id="g1.b")
    book.commit("g1.a")
    book.release(P, {"volumes": 1, "gigabytes": 2}, "release:volume:a")
    _, change = book.apply([JournalOp("rollback", "g1.b", "g1.b", P)], NOW)
    assert {row[0] for row in change.finished} == {"g1.b"}
    before = usage(book)

    again = restarted(book)
    outcomes, change = again.apply([
        JournalOp("commit", "g1.a", "g1.a", P),
        JournalOp("release", "release:volume:a", "", P, {"volumes": 1, "gigabytes": 2}),
        JournalOp("rollback", "g1.b", "g1.b", P),
    ], NOW)
    assert outcomes == ["repeat", "repeat", "repeat"] and change.empty
    assert usage(again) == before == (0, 0, 0, 0)


def test_an_op_that_can_never_apply_is_refused_and_the_rest_still_apply() -> None:
    book = QuotaBook()
    book.reserve(P, {"volumes": 1}, NOW, reservation_id="g1.a")
    book.rollback("g1.a")
    outcomes, _ = book.apply([JournalOp("commit", "g1.a", "g1.a", P),
                              JournalOp("commit", "g1.zz", "g1.zz", P),
                              JournalOp("resize", "x"),
                              JournalOp("release", "r1", "", P, {"volumes": 1})], NOW)
    assert outcomes[0].startswith("refused: reservation g1.a was already rolled back")
    assert outcomes[1].startswith("refused: no pending reservation g1.zz")
    assert outcomes[2].startswith("refused: unknown journal op kind 'resize'")
    assert outcomes[3] == "done"


def test_reservations_an_earlier_incarnation_left_are_rolled_back_unless_referenced() -> None:
    book = QuotaBook()
    for rid in ("old.create", "old.extend", "new.create", "legacy-id"):
        book.reserve(P, {"gigabytes": 1}, NOW, reservation_id=rid)
    ids, change = book.rollback_abandoned("new", {"old.extend"}, NOW)
    assert ids == ["old.create"] and change.removed == ("old.create",)
    assert usage(book) == (0, 0, 0, 3)
    assert restarted(book).apply([JournalOp("rollback", "old.create", "old.create")],
                                 NOW)[0] == ["repeat"]


def test_a_late_reserve_of_an_incarnation_older_than_one_that_swept_is_refused() -> None:
    """A reserve that arrives after the sweep of a later incarnation (it waited in line
    for its dead sender) would wait a day for ``expire``: it is refused, and the book
    remembers who swept across a restart (its finished row)."""
    older, newer, newest = (incarnation_of(NOW + i, "beef") for i in range(3))
    assert older < newer < newest and len(older) == ORDERED_INCARNATION
    book = QuotaBook()
    book.reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{older}.a")
    _, change = book.rollback_abandoned(newer, (), NOW)
    assert change.removed == (f"{older}.a",)
    assert (f"incarnation:{newer}", "swept", NOW) in change.finished
    for again in (book, restarted(book)):
        with pytest.raises(QuotaError, match=f"incarnation {newer} swept its reservations"):
            again.reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{older}.late")
        again.reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{newer}.b")  # its own
        again.reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{newest}.c")  # a later one
        again.reserve(P, {"gigabytes": 1}, NOW, reservation_id="0123456789ab.d")  # old form
    assert usage(book)[3] == 3


def test_a_sweep_by_an_older_incarnation_does_not_move_the_line_back() -> None:
    older, newer = incarnation_of(NOW, "0000"), incarnation_of(NOW + 1, "0000")
    book = QuotaBook()
    book.rollback_abandoned(newer, (), NOW)
    book.rollback_abandoned(older, (), NOW)
    with pytest.raises(QuotaError, match="has ended"):
        book.reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{older}.late")


# ---- finished ids forgotten once no replay can bring them -------------------------

WEEK_AGO = NOW - KEEP_FINISHED_S  # forget_finished's first argument: nothing that old here


def _release(book: QuotaBook, op_id: str, at: float, incarnation: str = "",
             earlier_answered: bool = False) -> list[str]:
    return book.apply([JournalOp("release", op_id, "", P, {"volumes": 1})], at,
                      earlier_answered=earlier_answered, incarnation=incarnation)[0]


def test_an_id_is_forgotten_soon_only_once_the_gateway_has_had_its_answer() -> None:
    """Until a batch says the ops before it were answered, an applied id is kept for the
    week; after, those finished before that batch go once ``answered_before`` passes
    them, the batch's own ids stay (nobody has answered them yet)."""
    gw = incarnation_of(NOW, "a")
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 3}, NOW)[0].id)
    assert _release(book, "release:volume:1", NOW, gw) == ["done"]
    assert book.forget_finished(WEEK_AGO, NOW + 100).forgotten == ()  # nobody said so
    assert _release(book, "release:volume:2", NOW + 10, gw, earlier_answered=True) == ["done"]
    assert book.forget_finished(WEEK_AGO, NOW - 1).forgotten == ()  # not past the window
    forgotten = book.forget_finished(WEEK_AGO, NOW + 100).forgotten
    assert "release:volume:1" in forgotten and "release:volume:2" not in forgotten
    assert _release(book, "release:volume:2", NOW + 20, gw) == ["repeat"]
    assert book.usage(P)["volumes"].in_use == 1


def test_a_dead_incarnations_word_late_on_the_wire_is_not_believed() -> None:
    """The old gateway's last batch arrives after its successor's replay applied a
    release whose answer the successor never got (it died too): were the old one
    believed, that release's id would be forgotten and the third gateway's replay of
    it applied twice."""
    old, new = incarnation_of(NOW, "a"), incarnation_of(NOW + 60, "b")
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 2}, NOW)[0].id)
    assert _release(book, "release:volume:1", NOW + 61, new) == ["done"]  # the replay
    assert _release(book, "release:volume:9", NOW + 62, old, earlier_answered=True) == ["done"]
    assert book.forget_finished(WEEK_AGO, NOW + 100).forgotten == ()
    assert _release(restarted(book), "release:volume:1", NOW + 200) == ["repeat"]
    assert _release(book, "release:volume:3", NOW + 63, new, earlier_answered=True) == ["done"]
    assert set(book.forget_finished(WEEK_AGO, NOW + 100).forgotten) == {
        "release:volume:1", "release:volume:9"}


def test_a_batch_without_the_word_after_the_clock_was_set_back_moves_the_line_back() -> None:
    gw = incarnation_of(NOW, "a")
    book = QuotaBook()
    book.commit(book.reserve(P, {"volumes": 2}, NOW)[0].id)
    _release(book, "release:volume:1", NOW + 100, gw, earlier_answered=True)
    _release(book, "release:volume:2", NOW + 50, gw)  # the clock went back 50 s
    assert book.forget_finished(WEEK_AGO, NOW + 1000).forgotten == ()


def test_a_swept_incarnations_row_is_kept_for_the_week_answered_or_not() -> None:
    old, new = incarnation_of(NOW, "a"), incarnation_of(NOW + 60, "b")
    book = QuotaBook()
    book.rollback_abandoned(new, (), NOW)
    _release(book, "release:volume:1", NOW + 10, new, earlier_answered=True)
    assert book.forget_finished(WEEK_AGO, NOW + 100).forgotten == ()
    with pytest.raises(QuotaError, match="has ended"):
        restarted(book).reserve(P, {"gigabytes": 1}, NOW, reservation_id=f"{old}.late")


async def test_the_journal_says_the_earlier_ops_were_answered_only_when_none_can_come_again(
    tmp_path: Path,
) -> None:
    """Not for the replay of what a previous process left (it may have sent it), not
    for a batch sent again after no answer (it may have been applied), not once the
    delete of an answered row failed (the row is replayed at the next start); for a
    batch of new ops once every row answered is durably gone."""
    path = tmp_path / "gateway.db"
    book = QuotaBook()
    said: list[tuple[str, bool]] = []
    trouble: list[str] = []  # what the next send meets: "lost", or "disk full" after it

    async with open_gateway_store(path) as store:  # dies before it sends anything
        rid = store.journal.reservation_id()
        book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id=rid)
        await store.add_volume(volume(), rid)

    async with open_gateway_store(path) as store:
        journal: QuotaJournal = store.journal

        async def send(ops: tuple[QuotaOp, ...], earlier_answered: bool) -> tuple[str, ...]:
            said.append((" ".join(op.kind for op in ops), earlier_answered))
            if trouble and trouble[0] == "lost":
                trouble.pop(0)
                raise Unavailable("no answer")
            if trouble and trouble[0] == "disk full":  # the deletes join a batch that fails
                trouble.pop(0)
                store.db.write(INSERT_VOLUME, volume("clash").row())
                store.db.write(INSERT_VOLUME, volume("clash").row())
            return tuple(book.apply([journal_op(op) for op in ops],
                                    earlier_answered=earlier_answered,
                                    incarnation=journal.incarnation)[0])

        async def abandon(incarnation: str, refs: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(book.rollback_abandoned(incarnation, refs)[0])

        async def owe_and_send(n: int) -> None:
            rid = journal.reservation_id()
            book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id=rid)
            await store.add_volume(volume(f"vol-{n}"), rid)
            await run_until_sent(journal, send, abandon)
            await store.db.settled()

        await store.load_volumes({})
        await run_until_sent(journal, send, abandon)
        await store.db.settled()
        assert said == [("commit", False)]  # the replay
        await owe_and_send(2)
        assert said[-1] == ("commit", True)
        trouble.append("lost")
        await owe_and_send(3)
        assert said[-2:] == [("commit", True), ("commit", False)]  # sent again
        await owe_and_send(4)
        assert said[-1] == ("commit", True)
        trouble.append("disk full")
        await owe_and_send(5)
        assert said[-1] == ("commit", True)
        await owe_and_send(6)
        assert said[-1] == ("commit", False)  # vol-5's row is on disk still
    assert usage(book) == (6, 0, 12, 0)
    async with open_gateway_store(path) as store:
        await store.load_volumes({})
        assert [op.kind for op in store.journal.owed()] == ["commit"]
        assert await deliver(store.journal, book) == ["repeat"]
    assert usage(book) == (6, 0, 12, 0)


def test_reservation_ids_sort_in_the_order_they_are_made_and_never_repeat() -> None:
    """In order, each lands at the end of quota.db's tables keyed by it; two gateways
    that began in the same millisecond with the same salt still make different ids
    (their 64 random bits)."""
    incarnation = incarnation_of(NOW, "beef")
    first, twin = ReservationIds(incarnation), ReservationIds(incarnation)
    made = [first.next() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(rid.partition(".")[0] == incarnation for rid in made)
    assert all(len(rid) == ORDERED_INCARNATION + 1 + 32 for rid in made)
    assert all(int(rid.partition(".")[2], 16) >= 0 for rid in made)  # hex digits only
    assert not set(made) & {twin.next() for _ in range(5000)}
    later = ReservationIds(incarnation_of(NOW + 1, "0000")).next()
    assert later > made[-1]  # a later incarnation's ids sort after


async def test_a_journal_makes_its_reservation_ids_in_order(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        journal = store.journal
        made = [journal.reservation_id() for _ in range(100)]
        assert made == sorted(made)
        assert {rid.partition(".")[0] for rid in made} == {journal.incarnation}


# ---- the gateway's journal ---------------------------------------------------------


async def test_the_entry_and_the_commit_it_owes_land_in_one_transaction_or_neither(
    tmp_path: Path,
) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        clash = store.db.write(INSERT_VOLUME, volume().row())  # same id: the batch fails
        with pytest.raises(WriteFailed, match="UNIQUE constraint failed"):
            await store.add_volume(volume(), "g1.a")
        with contextlib.suppress(sqlite3.IntegrityError, WriteFailed):
            await clash
        assert await store.db.fetchall("SELECT * FROM quota_journal") == []
        assert await store.db.fetchall("SELECT * FROM volumes") == []
        book = QuotaBook()
        book.reserve(P, {"volumes": 1}, NOW, reservation_id="g1.a")
        assert await deliver(store.journal, book) == []  # the failed row owes nothing
        assert len(store.journal) == 0


async def test_a_reverts_rollback_is_sent_even_when_a_full_disk_keeps_its_row_out(
    tmp_path: Path,
) -> None:
    """A create whose entry could not be written (disk full) reverts: the rollback of
    its reservation cannot be saved either, and is sent all the same (found by the
    gateway disk-full test: the reservation otherwise waited for a gateway restart)."""
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        book = QuotaBook()
        book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id="g1.a")
        clash = store.db.write(INSERT_VOLUME, volume().row())
        store.db.write(INSERT_VOLUME, volume().row())  # the batch fails ...
        saved = store.journal.owe_rollback("g1.a", P, unsaved_ok=True)  # ... with this row
        with pytest.raises(WriteFailed):
            await saved
        with contextlib.suppress(WriteFailed):
            await clash
        assert await store.db.fetchall("SELECT * FROM quota_journal") == []
        assert await deliver(store.journal, book) == ["done"]
        assert usage(book) == (0, 0, 0, 0)


async def test_what_is_owed_survives_a_gateway_restart_and_is_sent_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    book = QuotaBook()
    async with open_gateway_store(path) as store:
        rid = store.journal.reservation_id()
        book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id=rid)
        await store.add_volume(volume(), rid)
        rec = store.volumes["vol-1"]
        await store.remove_volume(rec)
    async with open_gateway_store(path) as store:  # killed before anything was sent
        await store.load_volumes({})
        assert [op.kind for op in store.journal.owed()] == ["commit", "release"]
        assert await deliver(store.journal, book) == ["done", "done"]
        assert usage(book) == (0, 0, 0, 0)
    async with open_gateway_store(path) as store:
        await store.load_volumes({})
        assert store.journal.owed() == []


async def test_the_outbox_retries_while_quota_is_away_then_rolls_back_the_abandoned(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    book = QuotaBook()
    book.reserve(P, {"gigabytes": 4}, NOW, reservation_id="dead.extend")

    async def send(ops: tuple[QuotaOp, ...], earlier_answered: bool) -> tuple[str, ...]:
        calls.append("send")
        if calls.count("send") < 3:
            raise Unavailable("the quota actor is not there")
        return tuple(book.apply([journal_op(op) for op in ops])[0])

    async def abandon(incarnation: str, referenced: tuple[str, ...]) -> tuple[str, ...]:
        calls.append("abandon")
        return tuple(book.rollback_abandoned(incarnation, referenced)[0])

    async with open_gateway_store(tmp_path / "gateway.db") as store:
        journal: QuotaJournal = store.journal
        rid = journal.reservation_id()
        book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id=rid)
        await store.add_volume(volume(), rid)
        await run_until_sent(journal, send, abandon)
    assert calls == ["send", "send", "send", "abandon"]  # replayed first, then the sweep
    assert journal.retries == 2
    assert usage(book) == (1, 0, 2, 0)  # committed; the dead gateway's extend given back


async def test_owed_ops_go_ahead_of_the_next_quota_call_or_after_a_linger(
    tmp_path: Path,
) -> None:
    """A durable commit waits for the gateway's next quota call and goes on the wire
    just before it (``kick``: the quota actor applies it first); with no call it goes
    after ``LINGER_S``."""
    wire: list[str] = []
    book = QuotaBook()

    def send(ops: tuple[QuotaOp, ...], earlier_answered: bool
             ) -> asyncio.Future[tuple[str, ...]]:
        wire.append("apply " + " ".join(op.op_id for op in ops))  # on the wire here
        answer: asyncio.Future[tuple[str, ...]] = asyncio.get_running_loop().create_future()
        answer.set_result(tuple(book.apply([journal_op(op) for op in ops])[0]))
        return answer

    async def abandon(incarnation: str, referenced: tuple[str, ...]) -> tuple[str, ...]:
        return ()

    async with open_gateway_store(tmp_path / "gateway.db") as store:
        journal: QuotaJournal = store.journal
        outbox = asyncio.create_task(journal.run(send, abandon, lambda: ()))
        try:
            await journal.wait_sent()  # the start's replay and sweep: nothing
            for n in (1, 2):
                rid = journal.reservation_id()
                book.reserve(P, {"volumes": 1, "gigabytes": 2}, NOW, reservation_id=rid)
                await store.add_volume(volume(f"vol-{n}"), rid)  # durable, with its row
                await asyncio.sleep(LINGER_S / 10)
                assert len(journal) == 1 and not any(rid in line for line in wire)
                journal.kick()  # a reserve is about to go
                wire.append("reserve")
                assert wire[-2:] == [f"apply {rid}", "reserve"]
                await asyncio.sleep(0)  # the outbox takes the answer
            assert usage(book) == (2, 0, 4, 0)
            rid = journal.reservation_id()
            book.reserve(P, {"volumes": 1}, NOW, reservation_id=rid)
            await store.add_volume(volume("vol-3", 1), rid)
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(5):
                while len(journal):
                    await asyncio.sleep(0.005)
            assert asyncio.get_running_loop().time() - started >= LINGER_S * 0.8
            assert wire[-1] == f"apply {rid}" and usage(book) == (3, 0, 4, 0)
        finally:
            outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox


# ---- files from before the journal -----------------------------------------------


async def test_a_quota_file_of_version_1_gains_the_finished_ops_and_default_class_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quota.db"
    old = sqlite3.connect(path)
    old.executescript(quota_actor.SCHEMA.split("CREATE TABLE IF NOT EXISTS finished_ops")[0])
    old.execute("INSERT INTO quota_usages VALUES ('demo', 'volumes', 3, 0)")
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    db = Database(path, quota_actor.SCHEMA, version=quota_actor.SCHEMA_VERSION,
                  migrations=quota_actor.MIGRATIONS)
    await db.open()
    try:
        assert await db.fetchall("SELECT * FROM finished_ops") == []
        assert await db.fetchall("SELECT * FROM default_class_limits") == []
        assert await db.fetchall("SELECT in_use FROM quota_usages") == [(3,)]
        assert await db.fetchall("PRAGMA user_version") == [(quota_actor.SCHEMA_VERSION,)]
    finally:
        await db.close()


async def test_a_gateway_file_of_version_2_moves_what_ended_extends_owe_into_the_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE quota_journal")
    conn.executemany("INSERT INTO pending_extends (volume_id, reservation_id, outcome) "
                     "VALUES (?, ?, ?)",
                     [("vol-a", "r-a", "commit"), ("vol-b", "r-b", ""),
                      ("vol-c", "r-c", "rollback")])
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    store = GatewayStore(path, "NORMAL")
    await store.open()
    try:
        await store.load_volumes({})
        assert [(op.kind, op.reservation_id) for op in store.journal.owed()] == [
            ("commit", "r-a"), ("rollback", "r-c")]
        assert (store.extends, store.extend_sizes) == ({"vol-b": "r-b"}, {})
        assert await store.db.fetchall("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    finally:
        await store.db.close()


def test_the_rollback_of_a_reservation_never_made_refuses_it_should_it_arrive_late() -> None:
    """The gateway gave up on a reserve (no answer) and owes its rollback by id."""
    book = QuotaBook()
    assert book.apply([JournalOp("rollback", "g1.late", "g1.late", P)], NOW)[0] == ["done"]
    with pytest.raises(QuotaError, match="already rolled back"):
        book.reserve(P, {"volumes": 1}, NOW, reservation_id="g1.late")
    assert usage(book) == (0, 0, 0, 0)
    assert restarted(book).apply([JournalOp("rollback", "g1.late", "g1.late", P)],
                                 NOW)[0] == ["repeat"]


async def _quota_actor(tmp_path: Path) -> quota_actor.QuotaActor:
    actor = quota_actor.QuotaActor(make_config(tmp_path))
    await actor.db.open()
    await actor._load()
    return actor


def _asked(op: str, body: object, project: str = "p1") -> Request:
    env = Envelope("req", 1, op, None, Context(project, project))
    return Request(env, body, cast(Any, None), b"")


def _answered(answer: Any) -> asyncio.Future[Any]:
    """A handler's answer as a future: a plain handler's is done at once."""
    if asyncio.iscoroutine(answer):
        return asyncio.ensure_future(answer)
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    done.set_result(answer)
    return done


async def test_a_quota_show_waits_until_what_the_journal_applied_before_it_is_on_disk(
    tmp_path: Path,
) -> None:
    """The gateway's owed commit rides in one message with its next call, a show here;
    the show answers once the commit is in quota.db, never from memory ahead of it."""
    actor = await _quota_actor(tmp_path)
    try:
        reserved = actor.on_reserve(_asked("quota.reserve", QuotaReserve(
            "p1", {"volumes": 1, "gigabytes": 1}, "inc.1")))
        await actor.db.flush()
        assert reserved.committed.done()
        applied = actor.on_apply(_asked("quota.apply", QuotaApply((
            QuotaOp("commit", "commit:inc.1", "inc.1", "p1"),))))
        shown = _answered(actor.on_show(_asked("quota.show", QuotaShow("p1"))))
        await asyncio.sleep(0.05)
        assert not applied.committed.done()  # the commit is queued, not on disk
        assert not shown.done(), "the show answered before the commit was on disk"
        await actor.db.flush()
        view = await shown
        assert (view.in_use["volumes"], view.reserved["volumes"]) == (1, 0)
        with sqlite3.connect(tmp_path / "quota.db") as db:
            on_disk = db.execute("SELECT in_use, reserved FROM quota_usages WHERE "
                                 "project='p1' AND resource='volumes'").fetchone()
        assert on_disk == (1, 0)
    finally:
        await actor.db.close()


async def test_the_quota_actor_forgets_answered_ids_in_memory_and_in_its_file(
    tmp_path: Path,
) -> None:
    """``quota.apply``'s word reaches the book, and the expire round drops what it
    may from memory and from quota.db alike (``quota_keep_answered_s`` 0 here)."""
    actor = quota_actor.QuotaActor(replace(make_config(tmp_path), quota_keep_answered_s=0.0))
    await actor.db.open()
    await actor._load()
    flusher = asyncio.create_task(actor.db.flusher())
    gw = incarnation_of(time.time(), "a")
    try:
        for n, answered in ((1, False), (2, True)):
            rid = f"{gw}.{n}"
            actor.on_reserve(_asked("quota.reserve", QuotaReserve("p1", {"volumes": 1}, rid)))
            await actor.on_apply(_asked("quota.apply", QuotaApply(
                (QuotaOp("commit", rid, rid, "p1"),), answered, gw))).committed
            await asyncio.sleep(0.01)  # the next batch's time is later than this one's
            await actor._expire()
            assert actor.book.finished_count() == 1
        with sqlite3.connect(tmp_path / "quota.db") as db:
            assert db.execute("SELECT id FROM finished_ops").fetchall() == [(f"{gw}.2",)]
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await actor.db.close()

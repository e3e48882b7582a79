"""The actor shell on real sockets in one process: dispatch, AfterCommit, and the
lifecycle (stop order, a failed start, periodic jobs), with a real client."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from cinderblock.actors.runtime.actor import Actor, AfterCommit, Handler, Request
from cinderblock.actors.runtime.database import (
    Database,
    DatabaseDamaged,
    MemoryNotRestored,
    open_read_only,
)
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Empty, VolumeRef
from cinderblock.protocol.wire.errors import (
    Closed,
    InternalError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from tests.conftest import eventually


class Probe(Actor):
    """An actor whose handlers and hooks record what happened, in order."""

    name = "probe"
    heartbeat_s = 60.0
    stop_grace_s = 5.0

    def __init__(self, fail_start: bool = False) -> None:
        super().__init__(None)
        self.endpoint = ""
        self.fail_start = fail_start
        self.record: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.background_running = asyncio.Event()
        self.commit: asyncio.Future[None] | None = None
        self.links_open_at_stop: bool | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "ping": lambda req: Empty(),
            "volume.show": self.on_show,  # raises what the volume id says
            "volume.delete": self.on_slow,  # runs until released
            "quota.rollback_abandoned": self.on_commit,  # answers once ``commit`` resolves
        }

    async def on_start(self) -> None:
        self.router = self.bind("tcp://127.0.0.1:*", "probe")  # a free port
        self.endpoint = self.router.channel.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.spawn(self._forever())
        await self.background_running.wait()
        if self.fail_start:
            raise RuntimeError("the start failed")
        self.started.set()

    async def _forever(self) -> None:
        self.background_running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.record.append("background task cancelled")
            raise

    async def on_stop(self) -> None:
        self.links_open_at_stop = not self.router.channel.sock.closed
        self.record.append("on_stop")

    def on_show(self, req: Request) -> Empty:
        what = req.body.volume_id
        if what == "missing":
            raise NotFound("no such volume", {"volume_id": what})
        raise ValueError("a bug in the handler")

    async def on_slow(self, req: Request) -> Empty:
        self.record.append("handler started")
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.record.append("handler cancelled")
            raise
        self.record.append("handler finished")
        return Empty()

    def on_commit(self, req: Request) -> AfterCommit:
        self.commit = asyncio.get_running_loop().create_future()
        self.record.append("commit queued")
        return AfterCommit(self.commit, Empty())


async def running(actor: Actor) -> asyncio.Task[None]:
    task = asyncio.create_task(actor.run())
    assert isinstance(actor, Probe)
    waiting = asyncio.create_task(actor.started.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    return task


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    actor = Probe()
    task = await running(actor)
    try:
        yield actor
    finally:
        actor.release.set()
        actor.stop()
        await task


@pytest.fixture
async def client(probe: Probe) -> AsyncIterator[Client]:
    async with Client(probe.endpoint, timeout=5.0) as c:
        yield c


# ---- dispatch ----------------------------------------------------------------
async def test_a_request_gets_its_handlers_answer(client: Client) -> None:
    assert await client.call("ping", Empty()) == {}


async def test_an_op_the_actor_does_not_handle_is_refused_by_name(client: Client) -> None:
    with pytest.raises(InvalidInput, match=r"unknown op 'volume\.list' for the probe"):
        await client.call("volume.list", Empty())


async def test_a_body_that_does_not_fit_the_op_is_refused_naming_the_field(
    client: Client,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await client.call("volume.show", {"volume_id": 7})
    assert caught.value.details == {"field": "volume_id"}


async def test_a_handlers_error_crosses_with_its_code_and_a_bug_as_internal(
    client: Client,
) -> None:
    with pytest.raises(NotFound, match="no such volume"):
        await client.call("volume.show", VolumeRef("missing"))
    with pytest.raises(InternalError, match="a bug in the handler"):
        await client.call("volume.show", VolumeRef("buggy"))
    assert await client.call("ping", Empty()) == {}  # the actor lives on


async def test_after_commit_replies_only_once_the_write_is_committed(
    probe: Probe, client: Client,
) -> None:
    call = asyncio.create_task(client.call("quota.rollback_abandoned", {"incarnation": "i"}))
    await eventually(lambda: probe.commit is not None)
    assert await client.call("ping", Empty()) == {}  # a later request is answered first
    assert not call.done()
    assert probe.commit is not None
    probe.commit.set_result(None)
    assert await call == {}


async def test_after_commit_whose_write_failed_answers_an_internal_error(
    probe: Probe, client: Client,
) -> None:
    call = asyncio.create_task(client.call("quota.rollback_abandoned", {"incarnation": "i"}))
    await eventually(lambda: probe.commit is not None)
    assert probe.commit is not None
    probe.commit.set_exception(OSError("disk full"))
    with pytest.raises(InternalError, match="was not saved: disk full"):
        await call


# ---- lifecycle ------------------------------------------------------------------
async def test_on_stop_runs_after_the_running_handler_finished_and_the_sockets_closed(
) -> None:
    actor = Probe()
    task = await running(actor)
    async with Client(actor.endpoint, timeout=5.0) as c:
        slow = asyncio.create_task(c.call("volume.delete", {"volume_id": "v"}))
        await eventually(lambda: "handler started" in actor.record)
        actor.stop()
        with pytest.raises(Unavailable, match="the probe is stopping") as refused:
            await c.call("ping", Empty())
        assert type(refused.value) is Unavailable  # the peer went away: not our Closed
        assert "on_stop" not in actor.record
        actor.release.set()
        assert await slow == {}  # the running handler still answers
        await task
    assert actor.record == ["handler started", "handler finished",
                            "background task cancelled", "on_stop"]
    assert actor.links_open_at_stop is False


async def test_a_handler_still_running_after_the_grace_is_cancelled_before_on_stop(
) -> None:
    actor = Probe()
    actor.stop_grace_s = 0.05
    task = await running(actor)
    async with Client(actor.endpoint, timeout=5.0) as c:
        slow = asyncio.create_task(c.call("volume.delete", {"volume_id": "v"}))
        await eventually(lambda: "handler started" in actor.record)
        actor.stop()
        await task
        slow.cancel()
    *before, last = actor.record
    assert sorted(before) == ["background task cancelled", "handler cancelled",
                              "handler started"]
    assert last == "on_stop"


async def test_a_failed_start_closes_what_it_opened_and_raises() -> None:
    actor = Probe(fail_start=True)
    with pytest.raises(ExceptionGroup) as failed:
        await actor.run()
    assert failed.group_contains(RuntimeError, match="the start failed")
    assert actor.record == ["background task cancelled", "on_stop"]
    assert actor.links_open_at_stop is False


class Owner(Actor):
    """An actor that owns a database file and one of whose tasks fails."""

    name = "owner"
    heartbeat_s = 60.0

    def __init__(self, path: Path) -> None:
        super().__init__(None)
        self.db = Database(path, "CREATE TABLE IF NOT EXISTS t (k INTEGER);")

    def handlers(self) -> dict[str, Handler]:
        return {}

    def database(self) -> Database:
        return self.db

    async def on_start(self) -> None:
        await self.db.open()
        self.spawn(self.db.flusher())
        self.spawn(self._fails())

    async def _fails(self) -> None:
        await self.db.write("INSERT INTO t VALUES (1)")
        raise MemoryNotRestored("memory may differ from the file")

    async def on_stop(self) -> None:
        await self.db.close()


async def test_an_actor_stopped_by_a_failed_task_lets_go_of_its_database(
    tmp_path: Path,
) -> None:
    before = set(threading.enumerate())
    actor = Owner(tmp_path / "a.db")
    with pytest.raises(BaseExceptionGroup) as stopped:
        await asyncio.wait_for(actor.run(), 30)
    assert stopped.value.subgroup(MemoryNotRestored) is not None
    # aiosqlite's thread is gone (a process waits for it before it exits) ...
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5.0)  # told to stop by the close, it may still be returning
    assert set(threading.enumerate()) <= before
    # ... and so is the owner lock; what was committed is there
    again = Database(tmp_path / "a.db", "CREATE TABLE IF NOT EXISTS t (k INTEGER);")
    await again.open()
    try:
        assert await again.fetchall("SELECT k FROM t") == [(1,)]
    finally:
        await again.close()


class Reader(Actor):
    """An actor whose one handler reads its database file on a connection of its own."""

    name = "reader"
    heartbeat_s = 60.0

    def __init__(self, path: Path, periodic: bool = False) -> None:
        super().__init__(None)
        self.db = Database(path, "CREATE TABLE IF NOT EXISTS t (k TEXT, v INTEGER);")
        self.endpoint = ""
        self.started = asyncio.Event()
        self.periodic = periodic  # the same read as a periodic job, every 50 ms
        self.stopped_cleanly = False

    def handlers(self) -> dict[str, Handler]:
        return {"volume.show": self.on_show}

    def database(self) -> Database:
        return self.db

    async def on_start(self) -> None:
        await self.db.open()  # small: checked before the start
        self.spawn(self.db.flusher())
        router = self.bind("tcp://127.0.0.1:*", "reader")
        self.endpoint = router.channel.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if self.periodic:
            self.every(0.05, self.read)
        self.started.set()

    def on_show(self, req: Request) -> Empty:
        self.read()
        return Empty()

    def read(self) -> None:
        conn = open_read_only(self.db.path)
        try:
            conn.execute("SELECT sum(v) FROM t").fetchall()
        finally:
            conn.close()

    async def on_stop(self) -> None:
        self.stopped_cleanly = True  # a stop as on SIGTERM, not an abort
        await self.db.close()


R = TypeVar("R", bound=Reader)


def _file_with_rows(path: Path) -> None:
    made = sqlite3.connect(path)
    made.execute("CREATE TABLE t (k TEXT, v INTEGER)")
    made.executemany("INSERT INTO t VALUES (?, ?)", [("x" * 50, i) for i in range(2000)])
    made.commit()
    made.close()


def _damage_its_table(path: Path) -> None:
    """Garbage over pages 3-6 (the table's) of a file ``_file_with_rows`` made."""
    with open(path, "r+b") as f:
        f.seek(2 * 4096)
        f.write(bytes((i * 97 + 13) % 251 for i in range(4 * 4096)))


async def _stopped_by_damage(actor: Reader, task: asyncio.Task[None]) -> str:
    """What ``actor`` stopped with: ``DatabaseDamaged`` after a stop as on SIGTERM
    (``on_stop`` ran), the file marked."""
    with pytest.raises(DatabaseDamaged) as stopped:
        await asyncio.wait_for(task, 10)
    assert actor.stopped_cleanly
    assert actor.db.damaged_marker.read_text().startswith(
        f"{actor.db.path} is damaged (database disk")
    return str(stopped.value)


async def _running_over_rows(actor: R) -> tuple[R, asyncio.Task[None]]:
    """``actor`` running over a file ``_file_with_rows`` made at its database's path."""
    _file_with_rows(actor.db.path)
    task = asyncio.create_task(actor.run())
    await asyncio.wait_for(actor.started.wait(), 10)
    return actor, task


async def test_damage_a_request_meets_on_any_connection_stops_the_actor_and_marks_the_file(
    tmp_path: Path,
) -> None:
    actor, task = await _running_over_rows(Reader(tmp_path / "a.db"))
    assert actor.db.checked
    _damage_its_table(actor.db.path)  # damaged while the actor runs
    async with Client(actor.endpoint, timeout=5.0) as client:
        with pytest.raises(InternalError, match=r"volume\.show failed: database disk image "
                                                r"is malformed"):
            await client.call("volume.show", VolumeRef("v"))
    assert "found by volume.show" in await _stopped_by_damage(actor, task)


class ReaderAside(Reader):
    """The same read through its database (``Database.read_aside``), which says damage
    found as ``DatabaseDamaged``, whose text names the file's path."""

    async def on_show(self, req: Request) -> Empty:  # type: ignore[override]
        await self.db.read_aside("SELECT sum(v) FROM t")
        return Empty()


async def test_damage_met_through_the_database_tells_the_caller_without_the_files_path(
    tmp_path: Path,
) -> None:
    actor, task = await _running_over_rows(ReaderAside(tmp_path / "a.db"))
    _damage_its_table(actor.db.path)
    async with Client(actor.endpoint, timeout=5.0) as client:
        with pytest.raises(InternalError) as caught:
            await client.call("volume.show", VolumeRef("v"))
    assert caught.value.message == ("volume.show failed: the reader's database is damaged; "
                                    "the reader stops until a start finds it whole")
    said = await _stopped_by_damage(actor, task)  # the log and the exit say where
    assert f"{actor.db.path} is damaged" in said and "found while reading it" in said


async def test_damage_a_periodic_job_meets_stops_the_actor_and_marks_the_file(
    tmp_path: Path,
) -> None:
    actor, task = await _running_over_rows(Reader(tmp_path / "a.db", periodic=True))
    _damage_its_table(actor.db.path)
    assert "found by the periodic Reader.read" in await _stopped_by_damage(actor, task)


async def test_a_periodic_job_that_raises_is_logged_and_runs_again(
    probe: Probe, client: Client, caplog: pytest.LogCaptureFixture,
) -> None:
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("first tick breaks")

    probe.every(0.01, tick)
    await eventually(lambda: len(ticks) >= 3)
    assert "first tick breaks" in caplog.text
    assert await client.call("ping", Empty()) == {}


async def test_a_closed_client_fails_its_pending_calls_as_closed_by_us(probe: Probe) -> None:
    c = Client(probe.endpoint, timeout=5.0)
    slow = asyncio.create_task(c.call("volume.delete", {"volume_id": "v"}))
    await eventually(lambda: "handler started" in probe.record)
    c.close()
    with pytest.raises(Closed, match="the client was closed"):
        await slow

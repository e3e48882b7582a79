"""The gateway's attachment flows, driven directly: no sockets, no processes.

The gateway's real ``Attachments`` runs over a real ``GatewayStore`` (SQLite in
a temporary directory). Around it, a stand-in gateway records the events and
volume-status pushes, and a stand-in node keeps an export table and can be
told to fail, which is all the flows ask of the node.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.attachment_store import AttachmentStore
from cinderblock.actors.gateway.attachments import Attachments
from cinderblock.actors.gateway.volume_store import INSERT_VOLUME, GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.actors.runtime.database import WriteFailed
from cinderblock.protocol.messages.attachments import (
    Attachment,
    AttachmentCreate,
    AttachmentListRequest,
    AttachmentRef,
    AttachmentUpdate,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidInput,
    InvalidState,
    NotFound,
    PeerGone,
    Timeout,
)
from tests.conftest import EventRecorder, open_gateway_store

PLAIN = VolumeType("type-plain", "plain")
MULTI = VolumeType("type-multi", "multi", extra_specs={"multiattach": "<is> True"})
CONNECTOR = {"host": "compute-1", "ip": "192.0.2.1"}


class StubNode:
    """What the gateway's ROUTER reaches: node.export / node.unexport."""

    def __init__(self) -> None:
        self.exports: dict[str, bool] = {}
        self.calls: list[tuple[str, bytes]] = []
        self.failure: CinderblockError | None = None
        self.unreachable_for = 0  # calls refused as if the node were reconnecting

    async def call(self, op: str, body: Any, ctx: Any = None, to: bytes = b"",
                   timeout: float = 0.0) -> Any:
        self.calls.append((op, to))
        if self.unreachable_for > 0:
            self.unreachable_for -= 1
            raise PeerGone("peer 'node-1' is not connected", {"peer": "node-1"})
        if self.failure is not None:
            raise self.failure
        name = f"volume-{body.volume_id}.{body.attachment_id}"
        if op == "node.export":
            self.exports[name] = body.readonly
            return {"host": "127.0.0.1", "port": 10809, "export_name": name, "ca_cert": "CA",
                    "client_cert": f"cert of {name}", "client_key": f"key of {name}"}
        self.exports.pop(name, None)
        return {}


class StubGateway:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.events = EventRecorder()
        self.router = StubNode()
        self.pushed: list[tuple[str, str]] = []
        self.attachments = Attachments(cast(Any, self))

    def publish(self, rec: VolumeRecord) -> None:
        self.pushed.append((rec.id, rec.status.value))

    async def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context) -> None:
        await flow.run(c, self.events, volume_id, project_id=ctx.project_id)

    def add_volume(self, vid: str, vtype: VolumeType = PLAIN, project: str = "p1",
                   status: VolumeStatus = VolumeStatus.AVAILABLE) -> VolumeRecord:
        rec = VolumeRecord(id=vid, project_id=project, user_id=project, size=1, status=status,
                           volume_type=vtype, availability_zone="nova", host="node-1@file")
        self.store.volumes.keep(rec)
        self.store.db.write(INSERT_VOLUME, rec.row())  # its row, with the next batch
        return rec

    async def ask(self, handler: str, body: Any, project: str = "p1") -> Any:
        env = Envelope("req", 1, handler, None, Context(project, project))
        answer = getattr(self.attachments, handler)(Request(env, body, cast(Any, None), b""))
        return await answer if asyncio.iscoroutine(answer) else answer

    async def create(self, vid: str, **kw: Any) -> Attachment:
        return cast(Attachment, await self.ask("on_create", AttachmentCreate(vid, **kw)))

    async def update(self, aid: str, connector: Any = CONNECTOR) -> Attachment:
        return cast(Attachment, await self.ask("on_update", AttachmentUpdate(aid, connector)))

    async def complete(self, aid: str) -> Attachment:
        return cast(Attachment, await self.ask("on_complete", AttachmentRef(aid)))

    async def delete(self, aid: str) -> Attachment:
        return cast(Attachment, await self.ask("on_delete", AttachmentRef(aid)))

    def status(self, vid: str) -> str:
        return self.store.volumes[vid].status.value


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[StubGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        stub = StubGateway(store)
        await stub.attachments.open()
        yield stub


async def test_create_update_complete_delete_walks_the_volume_through_cinders_statuses(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1", instance_id="vm-1")
    assert (att.status, gw.status("v1")) == ("reserved", "reserved")

    att = await gw.update(att.id)
    assert (att.status, gw.status("v1"), att.attach_mode) == ("attaching", "attaching", "rw")
    name = f"volume-v1.{att.id}"
    assert att.connection_info == {"driver_volume_type": "nbd", "data": {
        "host": "127.0.0.1", "port": 10809, "export_name": name, "tls": True, "ca_cert": "CA",
        "client_cert": f"cert of {name}", "client_key": f"key of {name}",
        "qos_specs": None, "access_mode": "rw", "encrypted": False}}
    assert gw.router.exports == {name: False} and gw.router.calls[0] == ("node.export", b"node-1")

    att = await gw.complete(att.id)
    assert (att.status, gw.status("v1")) == ("attached", "in-use")
    assert att.attached_at is not None

    att = await gw.delete(att.id)
    assert (att.status, gw.status("v1")) == ("detached", "available")
    assert gw.router.exports == {}
    assert gw.pushed == [("v1", s) for s in ("reserved", "attaching", "in-use", "detaching",
                                             "available")]
    assert len(gw.attachments.attachments) == 0 and gw.attachments.attachments.get(att.id) is None


async def test_each_flow_publishes_its_tasks_in_order(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    await gw.update(att.id)
    await gw.complete(att.id)
    await gw.delete(att.id)

    def ran(flow: str) -> list[str]:
        return [t for t, state in gw.events.tasks(flow) if state == "SUCCESS"]

    assert ran("attachment_create_api") == [
        "ExtractAttachmentRequestTask", "ReserveVolumeTask", "AttachmentEntryCreateTask"]
    assert ran("attachment_update_api") == [
        "ExtractAttachmentTask", "ExtractConnectorTask", "AttachmentAttachingTask",
        "InitializeConnectionTask", "AttachmentConnectionSaveTask"]
    assert ran("attachment_complete_api") == ["ExtractAttachmentTask", "AttachmentCompleteTask"]
    assert ran("attachment_delete_api") == [
        "ExtractAttachmentTask", "AttachmentDetachingTask", "TerminateConnectionTask",
        "AttachmentEntryDestroyTask"]


async def test_a_second_attachment_of_a_plain_volume_is_refused_and_changes_nothing(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1")
    first = await gw.create("v1")

    with pytest.raises(InvalidState, match="does not allow multiattach"):
        await gw.create("v1")

    assert [a.id for a in gw.attachments.attachments.of_volume("v1")] == [first.id]
    assert len(gw.attachments.attachments) == 1
    assert gw.status("v1") == "reserved"


async def test_two_concurrent_creates_on_a_plain_volume_make_exactly_one_attachment(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1")
    results = await asyncio.gather(gw.create("v1"), gw.create("v1"), return_exceptions=True)

    assert sum(isinstance(r, Attachment) for r in results) == 1
    assert sum(isinstance(r, InvalidState) for r in results) == 1
    assert len(gw.attachments.attachments) == 1
    assert len(gw.attachments.attachments.of_volume("v1")) == 1


async def test_a_multiattach_volume_takes_two_and_stays_in_use_until_the_last_goes(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1", MULTI)
    one, two = await gw.create("v1"), await gw.create("v1")
    for att in (one, two):
        await gw.update(att.id)
        await gw.complete(att.id)
    assert gw.status("v1") == "in-use" and len(gw.router.exports) == 2

    await gw.delete(one.id)
    assert gw.status("v1") == "in-use" and len(gw.router.exports) == 1
    await gw.delete(two.id)
    assert gw.status("v1") == "available" and gw.router.exports == {}


async def test_complete_before_update_is_refused_and_changes_nothing(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")

    with pytest.raises(InvalidState, match="update it with a connector before completing"):
        await gw.complete(att.id)

    assert gw.attachments.attachments[att.id].status.value == "reserved"
    assert gw.status("v1") == "reserved"


@pytest.mark.parametrize("connector", [["host"], {"host": "h", "mode": "rwx"},
                                       {"host": "h" * 300}, {"host": "h", "shell": "rm"}])
async def test_a_bad_connector_is_refused_before_anything_changes(
    gw: StubGateway, connector: Any
) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")

    with pytest.raises(InvalidInput, match="connector"):
        await gw.update(att.id, connector)

    assert gw.attachments.attachments[att.id].status.value == "reserved"
    assert gw.status("v1") == "reserved" and gw.router.calls == []


async def test_updating_twice_is_refused(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    await gw.update(att.id)

    with pytest.raises(InvalidState, match="only a reserved attachment takes a connector"):
        await gw.update(att.id)
    assert len(gw.router.exports) == 1


async def test_a_node_that_cannot_export_reverts_the_update_newest_first(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    gw.router.failure = NotFound("volume v1 is not on this node")

    with pytest.raises(NotFound):
        await gw.update(att.id)

    rec = gw.attachments.attachments[att.id]
    assert (rec.status.value, rec.connection_info, gw.status("v1")) == ("reserved", {}, "reserved")
    reverted = [t for t, s in gw.events.tasks("attachment_update_api") if s == "REVERTED"]
    assert reverted == ["InitializeConnectionTask", "AttachmentAttachingTask",
                        "ExtractConnectorTask", "ExtractAttachmentTask"]
    assert [op for op, _ in gw.router.calls] == ["node.export"]  # nothing to unexport

    gw.router.failure = None
    assert (await gw.update(att.id)).status == "attaching"  # and it can be tried again


async def test_an_export_that_timed_out_is_removed_by_the_revert(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    gw.router.failure = Timeout("no reply to node.export within 15s")

    with pytest.raises(Timeout):
        await gw.update(att.id)

    assert [op for op, _ in gw.router.calls] == ["node.export", "node.unexport"]


async def test_a_delete_the_node_cannot_do_leaves_error_detaching_and_can_be_repeated(
    gw: StubGateway,
) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    await gw.update(att.id)
    await gw.complete(att.id)
    gw.router.failure = CinderblockError("node-1 is gone")

    with pytest.raises(CinderblockError, match="node-1 is gone"):
        await gw.delete(att.id)
    rec = gw.attachments.attachments[att.id]
    assert (rec.status.value, gw.status("v1")) == ("error_detaching", "in-use")

    gw.router.failure = None
    assert (await gw.delete(att.id)).status == "detached"
    assert gw.status("v1") == "available" and gw.router.exports == {}


async def test_deleting_a_reserved_attachment_does_not_bother_the_node(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    gw.router.failure = CinderblockError("the node must not be asked")

    await gw.delete(att.id)

    assert gw.status("v1") == "available" and gw.router.calls == []


@pytest.mark.parametrize("status", [VolumeStatus.CREATING, VolumeStatus.ERROR,
                                    VolumeStatus.DELETING, VolumeStatus.EXTENDING])
async def test_only_an_available_volume_can_be_attached(
    gw: StubGateway, status: VolumeStatus
) -> None:
    gw.add_volume("v1", status=status)
    with pytest.raises(InvalidState, match=f"is {status.value}; it must be available"):
        await gw.create("v1")
    assert len(gw.attachments.attachments) == 0 and gw.status("v1") == status.value


async def test_another_projects_volumes_and_attachments_cannot_be_seen(gw: StubGateway) -> None:
    gw.add_volume("v1", project="p1")
    att = await gw.create("v1")

    with pytest.raises(NotFound):
        await gw.ask("on_create", AttachmentCreate("v1"), project="p2")
    with pytest.raises(NotFound):
        await gw.ask("on_delete", AttachmentRef(att.id), project="p2")
    mine = await gw.ask("on_list", AttachmentListRequest(), project="p1")
    theirs = await gw.ask("on_list", AttachmentListRequest(), project="p2")
    assert [a.id for a in mine.attachments] == [att.id] and theirs.attachments == ()


def _unlisted(project: str | None, oldest_first: bool, below: Any) -> Any:
    raise AssertionError("every attachment was gone through")


async def test_a_list_for_some_volumes_finds_theirs_through_them_and_no_others(
    gw: StubGateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = {}
    for vid, project in (("v1", "p1"), ("v2", "p1"), ("v3", "p1"), ("v4", "p2")):
        gw.add_volume(vid, project=project)
        made[vid] = (await gw.create(vid) if project == "p1" else
                     await gw.ask("on_create", AttachmentCreate(vid), project="p2")).id
    monkeypatch.setattr(gw.attachments.attachments, "listing", _unlisted)

    some = await gw.ask("on_list", AttachmentListRequest(volume_ids=("v3", "v1", "v4", "v1")))
    one = await gw.ask("on_list", AttachmentListRequest(volume_id="v2"))

    assert [a.id for a in some.attachments] == [made["v1"], made["v3"]]  # p2's is not p1's
    assert [a.id for a in one.attachments] == [made["v2"]]
    newest = await gw.ask("on_list", AttachmentListRequest(volume_ids=("v3", "v1"),
                                                           sort_dir="desc"))
    assert [a.id for a in newest.attachments] == [made["v3"], made["v1"]]
    with pytest.raises(InvalidInput, match="sort_dir 'size'"):
        await gw.ask("on_list", AttachmentListRequest(sort_dir="size"))
    with pytest.raises(InvalidInput, match="not both"):
        await gw.ask("on_list", AttachmentListRequest(volume_id="v2", volume_ids=("v1",)))
    with pytest.raises(InvalidInput, match="at most 200 volumes, not 201"):
        await gw.ask("on_list", AttachmentListRequest(volume_ids=("v1",) * 201))


async def test_every_attachment_is_listed_a_page_at_a_time_newest_first(
    gw: StubGateway,
) -> None:
    made = []
    for n in range(5):
        gw.add_volume(f"v{n}")
        made.append((await gw.create(f"v{n}")).id)
    gw.add_volume("theirs", project="p2")
    theirs = (await gw.ask("on_create", AttachmentCreate("theirs"), project="p2")).id
    await gw.delete(made[2])  # a reserved one is deleted at once: no longer listed

    first = await gw.ask("on_list", AttachmentListRequest(limit=2))
    second = await gw.ask("on_list", AttachmentListRequest(limit=2, marker=first.next_marker))
    everyone = await gw.ask("on_list", AttachmentListRequest(all_projects=True), project="p1")

    assert [a.id for a in first.attachments] == [made[4], made[3]]
    assert first.next_marker == made[3]
    assert [a.id for a in second.attachments] == [made[1], made[0]]
    assert second.next_marker is None
    assert [a.id for a in everyone.attachments] == [made[4], made[3], made[1], made[0]], \
        "all_projects is for admins"
    with pytest.raises(InvalidInput, match="not found"):
        await gw.ask("on_list", AttachmentListRequest(marker=theirs))  # another project's
    with pytest.raises(InvalidInput, match="listed whole"):
        await gw.ask("on_list", AttachmentListRequest(volume_id="v1", limit=1))


async def test_records_survive_a_restart_of_the_gateway(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1", instance_id="vm-1", mode="ro")
    att = await gw.update(att.id)
    await gw.store.db.flush()

    again = AttachmentStore(gw.store.db, gw.store.read_only)  # a restart's: read from rows

    assert again[att.id].view() == gw.attachments.attachments[att.id].view()
    assert again[att.id].attach_mode == "ro"


async def test_a_restart_in_the_middle_of_a_delete_leaves_error_detaching_and_in_use(
    gw: StubGateway,
) -> None:
    vol = gw.add_volume("v1")
    att = await gw.create("v1")
    await gw.update(att.id)
    await gw.complete(att.id)
    rec = gw.attachments.attachments[att.id]
    rec.move(AttachmentStatus.DETACHING)  # as AttachmentDetachingTask left it
    vol.status = VolumeStatus.DETACHING
    await gw.attachments.attachments.save(rec)
    await gw.store.save_status(vol)  # both rows as the task writes them

    restarted = Attachments(cast(Any, gw))
    await restarted.open()

    assert restarted.attachments[att.id].status is AttachmentStatus.ERROR_DETACHING
    assert vol.status is VolumeStatus.IN_USE
    gw.attachments = restarted
    assert (await gw.delete(att.id)).status == "detached"
    assert gw.status("v1") == "available"


async def test_a_start_reads_the_records_only_of_volumes_their_attachments_contradict(
    gw: StubGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for vid in ("v1", "v2"):
        gw.add_volume(vid)
        att = await gw.create(vid)
        await gw.update(att.id)
        await gw.complete(att.id)
    gw.add_volume("v3", status=VolumeStatus.IN_USE)  # says in use, has no attachment
    await gw.store.db.flush()
    restart = tmp_path / "restart"  # the files as a restart finds them, nothing in memory
    restart.mkdir()
    for name in ("gateway.db", "gateway.db-wal"):
        shutil.copy(tmp_path / name, restart / name)

    async with open_gateway_store(restart / "gateway.db") as store:
        restarted = StubGateway(store)
        read: list[str] = []
        get = store.volumes.get

        def counted_get(volume_id: str) -> VolumeRecord | None:
            read.append(volume_id)
            return get(volume_id)

        monkeypatch.setattr(store.volumes, "get", counted_get)
        await restarted.attachments.open()

        assert read == ["v3"], "a volume in use as its attachments say is not read"
        assert [restarted.status(v) for v in ("v1", "v2", "v3")] == [
            "in-use", "in-use", "available"]


async def test_a_node_that_is_reconnecting_is_asked_again(gw: StubGateway) -> None:
    gw.add_volume("v1")
    att = await gw.create("v1")
    gw.router.unreachable_for = 3

    assert (await gw.update(att.id)).status == "attaching"
    assert [op for op, _ in gw.router.calls] == ["node.export"] * 4


async def test_a_reservation_is_committed_with_its_entry_so_a_full_disk_leaves_none(
    gw: StubGateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The volume's ``reserved`` and its attachment's row are one commit: the disk filling
    up then fails both, and a revert has nothing left to write (it had written the
    reservation first, then failed to undo it on the same full disk)."""
    vol = gw.add_volume("v1")
    await gw.store.save_status(vol)  # its row committed
    real = gw.store.db.write
    writes = 0

    def full_after_one(sql: str, params: Any = ()) -> asyncio.Future[None]:
        nonlocal writes
        done = real(sql, params)
        writes += 1
        if writes > 1:  # from the second write on, each batch fails (a clashing row)
            clash = real(INSERT_VOLUME, vol.row())
            clash.add_done_callback(lambda f: f.exception())
        return done

    monkeypatch.setattr(gw.store.db, "write", full_after_one)
    with pytest.raises(WriteFailed):
        await gw.create("v1")
    monkeypatch.undo()

    row = gw.store.read_only().execute("SELECT status FROM volumes WHERE id='v1'").fetchone()
    assert (row, gw.status("v1")) == (("available",), "available")
    assert gw.attachments.attachments.of_volume("v1") == []
    assert (await gw.create("v1")).status == "reserved" and gw.status("v1") == "reserved"


async def test_a_create_retried_with_its_request_id_is_answered_the_first_attachment(
    gw: StubGateway, tmp_path: Path,
) -> None:
    gw.add_volume("v1", MULTI)

    async def create(request_id: str, instance: str = "vm-1") -> Attachment:
        env = Envelope("req", 1, "attachment.create", None,
                       Context("p1", "p1", ("member",), request_id))
        made = await gw.attachments.on_create(
            Request(env, AttachmentCreate("v1", instance), cast(Any, None), b""))
        return made

    first, *retries = await asyncio.gather(*(create("req-a") for _ in range(3)))
    assert {a.id for a in retries} == {first.id}  # in flight: they waited for the first
    assert len(gw.attachments.attachments.of_volume("v1")) == 1
    with pytest.raises(InvalidInput, match="already used for a different request"):
        await create("req-a", "vm-2")
    other = await create("req-b")  # another request: another attachment (multiattach)
    assert other.id != first.id
    assert (await create("")).id not in (first.id, other.id)  # no request id: each its own
    # the file names it: a gateway started over it answers the same
    reopened = AttachmentStore(gw.store.db, gw.store.read_only)
    assert reopened.made_by("p1", "req-a") is not None
    assert reopened.made_by("p1", "req-a")[0] == first.id  # type: ignore[index]
    assert reopened.made_by("p2", "req-a") is None  # another project's id is its own

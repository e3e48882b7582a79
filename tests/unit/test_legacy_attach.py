"""Cinder's attach actions from before attachments, driven directly: what they choose
(plain code) and their flows over the gateway's real ``Attachments`` and store, with
the stand-in gateway and node of ``test_attachment_flow``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.attachment_store import AttachmentRecord
from cinderblock.actors.gateway.legacy_attach import (
    attached_already,
    check_attach,
    detach_target,
    waiting_connection,
)
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import (
    Attachment,
    AttachmentCreate,
    AttachmentListRequest,
    AttachmentRef,
    VolumeAttach,
    VolumeConnection,
    VolumeDetach,
)
from cinderblock.protocol.messages.volumes import VolumeRef
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, Unavailable
from tests.conftest import open_gateway_store
from tests.unit.test_attachment_flow import CONNECTOR, MULTI, StubGateway

A = AttachmentStatus
INSTANCE = "0c4bd2d1-7a3f-4d4e-8f43-2b1d3e9a5c10"


def record(aid: str, status: AttachmentStatus, host: str | None = "h1",
           instance: str | None = None, connected: bool = True) -> AttachmentRecord:
    return AttachmentRecord(
        id=aid, volume_id="v1", project_id="p1", status=status, instance_id=instance,
        connector={"host": host} if host else {},
        connection_info={"driver_volume_type": "nbd"} if connected else {})


# ---- the choices ------------------------------------------------------------------------
def test_an_attach_takes_the_one_connection_waiting_or_the_named_hosts() -> None:
    one, two = record("a1", A.ATTACHING, "h1"), record("a2", A.ATTACHING, "h2")
    v3 = record("a3", A.ATTACHING, "h1", instance="vm-9")  # a v3 update in progress
    bare = record("a4", A.ATTACHING, "h1", connected=False)
    assert waiting_connection([one, v3, bare], "v1", None) is one
    assert waiting_connection([one, two], "v1", "h2") is two
    assert waiting_connection([one, two], "v1", "h3") is None
    with pytest.raises(InvalidInput, match=r"2 connections waiting .*hosts h1, h2"):
        waiting_connection([one, two], "v1", None)
    assert waiting_connection([record("a5", A.ATTACHED)], "v1", None) is None


def test_an_attach_of_what_is_attached_already_is_answered_it_again() -> None:
    mine = record("a1", A.ATTACHED, "h1", instance="vm-1")
    hosts = record("a2", A.ATTACHED, "bm-1")
    assert attached_already([mine, hosts], "vm-1", None) is mine
    assert attached_already([mine, hosts], None, "bm-1") is hosts
    assert attached_already([mine, hosts], "vm-2", "bm-1") is None
    assert attached_already([record("a3", A.ATTACHING, instance="vm-1")], "vm-1", None) is None


def test_a_detach_takes_the_attachment_named_or_the_only_one() -> None:
    one, two = record("a1", A.ATTACHED), record("a2", A.ATTACHED)
    assert detach_target([one, two], "v1", "a2") is two
    assert detach_target([one], "v1", None) is one
    assert detach_target([], "v1", None) is None
    with pytest.raises(InvalidInput, match="More than one attachment"):
        detach_target([one, two], "v1", None)
    with pytest.raises(InvalidInput, match="VolumeAttachmentNotFound"):
        detach_target([one], "v1", "a9")


@pytest.mark.parametrize(("body", "word"), [
    (VolumeAttach("v1", "", INSTANCE), "mountpoint"),
    (VolumeAttach("v1", "x" * 256, INSTANCE), "mountpoint"),
    (VolumeAttach("v1", "/dev/vdb"), "instance_uuid"),
    (VolumeAttach("v1", "/dev/vdb", "vm-1"), "UUID"),
    (VolumeAttach("v1", "/dev/vdb", None, ""), "host_name"),
    (VolumeAttach("v1", "/dev/vdb", None, "h" * 256), "host_name"),
    (VolumeAttach("v1", "/dev/vdb", INSTANCE, mode="wr"), "mode"),
])
async def test_a_bad_attach_is_refused_saying_what_is_wrong(body: VolumeAttach, word: str,
                                                             gw: StubGateway) -> None:
    vol = gw.add_volume("v1")
    with pytest.raises(InvalidInput, match=word):
        check_attach(body, vol)
    check_attach(VolumeAttach("v1", "/dev/vdb", INSTANCE), vol)
    vol.readonly = True
    with pytest.raises(InvalidInput, match="Invalid attaching mode 'rw'"):
        check_attach(VolumeAttach("v1", "/dev/vdb", INSTANCE), vol)
    check_attach(VolumeAttach("v1", "/dev/vdb", INSTANCE, mode="ro"), vol)


# ---- the flows ------------------------------------------------------------------------------
@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[StubGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        stub = StubGateway(store)
        await stub.attachments.open()
        yield stub


async def act(gw: StubGateway, op: str, body: Any) -> Any:
    handler = gw.attachments.handlers()[op]
    env = Envelope("req", 1, op, None, Context("p1", "p1"))
    answer = handler(Request(env, body, cast(Any, None), b""))
    return await answer if asyncio.iscoroutine(answer) else answer


async def test_the_old_way_in_and_out_moves_the_volume_as_cinders(gw: StubGateway) -> None:
    gw.add_volume("v1")
    await act(gw, "volume.reserve", VolumeRef("v1"))
    att: Attachment = await act(gw, "volume.initialize_connection",
                                VolumeConnection("v1", CONNECTOR))
    assert (att.status, gw.status("v1")) == ("attaching", "attaching")
    att = await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE))
    assert (att.status, gw.status("v1")) == ("attached", "in-use")
    await act(gw, "volume.begin_detaching", VolumeRef("v1"))
    await act(gw, "volume.terminate_connection", VolumeConnection("v1", CONNECTOR))
    assert gw.router.exports == {}
    await act(gw, "volume.detach", VolumeDetach("v1"))
    assert gw.pushed == [("v1", s) for s in ("attaching", "in-use", "detaching", "available")]
    ran = [t for t, state in gw.events.tasks("volume_initialize_connection")
           if state == "SUCCESS"]
    assert ran == ["LegacyReserveTask", "AttachmentEntryCreateTask", "AttachmentAttachingTask",
                   "InitializeConnectionTask", "AttachmentConnectionSaveTask"]


@pytest.mark.parametrize("reserved", [True, False])
async def test_a_connection_the_node_refuses_leaves_the_volume_as_it_was(
    gw: StubGateway, reserved: bool,
) -> None:
    gw.add_volume("v1")
    if reserved:
        await act(gw, "volume.reserve", VolumeRef("v1"))
    before = gw.status("v1")
    gw.router.failure = Unavailable("backend down")
    with pytest.raises(Unavailable):
        await act(gw, "volume.initialize_connection", VolumeConnection("v1", CONNECTOR))
    assert gw.status("v1") == before == ("attaching" if reserved else "available")
    assert gw.attachments.attachments.of_volume("v1") == []
    assert gw.router.exports == {}
    gw.router.failure = None
    att: Attachment = await act(gw, "volume.initialize_connection",
                                VolumeConnection("v1", CONNECTOR))
    assert att.status == "attaching"


async def test_one_host_asking_twice_at_once_gets_one_connection(gw: StubGateway) -> None:
    gw.add_volume("v1", MULTI)
    asked = [act(gw, "volume.initialize_connection", VolumeConnection("v1", CONNECTOR))
             for _ in range(3)]
    got = await asyncio.gather(*asked)
    assert len({a.id for a in got}) == 1 and len(gw.router.exports) == 1
    other = await act(gw, "volume.initialize_connection",
                      VolumeConnection("v1", {"host": "compute-2"}))
    assert other.id != got[0].id and len(gw.router.exports) == 2
    with pytest.raises(InvalidInput, match="name the host"):
        await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE))
    att = await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE,
                                                      host_name="compute-2"))
    assert att.id == other.id


async def test_a_volume_busy_or_attached_is_not_reserved(gw: StubGateway) -> None:
    gw.add_volume("v1")
    await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE))
    with pytest.raises(InvalidState, match="must be available to reserve, but the status "
                                           "is in-use"):
        await act(gw, "volume.reserve", VolumeRef("v1"))
    with pytest.raises(InvalidState, match="does not allow multiattach"):
        await act(gw, "volume.initialize_connection",
                  VolumeConnection("v1", {"host": "elsewhere"}))
    assert gw.status("v1") == "in-use" and len(gw.attachments.attachments.of_volume("v1")) == 1


async def test_an_attachment_an_admin_makes_belongs_to_the_volumes_project(
    gw: StubGateway,
) -> None:
    """As Cinder's (its attachments are the volume's): the project sees, and may end, an
    attachment an admin made of its volume, the new way or the old."""
    gw.add_volume("v1", project="p1")
    gw.add_volume("v2", project="p1")
    admin = Context("ops", "ops", ("admin",))

    async def as_admin(op: str, body: Any) -> Any:
        env = Envelope("req", 1, op, None, admin)
        return await gw.attachments.handlers()[op](Request(env, body, cast(Any, None), b""))

    made = [await as_admin("attachment.create", AttachmentCreate("v1", "vm-1")),
            await as_admin("volume.attach", VolumeAttach("v2", "/dev/vdb", INSTANCE))]
    assert [a.project_id for a in made] == ["p1", "p1"]
    listed = await act(gw, "attachment.list", AttachmentListRequest())
    assert {a.id for a in listed.attachments} == {a.id for a in made}
    await act(gw, "attachment.delete", AttachmentRef(made[0].id))
    await act(gw, "volume.detach", VolumeDetach("v2"))
    assert (gw.status("v1"), gw.status("v2")) == ("available", "available")


async def test_a_volume_begun_detaching_follows_its_other_attachments_when_the_last_goes(
    gw: StubGateway,
) -> None:
    """Found by ``test_attachment_machine``: a multiattach volume with one attachment
    attached and another reserved, begun detaching; the attached one's delete had
    removed it and then failed on the volume's move (detaching → reserved)."""
    gw.add_volume("v1", MULTI)
    reserved = await act(gw, "attachment.create", AttachmentCreate("v1", "vm-1"))
    attached = await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE))
    await act(gw, "volume.begin_detaching", VolumeRef("v1"))
    await act(gw, "attachment.delete", AttachmentRef(attached.id))
    assert gw.status("v1") == "reserved"
    assert [a.id for a in gw.attachments.attachments.of_volume("v1")] == [reserved.id]


async def test_an_attachment_deleted_while_an_in_use_extend_holds_the_volume_leaves_it_so(
    gw: StubGateway,
) -> None:
    """The extend's end sets the volume's status; the delete does not fail after the
    attachment is gone (extending → reserved is not a move)."""
    vol = gw.add_volume("v1", MULTI)
    reserved = await act(gw, "attachment.create", AttachmentCreate("v1", "vm-1"))
    attached = await act(gw, "volume.attach", VolumeAttach("v1", "/dev/vdb", INSTANCE))
    vol.status = VolumeStatus.EXTENDING  # as an in-use extend (3.42) leaves it meanwhile
    gone = await act(gw, "attachment.delete", AttachmentRef(attached.id))
    assert gone.status == "detached" and gw.status("v1") == "extending"
    assert [a.id for a in gw.attachments.attachments.of_volume("v1")] == [reserved.id]

"""Cinder's attach actions from before attachments, end to end over a real NBD export.

``os-reserve``, ``os-initialize_connection``, ``os-attach``, ``os-begin_detaching``,
``os-roll_detaching``, ``os-terminate_connection``, ``os-detach`` and ``os-unreserve``
(Ironic's and old Nova's way, tempest's too) through the client library, on real actor
processes with file backends; the connection they hand out is opened by qemu-io.
The REST front's and the OpenStack clients' turn is in ``test_rest_clients.py``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from tests.conftest import E2ECluster, eventually
from tests.conftest import run_tool as run
from tests.e2e.test_e2e_attach import CONNECTOR, Keys, exported, multiattach_type, run_ok
from tests.e2e.test_e2e_retried_requests import answers, restart_gateway
from tests.nbd_tls import NBD_TOOLS, requires

pytestmark = requires(*NBD_TOOLS)
INSTANCE = "7d5f9a52-5d1c-4a0c-9d0e-3b7f2a1e0c11"


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


async def status(c: Client, vol: Volume) -> str:
    return (await c.show_volume(vol.id)).status


async def test_a_volume_goes_the_old_way_in_and_out_and_its_data_stays(
    cluster: E2ECluster, client: Client, keys: Keys,
) -> None:
    """Ironic's order: reserve, initialize, attach; begin detaching, terminate, detach."""
    vol = await client.create_volume(1, wait=True)
    await client.reserve_volume(vol.id)
    assert await status(client, vol) == "attaching"
    assert await client.list_attachments(vol.id) == []  # a reservation is the status alone

    att = await client.initialize_connection(vol.id, CONNECTOR)
    assert att.connection_info["driver_volume_type"] == "nbd"
    assert (att.status, att.instance_id) == ("attaching", None)
    assert await status(client, vol) == "attaching"
    again = await client.initialize_connection(vol.id, CONNECTOR)  # the same host: the same
    assert (again.id, again.connection_info) == (att.id, att.connection_info)
    await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0x5a 0 1M")

    attached = await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    assert attached.id == att.id
    assert (attached.status, attached.instance_id, attached.attach_mode) == (
        "attached", INSTANCE, "rw")
    assert attached.connector["mountpoint"] == "/dev/vdb"
    assert attached.connector["host"] == CONNECTOR["host"]
    assert await status(client, vol) == "in-use"
    twice = await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    assert twice.id == att.id and len(await client.list_attachments(vol.id)) == 1

    await client.begin_detaching(vol.id)
    assert await status(client, vol) == "detaching"
    await client.roll_detaching(vol.id)
    assert await status(client, vol) == "in-use"
    await client.begin_detaching(vol.id)
    with pytest.raises(InvalidState, match="in-use"):
        await client.begin_detaching(vol.id)  # detaching already

    export = f"volume-{vol.id}.{att.id}"
    assert export in exported(cluster)
    await client.terminate_connection(vol.id, CONNECTOR)
    assert export not in exported(cluster)
    code, _ = await run("qemu-io", *keys.qemu(att), "-c", "read -P 0x5a 0 1M")
    assert code != 0, "a terminated connection must not open"
    kept, = await client.list_attachments(vol.id)  # attached until the detach
    assert (kept.id, kept.status, kept.connection_info) == (att.id, "attached", {})
    assert await status(client, vol) == "detaching"

    await client.detach_volume(vol.id, att.id)
    assert await status(client, vol) == "available"
    assert await client.list_attachments(vol.id) == []

    # the data is there for the next connection, made the new way
    fresh = await client.create_attachment(vol.id, instance_id="vm-next", mode="ro")
    fresh = await client.update_attachment(fresh.id, CONNECTOR)
    await run_ok("qemu-io", "-r", *keys.qemu(fresh), "-c", "read -P 0x5a 0 1M")
    await client.delete_attachment(fresh.id)


async def test_attach_and_detach_alone_record_and_end_an_attachment(client: Client) -> None:
    """tempest's order: os-attach with no reservation, os-detach with no attachment id."""
    vol = await client.create_volume(1, wait=True)
    att = await client.attach_volume(vol.id, "/dev/vdc", host_name="baremetal-3")
    assert (att.status, att.instance_id, att.connection_info) == ("attached", None, {})
    assert att.connector == {"host": "baremetal-3", "mountpoint": "/dev/vdc"}
    assert await status(client, vol) == "in-use"
    again = await client.attach_volume(vol.id, "/dev/vdc", host_name="baremetal-3")
    assert again.id == att.id
    with pytest.raises(InvalidState, match="does not allow multiattach"):
        await client.attach_volume(vol.id, "/dev/vdd", instance_id=INSTANCE)
    await client.detach_volume(vol.id)
    assert await status(client, vol) == "available"
    await client.detach_volume(vol.id)  # nothing attached: nothing to do, as Cinder's
    assert await status(client, vol) == "available"

    await client.reserve_volume(vol.id)
    with pytest.raises(InvalidState, match="must be available to reserve"):
        await client.reserve_volume(vol.id)
    await client.unreserve_volume(vol.id)
    assert await status(client, vol) == "available"
    await client.unreserve_volume(vol.id)  # not reserved: nothing to do
    with pytest.raises(InvalidState, match="must be 'in-use'"):
        await client.begin_detaching(vol.id)
    await client.roll_detaching(vol.id)  # not detaching: nothing to do
    assert await status(client, vol) == "available"

    # a reserved volume's attach takes the reservation; a terminate unreserves
    await client.reserve_volume(vol.id)
    att = await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    assert await status(client, vol) == "in-use"
    await client.detach_volume(vol.id, att.id)
    await client.reserve_volume(vol.id)
    await client.terminate_connection(vol.id, CONNECTOR)  # no connection: unreserved
    assert await status(client, vol) == "available"


async def test_a_connection_never_attached_ends_with_its_terminate(
    client: Client, keys: Keys,
) -> None:
    vol = await client.create_volume(1, wait=True)
    await client.reserve_volume(vol.id)
    att = await client.initialize_connection(vol.id, CONNECTOR)
    await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0x11 0 64k")
    await client.terminate_connection(vol.id, CONNECTOR)
    assert await client.list_attachments(vol.id) == []
    assert await status(client, vol) == "available"
    code, _ = await run("qemu-io", *keys.qemu(att), "-c", "read 0 64k")
    assert code != 0, "a terminated connection must not open"
    # an attached one whose connection was terminated is exported again on asking
    att = await client.initialize_connection(vol.id, CONNECTOR)
    await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    await client.terminate_connection(vol.id, CONNECTOR)
    back = await client.initialize_connection(vol.id, CONNECTOR)
    assert back.id == att.id and back.status == "attached" and back.connection_info
    await run_ok("qemu-io", *keys.qemu(back), "-c", "read -P 0x11 0 64k")
    await client.detach_volume(vol.id)
    assert await status(client, vol) == "available"


async def test_bad_or_contradictory_requests_are_refused_and_change_nothing(
    client: Client, admin: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    for connector, word in ((None, "required"), ({"ip": "127.0.0.1"}, "'host'"),
                            ({"host": "h", "wwpns": "x"}, "wwpns"), ("iqn", "map")):
        with pytest.raises(InvalidInput, match=word):
            await client.initialize_connection(vol.id, connector)
    for kwargs, word in (({"instance_id": "not-a-uuid"}, "instance_uuid"),
                         ({}, "instance_uuid"), ({"host_name": "", }, "host_name"),
                         ({"host_name": "h", "mode": "rx"}, "mode")):
        with pytest.raises(InvalidInput, match=word):
            await client.attach_volume(vol.id, "/dev/vdb", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="mountpoint"):
        await client.attach_volume(vol.id, "", host_name="h")
    with pytest.raises(NotFound):
        await client.reserve_volume(str(uuid.uuid4()))
    assert await status(client, vol) == "available"
    assert await client.list_attachments(vol.id) == []

    # a read-only volume is attached read-only, and its connection is made so
    await client.modify_volume(vol.id, readonly=True)
    with pytest.raises(InvalidInput, match="Invalid attaching mode 'rw'"):
        await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    att = await client.initialize_connection(vol.id, CONNECTOR)
    assert att.attach_mode == att.connection_info["data"]["access_mode"] == "ro"
    att = await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE, mode="ro")
    assert (att.status, att.attach_mode) == ("attached", "ro")
    await client.detach_volume(vol.id, att.id)
    await client.modify_volume(vol.id, readonly=False)
    # a connection made read-write is not attached read-only
    att = await client.initialize_connection(vol.id, CONNECTOR)
    with pytest.raises(InvalidInput, match="contradicts"):
        await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE, mode="ro")
    assert (await client.show_attachment(att.id)).status == "attaching"
    await client.terminate_connection(vol.id, CONNECTOR)
    assert await status(client, vol) == "available"

    # another project's volume is not found
    other = await admin.create_volume(1, wait=True)
    with pytest.raises(NotFound):
        await client.attach_volume(other.id, "/dev/vdb", host_name="h")


async def test_a_multiattach_volume_is_detached_by_attachment_id(
    client: Client, admin: Client,
) -> None:
    vol = await client.create_volume(1, volume_type=await multiattach_type(admin), wait=True)
    one = await client.attach_volume(vol.id, "/dev/vdb", instance_id=INSTANCE)
    await client.reserve_volume(vol.id)  # a multiattach volume in use may be reserved
    assert await status(client, vol) == "attaching"
    two = await client.attach_volume(vol.id, "/dev/vdb", instance_id=str(uuid.uuid4()))
    assert two.id != one.id and await status(client, vol) == "in-use"
    with pytest.raises(InvalidInput, match="More than one attachment"):
        await client.detach_volume(vol.id)
    with pytest.raises(InvalidInput, match="VolumeAttachmentNotFound"):
        await client.detach_volume(vol.id, str(uuid.uuid4()))
    await client.detach_volume(vol.id, one.id)
    assert await status(client, vol) == "in-use"
    await client.detach_volume(vol.id)
    assert await status(client, vol) == "available"


async def test_a_reservation_and_a_begun_detach_outlast_a_gateway_restart(
    cluster: E2ECluster, client: Client,
) -> None:
    """Cinder keeps ``os-reserve``'s ``attaching`` and ``os-begin_detaching``'s
    ``detaching`` until ``os-unreserve`` or ``os-roll_detaching``; so does a gateway
    started again on its file (it had mended both to what their attachments made them)."""
    reserved = await client.create_volume(1, wait=True)
    await client.reserve_volume(reserved.id)
    begun = await client.create_volume(1, wait=True)
    await client.attach_volume(begun.id, "/dev/vdc", instance_id=INSTANCE)
    await client.begin_detaching(begun.id)

    restart_gateway(cluster)
    await eventually(lambda: answers(client), timeout=20)
    assert await status(client, reserved) == "attaching"
    assert await status(client, begun) == "detaching"

    await client.unreserve_volume(reserved.id)
    assert await status(client, reserved) == "available"
    await client.roll_detaching(begun.id)
    assert await status(client, begun) == "in-use"
    await client.detach_volume(begun.id)
    assert await status(client, begun) == "available"

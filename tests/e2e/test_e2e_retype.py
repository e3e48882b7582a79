"""Giving a volume another type, in place (Cinder's ``os-retype``), end to end on file
nodes: the volume keeps its backend and its bytes and takes the new type, in the
gateway's file too; what Cinder refuses is refused with its words and changes nothing,
and a type the volume's backend does not satisfy is refused under either policy (no
volume moves between backends here)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from tests.conftest import E2ECluster
from tests.unit.test_backend_file import read_at, write_pattern

CONNECTOR = {"host": "compute-1", "ip": "127.0.0.1", "platform": "x86_64",
             "os_type": "linux", "multipath": False}


@pytest.fixture
async def gold(admin: Client) -> AsyncIterator[VolumeType]:
    """A type every file backend satisfies (and removed after, once nothing has it)."""
    made = await admin.create_type(f"gold-{uuid.uuid4().hex[:8]}",
                                   extra_specs={"volume_backend_name": "file"})
    yield made
    await admin.delete_type(made.id)


def type_in_file(cluster: E2ECluster, volume_id: str) -> str:
    """The volume's type id as the gateway's file holds it (not its memory)."""
    path = cluster.cfg.path("gateway.db")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (type_id,) = db.execute("SELECT volume_type_id FROM volumes WHERE id=?",
                                (volume_id,)).fetchone()
    return str(type_id)


async def test_a_volume_takes_another_type_in_place_and_keeps_its_bytes(
    cluster: E2ECluster, client: Client, admin: Client, gold: VolumeType,
) -> None:
    vol = await client.create_volume(1, wait=True)
    assert vol.host is not None
    path = cluster.volume_file(vol.host, vol.id)
    write_pattern(path, [(0, b"kept through the retype")])
    inode = path.stat().st_ino

    retyped = await client.retype_volume(vol.id, gold.name)
    assert (retyped.volume_type, retyped.volume_type_id) == (gold.name, gold.id)
    assert (retyped.status, retyped.host, retyped.size) == ("available", vol.host, 1)
    shown = await client.show_volume(vol.id)
    assert (shown.volume_type, shown.status) == (gold.name, "available")
    assert type_in_file(cluster, vol.id) == gold.id
    assert read_at(path, 0, 23) == b"kept through the retype" and path.stat().st_ino == inode

    with pytest.raises(InvalidInput, match="deletion is not allowed with volumes present"):
        await admin.delete_type(gold.id)  # a volume has it now
    back = await client.retype_volume(vol.id, vol.volume_type_id or "", "on-demand")
    assert back.volume_type == vol.volume_type and type_in_file(cluster, vol.id) == \
        vol.volume_type_id
    await client.delete_volume(vol.id, wait=True)


async def test_what_cinder_refuses_is_refused_and_changes_nothing(
    cluster: E2ECluster, client: Client, admin: Client, gold: VolumeType,
) -> None:
    vol = await client.create_volume(1, wait=True)
    lvm = await admin.create_type(f"lvm-{uuid.uuid4().hex[:8]}",
                                  extra_specs={"volume_backend_name": "lvm"})
    private = await admin.create_type(f"private-{uuid.uuid4().hex[:8]}", is_public=False)
    try:
        with pytest.raises(InvalidInput, match="Current backend not valid for volume "
                                               f"{vol.id} with type {lvm.name}, migration "
                                               "not allowed: its backend .* has no "
                                               "capabilities matching"):
            await client.retype_volume(vol.id, lvm.name)
        with pytest.raises(InvalidInput, match="No valid backend to migrate volume .* for its "
                                               f"retype to type {lvm.name}"):
            await client.retype_volume(vol.id, lvm.id, "on-demand")  # no backend is lvm
        with pytest.raises(InvalidState, match="requested type has to be different"):
            await client.retype_volume(vol.id, vol.volume_type or "")
        with pytest.raises(InvalidInput, match="migration_policy"):
            await client.retype_volume(vol.id, gold.name, "always")
        with pytest.raises(NotFound):
            await client.retype_volume(vol.id, "no-such-type")
        with pytest.raises(NotFound):  # another project's private type
            await client.retype_volume(vol.id, private.name)
        await admin.set_backend_enabled(vol.host or "", False, "retype test")
        try:
            with pytest.raises(InvalidInput, match="is disabled"):
                await client.retype_volume(vol.id, gold.name)
        finally:
            await admin.set_backend_enabled(vol.host or "", True)
        unchanged = await client.show_volume(vol.id)
        assert (unchanged.volume_type, unchanged.status) == (vol.volume_type, "available")
        assert type_in_file(cluster, vol.id) == vol.volume_type_id
    finally:
        await client.delete_volume(vol.id, wait=True)
        await admin.delete_type(lvm.id)
        await admin.delete_type(private.id)


async def test_an_attached_volume_is_retyped_unless_multiattach_would_change(
    client: Client, admin: Client, gold: VolumeType,
) -> None:
    vol = await client.create_volume(1, wait=True)
    shared = await admin.create_type(f"shared-{uuid.uuid4().hex[:8]}",
                                     extra_specs={"multiattach": "<is> True"})
    att = await client.create_attachment(vol.id, instance_id=str(uuid.uuid4()))
    await client.update_attachment(att.id, CONNECTOR)
    await client.complete_attachment(att.id)
    try:
        in_use: Volume = await client.retype_volume(vol.id, gold.name)
        assert (in_use.status, in_use.volume_type) == ("in-use", gold.name)
        with pytest.raises(InvalidInput, match=r"only allowed on available volumes.*in-use"):
            await client.retype_volume(vol.id, shared.name)
        assert (await client.show_volume(vol.id)).volume_type == gold.name
    finally:
        await client.delete_attachment(att.id)
        await client.delete_volume(vol.id, wait=True)
        await admin.delete_type(shared.id)

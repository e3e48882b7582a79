"""One change at a time per volume: of concurrent extends, deletes, snapshots, clones
and attaches of one volume exactly one proceeds; the others get ``invalid_state``
naming the volume's status, and no revert moves the volume out of a status another
operation put it in (the backend file, the record and the quota agree afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import CinderblockError, InvalidState
from tests.conftest import GIB, E2ECluster, eventually
from tests.e2e.test_e2e_attach import CONNECTOR, attach, multiattach_type
from tests.lifecycle_helpers import usage, what_exists


def _outcomes(results: list[Any]) -> tuple[list[Any], list[BaseException]]:
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    return done, refused


def _refused_naming_the_status(refused: list[BaseException]) -> None:
    for exc in refused:
        assert isinstance(exc, InvalidState), repr(exc)
        assert exc.details.get("status") in {"available", "extending", "deleting", "reserved"}, \
            exc.details
        assert f"is {exc.details['status']}" in exc.message, exc.message


async def test_of_ten_concurrent_extends_under_a_tight_quota_exactly_one_proceeds(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
) -> None:
    await admin.set_quota(project, gigabytes=5)
    vol = await client.create_volume(1, wait=True)
    sizes = [2 + i % 4 for i in range(10)]  # each fits the quota alone; two do not
    results = await asyncio.gather(*(client.extend_volume(vol.id, size) for size in sizes),
                                   return_exceptions=True)
    done, refused = _outcomes(results)
    assert len(done) == 1, results
    _refused_naming_the_status(refused)
    grown = sizes[results.index(done[0])]
    final = await client.wait_for_status(vol.id, "available", timeout=20.0)
    assert final.size == grown
    assert final.host is not None
    backend_file = cluster.volume_file(final.host.partition("@")[0], vol.id)
    assert backend_file.stat().st_size == grown * GIB
    await eventually(lambda: _usage_is_what_exists(admin, client, project), timeout=10)


async def test_concurrent_extend_delete_snapshot_clone_and_attach_let_exactly_one_through(
    cluster: E2ECluster, client: Client, admin: Client, project: str,
) -> None:
    for _ in range(3):  # a few rounds: whichever comes first wins, the rest are refused
        vol = await client.create_volume(1, wait=True)
        ops: list[Awaitable[Any]] = [
            client.extend_volume(vol.id, 2),
            client.delete_volume(vol.id),
            client.create_snapshot(vol.id),
            client.create_volume(None, source_volid=vol.id),
            client.create_attachment(vol.id, "instance-1"),
        ]
        results = await asyncio.gather(*ops, return_exceptions=True)
        done, refused = _outcomes(results)
        assert len(done) == 1, results
        _refused_naming_the_status(refused)
        await _settle(client, vol.id)
    await eventually(lambda: _usage_is_what_exists(admin, client, project), timeout=10)


async def _settle(client: Client, volume_id: str) -> None:
    """Wait until nothing of the project is in a transitional status, then undo the
    round's attachment (if it won) so that the next round starts clean."""
    async def settled() -> bool:
        vols = await client.list_volumes()
        snaps = await client.list_snapshots()
        moving = {"creating", "extending", "deleting"}
        return not any(v.status in moving for v in vols) and \
            not any(s.status in moving for s in snaps)

    await eventually(settled, timeout=20.0)
    for att in await client.list_attachments(volume_id=volume_id):
        with contextlib.suppress(CinderblockError):
            await client.delete_attachment(att.id)


async def _usage_is_what_exists(admin: Client, client: Client, project: str) -> bool:
    """Quota equals what exists once the journal has handed over what was owed."""
    return bool(await usage(admin, project) == await what_exists(client))


@pytest.fixture(scope="module")
def slow_extends(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(nodes=1,
                           node_overrides={"node-1": {"faults": ("delay:extend_volume",)}})


async def test_attachments_that_move_while_their_volume_is_extended_leave_its_status_to_the_extend(
    slow_extends: E2ECluster,
) -> None:
    """An in-use extend (3.42) holds the volume ``extending`` until its node reports: an
    attachment deleted, or one completed, meanwhile does not move the volume (it had
    moved it to ``available`` or ``in-use``, and the extend's report then found the volume
    not extending: its size never changed and its reservation stayed until it expired).
    The extend's end gives the volume the status its attachments make it."""
    slow = slow_extends
    async with slow.client("held") as client, slow.client("admin", admin=True) as admin:
        vol = await client.create_volume(1, wait=True)
        first = await attach(client, vol)
        await client.extend_volume(vol.id, 2, in_use=True)
        await client.delete_attachment(first.id)
        assert (await client.show_volume(vol.id)).status == "extending"
        final = await client.wait_for_status(vol.id, "available", timeout=20.0)
        assert final.size == 2
        await eventually(lambda: _usage_is_what_exists(admin, client, "held"), timeout=10)

        shared = await client.create_volume(
            1, volume_type=await multiattach_type(admin), wait=True)
        one = await attach(client, shared)
        two = await client.create_attachment(shared.id, instance_id="vm-held")
        two = await client.update_attachment(two.id, CONNECTOR)
        await client.extend_volume(shared.id, 2, in_use=True)
        await client.complete_attachment(two.id)
        await client.delete_attachment(one.id)
        assert (await client.show_volume(shared.id)).status == "extending"
        final = await client.wait_for_status(shared.id, "in-use", timeout=20.0)
        assert final.size == 2
        await eventually(lambda: _usage_is_what_exists(admin, client, "held"), timeout=10)

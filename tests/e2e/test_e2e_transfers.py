"""Volume transfers, end to end (Cinder's volume-transfers): a project offers a volume,
another takes it with the transfer's id and auth key, and the volume, its snapshots and
their quota move with it in one step; what Cinder refuses is refused and changes
nothing; an offer outlives a gateway restart."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound, OverQuota
from tests.conftest import E2ECluster, eventually, every_actor_answers
from tests.e2e.test_e2e_retried_requests import answers, restart_gateway


@pytest.fixture
def transfers(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(backend="null")


def _project(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _in_use(client: Client) -> dict[str, int]:
    quota = await client.show_quota()
    return {r: quota.in_use.get(r, 0) + quota.reserved.get(r, 0)
            for r in ("volumes", "snapshots", "gigabytes")}


async def test_a_volume_and_its_snapshots_move_to_the_project_that_accepts_it(
    transfers: E2ECluster,
) -> None:
    c = transfers
    async with c.client(_project("donor")) as donor, c.client(_project("taker")) as taker:
        vol = await donor.create_volume(2, name="data", wait=True)
        snap = await donor.create_snapshot(vol.id, wait=True)
        offer = await donor.create_transfer(vol.id, name="to the taker")
        assert offer.auth_key is not None and len(offer.auth_key) == 16
        assert (await donor.show_volume(vol.id)).status == "awaiting-transfer"
        assert [t.id for t in await donor.list_transfers()] == [offer.id]
        assert (await donor.show_transfer(offer.id)).auth_key is None  # shown once only
        assert await taker.list_transfers() == []
        with pytest.raises(NotFound):
            await taker.show_transfer(offer.id)  # the offer is the donor's to see
        for refused in (lambda: donor.create_transfer(vol.id),
                        lambda: donor.extend_volume(vol.id, 3),
                        lambda: donor.delete_volume(vol.id),
                        lambda: donor.create_attachment(vol.id, "vm-1"),
                        lambda: donor.create_snapshot(vol.id)):
            with pytest.raises(InvalidState):
                await refused()
        with pytest.raises(InvalidInput, match="invalid auth key"):
            await taker.accept_transfer(offer.id, "0" * 16)
        assert (await donor.show_volume(vol.id)).status == "awaiting-transfer"
        donor_before, taker_before = await _in_use(donor), await _in_use(taker)
        assert donor_before == {"volumes": 1, "snapshots": 1, "gigabytes": 4}

        taken = await taker.accept_transfer(offer.id, offer.auth_key)
        assert (taken.accepted, taken.destination_project_id) == (True, taker.context.project_id)
        mine = await taker.show_volume(vol.id)
        assert (mine.status, mine.project_id, mine.name) == ("available", taker.context.project_id,
                                                             "data")
        assert (await taker.show_snapshot(snap.id)).project_id == taker.context.project_id
        with pytest.raises(NotFound):
            await donor.show_volume(vol.id)
        with pytest.raises(NotFound):
            await taker.accept_transfer(offer.id, offer.auth_key)  # taken once
        assert await donor.list_transfers() == []
        settled = await eventually(lambda: _quota_moved(donor, taker, taker_before), 10)
        assert settled

        await taker.delete_snapshot(snap.id, wait=True)  # the taker's now, to delete
        await taker.delete_volume(vol.id, wait=True)
        assert await eventually(lambda: _all_zero(taker), 10)


async def _quota_moved(donor: Client, taker: Client, taker_before: dict[str, int]) -> bool:
    moved = {"volumes": 1, "snapshots": 1, "gigabytes": 4}
    return await _in_use(donor) == {r: 0 for r in moved} and await _in_use(taker) == {
        r: taker_before[r] + moved[r] for r in moved}


async def _all_zero(client: Client) -> bool:
    return set((await _in_use(client)).values()) == {0}


async def test_an_offer_can_leave_the_snapshots_be_withdrawn_and_is_refused_over_quota(
    transfers: E2ECluster,
) -> None:
    c = transfers
    async with c.client(_project("donor")) as donor, c.client(_project("taker")) as taker, \
            c.client("admin", admin=True) as admin:
        vol = await donor.create_volume(1, wait=True)
        snap = await donor.create_snapshot(vol.id, wait=True)
        withdrawn = await donor.create_transfer(vol.id)
        await donor.delete_transfer(withdrawn.id)
        assert (await donor.show_volume(vol.id)).status == "available"
        with pytest.raises(NotFound):
            await taker.accept_transfer(withdrawn.id, withdrawn.auth_key or "")

        offer = await donor.create_transfer(vol.id, no_snapshots=True)
        assert offer.no_snapshots
        await admin.set_quota(taker.context.project_id, volumes=0)
        with pytest.raises(OverQuota):
            await taker.accept_transfer(offer.id, offer.auth_key or "")
        assert (await donor.show_volume(vol.id)).status == "awaiting-transfer"
        assert await _in_use(taker) == {"volumes": 0, "snapshots": 0, "gigabytes": 0}
        await admin.set_quota(taker.context.project_id, volumes=5)

        restart_gateway(c)  # the offer is in gateway.db: it outlives the restart
        await eventually(lambda: answers(donor), 20)
        await every_actor_answers(c, admin)
        assert [t.id for t in await donor.list_transfers()] == [offer.id]
        await taker.accept_transfer(offer.id, offer.auth_key or "")
        assert (await taker.show_volume(vol.id)).project_id == taker.context.project_id
        left = await donor.show_snapshot(snap.id)  # no_snapshots: it stays the donor's
        assert left.project_id == donor.context.project_id
        with pytest.raises(InvalidState):
            await taker.delete_volume(vol.id)  # it has a snapshot, as in Cinder
        await donor.delete_snapshot(snap.id, wait=True)
        await taker.delete_volume(vol.id, wait=True)
    with closing(sqlite3.connect(f"file:{c.cfg.path('gateway.db')}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT COUNT(*) FROM transfers").fetchone() == (0,)


async def test_an_offer_an_admin_s_reset_left_standing_is_neither_doubled_nor_kept(
    transfers: E2ECluster,
) -> None:
    """An admin's reset of an offered volume leaves its offer standing (as Cinder's):
    a second offer is refused while it stands, accepting it is refused (the volume no
    longer awaits it), and the volume's delete drops it."""
    c = transfers
    async with c.client(_project("donor")) as donor, c.client(_project("taker")) as taker, \
            c.client("admin", admin=True) as admin:
        vol = await donor.create_volume(1, wait=True)
        offer = await donor.create_transfer(vol.id)
        await admin.reset_volume_state(vol.id, "available")
        with pytest.raises(InvalidState, match="already offered by transfer"):
            await donor.create_transfer(vol.id)
        with pytest.raises(InvalidState, match="not awaiting transfer"):
            await taker.accept_transfer(offer.id, offer.auth_key or "")
        assert await _in_use(taker) == {"volumes": 0, "snapshots": 0, "gigabytes": 0}
        await donor.delete_volume(vol.id, wait=True)
        assert await donor.list_transfers() == []

"""Volume transfers' plain rules (actors/gateway/transfers.py, transfer_store.py): what
may be offered, what moves from one project's quota to the other's, and the auth key,
which is never kept."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.transfer_store import TransferRecord, crypt_hash, new_key
from cinderblock.actors.gateway.transfers import (
    VolumeTransfers,
    check_offerable,
    moved_amounts,
)
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.transfers import TransferList, TransferListRequest
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import MAX_FRAME, Context, Envelope, encode
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from cinderblock.protocol.wire.schema import dump


def volume(status: V) -> VolumeRecord:
    return VolumeRecord("v1", "donor", "u", 2, status, VolumeType("t", "plain"), "nova")


def test_only_an_available_volume_with_available_snapshots_may_be_offered() -> None:
    check_offerable(volume(V.AVAILABLE), {"s1": P.AVAILABLE}, no_snapshots=False)
    for status in (V.IN_USE, V.AWAITING_TRANSFER, V.ERROR, V.CREATING):
        with pytest.raises(InvalidState, match="status must be available"):
            check_offerable(volume(status), {}, no_snapshots=False)
    with pytest.raises(InvalidState, match="snapshot: s2 status must be available"):
        check_offerable(volume(V.AVAILABLE), {"s1": P.AVAILABLE, "s2": P.CREATING},
                        no_snapshots=False)
    # snapshots that stay behind are not the offer's business
    check_offerable(volume(V.AVAILABLE), {"s2": P.CREATING}, no_snapshots=True)


def test_the_volume_and_its_snapshots_move_in_the_quota_with_their_types_own() -> None:
    assert moved_amounts(volume(V.AVAILABLE), []) == {
        "volumes": 1, "gigabytes": 2, "volumes_t": 1, "gigabytes_t": 2}
    snapshots = [SnapshotRecord("s1", "donor", "u", "v1", 2, P.AVAILABLE, volume_type_id="t"),
                 SnapshotRecord("s2", "donor", "u", "v1", 2, P.AVAILABLE,
                                volume_type_id="old")]  # each counts as its own type
    assert moved_amounts(volume(V.AVAILABLE), snapshots) == {
        "volumes": 1, "gigabytes": 6, "snapshots": 2, "volumes_t": 1, "gigabytes_t": 4,
        "snapshots_t": 1, "gigabytes_old": 2, "snapshots_old": 1}


def test_the_key_is_checked_against_its_salted_hash_and_not_kept() -> None:
    key, salt, hashed = new_key()
    assert len(key) == 16 and int(key, 16) >= 0
    assert hashed == crypt_hash(salt, key) and key not in (salt, hashed)
    rec = TransferRecord("t1", "v1", "donor", None, salt, hashed, False, 0.0)
    assert rec.opens_with(key)
    assert not rec.opens_with(key[:-1] + ("0" if key[-1] != "0" else "1"))
    assert not rec.opens_with("")
    assert key not in repr(rec.row()) and rec.view().auth_key is None
    assert rec.view(key).auth_key == key
    assert new_key()[0] != key  # each offer its own


def test_offers_are_listed_a_page_at_a_time_either_way_each_page_within_a_frame() -> None:
    """3,000 offers with names as long as they come, in three projects: an admin's
    listing of every project's had been one reply, past a frame (1 MiB); now pages,
    newest first or oldest first, each offer once, filtered by volume and name."""
    offers = [TransferRecord(f"t-{n:05d}", f"v-{n:05d}", f"p{n % 3}", f"{n % 2}" * 255,
                             "salt", "hash", False, 1000.0 + n // 2) for n in range(3000)]
    held = SimpleNamespace(store=SimpleNamespace(transfers=SimpleNamespace(
        by_id={t.id: t for t in offers})))
    handler = VolumeTransfers(cast(Any, held), cast(Any, held))

    def ask(body: TransferListRequest, project: str = "p0", admin: bool = False
            ) -> TransferList:
        roles = ("admin", "member") if admin else ("member",)
        env = Envelope("req", 1, "transfer.list", None, Context(project, project, roles))
        reply = handler.on_list(Request(env, body, cast(Any, None), b""))
        size = len(encode(Envelope("rep", 2, "transfer.list", dump(reply), corr_id=1)))
        assert size < MAX_FRAME, size
        return reply

    def every(project: str = "p0", admin: bool = False, **asked: Any) -> list[str]:
        got: list[str] = []
        marker = None
        while True:
            reply = ask(TransferListRequest(marker=marker, **asked), project, admin)
            got += [t.id for t in reply.transfers]
            if (marker := reply.next_marker) is None:
                return got

    newest = sorted(offers, key=lambda t: (t.created_at, t.id), reverse=True)
    assert every(admin=True, all_projects=True) == [t.id for t in newest]
    assert every(admin=True, all_projects=True, sort_dir="asc") == [
        t.id for t in reversed(newest)]
    assert every(all_projects=True) == [t.id for t in newest if t.project_id == "p0"]
    assert every(project="p1", name="1" * 255, sort_dir="asc") == [
        f"t-{n:05d}" for n in range(3000) if n % 3 == 1 and n % 2]
    assert every(project="p2", volume_id="v-00005") == ["t-00005"]
    first = ask(TransferListRequest(limit=2, sort_dir="desc"))
    assert [t.id for t in first.transfers] == ["t-02997", "t-02994"]
    assert first.next_marker == "t-02994"
    with pytest.raises(InvalidInput, match="marker t-00001 not found"):
        ask(TransferListRequest(marker="t-00001"))  # another project's
    with pytest.raises(InvalidInput, match="transfers are ordered by creation"):
        ask(TransferListRequest(sort_dir="name"))

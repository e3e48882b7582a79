"""Volume transfers' plain rules (actors/gateway/transfers.py, transfer_store.py): what
may be offered, what moves from one project's quota to the other's, and the auth key,
which is never kept."""

from __future__ import annotations

import pytest

from cinderblock.actors.gateway.transfer_store import TransferRecord, crypt_hash, new_key
from cinderblock.actors.gateway.transfers import check_offerable, moved_amounts
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.errors import InvalidState


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


def test_the_volume_and_its_snapshots_move_in_the_quota() -> None:
    assert moved_amounts(2, []) == {"volumes": 1, "gigabytes": 2}
    assert moved_amounts(2, [2, 2]) == {"volumes": 1, "gigabytes": 6, "snapshots": 2}


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

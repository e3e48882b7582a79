"""revert's rules (actors/gateway/revert.py ``check_revert``), as Cinder's: the newest
snapshot of the volume, of its size, both available; and the statuses' moves."""

from __future__ import annotations

import pytest

from cinderblock.actors.gateway.revert import check_revert
from cinderblock.protocol.states import (
    SnapshotStatus,
    VolumeStatus,
    check_snapshot_move,
    check_volume_move,
)
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from tests.unit.test_lifecycle_checks import snapshot, volume

V, P = VolumeStatus, SnapshotStatus


def test_the_newest_snapshot_of_the_volume_s_size_may_be_reverted_to() -> None:
    older = snapshot(id="snap-0", created_at=1.0)
    newest = snapshot(id="snap-1", created_at=2.0)
    check_revert(volume(), newest, [older, newest])
    with pytest.raises(InvalidInput, match="not the latest one"):
        check_revert(volume(), older, [older, newest])
    creating = snapshot(id="snap-2", created_at=3.0, status=P.CREATING)
    with pytest.raises(InvalidInput, match="not the latest one"):  # any status counts
        check_revert(volume(), newest, [older, newest, creating])
    with pytest.raises(InvalidInput, match="not the latest one"):
        check_revert(volume(), snapshot(volume_id="vol-other"), [older])


def test_a_volume_extended_since_its_snapshot_cannot_go_back() -> None:
    with pytest.raises(InvalidInput, match="size must be equal"):
        check_revert(volume(size=3), snapshot(), [snapshot()])


@pytest.mark.parametrize("status", [V.IN_USE, V.RESERVED, V.ERROR, V.EXTENDING, V.REVERTING])
def test_only_an_available_volume_reverts(status: VolumeStatus) -> None:
    with pytest.raises(InvalidState, match="Volume's status must be 'available'"):
        check_revert(volume(status), snapshot(), [snapshot()])


@pytest.mark.parametrize("status", [P.ERROR, P.DELETING, P.RESTORING])
def test_only_an_available_snapshot_is_reverted_to(status: SnapshotStatus) -> None:
    snap = snapshot(status=status)
    with pytest.raises(InvalidState, match="Snapshot's status must be 'available'"):
        check_revert(volume(), snap, [snap])


def test_reverting_and_restoring_lead_back_to_available_and_nowhere_else() -> None:
    check_volume_move(V.AVAILABLE, V.REVERTING)
    check_volume_move(V.REVERTING, V.AVAILABLE)
    check_volume_move(V.REVERTING, V.ERROR)
    check_snapshot_move(P.AVAILABLE, P.RESTORING)
    check_snapshot_move(P.RESTORING, P.AVAILABLE)
    for moved in (V.DELETING, V.IN_USE, V.RESERVED, V.EXTENDING):
        with pytest.raises(InvalidState):
            check_volume_move(V.REVERTING, moved)
    with pytest.raises(InvalidState):
        check_volume_move(V.IN_USE, V.REVERTING)
    with pytest.raises(InvalidState):
        check_snapshot_move(P.RESTORING, P.DELETING)

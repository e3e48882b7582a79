"""The count behind ``quota sync``: what a project has, refused mid-change. (The
stores' totals it counts, on a real file: ``test_volume_store.py``.)"""

from __future__ import annotations

import pytest

from cinderblock.actors.gateway.quota_sync import SNAPSHOT_BUSY, VOLUME_BUSY, count_usage
from cinderblock.actors.gateway.row_records import totals_of
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.errors import InvalidState

TYPE = VolumeType("t1", "__DEFAULT__")
GOLD = VolumeType("t2", "Gold")


def vol(vid: str, size: int, status: VolumeStatus = VolumeStatus.AVAILABLE,
        project: str = "p", vtype: VolumeType = TYPE) -> VolumeRecord:
    return VolumeRecord(vid, project, "u", size, status, vtype, "nova")


def snap(sid: str, size: int, status: SnapshotStatus = SnapshotStatus.AVAILABLE,
         project: str = "p", type_id: str | None = None) -> SnapshotRecord:
    return SnapshotRecord(sid, project, "u", "v1", size, status, volume_type_id=type_id)


NO_BACKUPS = {"backups": 0, "backup_gigabytes": 0, "groups": 0}  # nor groups


def usage(project: str, volumes: list[VolumeRecord], snapshots: list[SnapshotRecord],
          backups: tuple[int, int] = (0, 0)) -> dict[str, int]:
    """``count_usage`` of ``project``'s records (a store's totals pick them by project)."""
    return count_usage(
        totals_of([v for v in volumes if v.project_id == project], VOLUME_BUSY),
        totals_of([s for s in snapshots if s.project_id == project], SNAPSHOT_BUSY), backups)


def test_volumes_snapshots_and_both_their_gigabytes_are_counted_for_the_project_only() -> None:
    volumes = [vol("v1", 5), vol("v2", 3, VolumeStatus.ERROR), vol("v3", 7, project="q")]
    snapshots = [snap("s1", 5), snap("s2", 9, project="q")]
    assert usage("p", volumes, snapshots) == {**NO_BACKUPS, "volumes": 2, "snapshots": 1,
                                              "gigabytes": 13,  # and the type's own:
                                              "volumes_t1": 2, "gigabytes_t1": 8}
    assert usage("nobody", volumes, snapshots) == {**NO_BACKUPS, "volumes": 0,
                                                   "snapshots": 0, "gigabytes": 0}


def test_backups_count_on_their_own_not_in_gigabytes() -> None:
    assert usage("p", [vol("v1", 5)], [], backups=(2, 9)) == {
        "volumes": 1, "snapshots": 0, "gigabytes": 5, "backups": 2, "backup_gigabytes": 9,
        "groups": 0,
        "volumes_t1": 1, "gigabytes_t1": 5}


def test_each_volume_type_s_own_usage_is_counted_beside_the_project_s() -> None:
    volumes = [vol("v1", 5), vol("v2", 3, vtype=GOLD), vol("v3", 2, vtype=GOLD),
               vol("v4", 7, project="q", vtype=GOLD)]
    snapshots = [snap("s1", 5, type_id="t1"), snap("s2", 3, type_id="t2"),
                 snap("s3", 1)]  # a snapshot of no type (a row from before types) counts once
    assert usage("p", volumes, snapshots) == {
        **NO_BACKUPS, "volumes": 3, "snapshots": 3, "gigabytes": 19,
        "volumes_t1": 1, "gigabytes_t1": 10, "snapshots_t1": 1,
        "volumes_t2": 2, "gigabytes_t2": 8, "snapshots_t2": 1}


@pytest.mark.parametrize("status", [VolumeStatus.CREATING, VolumeStatus.DELETING,
                                    VolumeStatus.EXTENDING])
def test_a_volume_mid_change_refuses_the_count(status: VolumeStatus) -> None:
    with pytest.raises(InvalidState, match=f"volume v2 is {status.value}"):
        usage("p", [vol("v1", 1), vol("v2", 1, status)], [])
    assert usage("q", [vol("v2", 1, status)], []) == {**NO_BACKUPS, "volumes": 0,
                                                      "snapshots": 0, "gigabytes": 0}


def test_a_snapshot_mid_change_refuses_the_count() -> None:
    with pytest.raises(InvalidState, match="snapshot s1 is creating"):
        usage("p", [], [snap("s1", 1, SnapshotStatus.CREATING)])

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


def vol(vid: str, size: int, status: VolumeStatus = VolumeStatus.AVAILABLE,
        project: str = "p") -> VolumeRecord:
    return VolumeRecord(vid, project, "u", size, status, TYPE, "nova")


def snap(sid: str, size: int, status: SnapshotStatus = SnapshotStatus.AVAILABLE,
         project: str = "p") -> SnapshotRecord:
    return SnapshotRecord(sid, project, "u", "v1", size, status)


def usage(project: str, volumes: list[VolumeRecord], snapshots: list[SnapshotRecord]
          ) -> dict[str, int]:
    """``count_usage`` of ``project``'s records (a store's totals pick them by project)."""
    return count_usage(
        totals_of([v for v in volumes if v.project_id == project], VOLUME_BUSY),
        totals_of([s for s in snapshots if s.project_id == project], SNAPSHOT_BUSY))


def test_volumes_snapshots_and_both_their_gigabytes_are_counted_for_the_project_only() -> None:
    volumes = [vol("v1", 5), vol("v2", 3, VolumeStatus.ERROR), vol("v3", 7, project="q")]
    snapshots = [snap("s1", 5), snap("s2", 9, project="q")]
    assert usage("p", volumes, snapshots) == {"volumes": 2, "snapshots": 1,
                                              "gigabytes": 13}
    assert usage("nobody", volumes, snapshots) == {"volumes": 0, "snapshots": 0,
                                                   "gigabytes": 0}


@pytest.mark.parametrize("status", [VolumeStatus.CREATING, VolumeStatus.DELETING,
                                    VolumeStatus.EXTENDING])
def test_a_volume_mid_change_refuses_the_count(status: VolumeStatus) -> None:
    with pytest.raises(InvalidState, match=f"volume v2 is {status.value}"):
        usage("p", [vol("v1", 1), vol("v2", 1, status)], [])
    assert usage("q", [vol("v2", 1, status)], []) == {"volumes": 0, "snapshots": 0,
                                                      "gigabytes": 0}


def test_a_snapshot_mid_change_refuses_the_count() -> None:
    with pytest.raises(InvalidState, match="snapshot s1 is creating"):
        usage("p", [], [snap("s1", 1, SnapshotStatus.CREATING)])

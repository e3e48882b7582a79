"""A migration's rules (actors/gateway/migration.py), as Cinder's migrate_volume: an
available volume without snapshots, to another backend that is up, enabled, in its zone,
satisfies its type and has room; the host named as host@backend, Cinder's #pool dropped."""

from __future__ import annotations

import dataclasses

import pytest

from cinderblock.actors.gateway.migration import check_migration, destination_of
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from tests.unit.test_lifecycle_checks import volume

V = VolumeStatus
NODE_2 = Backend("node-2@file", "node-2", "nova", 100.0, 90.0, 10.0, 10.0,
                 thin_provisioning_support=False,
                 capabilities={"volume_backend_name": "file", "storage_protocol": "nbd"})
NODE_1 = dataclasses.replace(NODE_2, backend="node-1@file", host="node-1")


def test_the_destination_is_a_backend_with_or_without_its_pool() -> None:
    assert destination_of("node-2@file") == "node-2@file"
    assert destination_of("node-2@file#file") == "node-2@file"
    for bad in ("node-2", "@file", "node-2@", "#pool", ""):
        with pytest.raises(InvalidInput, match="host"):
            destination_of(bad)
    with pytest.raises(InvalidInput, match="1 to 255 characters"):
        destination_of("n" * 250 + "@file#p")


def test_an_available_volume_moves_to_another_backend_that_takes_it() -> None:
    assert check_migration(volume(), "node-2@file", 0, [NODE_1, NODE_2]) is NODE_2


@pytest.mark.parametrize("status", [V.CREATING, V.ERROR, V.RESERVED, V.EXTENDING,
                                    V.MAINTENANCE, V.BACKING_UP, V.AWAITING_TRANSFER])
def test_only_an_available_volume_moves(status: VolumeStatus) -> None:
    with pytest.raises(InvalidState, match=f"must be available to migrate, not {status}"):
        check_migration(volume(status), "node-2@file", 0, [NODE_2])


def test_an_in_use_volume_is_refused_with_what_it_would_need() -> None:
    with pytest.raises(InvalidState, match=r"swap the attachment.*detach it first"):
        check_migration(volume(V.IN_USE), "node-2@file", 0, [NODE_2])


def test_a_volume_on_no_backend_stays() -> None:
    with pytest.raises(InvalidState, match="is on no backend yet"):
        check_migration(volume(host=None), "node-2@file", 0, [NODE_2])


def test_a_volume_with_snapshots_stays() -> None:
    with pytest.raises(InvalidState, match=r"must not have snapshots to migrate \(2 found\)"):
        check_migration(volume(), "node-2@file", 2, [NODE_2])


def test_the_destination_is_another_backend_that_is_up_and_enabled() -> None:
    with pytest.raises(InvalidInput, match="must be different than the current host"):
        check_migration(volume(), "node-1@file", 0, [NODE_1, NODE_2])
    cases = {"no such backend has reported": [NODE_1],
             "it is down": [dataclasses.replace(NODE_2, up=False)],
             "it is disabled": [dataclasses.replace(NODE_2, disabled=True)]}
    for why, backends in cases.items():
        with pytest.raises(InvalidInput, match=f"No available service named 'node-2@file' "
                                               f"\\({why}\\)"):
            check_migration(volume(), "node-2@file", 0, backends)
    with pytest.raises(InvalidInput, match=r"\(node node-2 has not reported to the scheduler: "
                                           "down, or not heard from yet since"):
        check_migration(volume(), "node-2@file", 0, [NODE_1], nodes={"node-1", "node-2"})


def test_the_destination_is_in_the_volume_s_zone_fits_its_type_and_has_room() -> None:
    east = dataclasses.replace(NODE_2, availability_zone="east")
    with pytest.raises(InvalidInput, match="availability zone east; volume vol-1 is in nova"):
        check_migration(volume(), "node-2@file", 0, [east])
    lvm = VolumeType("t-lvm", "Lvm", extra_specs={"volume_backend_name": "lvm"})
    with pytest.raises(InvalidInput, match="does not satisfy volume type Lvm"):
        check_migration(volume(volume_type=lvm), "node-2@file", 0, [NODE_2])
    with pytest.raises(InvalidInput, match=r"no room for volume vol-1 \(95 GiB; 90 GiB free\)"):
        check_migration(volume(size=95), "node-2@file", 0, [NODE_2])
    assert check_migration(volume(size=90), "node-2@file", 0, [NODE_2]) is NODE_2

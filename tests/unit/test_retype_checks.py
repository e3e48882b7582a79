"""retype's rules (actors/gateway/retype.py), as Cinder's: the request (policy, size
bounds, multiattach only while available, available or in-use, another type) and the
backend that holds the volume (zone, up, enabled, capabilities for the new type's
extra specs); a type its backend does not satisfy is refused under ``never`` and, under
``on-demand``, moves the volume to the other backend of its zone that satisfies the
type, has room and has the most free space."""

from __future__ import annotations

import dataclasses

import pytest

from cinderblock.actors.gateway.retype import check_retype_request, retype_backend
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from tests.unit.test_lifecycle_checks import FAST, PLAIN, volume

V = VolumeStatus
ZONES = ("nova", "east")
NODE_1 = Backend("node-1@file", "node-1", "nova", 100.0, 90.0, 10.0, 10.0,
                 capabilities={"volume_backend_name": "file", "multiattach": True,
                               "storage_protocol": "nbd"})
SHARED = VolumeType("t-shared", "Shared", extra_specs={"multiattach": "<is> True"})
ELSEWHERE = VolumeType("t-lvm", "Lvm", extra_specs={"volume_backend_name": "lvm"})
OTHER_FILE = dataclasses.replace(NODE_1, backend="node-2@file", host="node-2")


def test_another_type_its_backend_satisfies_is_taken_under_either_policy() -> None:
    for policy in ("never", "on-demand"):
        check_retype_request(volume(), FAST, policy)
        assert retype_backend(volume(), FAST, policy, [NODE_1], ZONES) is None  # in place
    check_retype_request(volume(V.IN_USE), FAST, "never")  # in-use too


def test_the_policy_is_cinder_s() -> None:
    with pytest.raises(InvalidInput, match="migration_policy"):
        check_retype_request(volume(), FAST, "sometimes")


@pytest.mark.parametrize("status", [V.CREATING, V.ERROR, V.RESERVED, V.EXTENDING,
                                    V.DELETING, V.AWAITING_TRANSFER])
def test_only_an_available_or_in_use_volume_is_retyped(status: VolumeStatus) -> None:
    with pytest.raises(InvalidState, match="available or in-use state"):
        check_retype_request(volume(status), FAST, "never")


def test_the_same_type_is_refused() -> None:
    with pytest.raises(InvalidState, match="has to be different"):
        check_retype_request(volume(), PLAIN, "never")


def test_multiattach_changes_only_while_available() -> None:
    check_retype_request(volume(), SHARED, "never")
    with pytest.raises(InvalidInput, match="retypes affecting multiattach are only allowed "
                                           r"on available volumes.*in-use"):
        check_retype_request(volume(V.IN_USE), SHARED, "never")
    shared = volume(V.IN_USE, volume_type=SHARED)
    with pytest.raises(InvalidInput, match="affecting multiattach"):
        check_retype_request(shared, PLAIN, "never")


def test_the_new_type_s_size_bounds_hold() -> None:
    small = VolumeType("t-small", "Small", extra_specs={"provisioning:max_vol_size": "1"})
    with pytest.raises(InvalidInput, match="greater than the maximum allowable size"):
        check_retype_request(volume(size=2), small, "never")


def test_a_backend_without_the_capabilities_is_refused_never_in_cinder_s_words() -> None:
    with pytest.raises(InvalidInput, match="Current backend not valid for volume vol-1 with "
                                           r"type Lvm, migration not allowed: .*no "
                                           "capabilities matching") as refused:
        retype_backend(volume(), ELSEWHERE, "never", [NODE_1], ZONES)
    assert refused.value.details["backend"] == "node-1@file"
    with pytest.raises(InvalidInput, match="No valid backend to migrate volume vol-1 to for "
                                           "its retype to type Lvm: Destination backend "
                                           "node-2@file does not satisfy"):
        retype_backend(volume(), ELSEWHERE, "on-demand", [NODE_1, OTHER_FILE], ZONES)


def test_on_demand_moves_to_the_fitting_backend_with_the_most_room() -> None:
    lvm_a = dataclasses.replace(NODE_1, backend="node-2@lvm", host="node-2",
                                free_capacity_gb=50.0, capabilities={"volume_backend_name": "lvm"})
    lvm_b = dataclasses.replace(lvm_a, backend="node-3@lvm", host="node-3", free_capacity_gb=70.0)
    east = dataclasses.replace(lvm_b, backend="node-4@lvm", host="node-4",
                               availability_zone="east", free_capacity_gb=99.0)
    full = dataclasses.replace(lvm_b, backend="node-5@lvm", host="node-5", free_capacity_gb=0.0,
                               total_capacity_gb=10.0)
    down = dataclasses.replace(lvm_b, backend="node-6@lvm", host="node-6", up=False,
                               free_capacity_gb=99.0)
    backends = [NODE_1, lvm_a, lvm_b, east, full, down, OTHER_FILE]
    assert retype_backend(volume(), ELSEWHERE, "on-demand", backends, ZONES) == "node-3@lvm"
    with pytest.raises(InvalidState, match="in-use: migrating an attached volume"):
        retype_backend(volume(V.IN_USE), ELSEWHERE, "on-demand", backends, ZONES)
    with pytest.raises(InvalidState, match="must not have snapshots"):
        retype_backend(volume(), ELSEWHERE, "on-demand", backends, ZONES, snapshots=2)
    east_only = VolumeType("t-e", "EastLvm", extra_specs={"volume_backend_name": "lvm",
                                                          "RESKEY:availability_zones": "east"})
    with pytest.raises(InvalidInput, match=r"cannot migrate it: the volume's availability "
                                           r"zone nova is not among.*keeps a volume in its zone"):
        retype_backend(volume(), east_only, "on-demand", backends, ZONES)


@pytest.mark.parametrize(("backends", "says"), [
    ([], "has not reported"),
    ([dataclasses.replace(NODE_1, up=False)], "is down"),
    ([dataclasses.replace(NODE_1, disabled=True)], "is disabled"),
    ([dataclasses.replace(NODE_1, backend="node-2@file")], "has not reported"),
])
def test_the_volume_s_own_backend_must_be_up_and_enabled(backends: list[Backend],
                                                          says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        retype_backend(volume(), FAST, "never", backends, ZONES)


def test_the_new_type_s_zones_must_hold_the_volume_s() -> None:
    east = VolumeType("t-east", "East", extra_specs={"RESKEY:availability_zones": "east"})
    with pytest.raises(InvalidInput, match="availability zone nova is not among the "
                                           "type's \\(east\\)"):
        retype_backend(volume(), east, "never", [NODE_1], ZONES)
    nowhere = VolumeType("t-x", "X", extra_specs={"RESKEY:availability_zones": "atlantis"})
    with pytest.raises(InvalidInput, match="none known"):
        retype_backend(volume(), nowhere, "never", [NODE_1], ZONES)

"""The gateway's judgements for delete, extend, snapshots and clones, as plain code."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinderblock.actors.gateway.lifecycle_checks import (
    check_extend,
    check_snapshot_deletable,
    check_snapshot_source,
    check_volume_deletable,
    resolve_source,
)
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, check_snapshot_move
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.storage_node.lifecycle_flows import extend_fits

V, P = VolumeStatus, SnapshotStatus
PLAIN = VolumeType("t-plain", "__DEFAULT__")
FAST = VolumeType("t-fast", "FCVolumeType")
ME = Context("demo", "demo")


def volume(status: VolumeStatus = V.AVAILABLE, size: int = 2, **kw: object) -> VolumeRecord:
    fields: dict[str, object] = {"id": "vol-1", "project_id": "demo", "user_id": "demo",
                                 "size": size, "status": status, "volume_type": PLAIN,
                                 "availability_zone": "nova", "host": "node-1@file", **kw}
    return VolumeRecord(**fields)  # type: ignore[arg-type]


def snapshot(status: SnapshotStatus = P.AVAILABLE, **kw: object) -> SnapshotRecord:
    fields: dict[str, object] = {"id": "snap-1", "project_id": "demo", "user_id": "demo",
                                 "volume_id": "vol-1", "size": 2, "status": status,
                                 "host": "node-1@file", "volume_type_id": PLAIN.id, **kw}
    return SnapshotRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> GatewayStore:
    """A store used in memory only (nothing here writes to its file)."""
    s = GatewayStore(tmp_path / "gateway.db", "NORMAL")
    s.volumes.keep(volume())
    s.snapshots.keep(snapshot())
    return s


@pytest.fixture
def types() -> TypeCatalog:
    catalog = TypeCatalog()
    catalog.add(PLAIN)
    catalog.add(FAST)
    return catalog


# ---- delete --------------------------------------------------------------------------
@pytest.mark.parametrize("status", list(VolumeStatus), ids=lambda s: s.value)
def test_a_volume_may_be_deleted_only_from_available_and_the_error_statuses(
    status: VolumeStatus,
) -> None:
    allowed = {V.AVAILABLE, V.ERROR, V.ERROR_DELETING, V.ERROR_EXTENDING}
    if status in allowed:
        check_volume_deletable(volume(status), [], [])
    else:
        with pytest.raises(InvalidState, match=f"while it is {status.value}"):
            check_volume_deletable(volume(status), [], [])


def test_a_volume_with_snapshots_or_being_copied_may_not_be_deleted() -> None:
    with pytest.raises(InvalidState, match="2 dependent snapshot"):
        check_volume_deletable(volume(), ["s1", "s2"], [])
    with pytest.raises(InvalidState, match="vol-9 are being created from it") as refused:
        check_volume_deletable(volume(), [], ["vol-9"])
    assert refused.value.details == {"volume_id": "vol-1", "copying": ["vol-9"]}


@pytest.mark.parametrize("status", list(SnapshotStatus), ids=lambda s: s.value)
def test_a_snapshot_may_be_deleted_from_available_error_and_error_deleting(
    status: SnapshotStatus,
) -> None:
    if status in {P.AVAILABLE, P.ERROR, P.ERROR_DELETING}:
        check_snapshot_deletable(snapshot(status), [])
    else:
        with pytest.raises(InvalidState):
            check_snapshot_deletable(snapshot(status), [])


def test_the_snapshot_table_allows_a_retry_of_a_failed_delete_and_nothing_after_deleted() -> None:
    check_snapshot_move(P.ERROR_DELETING, P.DELETING)
    with pytest.raises(InvalidState, match="from deleted to available"):
        check_snapshot_move(P.DELETED, P.AVAILABLE)


# ---- snapshots and extend ---------------------------------------------------------------
def test_a_snapshot_needs_an_available_volume_or_force_for_an_in_use_one() -> None:
    check_snapshot_source(volume(V.AVAILABLE), force=False)
    check_snapshot_source(volume(V.IN_USE), force=True)
    with pytest.raises(InvalidState, match="give force"):
        check_snapshot_source(volume(V.IN_USE), force=False)
    with pytest.raises(InvalidState, match="while it is creating"):
        check_snapshot_source(volume(V.CREATING), force=True)


def test_extend_answers_the_growth_and_refuses_what_does_not_grow() -> None:
    assert check_extend(volume(size=2), 5) == 3
    with pytest.raises(InvalidInput, match="must be greater"):
        check_extend(volume(size=2), 2)
    with pytest.raises(InvalidInput, match="must be greater"):
        check_extend(volume(size=2), 1)
    with pytest.raises(InvalidState, match="while it is error"):
        check_extend(volume(V.ERROR), 5)
    with pytest.raises(InvalidInput, match="must be an integer and greater than 0"):
        check_extend(volume(size=2), -4)


def test_the_node_refuses_an_extend_that_would_over_subscribe_its_backend() -> None:
    stats = BackendStatsMsg("node-1@file", "node-1", "nova", 10.0, 10.0, 6.0, 6.0,
                            max_over_subscription_ratio=1.0)
    assert extend_fits(stats, 4)
    assert not extend_fits(stats, 5)


# ---- create from a source --------------------------------------------------------------
def test_a_create_without_a_source_is_left_alone(store: GatewayStore, types: TypeCatalog) -> None:
    body = VolumeCreate(3)
    assert resolve_source(body, store, types, ME) == (body, None)


def test_a_create_from_a_snapshot_takes_its_size_type_zone_and_host(
    store: GatewayStore, types: TypeCatalog
) -> None:
    body, source = resolve_source(VolumeCreate(None, snapshot_id="snap-1"), store, types, ME)

    assert (body.size, body.volume_type, body.availability_zone) == (2, PLAIN.id, "nova")
    assert source is not None
    assert (source.kind, source.id, source.host) == ("snapshot", "snap-1", "node-1@file")


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (VolumeCreate(1, snapshot_id="snap-1"), "smaller than the snapshot's 2 GiB"),
        (VolumeCreate(None, volume_type="FCVolumeType", snapshot_id="snap-1"),
         "does not match the snapshot's type"),
        (VolumeCreate(None, availability_zone="az-2", source_volid="vol-1"), "differs"),
        (VolumeCreate(None, snapshot_id="snap-1", source_volid="vol-1"), "not both"),
    ],
)
def test_a_create_that_does_not_fit_its_source_is_invalid_input(
    store: GatewayStore, types: TypeCatalog, body: VolumeCreate, mentions: str
) -> None:
    with pytest.raises(InvalidInput, match=mentions):
        resolve_source(body, store, types, ME)


def test_a_source_of_another_project_is_not_found_except_for_an_admin(
    store: GatewayStore, types: TypeCatalog
) -> None:
    stranger = Context("other", "other")
    with pytest.raises(NotFound):
        resolve_source(VolumeCreate(None, snapshot_id="snap-1"), store, types, stranger)
    admin = Context("other", "other", ("admin",))
    assert resolve_source(VolumeCreate(None, source_volid="vol-1"), store, types, admin)[1]


def test_a_source_that_is_not_ready_is_an_invalid_state(
    store: GatewayStore, types: TypeCatalog
) -> None:
    store.snapshots["snap-1"].status = P.CREATING
    store.volumes["vol-1"].status = V.ERROR
    with pytest.raises(InvalidState, match="available snapshot"):
        resolve_source(VolumeCreate(None, snapshot_id="snap-1"), store, types, ME)
    with pytest.raises(InvalidState, match="cloned while available or in-use"):
        resolve_source(VolumeCreate(None, source_volid="vol-1"), store, types, ME)


def test_a_source_is_locked_only_while_a_copy_of_it_is_creating(store: GatewayStore) -> None:
    clone = volume(V.CREATING, id="vol-2", snapshot_id="snap-1")
    store.volumes.keep(clone)
    store.snapshots.remember_source(clone)
    assert store.snapshots.copying_from("snap-1", store.volumes.get) == ["vol-2"]

    clone.status = V.AVAILABLE

    assert store.snapshots.copying_from("snap-1", store.volumes.get) == []
    assert store.snapshots.copying_from("vol-1", store.volumes.get) == []

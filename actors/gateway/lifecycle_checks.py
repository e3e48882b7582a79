"""The gateway's judgements for delete, extend, snapshots and clones: pure code.

Each check raises the error a client should see (``InvalidState`` for a
status or a dependency that forbids the move, ``InvalidInput`` for a wrong
request, ``NotFound`` for an unknown id) and changes nothing; the flows call
them before they touch a record, and once more just before the change they
guard, because another request may have moved the record in between.

Rules, as Cinder's API (cinder/volume/api.py):

* delete a volume from available, error, error_deleting or error_extending
  (the statuses from which the transition table allows ``deleting``); never
  while it has snapshots or while a new volume is being copied from it;
* snapshot a volume that is available, or in-use with ``force``;
* delete a snapshot that is available, error or error_deleting, not while a
  volume is being created from it;
* extend an available volume to a larger whole number of GiB;
* create from a snapshot (available, and not of a group snapshot being deleted) or
  a source volume (available or in-use): the size defaults to the source's and may
  not be smaller, the type must be the source's (or omitted), and so must the
  availability zone.

One change at a time per volume. An extend, delete, snapshot or clone claims its
volume (``claim_volume``) in its first task, in the same step as the checks, before
any await; the claim is released when its API flow ends. A volume that is claimed,
that has a snapshot being created, or that a new volume is being copied from, is
refused to every other such request (and to an attach) with ``invalid_state``
naming its status and what it is busy with. Once the API flow ends, the status it
left (``extending``, ``deleting``...) or the record it made (a snapshot or a clone
in ``creating``) keeps the others out. A flow's revert undoes only a move that flow
made (its context says so), so it never moves a volume out of a status another
operation put it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cinderblock.actors.gateway.group_store import GroupRecord, GroupSnapshotRecord
from cinderblock.actors.gateway.migration_store import MigrationStatus
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_size
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.states import SNAPSHOT_MOVES, VOLUME_MOVES, SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound

V = VolumeStatus
DELETABLE = sorted(s.value for s, moves in VOLUME_MOVES.items() if V.DELETING in moves)
UNMANAGEABLE = sorted(s.value for s, moves in VOLUME_MOVES.items() if V.UNMANAGING in moves)
SNAPSHOT_DELETABLE = sorted(
    s.value for s, moves in SNAPSHOT_MOVES.items() if SnapshotStatus.DELETING in moves
)
SNAPSHOT_UNMANAGEABLE = sorted(
    s.value for s, moves in SNAPSHOT_MOVES.items() if SnapshotStatus.UNMANAGING in moves
)
CLONABLE = frozenset({V.AVAILABLE, V.IN_USE})


def _state(message: str, **details: object) -> InvalidState:
    return InvalidState(message, dict(details))


def visible_snapshot(store: GatewayStore, snapshot_id: str, ctx: Context) -> SnapshotRecord:
    rec = store.snapshots.get(snapshot_id)
    if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"snapshot {snapshot_id} could not be found", {"snapshot_id": snapshot_id})
    return rec


def visible_volume(store: GatewayStore, volume_id: str, ctx: Context) -> VolumeRecord:
    rec = store.volumes.get(volume_id)
    if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"volume {volume_id} could not be found", {"volume_id": volume_id})
    return rec


def visible_group(store: GatewayStore, group_id: str, ctx: Context) -> GroupRecord:
    group = store.groups.by_id.get(group_id)
    if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Group {group_id} could not be found.", {"group_id": group_id})
    return group


def visible_group_snapshot(store: GatewayStore, group_snapshot_id: str, ctx: Context
                           ) -> GroupSnapshotRecord:
    rec = store.group_snapshots.by_id.get(group_snapshot_id)
    if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"GroupSnapshot {group_snapshot_id} could not be found.",
                       {"group_snapshot_id": group_snapshot_id})
    return rec


def group_volumes(store: GatewayStore, group: GroupRecord) -> list[VolumeRecord]:
    """The group's volumes, by id."""
    return [store.volumes[v] for v in sorted(store.groups.members.get(group.id, ()))]


def group_snapshot_members(store: GatewayStore, rec: GroupSnapshotRecord
                           ) -> list[SnapshotRecord]:
    """The group snapshot's snapshots, by id (those still there)."""
    found = (store.snapshots.get(s) for s in sorted(store.group_snapshots.members.get(rec.id, ())))
    return [s for s in found if s is not None]


def check_volume_deletable(
    rec: VolumeRecord, snapshots: Sequence[str], copying: Sequence[str], unmanage: bool = False
) -> None:
    """Whether the volume may be deleted now (or unmanaged: Cinder's unmanage is a delete
    that keeps the data, under the same conditions but for the statuses)."""
    target, verb, allowed = (V.UNMANAGING, "unmanaged", UNMANAGEABLE) if unmanage else \
        (V.DELETING, "deleted", DELETABLE)
    if target not in VOLUME_MOVES[rec.status]:
        raise _state(
            f"volume {rec.id} cannot be {verb} while it is {rec.status.value}; "
            f"it must be one of {', '.join(allowed)}",
            volume_id=rec.id, status=rec.status.value, allowed=allowed,
        )
    if snapshots:
        raise _state(
            f"volume {rec.id} still has {len(snapshots)} dependent snapshot(s); "
            "delete them first",
            volume_id=rec.id, snapshots=list(snapshots),
        )
    _check_not_copying("volume", rec.id, copying)


def _check_not_copying(kind: str, source_id: str, copying: Sequence[str]) -> None:
    if copying:
        raise _state(
            f"{kind} {source_id} cannot be deleted while volume(s) {', '.join(copying)} "
            "are being created from it",
            **{f"{kind}_id": source_id, "copying": list(copying)},
        )


SNAPSHOT_RESET_TO = frozenset({SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR})


def snapshot_reset_target(rec: SnapshotRecord, status: str) -> SnapshotStatus:
    """The status an admin's reset gives the snapshot (``available`` or ``error``), or
    why not: a snapshot a revert is restoring is its volume's to decide, and one that
    never reached a backend can only be ``error``."""
    target = snapshot_reset_status(status)
    if rec.status is SnapshotStatus.RESTORING:
        raise InvalidState(f"snapshot {rec.id} is restoring: its volume's revert decides it; "
                           f"reset the volume {rec.volume_id} instead",
                           {"status": rec.status.value})
    if target is SnapshotStatus.AVAILABLE and rec.host is None:
        raise InvalidState(f"snapshot {rec.id} never reached a backend; it can only be "
                           "reset to error", {"status": rec.status.value})
    return target


def snapshot_reset_status(status: str) -> SnapshotStatus:
    """The status a reset asks for, if a snapshot may be reset to it."""
    target = next((t for t in SNAPSHOT_RESET_TO if t.value == status), None)
    if target is None:
        raise InvalidInput(f"a snapshot can be reset to "
                           f"{sorted(t.value for t in SNAPSHOT_RESET_TO)}, not {status!r}",
                           {"field": "status"})
    return target


def check_snapshot_deletable(rec: SnapshotRecord, copying: Sequence[str],
                             unmanage: bool = False) -> None:
    """Whether the snapshot may be deleted now (or unmanaged, as a volume)."""
    target, verb, allowed = (
        (SnapshotStatus.UNMANAGING, "unmanaged", SNAPSHOT_UNMANAGEABLE) if unmanage
        else (SnapshotStatus.DELETING, "deleted", SNAPSHOT_DELETABLE))
    if target not in SNAPSHOT_MOVES[rec.status]:
        raise _state(
            f"snapshot {rec.id} cannot be {verb} while it is {rec.status.value}; "
            f"it must be one of {', '.join(allowed)}",
            snapshot_id=rec.id, status=rec.status.value, allowed=allowed,
        )
    _check_not_copying("snapshot", rec.id, copying)


def volume_busy(store: GatewayStore, rec: VolumeRecord) -> str | None:
    """What the volume is busy with, if anything (see the module text)."""
    doing = store.claims.get(rec.id)
    if doing is not None:
        return f"another request is {doing} it"
    migration = store.migrations.of_volume(rec.id)
    if migration is not None and migration.status is MigrationStatus.COMPLETING:
        return f"its migration is dropping its old copy on {migration.source}"
    for snap in store.snapshots.of_volume(rec.id):
        if snap.status is SnapshotStatus.CREATING:
            return f"snapshot {snap.id} is being created from it"
    copying = store.snapshots.copying_from(rec.id, store.volumes.get)
    if copying:
        return f"volume {copying[0]} is being created from it"
    return None


def check_volume_free(store: GatewayStore, rec: VolumeRecord) -> None:
    busy = volume_busy(store, rec)
    if busy is not None:
        raise _state(
            f"volume {rec.id} is {rec.status.value} and busy: {busy}; try again once that "
            "is done",
            volume_id=rec.id, status=rec.status.value, busy=busy,
        )


def claim_volume(store: GatewayStore, rec: VolumeRecord, doing: str) -> str:
    """Claim the volume for one API flow (``invalid_state`` if busy); its id, to release."""
    check_volume_free(store, rec)
    store.claims[rec.id] = doing
    return rec.id


def release_claim(store: GatewayStore, volume_id: str | None) -> None:
    if volume_id is not None:
        store.claims.pop(volume_id, None)


def check_snapshot_source(volume: VolumeRecord, force: bool) -> None:
    if volume.status is V.AVAILABLE or (volume.status is V.IN_USE and force):
        return
    hint = " (give force to snapshot an in-use volume)" if volume.status is V.IN_USE else ""
    raise _state(
        f"cannot snapshot volume {volume.id} while it is {volume.status.value}; "
        f"it must be available{hint}",
        volume_id=volume.id, status=volume.status.value,
    )


def check_extend(volume: VolumeRecord, new_size: int, in_use: bool = False) -> int:
    """The number of GiB the volume grows by (``in_use``: an attached volume too)."""
    allowed = (V.AVAILABLE, V.IN_USE) if in_use else (V.AVAILABLE,)
    if volume.status not in allowed:
        raise _state(
            f"volume {volume.id} cannot be extended while it is {volume.status.value}; "
            f"it must be {' or '.join(s.value for s in allowed)}",
            volume_id=volume.id, status=volume.status.value,
        )
    check_size(new_size)
    if new_size <= volume.size:
        raise InvalidInput(
            f"new size {new_size} GiB must be greater than the current size {volume.size} GiB",
            {"field": "new_size", "size": volume.size, "new_size": new_size},
        )
    return new_size - volume.size


# ---- create from a snapshot or a source volume ----------------------------------


@dataclass(frozen=True, slots=True)
class VolumeSource:
    """What a new volume is copied from, and where that lives."""

    snapshot_id: str | None
    source_volid: str | None
    host: str  # the backend (host@backend) holding the source
    size: int
    volume_type: VolumeType
    availability_zone: str
    # As Cinder's: a copy of a bootable volume (or of a snapshot of one) is bootable, and
    # has the volume's image metadata (or the snapshot's copy of it, made with the
    # snapshot), which Nova reads to boot it.
    bootable: bool = False
    image_metadata: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.snapshot_id or self.source_volid or ""

    @property
    def kind(self) -> str:
        return "snapshot" if self.snapshot_id else "volume"


def resolve_source(
    body: VolumeCreate, store: GatewayStore, types: TypeCatalog, ctx: Context
) -> tuple[VolumeCreate, VolumeSource | None]:
    """The request with size, type and zone taken from its source, and the source."""
    if body.snapshot_id is None and body.source_volid is None:
        return body, None
    if body.snapshot_id is not None and body.source_volid is not None:
        raise InvalidInput("give snapshot_id or source_volid, not both", {"field": "snapshot_id"})
    source = current_source(body.snapshot_id, body.source_volid, store, types, ctx)
    size = source.size if body.size is None else body.size
    if type(size) is int and size < source.size:
        raise InvalidInput(
            f"size {size} GiB is smaller than the {source.kind}'s {source.size} GiB",
            {"field": "size", "size": size, "source_size": source.size},
        )
    _check_same_type(body, source, types)
    if body.availability_zone not in (None, source.availability_zone):
        raise InvalidInput(
            f"availability zone {body.availability_zone!r} differs from the {source.kind}'s "
            f"{source.availability_zone!r}",
            {"field": "availability_zone"},
        )
    resolved = replace(body, size=size, volume_type=source.volume_type.id,
                       availability_zone=source.availability_zone)
    return resolved, source


def _check_same_type(body: VolumeCreate, source: VolumeSource, types: TypeCatalog) -> None:
    if body.volume_type is None:
        return
    asked = types.find(body.volume_type)
    if asked.id != source.volume_type.id:
        raise InvalidInput(
            f"volume type {asked.name!r} does not match the {source.kind}'s type "
            f"{source.volume_type.name!r}; omit the type to use the source's",
            {"field": "volume_type", "source_type": source.volume_type.name},
        )


def current_source(
    snapshot_id: str | None, source_volid: str | None, store: GatewayStore,
    types: TypeCatalog, ctx: Context,
) -> VolumeSource:
    """The source as it is now; raises if it is gone or may not be copied."""
    if snapshot_id is not None:
        snap = visible_snapshot(store, snapshot_id, ctx)
        if snap.status is not SnapshotStatus.AVAILABLE:
            raise _state(
                f"snapshot {snap.id} is {snap.status.value}; a volume can only be created "
                "from an available snapshot",
                snapshot_id=snap.id, status=snap.status.value,
            )
        check_not_deleted_with_group(store, snap)
        volume = store.volumes.get(snap.volume_id)
        zone = volume.availability_zone if volume is not None else ""
        vtype = types.find(snap.volume_type_id or "")
        bootable = volume is not None and volume.bootable
        return VolumeSource(snap.id, None, snap.host or "", snap.size, vtype, zone,
                            bootable, store.snapshots.image_metadata(snap.id) if bootable
                            else {})
    assert source_volid is not None
    vol = visible_volume(store, source_volid, ctx)
    if vol.status not in CLONABLE or vol.host is None:
        raise _state(
            f"volume {vol.id} is {vol.status.value}; it can only be cloned while available "
            "or in-use",
            volume_id=vol.id, status=vol.status.value,
        )
    return VolumeSource(None, vol.id, vol.host, vol.size, vol.volume_type,
                        vol.availability_zone, *_boot_image(vol))


def check_not_deleted_with_group(store: GatewayStore, snap: SnapshotRecord) -> None:
    """A snapshot of a group snapshot being deleted is being deleted (Cinder marks each
    ``deleting`` with its group snapshot; here each is marked by its own delete, just
    after the group snapshot's mark): nothing new is made from it, a volume or a backup,
    which would hold its delete up."""
    group_snapshot_id = store.group_snapshots.group_snapshot_of(snap.id)
    group_snapshot = store.group_snapshots.by_id.get(group_snapshot_id or "")
    if group_snapshot is not None and group_snapshot.deleting:
        raise _state(f"snapshot {snap.id} is being deleted with its group snapshot "
                     f"{group_snapshot.id}", snapshot_id=snap.id,
                     group_snapshot_id=group_snapshot.id)


def _boot_image(volume: VolumeRecord) -> tuple[bool, dict[str, str]]:
    """Whether a clone of ``volume`` is bootable, and the image metadata it has then
    (a volume from a snapshot has the snapshot's copy, made with it)."""
    if not volume.bootable:
        return False, {}
    return True, dict(volume.image_metadata)


def check_group_member(store: GatewayStore, volume: VolumeRecord, doing: str) -> None:
    """A volume in a group is not ``doing`` on its own (Cinder's: it must not belong to a
    group)."""
    group = store.groups.group_of_volume(volume.id)
    if group is not None:
        raise InvalidState(f"Volume {volume.id} belongs to group {group}: it cannot be "
                           f"{doing} on its own; remove it from the group first",
                           {"volume_id": volume.id, "group_id": group})

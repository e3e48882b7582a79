"""Message bodies for the rest of a volume's life: delete, extend, snapshots, clones.

Who sends what (every op is listed in ``protocol.messages.ops``)::

    client  → gateway   volume.delete  volume.extend
                        snapshot.create  snapshot.show  snapshot.list
                        snapshot.watch  snapshot.delete
    gateway → node      node.delete_volume  node.extend_volume
                        node.create_snapshot  node.delete_snapshot
                        (a clone is a ``node.create_volume`` whose ScheduleRequest
                        names a snapshot_id or a source_volid)
    node    → gateway   volume.deleted  volume.extended
                        snapshot.update  snapshot.deleted
                        (and ``volume.update`` for error_deleting)
    gateway → client    evt ``snapshot.status`` (a Snapshot) to its watchers

A deleted volume or snapshot is pushed to its watchers one last time with
status ``deleted``, then the gateway forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.schema import message

# ---- client → gateway ------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeDelete:
    volume_id: str
    watch: bool = False  # push status changes (down to "deleted") to the caller


@message
@dataclass(frozen=True, slots=True)
class VolumeExtend:
    volume_id: str
    new_size: int
    watch: bool = False
    in_use: bool = False  # an attached volume may be extended too (Cinder's 3.42)


@message
@dataclass(frozen=True, slots=True)
class VolumeRetype:
    """Give a volume another type, in place (Cinder's ``os-retype``): its backend must
    satisfy the new type; ``migration_policy`` is Cinder's (``never``, ``on-demand``),
    and a retype moves no volume between backends (``volume.migrate`` does)."""

    volume_id: str
    new_type: str  # a name or an id
    migration_policy: str = "never"


@message
@dataclass(frozen=True, slots=True)
class VolumeRevert:
    """Revert a volume to its latest snapshot, in place (Cinder's 3.40 ``revert``): the
    volume must be available and the snapshot available, its newest, and of its size."""

    volume_id: str
    snapshot_id: str
    watch: bool = False


@message
@dataclass(frozen=True, slots=True)
class SnapshotCreate:
    volume_id: str
    name: str | None = None
    description: str | None = None
    force: bool = False  # allow a snapshot of an in-use volume
    metadata: dict[str, Any] = field(default_factory=dict)
    watch: bool = False


@message
@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    project_id: str
    volume_id: str
    size: int
    status: SnapshotStatus
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    reason: str | None = None
    user_id: str | None = None
    volume_type_id: str | None = None
    group_snapshot_id: str | None = None  # the group snapshot it was taken in (3.14)


@message
@dataclass(frozen=True, slots=True)
class SnapshotRef:
    snapshot_id: str


@message
@dataclass(frozen=True, slots=True)
class SnapshotResetState:
    """An admin's os-reset_status of a snapshot: to ``error`` or ``available``."""

    snapshot_id: str
    status: str


@message
@dataclass(frozen=True, slots=True)
class SnapshotDelete:
    snapshot_id: str
    watch: bool = False


@message
@dataclass(frozen=True, slots=True)
class SnapshotModify:
    """A user's change to a snapshot's name, description or metadata (Cinder's snapshot
    update and snapshot metadata calls), as ``VolumeModify`` changes a volume's:
    ``name`` and ``description`` change when listed in ``fields``; ``metadata`` is merged
    into the snapshot's, or replaces it all with ``replace_metadata``;
    ``delete_metadata`` names keys to drop."""

    snapshot_id: str
    fields: tuple[str, ...] = ()
    name: str | None = None
    description: str | None = None
    metadata: Any = None
    replace_metadata: bool = False
    delete_metadata: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class SnapshotListRequest:
    all_projects: bool = False
    volume_id: str | None = None
    status: str | None = None
    limit: int | None = None  # at most 1000 a page
    marker: str | None = None  # the last snapshot id of the previous page
    name: str | None = None  # only snapshots of this name
    metadata: dict[str, str] | None = None  # only snapshots with these metadata items
    project_id: str | None = None  # with all_projects (an admin's): this project's only
    sort: str | None = None  # "size:asc", "name:desc" ...: another order than by creation
    with_count: bool = False  # and how many the listing lists in all (Cinder's 3.45)
    availability_zone: str | None = None  # only snapshots of volumes in this zone


@message
@dataclass(frozen=True, slots=True)
class SnapshotList:
    snapshots: tuple[Snapshot, ...] = ()
    next_marker: str | None = None  # set when another page follows
    count: int | None = None  # with_count: how many the listing lists in all


@message
@dataclass(frozen=True, slots=True)
class SnapshotWatch:
    snapshot_ids: tuple[str, ...] = ()


# ---- gateway → node --------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class NodeDeleteVolume:
    volume_id: str
    unmanage: bool = False  # keep the data on the backend, under a name of its own


@message
@dataclass(frozen=True, slots=True)
class NodeExtendVolume:
    volume_id: str
    size: int  # the size the gateway knows
    new_size: int
    reservation_id: str  # the gateway commits or rolls it back on the node's answer


@message
@dataclass(frozen=True, slots=True)
class NodeRevertVolume:
    volume_id: str
    snapshot_id: str
    revert_id: str  # named by the node's report: which revert it ends


@message
@dataclass(frozen=True, slots=True)
class NodeCreateSnapshot:
    snapshot_id: str
    volume_id: str
    size: int
    manage_ref: str | None = None  # a manage: what the backend holds as this name
    # sent again by a gateway started after its last process died: the node was fenced
    # for it (``NodeFenceCreates``) and takes only a cast that carries this
    fence: str = ""


@message
@dataclass(frozen=True, slots=True)
class NodeDeleteSnapshot:
    snapshot_id: str
    volume_id: str
    unmanage: bool = False  # keep the data on the backend, under a name of its own


# ---- node → gateway --------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeExtended:
    """The outcome of an extend: ``available`` at ``new_size``, or why not."""

    volume_id: str
    new_size: int
    reservation_id: str
    # available, or error_extending (backend), or available + reason (no space)
    status: VolumeStatus = VolumeStatus.AVAILABLE
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class VolumeReverted:
    """The outcome of a revert: ``available`` holding the snapshot's bytes, or ``error``
    and why (the volume's bytes are then its own or the snapshot's, not known which)."""

    volume_id: str
    snapshot_id: str
    revert_id: str  # the cast's: a late report of an earlier revert ends nothing
    status: VolumeStatus = VolumeStatus.AVAILABLE
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class SnapshotUpdate:
    snapshot_id: str
    status: SnapshotStatus
    reason: str | None = None

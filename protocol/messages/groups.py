"""Generic volume groups on the wire (client <-> gateway, gateway -> node): Cinder's
group types (3.11), groups (3.13) and group snapshots (3.14).

A group type is an admin's named set of ``group_specs`` (Cinder's, such as
``consistent_group_snapshot_enabled``) that a group is made with; a group holds
volumes of its volume types, all on the one backend it was placed on; a group snapshot
is a snapshot of each of them: taken at one instant (their node holds all their writes
meanwhile) when the group's type says ``consistent_group_snapshot_enabled="<is> True"``,
else one after the other (each volume's writes held while its own is taken), as
Cinder's generic groups. What the gateway checks is in
``actors.gateway.group_types``, ``actors.gateway.groups`` and
``actors.gateway.group_snapshots``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.states import GroupStatus
from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class GroupType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)  # an admin's to see

    @property
    def consistent_snapshots(self) -> bool:
        """Whether its groups' snapshots are taken at one instant (Cinder's
        ``is_group_a_cg_snapshot_type``)."""
        return self.group_specs.get(CONSISTENT_SNAPSHOTS) == "<is> True"


CONSISTENT_SNAPSHOTS = "consistent_group_snapshot_enabled"


@message
@dataclass(frozen=True, slots=True)
class GroupTypeCreate:
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class GroupTypeUpdate:
    """An admin's change to a group type (Cinder's group type update and group specs
    calls): ``name``, ``description`` and ``is_public`` change when given (not None; an
    empty description clears it); ``group_specs`` are merged into the type's and
    ``delete_specs`` names keys to drop."""

    type_id: str
    name: str | None = None
    description: str | None = None
    is_public: bool | None = None
    group_specs: dict[str, Any] = field(default_factory=dict)
    delete_specs: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class GroupTypeRef:
    """A group type by id or name (``default``: the cluster's default group type)."""

    type_id: str


@message
@dataclass(frozen=True, slots=True)
class GroupTypeList:
    group_types: tuple[GroupType, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class Group:
    id: str
    project_id: str
    status: GroupStatus
    group_type: str  # its group type's id
    volume_types: tuple[str, ...] = ()  # the ids of the volume types its volumes may have
    name: str | None = None
    description: str | None = None
    availability_zone: str | None = None
    host: str | None = None  # the backend its volumes live on (Cinder's, admins see it)
    created_at: float = 0.0
    volumes: tuple[str, ...] = ()  # its volumes' ids
    user_id: str | None = None
    reason: str | None = None  # why it is in error, when it is
    group_snapshot_id: str | None = None  # made from this group snapshot (3.14)
    source_group_id: str | None = None  # made as a copy of this group (3.14)
    updated_at: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class GroupCreateFromSource:
    """Cinder's ``create-from-src``: a new group of the source's types on its backend,
    with a volume made from each snapshot of ``group_snapshot_id`` or cloned from each
    volume of ``source_group_id`` (one of the two)."""

    name: str | None = None
    description: str | None = None
    group_snapshot_id: str | None = None
    source_group_id: str | None = None


@message
@dataclass(frozen=True, slots=True)
class GroupCreate:
    """Cinder's group create: a group type and volume types (names or ids), at least
    one; the group is placed on a backend of its zone that satisfies every one."""

    group_type: str
    volume_types: tuple[str, ...]
    name: str | None = None
    description: str | None = None
    availability_zone: str | None = None


@message
@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """Cinder's group update: a new name or description, volumes to add or remove."""

    group_id: str
    name: str | None = None
    description: str | None = None
    add_volumes: tuple[str, ...] = ()
    remove_volumes: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class GroupDelete:
    group_id: str
    delete_volumes: bool = False  # Cinder's delete-volumes: its volumes are deleted too


@message
@dataclass(frozen=True, slots=True)
class GroupRef:
    group_id: str


@message
@dataclass(frozen=True, slots=True)
class GroupListRequest:
    all_projects: bool = False  # an admin's: every project's (or project_id's)
    project_id: str | None = None


@message
@dataclass(frozen=True, slots=True)
class GroupList:
    groups: tuple[Group, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class GroupResetStatus:
    """An admin's (Cinder's 3.20 ``reset_status``): the group's status, nothing else."""

    group_id: str
    status: str


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    id: str
    project_id: str
    group_id: str
    status: str  # its snapshots': creating, available, error, deleting, error_deleting
    group_type_id: str
    name: str | None = None
    description: str | None = None
    created_at: float = 0.0
    snapshots: tuple[str, ...] = ()  # its snapshots' ids
    user_id: str | None = None


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotCreate:
    group_id: str
    name: str | None = None
    description: str | None = None


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotRef:
    group_snapshot_id: str


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotResetStatus:
    """An admin's (Cinder's 3.19 ``reset_status``): a group snapshot's status is its
    snapshots', so each of them is reset to ``status`` (``available`` or ``error``)."""

    group_snapshot_id: str
    status: str


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotListRequest:
    all_projects: bool = False  # an admin's: every project's (or project_id's)
    project_id: str | None = None
    group_id: str | None = None  # only this group's


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotList:
    group_snapshots: tuple[GroupSnapshot, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class GroupSnapshotMember:
    volume_id: str
    snapshot_id: str


@message
@dataclass(frozen=True, slots=True)
class NodeCreateGroupSnapshot:
    """Gateway -> node: a snapshot of each member volume, taken while the node holds
    their writes (``consistent``: all of them, a crash-consistent set; else each
    volume's while its own is taken); each reported as ``snapshot.update``."""

    group_snapshot_id: str
    members: tuple[GroupSnapshotMember, ...]
    consistent: bool = True
    # sent again by a gateway started after its last process died: the node was fenced
    # for its snapshots (``node.fence_creates``) and makes them only with this token
    fence: str = ""

"""Adopting what a backend already holds, and letting go of it: Cinder's volume and
snapshot manage and unmanage (an admin's).

    client  → gateway   volume.manage       a file already on a node's backend becomes a
                                            volume (``VolumeManage``; the answer is the
                                            new volume, ``creating``, as a create's)
                        volume.manageable   what a node's backend holds that could be
                                            managed (``ManageableRequest``)
                        volume.unmanage     a volume leaves cinderblock; its data stays on
                                            the backend (``VolumeUnmanage``)
                        snapshot.manage     a file on the node of a volume becomes a
                                            snapshot of it (``SnapshotManage``)
                        snapshot.manageable ``ManageableRequest``, for snapshots
                        snapshot.unmanage   as volume.unmanage (``SnapshotUnmanage``)
    gateway → node      node.manageable     the node's answer to ``volume.manageable``
                                            (or, with ``snapshot``, ``snapshot.manageable``),
                                            and the size of what is to be managed
                        (a manage is a ``node.create_volume`` whose ScheduleRequest names
                        a ``manage_ref``, or a ``node.create_snapshot`` that names one; an
                        unmanage a ``node.delete_volume`` or ``node.delete_snapshot`` with
                        ``unmanage`` set)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.schema import message

MANAGEABLE_PAGE_MAX = 1000  # entries in one answer of node.manageable and volume.manageable


@message
@dataclass(frozen=True, slots=True)
class VolumeManage:
    """Cinder's ``os-volume-manage`` body. ``host`` names the node (``node-1``, its
    backend ``node-1@file`` or pool ``node-1@file#file``); ``source_name`` is the
    backend's name for the data (for the file backend, a file in its directory)."""

    host: str
    source_name: str
    name: str | None = None
    description: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: Any = field(default_factory=dict)
    bootable: bool = False
    watch: bool = False  # push the new volume's status changes to the caller


@message
@dataclass(frozen=True, slots=True)
class VolumeUnmanage:
    volume_id: str
    watch: bool = False  # push status changes (down to "deleted") to the caller


@message
@dataclass(frozen=True, slots=True)
class SnapshotManage:
    """Cinder's ``os-snapshot-manage`` body: ``source_name`` on the node of volume
    ``volume_id`` becomes a snapshot of it."""

    volume_id: str
    source_name: str
    name: str | None = None
    description: str | None = None
    metadata: Any = field(default_factory=dict)
    watch: bool = False  # push the new snapshot's status changes to the caller


@message
@dataclass(frozen=True, slots=True)
class SnapshotUnmanage:
    snapshot_id: str
    watch: bool = False  # push status changes (down to "deleted") to the caller


@message
@dataclass(frozen=True, slots=True)
class ManageableRequest:
    """A page of one node's manageable volumes, by name after ``marker``."""

    host: str
    marker: str | None = None
    limit: int | None = None


@message
@dataclass(frozen=True, slots=True)
class ManageableVolume:
    """Cinder's manageable volume (or snapshot): ``reference`` is what
    ``VolumeManage.source_name`` (``SnapshotManage.source_name``) takes; ``size`` is in
    GiB, rounded up (what the volume would be)."""

    reference: str
    size: int
    safe_to_manage: bool
    reason_not_safe: str | None = None
    cinder_id: str | None = None  # the volume (snapshot) it already is, when it is one


@message
@dataclass(frozen=True, slots=True)
class ManageableList:
    host: str  # the node's backend (``node-1@file``)
    volumes: tuple[ManageableVolume, ...] = ()
    capabilities: dict[str, Any] = field(default_factory=dict)  # the backend's, for a type
    next_marker: str | None = None  # more follow this page, from this name on


@message
@dataclass(frozen=True, slots=True)
class NodeManageable:
    """``name``: that one entry only (an empty answer if the backend has no such name);
    ``snapshot``: what it would become is a snapshot (else a volume)."""

    name: str | None = None
    marker: str | None = None
    limit: int = MANAGEABLE_PAGE_MAX
    snapshot: bool = False

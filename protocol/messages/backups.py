"""Message bodies for backups (Cinder's volume backups): a volume's (or one of its
snapshots') data copied by its storage node into the backup repository, and written
back into a volume on request.

Who sends what (every op is listed in ``protocol.messages.ops``)::

    client  → gateway   backup.create  backup.show  backup.list  backup.update
                        backup.delete  backup.restore
                        backup.reset_state  backup.export_record  backup.import_record
                        (an admin's)
    gateway → node      node.create_backup  node.delete_backup  node.restore_backup
                        node.check_backup (a call: is this backup in your repository?)
    node    → gateway   backup.made  backup.deleted  backup.restored

A restore into a new volume is a volume create naming the backup
(``VolumeCreate.backup_id``): the node that makes the volume writes the backup's data
into it before it reports it available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cinderblock.protocol.states import BackupStatus
from cinderblock.protocol.wire.schema import message

# ---- client → gateway ------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class BackupCreate:
    """Cinder's backup create: of ``volume_id`` (available, or in use with ``force``),
    or of its snapshot ``snapshot_id`` (available). An ``incremental`` one has for
    parent the volume's latest available backup (for a snapshot's: the latest of the
    data before the snapshot) and stores only what changed since. ``container`` is kept
    and shown, as Cinder's posix driver's subdirectory name is; the repository does not
    use it."""

    volume_id: str
    name: str | None = None
    description: str | None = None
    force: bool = False
    incremental: bool = False
    snapshot_id: str | None = None
    container: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None


@message
@dataclass(frozen=True, slots=True)
class Backup:
    id: str
    project_id: str
    volume_id: str
    status: BackupStatus
    size: int  # GiB: the volume's when the backup was made
    object_count: int = 0  # chunks the repository holds (sparse ranges hold none)
    user_id: str | None = None
    name: str | None = None
    description: str | None = None
    snapshot_id: str | None = None
    container: str | None = None
    availability_zone: str | None = None
    fail_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    data_timestamp: float = 0.0  # when the data was the volume's (a snapshot's: its time)
    is_incremental: bool = False
    has_dependent_backups: bool = False
    restore_volume_id: str | None = None  # the volume a restore is writing, while it does


@message
@dataclass(frozen=True, slots=True)
class BackupRef:
    backup_id: str


@message
@dataclass(frozen=True, slots=True)
class BackupListRequest:
    """A page of backups, newest first: the caller's project's, or with
    ``all_projects`` (an admin's) every project's or ``project_id``'s; filtered by
    ``status``, ``volume_id`` and ``name`` (Cinder's filters for a user)."""

    all_projects: bool = False
    project_id: str | None = None
    status: str | None = None
    volume_id: str | None = None
    name: str | None = None
    limit: int | None = None
    marker: str | None = None
    with_count: bool = False


@message
@dataclass(frozen=True, slots=True)
class BackupList:
    backups: tuple[Backup, ...] = ()
    next_marker: str | None = None  # the marker of the next page; None on the last
    count: int | None = None  # how many the listing holds in all (``with_count``)


@message
@dataclass(frozen=True, slots=True)
class BackupModify:
    """Cinder's backup update (3.9, metadata 3.43): the fields given change (``None``:
    not given); ``metadata`` replaces the backup's; ``cleared`` names the text fields
    (``name``, ``description``) given as null, which become none."""

    backup_id: str
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    cleared: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class BackupRestore:
    """Write the backup's data into ``volume_id`` (available, at least the backup's
    size, its data replaced), or, with none, into a new volume named ``name`` (Cinder's
    ``restore_backup_<id>`` by default)."""

    backup_id: str
    volume_id: str | None = None
    name: str | None = None


@message
@dataclass(frozen=True, slots=True)
class BackupRestoreInfo:
    backup_id: str
    volume_id: str
    volume_name: str | None = None


@message
@dataclass(frozen=True, slots=True)
class BackupResetState:
    """An admin's os-reset_status of a backup: to ``available`` or ``error``."""

    backup_id: str
    status: str


# ---- gateway → node ----------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class NodeCreateBackup:
    """Copy the volume's data (or its snapshot's) into the repository as ``backup_id``."""

    backup_id: str
    volume_id: str
    size: int
    snapshot_id: str | None = None
    parent_id: str | None = None  # an incremental backup's: the chunks it may share


@message
@dataclass(frozen=True, slots=True)
class NodeDeleteBackup:
    backup_id: str


@message
@dataclass(frozen=True, slots=True)
class NodeRestoreBackup:
    """Replace the volume's data with the backup's (all or nothing)."""

    backup_id: str
    volume_id: str


@message
@dataclass(frozen=True, slots=True)
class ExportedBackup:
    """Cinder's backup record (``export_record``'s answer, ``import_record``'s request):
    which backup service made the backup, and a description of it in base64 (JSON)."""

    backup_service: str
    backup_url: str


@message
@dataclass(frozen=True, slots=True)
class NodeCheckBackup:
    """Whether the node's repository holds ``backup_id`` whole, of ``volume_id`` and
    ``size`` GiB (an import's check); the answer is a ``CheckedBackup``."""

    backup_id: str
    volume_id: str
    size: int


@message
@dataclass(frozen=True, slots=True)
class CheckedBackup:
    object_count: int


# ---- node → gateway -----------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class BackupMade:
    """A backup's end on its node: made (``reason`` None), or not, and why."""

    backup_id: str
    object_count: int = 0
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class BackupDeleted:
    """A backup's data gone from the repository (``reason`` None), or not, and why."""

    backup_id: str
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class BackupRestored:
    """A restore's end: done (``reason`` None), or not, and why. The volume's data is
    replaced whole or not at all, so a failed restore leaves it as it was."""

    backup_id: str
    volume_id: str
    reason: str | None = None

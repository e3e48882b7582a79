"""Status words and the moves allowed between them: one table per state machine.

Volume statuses are Cinder's. Flow and task states are TaskFlow's:

    task:  PENDING → RUNNING → SUCCESS
                        └──→ FAILURE
           SUCCESS/FAILURE → REVERTING → REVERTED (or REVERT_FAILURE)
    flow:  PENDING → RUNNING → SUCCESS | FAILURE → REVERTING → REVERTED | REVERT_FAILURE

Each machine has one ``check_<kind>_move``, the only place a move is judged; it
raises InvalidState. A flow moves through the same states as its tasks, judged by
the same ``check_task_move``. Statuses stay these enums from the node's report
to the client's wait (the wire schema turns the strings back into members);
``*_ERRORS`` say which are failures (never ``startswith("error")``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

E = TypeVar("E", bound=StrEnum)


class VolumeStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    DELETING = "deleting"
    UNMANAGING = "unmanaging"  # leaving cinderblock; its data stays on the backend
    EXTENDING = "extending"
    REVERTING = "reverting"  # to its latest snapshot (3.40)
    AWAITING_TRANSFER = "awaiting-transfer"  # offered to another project
    BACKING_UP = "backing-up"  # its node copies it into the backup repository
    RESTORING_BACKUP = "restoring-backup"  # its node writes a backup's data into it
    MAINTENANCE = "maintenance"  # its data moves to another backend (a migration)
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    ERROR_EXTENDING = "error_extending"
    DELETED = "deleted"  # the last status a watcher sees; the record is gone


V = VolumeStatus
VOLUME_MOVES: dict[VolumeStatus, frozenset[VolumeStatus]] = {
    V.CREATING: frozenset({V.AVAILABLE, V.ERROR}),
    V.AVAILABLE: frozenset({V.DELETING, V.EXTENDING, V.REVERTING, V.RESERVED, V.ERROR,
                            V.AWAITING_TRANSFER, V.UNMANAGING, V.BACKING_UP,
                            V.RESTORING_BACKUP, V.MAINTENANCE,
                            V.ATTACHING}),  # attaching: Cinder's os-reserve
    V.RESERVED: frozenset({V.ATTACHING, V.AVAILABLE, V.IN_USE}),
    V.ATTACHING: frozenset({V.IN_USE, V.AVAILABLE, V.RESERVED, V.ERROR}),
    V.IN_USE: frozenset({V.DETACHING, V.AVAILABLE, V.RESERVED, V.ATTACHING, V.EXTENDING,
                         V.BACKING_UP}),  # backing-up: a backup with force
    # detaching → reserved or attaching: an os-begin_detaching's volume follows its other
    # attachments (a multiattach volume's) when its last attached one goes
    V.DETACHING: frozenset({V.AVAILABLE, V.IN_USE, V.RESERVED, V.ATTACHING}),
    V.DELETING: frozenset({V.ERROR_DELETING, V.DELETED}),
    V.UNMANAGING: frozenset({V.ERROR, V.DELETED}),  # deleted: gone from here, kept there
    # an extend ends in what the volume's attachments make it (in-use: 3.42; reserved or
    # attaching: a multiattach volume's other attachments, its attached one gone meanwhile)
    V.EXTENDING: frozenset({V.AVAILABLE, V.IN_USE, V.RESERVED, V.ATTACHING,
                            V.ERROR_EXTENDING}),
    V.REVERTING: frozenset({V.AVAILABLE, V.ERROR}),
    V.AWAITING_TRANSFER: frozenset({V.AVAILABLE}),  # accepted, or the transfer deleted
    # a backup ends in what the volume's attachments make it (it may be in use)
    V.BACKING_UP: frozenset({V.AVAILABLE, V.IN_USE, V.RESERVED, V.ATTACHING}),
    # a restore replaces the volume's data whole or not at all: it ends available
    V.RESTORING_BACKUP: frozenset({V.AVAILABLE}),
    # a migration ends available, on the new backend or (failed) on the old one
    V.MAINTENANCE: frozenset({V.AVAILABLE}),
    V.ERROR: frozenset({V.DELETING, V.UNMANAGING}),
    V.ERROR_DELETING: frozenset({V.DELETING}),
    V.ERROR_EXTENDING: frozenset({V.DELETING, V.AVAILABLE, V.UNMANAGING}),
    V.DELETED: frozenset(),
}
VOLUME_ERRORS = frozenset({V.ERROR, V.ERROR_DELETING, V.ERROR_EXTENDING})
# A volume in one of these is held by an operation that sets its status when it ends (by
# its attachments): an attachment made, completed or deleted meanwhile leaves the status.
HELD_BY_AN_OPERATION = frozenset({V.EXTENDING, V.BACKING_UP})


class TaskState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVERTING = "REVERTING"
    REVERTED = "REVERTED"
    REVERT_FAILURE = "REVERT_FAILURE"


S = TaskState
TASK_MOVES: dict[TaskState, frozenset[TaskState]] = {
    S.PENDING: frozenset({S.RUNNING}),
    S.RUNNING: frozenset({S.SUCCESS, S.FAILURE}),
    S.SUCCESS: frozenset({S.REVERTING}),
    S.FAILURE: frozenset({S.REVERTING}),
    S.REVERTING: frozenset({S.REVERTED, S.REVERT_FAILURE}),
    S.REVERTED: frozenset(),
    S.REVERT_FAILURE: frozenset(),
}


def check_volume_move(old: VolumeStatus, new: VolumeStatus) -> None:
    if new not in VOLUME_MOVES[old]:
        raise InvalidState(
            f"volume status cannot go from {old.value} to {new.value}",
            {"from": old.value, "to": new.value},
        )


def check_task_move(old: TaskState, new: TaskState) -> None:
    """A task's move, and a flow's (a flow moves through the same states)."""
    if new not in TASK_MOVES[old]:
        raise InvalidState(f"task state cannot go from {old} to {new}")


def statuses(kind: type[E], wanted: str | Iterable[str]) -> frozenset[E]:
    """What a caller asked for (a status, or several, as words or members) as members
    of ``kind``; an unknown word is an InvalidInput naming it and the known ones."""
    words = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    known = {member.value: member for member in kind}
    unknown = [w for w in words if w not in known]
    if unknown:
        raise InvalidInput(f"unknown {kind.__name__} {unknown[0]!r}; one of {sorted(known)}",
                           {"status": unknown[0]})
    return frozenset(known[w] for w in words)


# ---- snapshots (Cinder's snapshot statuses) -----------------------------------
#
#   creating → available | error;  available | error | error_deleting → deleting
#   deleting → deleted (the record goes) | error_deleting
#   available → restoring (its volume reverts to it) → available
#   available | error → unmanaging → deleted (the record goes, the data stays) | error
#   available → backing-up (a backup of it is made) → available


class SnapshotStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    UNMANAGING = "unmanaging"  # leaving cinderblock; its data stays on the backend
    RESTORING = "restoring"
    BACKING_UP = "backing-up"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    DELETED = "deleted"


P = SnapshotStatus
SNAPSHOT_MOVES: dict[SnapshotStatus, frozenset[SnapshotStatus]] = {
    P.CREATING: frozenset({P.AVAILABLE, P.ERROR}),
    P.AVAILABLE: frozenset({P.DELETING, P.RESTORING, P.UNMANAGING, P.BACKING_UP}),
    P.RESTORING: frozenset({P.AVAILABLE}),
    P.BACKING_UP: frozenset({P.AVAILABLE}),
    P.ERROR: frozenset({P.DELETING, P.UNMANAGING}),
    P.DELETING: frozenset({P.DELETED, P.ERROR_DELETING}),
    P.UNMANAGING: frozenset({P.DELETED, P.ERROR}),
    P.ERROR_DELETING: frozenset({P.DELETING}),
    P.DELETED: frozenset(),
}
SNAPSHOT_ERRORS = frozenset({P.ERROR, P.ERROR_DELETING})


def check_snapshot_move(old: SnapshotStatus, new: SnapshotStatus) -> None:
    if new not in SNAPSHOT_MOVES[old]:
        raise InvalidState(
            f"snapshot status cannot go from {old.value} to {new.value}",
            {"from": old.value, "to": new.value},
        )


# ---- attachments (Cinder's v3 attachments) ---------------------------------
#
#   create → reserved ─update→ attaching ─complete→ attached
#   delete: reserved | attaching | attached → detaching → detached (the record goes)
#           a node that cannot remove the export leaves error_detaching; delete again.
#
# A volume's status follows its attachments (``volume_status_for``): any attached
# (or one whose export may still be up) → in-use, else any attaching → attaching,
# else any reserved → reserved, else available.


class AttachmentStatus(StrEnum):
    RESERVED = "reserved"
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
    DETACHED = "detached"
    ERROR_DETACHING = "error_detaching"


A = AttachmentStatus
ATTACHMENT_MOVES: dict[AttachmentStatus, frozenset[AttachmentStatus]] = {
    A.RESERVED: frozenset({A.ATTACHING, A.DETACHING}),
    A.ATTACHING: frozenset({A.ATTACHED, A.RESERVED, A.DETACHING}),
    A.ATTACHED: frozenset({A.DETACHING}),
    A.DETACHING: frozenset({A.DETACHED, A.ERROR_DETACHING}),
    A.ERROR_DETACHING: frozenset({A.DETACHING}),
    A.DETACHED: frozenset(),
}
EXPORTED = frozenset({A.ATTACHED, A.DETACHING, A.ERROR_DETACHING})


def check_attachment_move(old: AttachmentStatus, new: AttachmentStatus) -> None:
    if new not in ATTACHMENT_MOVES[old]:
        raise InvalidState(
            f"attachment status cannot go from {old.value} to {new.value}",
            {"from": old.value, "to": new.value},
        )


def volume_status_for(attachments: Iterable[AttachmentStatus]) -> VolumeStatus:
    """The status a volume has because of these attachments."""
    present = set(attachments)
    if present & EXPORTED:
        return V.IN_USE
    if A.ATTACHING in present:
        return V.ATTACHING
    if A.RESERVED in present:
        return V.RESERVED
    return V.AVAILABLE


# ---- backups (Cinder's backup statuses) ------------------------------------------
#
#   creating → available | error;  available | error → deleting
#   deleting → deleted (the record goes) | error_deleting → deleting
#   available → restoring (its data written into a volume) → available
#   an admin's reset: available | error ↔ error | available


class BackupStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    RESTORING = "restoring"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    DELETED = "deleted"


B = BackupStatus
BACKUP_MOVES: dict[BackupStatus, frozenset[BackupStatus]] = {
    B.CREATING: frozenset({B.AVAILABLE, B.ERROR}),
    B.AVAILABLE: frozenset({B.DELETING, B.RESTORING, B.ERROR}),
    B.RESTORING: frozenset({B.AVAILABLE}),
    B.ERROR: frozenset({B.DELETING, B.AVAILABLE}),
    B.DELETING: frozenset({B.DELETED, B.ERROR_DELETING}),
    B.ERROR_DELETING: frozenset({B.DELETING}),
    B.DELETED: frozenset(),
}
BACKUP_ERRORS = frozenset({B.ERROR, B.ERROR_DELETING})


def check_backup_move(old: BackupStatus, new: BackupStatus) -> None:
    if new not in BACKUP_MOVES[old]:
        raise InvalidState(
            f"backup status cannot go from {old.value} to {new.value}",
            {"from": old.value, "to": new.value},
        )


class GroupStatus(StrEnum):
    """A generic volume group's (Cinder's ``GroupStatus``, those it passes through here):
    it is made ``available`` at once (placing it is the gateway's choice of backend,
    which no node work follows), or, made from a source, ``creating`` while its volumes
    are made; ``deleting`` while its volumes are deleted, then gone."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    DELETED = "deleted"

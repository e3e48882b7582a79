"""Status words and the moves allowed between them: one table per state machine.

Volume statuses are Cinder's. Flow and task states are TaskFlow's:

    task:  PENDING → RUNNING → SUCCESS
                        └──→ FAILURE
           SUCCESS/FAILURE → REVERTING → REVERTED (or REVERT_FAILURE)
    flow:  PENDING → RUNNING → SUCCESS | FAILURE → REVERTING → REVERTED | REVERT_FAILURE

``check_move`` is the only place a move is judged; it raises InvalidState.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.errors import InvalidState


class VolumeStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    DELETING = "deleting"
    EXTENDING = "extending"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    ERROR_EXTENDING = "error_extending"


V = VolumeStatus
VOLUME_MOVES: dict[VolumeStatus, frozenset[VolumeStatus]] = {
    V.CREATING: frozenset({V.AVAILABLE, V.ERROR}),
    V.AVAILABLE: frozenset({V.DELETING, V.EXTENDING, V.RESERVED, V.ERROR}),
    V.RESERVED: frozenset({V.ATTACHING, V.AVAILABLE, V.IN_USE}),
    V.ATTACHING: frozenset({V.IN_USE, V.AVAILABLE, V.RESERVED, V.ERROR}),
    V.IN_USE: frozenset({V.DETACHING, V.AVAILABLE, V.RESERVED, V.ATTACHING}),
    V.DETACHING: frozenset({V.AVAILABLE, V.IN_USE}),
    V.DELETING: frozenset({V.ERROR_DELETING}),
    V.EXTENDING: frozenset({V.AVAILABLE, V.ERROR_EXTENDING}),
    V.ERROR: frozenset({V.DELETING}),
    V.ERROR_DELETING: frozenset({V.DELETING}),
    V.ERROR_EXTENDING: frozenset({V.DELETING, V.AVAILABLE}),
}
TERMINAL_CREATE = frozenset({V.AVAILABLE, V.ERROR})


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
# A flow moves through the same states as its tasks.
FlowState = TaskState
FLOW_MOVES = TASK_MOVES


def check_volume_move(old: VolumeStatus, new: VolumeStatus) -> None:
    if new not in VOLUME_MOVES[old]:
        raise InvalidState(
            f"volume status cannot go from {old.value} to {new.value}",
            {"from": old.value, "to": new.value},
        )


def check_task_move(old: TaskState, new: TaskState) -> None:
    if new not in TASK_MOVES[old]:
        raise InvalidState(f"task state cannot go from {old} to {new}")

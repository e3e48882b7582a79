"""Reconciling work that a crash left half-done: the decisions, as plain code.

A volume or snapshot can stay in a transitional status for good when the
process doing its work dies: a storage node killed mid-create or mid-delete,
a scheduler or gateway restarted with a create cast still in its queue. Cinder
mends this in the volume manager's ``init_host`` (``creating`` → ``error``,
``deleting`` → delete again). Here the gateway, which owns the records, looks
every ``reconcile_every_s`` for records that have not moved for
``reconcile_after_s``, asks the nodes about them (``node.probe``: is an
operation on it running there now, is it on the backend) and then:

=========================  =============================================
stuck in                   when no node is working on it
=========================  =============================================
volume ``creating``        ``available`` on the node that has it, if one
                           does (drivers name a volume only once it is
                           whole, however it is made: only its report was
                           lost); ``error`` if none has it
volume ``extending``       the extend is sent to its node again (an
                           extend to a size the volume has is done
                           there; its report is known by its
                           reservation); ``error_extending``, its quota
                           reservation rolled back, for an extend begun
                           before the size it grows to was kept
volume ``reverting``       the revert is sent to its node again (a revert
                           done twice is the same); ``error`` if no
                           snapshot of it is ``restoring``
volume/snapshot            the delete is sent to its node again (deletes
``deleting``               are idempotent there); one that names no node
                           is sent to the node that has it, or, when none
                           has it, finished by the gateway alone (row
                           removed, quota given back)
volume/snapshot
``unmanaging``             as a delete, with the unmanage sent again (an
                           unmanage of what a node no longer holds as a
                           volume is done there): never a delete
snapshot ``creating``      ``available`` on the node that has it (as a
                           volume); ``error`` if none has it
attachment ``attaching``   its export is closed on its node and it is
                           ``reserved`` again (update it once more)
attachment ``detaching``   its export is closed and the detach finished;
                           ``error_detaching`` if the node refuses
=========================  =============================================

Besides, every round rolls back the reservation of an extend whose volume is
no longer extending (its report, or the mending above, could not reach the
quota actor), so that no extend's reservation waits for its expiry. Attachments
are mended by the gateway alone (their flows run there): any that has not moved
for ``reconcile_after_s`` is far past every node call's deadline.

Nothing is decided about a record while a node that might hold it does not
answer: a node that is down or slow may still be working on it.

Four of these verdicts hold at any age (``SAFE_AT_ONCE``): a create its node holds
whole and works on no more is finished, and a delete or unmanage, an extend or a
revert sent again to its node is idempotent there (an extend's report is taken only
under its reservation, a revert's under its id, once; a volume ``reverting`` takes no
writes meanwhile). A gateway that starts applies them at once to what its
previous process left (``Reconciler.finish_previous``), not after
``reconcile_after_s``; the others wait, as the work may still be on its way. There, a
create no node holds or works on is not failed but fenced on the nodes and sent again
(``lost_casts.py``): that process may have died before it cast it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cinderblock.protocol.states import SnapshotStatus, VolumeStatus


class Do(StrEnum):
    AVAILABLE = "available"  # made whole on its node: only the report was lost
    ERROR = "error"
    ERROR_EXTENDING = "error_extending"
    REDO_DELETE = "redo_delete"
    REDO_REVERT = "redo_revert"
    REDO_EXTEND = "redo_extend"
    FINISH_DELETE = "finish_delete"  # nothing on any backend: the gateway removes it


SAFE_AT_ONCE = frozenset({Do.AVAILABLE, Do.REDO_DELETE, Do.REDO_EXTEND, Do.REDO_REVERT})


@dataclass(frozen=True, slots=True)
class Stuck:
    kind: str  # "volume" or "snapshot"
    id: str
    status: VolumeStatus | SnapshotStatus  # creating, deleting, unmanaging, extending, ...
    node: str | None  # the node (its host name) that holds it, when the record says
    since: float  # the record's updated_at when it was found: changed since = not stuck
    extend_to: int = 0  # an extending volume's target size (GiB), when kept


@dataclass(frozen=True, slots=True)
class Answer:
    """One node's reply to a probe."""

    busy: frozenset[str]
    volumes: frozenset[str]
    snapshots: frozenset[str]

    def has(self, stuck: Stuck) -> bool:
        return stuck.id in (self.volumes if stuck.kind == "volume" else self.snapshots)


@dataclass(frozen=True, slots=True)
class Action:
    stuck: Stuck
    do: Do
    node: str | None  # where the action applies (for an error: where the thing is)
    reason: str


def shared(volumes: list[Stuck], snapshots: list[Stuck], most: int) -> list[Stuck]:
    """At most ``most`` of the stuck volumes and snapshots (each list first to last) for
    one probe: each kind keeps at least half of it when it has that many, and what one
    leaves unused goes to the other, so that volumes stuck by the thousand (left alone
    while their nodes work on them) never keep every snapshot from being looked at."""
    snapshots = snapshots[:max(most // 2, most - len(volumes))]
    return volumes[:most - len(snapshots)] + snapshots


class ProbeTurns:
    """Which stuck records a probe asks about: those asked about least lately first
    (never asked first), then the oldest, shared between the kinds (``shared``). A probe
    asks about ``most`` at most, so when more than that stay busy on their nodes (a node
    working through thousands of creates) the oldest alone would be asked about round
    after round, and a newer one, whose create a dead scheduler lost, never. In turns,
    each of ``n`` records of one kind found round after round is asked about within
    ``ceil(n / (most // 2))`` probes (``ceil(n / most)`` when the other kind has none)."""

    def __init__(self) -> None:
        self.probes = 0
        self.asked_in: dict[str, int] = {}  # a stuck record's id -> its last probe's number

    def pick(self, volumes: list[Stuck], snapshots: list[Stuck], most: int) -> list[Stuck]:
        """At most ``most`` of ``volumes`` and ``snapshots`` (each oldest first); what
        is no longer among them is forgotten."""
        asked_in = self.asked_in
        self.asked_in = {s.id: asked_in[s.id] for s in (*volumes, *snapshots)
                         if s.id in asked_in}
        return shared(sorted(volumes, key=self._last_asked),  # sorted() is stable
                      sorted(snapshots, key=self._last_asked), most)

    def asked(self, stuck: Iterable[Stuck]) -> None:
        self.probes += 1
        for s in stuck:
            self.asked_in[s.id] = self.probes

    def _last_asked(self, s: Stuck) -> int:
        return self.asked_in.get(s.id, 0)


def nodes_to_ask(stuck: Stuck, nodes: Iterable[str]) -> list[str]:
    """The record's own node, or every node when the record names none."""
    return [stuck.node] if stuck.node else list(nodes)


def decide(stuck: Iterable[Stuck], answers: Mapping[str, Answer | None]) -> list[Action]:
    """What to do with each stuck record, given every node's answer (None: no answer)."""
    actions = []
    for s in stuck:
        asked = nodes_to_ask(s, answers)
        replies = [answers.get(n) for n in asked]
        if not asked or any(r is None or s.id in r.busy for r in replies):
            continue  # someone is working on it, or might be
        action = _action(s, [n for n, r in zip(asked, replies, strict=True) if r and r.has(s)])
        if action is not None:
            actions.append(action)
    return actions


def extend_failed(s: Stuck) -> Action:
    """An interrupted extend that cannot be sent again (begun before its size was kept,
    or its reservation or host gone): ``error_extending``."""
    return Action(s, Do.ERROR_EXTENDING, s.node, f"the extend was interrupted on {s.node} "
                  "(it restarted); an admin may reset the volume to available")


def _action(s: Stuck, holders: list[str]) -> Action | None:
    if s.status in (VolumeStatus.CREATING, SnapshotStatus.CREATING):
        if holders:
            # Drivers name a volume (snapshot) only once it is whole, however it is made
            # (a copy, a backup's data, for a manage the data adopted): what the node has
            # is it, only its report was lost.
            return Action(s, Do.AVAILABLE, holders[0], f"the create finished on {holders[0]}, "
                          "and its report was lost (the node or the gateway restarted)")
        where = f"{s.node} neither has it nor is" if s.node else "no storage node has it or is"
        return Action(s, Do.ERROR, None, f"the create was lost: {where} working on it "
                      "(an actor restarted mid-create)")
    if s.status is VolumeStatus.EXTENDING:
        if s.extend_to:
            return Action(s, Do.REDO_EXTEND, s.node, f"the extend to {s.extend_to} GiB was "
                          f"interrupted on {s.node} (it restarted, or its report was lost); "
                          "sent again")
        return extend_failed(s)
    if s.status is VolumeStatus.REVERTING:
        return Action(s, Do.REDO_REVERT, s.node, f"the revert was interrupted on {s.node} "
                      "(it restarted, or its report was lost); sent again")
    if s.status in (VolumeStatus.DELETING, VolumeStatus.UNMANAGING, SnapshotStatus.DELETING,
                    SnapshotStatus.UNMANAGING):
        unmanage = s.status in (VolumeStatus.UNMANAGING, SnapshotStatus.UNMANAGING)
        what = "unmanage" if unmanage else "delete"
        if s.node:
            return Action(s, Do.REDO_DELETE, s.node, f"the {what} was interrupted; sent again")
        if holders:
            return Action(s, Do.REDO_DELETE, holders[0], f"the {what} was interrupted; "
                          f"{holders[0]} has it: sent there")
        return Action(s, Do.FINISH_DELETE, None, f"the {what} was interrupted before it "
                      "reached a node, and no node has it: removed")
    return None

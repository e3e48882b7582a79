"""Creates a dead scheduler may have taken with it, sent again: the plain code.

The gateway casts each create to the scheduler (``schedule.create``), which places it
and casts it to a node. A cast has no answer, so a scheduler killed between the two
took the create with it, and its volume stayed ``creating`` until the reconciler made
it ``error`` (``reconcile_after_s``). Now the gateway remembers each create it cast
while its volume is ``creating`` with no host (``ScheduleCasts``) and watches its
connection to the scheduler. When that closes (the scheduler died, or was stopped; or
the gateway dialled it again, unanswered on a connection made anew:
``actors.runtime.redial``) it fences the creates cast before, on every node
(``node.fence_creates``): a node that works on one, or holds it, says so (the
scheduler had passed it on), and for the rest it takes from then on only a cast
carrying the fence's token. The creates every node
fenced are sent again with the token (``fenced_everywhere``), to the scheduler its
supervisor starts again (the cast waits in the socket until it is back). The dead
scheduler's cast, should it still be in a node's line, is dropped there, so the create
is made once. A node that does not answer leaves them all to the reconciler, as before.

A create sent again is on its way (the new scheduler waits for the nodes' stats before
it places anything): the reconciler, which cannot see it there, does not judge it lost
until ``RESENT_GRACE_S`` (or its own ``reconcile_after_s``, if longer) after the resend
(``ScheduleCasts.resent_at``). Judged lost and deleted meanwhile, it would be made on a
node for a volume no longer there.

A gateway that dies can take a create with it too: its volume's row committed, the cast
not yet out of the process. The next gateway process finds such a volume ``creating``
with no host and, once every node has answered that none holds it or works on it
(``Reconciler.finish_previous``), fences it and sends it again the same way, within
seconds of its start rather than after ``reconcile_after_s``. What the cast named is
rebuilt from the volume's record and its ``CreateRoute`` (the hints' backends, a
backup's id, a manage's backend and name: kept in ``create_routes``, a row only for a
create that had any): ``request_again``. A copy of a snapshot or a volume goes again to
its source's node, a manage to the node the admin named, without the scheduler
(``Cast.backend``); a scheduler's death does not send those again. A snapshot's create
left the same way is fenced on its volume's node and sent again there
(``Gateway.send_left_creates_again``); a group snapshot's snapshots (one cast makes
them all) are fenced together on the group's node and the group snapshot, all fenced,
is sent again there whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.protocol.messages.reconcile import NodeFenceReply
from cinderblock.protocol.messages.scheduling import ScheduleRequest
from cinderblock.protocol.wire.codec import Context

RESENT_GRACE_S = 30.0  # a create sent again is not judged lost sooner than this after


@dataclass(frozen=True, slots=True)
class Cast:
    request: ScheduleRequest
    ctx: Context
    at: float  # when it was cast (monotonic)
    # the node (host@backend) a copy or a manage goes to without the scheduler; None:
    # the scheduler's to place
    backend: str | None = None


class ScheduleCasts:
    """The creates cast to the scheduler whose volume is not placed yet, and the copies
    and manages a gateway started again sent to their node (``Cast.backend``)."""

    def __init__(self) -> None:
        self._casts: dict[str, Cast] = {}
        self._resent: dict[str, float] = {}  # volume id -> when sent again (wall clock)

    def __len__(self) -> int:
        return len(self._casts)

    def sent(self, request: ScheduleRequest, ctx: Context, now: float,
             backend: str | None = None) -> None:
        self._casts[request.volume_id] = Cast(request, ctx, now, backend)

    def resending(self, volume_id: str, wall: float) -> None:
        self._resent[volume_id] = wall

    def resent_at(self, volume_id: str) -> float | None:
        """When the create of this volume was last sent again (wall clock), if it was
        and it is not placed yet."""
        return self._resent.get(volume_id)

    def prune(self, unplaced: Callable[[str], bool]) -> None:
        """Forget the casts whose volume is placed, or no longer creating."""
        for volume_id in [v for v in self._casts if not unplaced(v)]:
            del self._casts[volume_id]
        for volume_id in [v for v in self._resent if v not in self._casts]:
            del self._resent[volume_id]

    def before(self, when: float, unplaced: Callable[[str], bool]) -> list[Cast]:
        """The casts to the scheduler made before ``when`` whose volume is still
        unplaced."""
        self.prune(unplaced)
        return [c for c in self._casts.values() if c.at < when and c.backend is None]


def fenced_everywhere(volume_ids: Sequence[str],
                      replies: Mapping[str, NodeFenceReply | None]) -> list[str]:
    """The creates to send again: those every node fenced. None, if a node did not
    answer (it may hold any of them, or work on it)."""
    if not replies or any(r is None for r in replies.values()):
        return []
    fenced = [set(r.fenced) for r in replies.values() if r is not None]
    return [v for v in volume_ids if all(v in f for f in fenced)]


@dataclass(frozen=True, slots=True)
class CreateRoute:
    """What a create's cast names that its volume's record does not: the backends the
    affinity hints (and a group's, or a backup's node) allow, the backup it restores,
    the backend and the name a manage adopts."""

    avoid_backends: tuple[str, ...] = ()
    only_backends: tuple[str, ...] | None = None
    backup_id: str | None = None
    manage_ref: str | None = None
    manage_backend: str | None = None

    def to_row(self) -> str | None:
        """Its ``create_routes`` row; None for a create that names none of these."""
        if self == NO_ROUTE:
            return None
        return json.dumps({"avoid": list(self.avoid_backends), "only": None
                           if self.only_backends is None else list(self.only_backends),
                           "backup_id": self.backup_id, "manage_ref": self.manage_ref,
                           "manage_backend": self.manage_backend})

    @classmethod
    def from_row(cls, row: str | None) -> CreateRoute:
        if row is None:
            return NO_ROUTE
        fields: dict[str, Any] = json.loads(row)
        only = fields["only"]
        return cls(tuple(fields["avoid"]), None if only is None else tuple(only),
                   fields["backup_id"], fields["manage_ref"], fields["manage_backend"])


NO_ROUTE = CreateRoute()  # a plain create's: its row holds all its cast names


def request_again(rec: VolumeRecord, route: CreateRoute) -> ScheduleRequest:
    """The request of the create of ``rec``, as its flow cast it (to the scheduler, or
    for a copy or a manage to its node)."""
    return ScheduleRequest(
        volume_id=rec.id, project_id=rec.project_id, size=rec.size,
        availability_zone=rec.availability_zone, volume_type_id=rec.volume_type.id,
        extra_specs=rec.volume_type.extra_specs, snapshot_id=rec.snapshot_id,
        source_volid=rec.source_volid, manage_ref=route.manage_ref, backup_id=route.backup_id,
        avoid_backends=route.avoid_backends, only_backends=route.only_backends)

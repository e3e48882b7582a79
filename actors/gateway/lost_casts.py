"""Creates a dead scheduler may have taken with it, sent again: the plain code.

The gateway casts each create to the scheduler (``schedule.create``), which places it
and casts it to a node. A cast has no answer, so a scheduler killed between the two
took the create with it, and its volume stayed ``creating`` until the reconciler made
it ``error`` (``reconcile_after_s``). Now the gateway remembers each create it cast
while its volume is ``creating`` with no host (``ScheduleCasts``) and watches its
connection to the scheduler. When that closes (the scheduler died, or was stopped) it
fences the creates cast before, on every node (``node.fence_creates``): a node that
works on one, or holds it, says so (the scheduler had passed it on), and for the rest
it takes from then on only a cast carrying the fence's token. The creates every node
fenced are sent again with the token (``fenced_everywhere``), to the scheduler its
supervisor starts again (the cast waits in the socket until it is back). The dead
scheduler's cast, should it still be in a node's line, is dropped there, so the create
is made once. A node that does not answer leaves them all to the reconciler, as before.

A create sent again is on its way (the new scheduler waits for the nodes' stats before
it places anything): the reconciler, which cannot see it there, does not judge it lost
until ``RESENT_GRACE_S`` (or its own ``reconcile_after_s``, if longer) after the resend
(``ScheduleCasts.resent_at``). Judged lost and deleted meanwhile, it would be made on a
node for a volume no longer there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cinderblock.protocol.messages.reconcile import NodeFenceReply
from cinderblock.protocol.messages.scheduling import ScheduleRequest
from cinderblock.protocol.wire.codec import Context

RESENT_GRACE_S = 30.0  # a create sent again is not judged lost sooner than this after


@dataclass(frozen=True, slots=True)
class Cast:
    request: ScheduleRequest
    ctx: Context
    at: float  # when it was cast (monotonic)


class ScheduleCasts:
    """The creates cast to the scheduler whose volume is not placed yet."""

    def __init__(self) -> None:
        self._casts: dict[str, Cast] = {}
        self._resent: dict[str, float] = {}  # volume id -> when sent again (wall clock)

    def __len__(self) -> int:
        return len(self._casts)

    def sent(self, request: ScheduleRequest, ctx: Context, now: float) -> None:
        self._casts[request.volume_id] = Cast(request, ctx, now)

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
        """The casts made before ``when`` whose volume is still unplaced."""
        self.prune(unplaced)
        return [c for c in self._casts.values() if c.at < when]


def fenced_everywhere(volume_ids: Sequence[str],
                      replies: Mapping[str, NodeFenceReply | None]) -> list[str]:
    """The creates to send again: those every node fenced. None, if a node did not
    answer (it may hold any of them, or work on it)."""
    if not replies or any(r is None for r in replies.values()):
        return []
    fenced = [set(r.fenced) for r in replies.values() if r is not None]
    return [v for v in volume_ids if all(v in f for f in fenced)]

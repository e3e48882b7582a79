"""When a DEALER is dialled again under a new routing id: the plain code.

With keys a ROUTER does not hand a routing id over to a new connection
(``Actor.bind``: handover would let any admitted peer take another's id and its
replies). libzmq then keeps a connection that comes under a routing id it still
holds for an older one aside, and takes that connection's next message for its
routing id (``router_t::identify_peer``): from then on everything the peer sends
comes under an id that is not its name, and is dropped (an actor's key under
another actor's name), while whatever is sent to the peer goes to the old
connection. It happens when the peer's side of a connection broke and it connected
again before the ROUTER's side noticed: a partition that one side gave up on and the
other, with nothing to send, did not; or the ROUTER's process frozen while its
connections were cut.

What the peer sees is a connection whose handshake succeeded and over which its
hellos go unanswered. Then its DEALER is made again under a new routing id
(``Actor.redial``): its name and its process's token as before, the next count
(``routing_id``). The ROUTER takes that for the same process on a new connection
(``same_process``), not for a process started again. Only a hello sent over that
connection counts (one sent before it was made may have been lost with the old one),
and only while no answer came since it was made: a server that is merely slow, or
frozen with its connection open, is not dialled again. One that has not answered since
its connection was made for another reason (frozen, or too busy to answer within the
hello's timeout) is not told apart from the case above: a new connection costs little,
and the dials after the first come ever further apart (``FIRST_GAP_S`` doubling to
``MOST_GAP_S``) until the server answers again.
"""

from __future__ import annotations

FIRST_GAP_S = 2.0  # at least this long between two dials, at first
MOST_GAP_S = 60.0  # ... doubling up to this, until the server answers


def routing_id(name: str, process: str, dials: int) -> bytes:
    """A DEALER's routing id with keys: its actor's name, its process's token, and
    how many times this DEALER was dialled (``name/process.dials``)."""
    return f"{name}/{process}.{dials}".encode()


def same_process(routing_id_a: bytes, routing_id_b: bytes) -> bool:
    """Whether two routing ids are one process's (``routing_id``): one connection,
    and another it dialled again."""
    return _process(routing_id_a) == _process(routing_id_b)


def _process(routing_id: bytes) -> bytes:
    return routing_id.rpartition(b".")[0] or routing_id


class Redial:
    """A DEALER's hellos and connection: whether to dial it again."""

    def __init__(self) -> None:
        self.answered_at = float("-inf")  # the server's last answer to a hello
        self.connected_at: float | None = None  # the handshake of the connection up now
        self.dialled_at = float("-inf")
        self.gap_s = FIRST_GAP_S
        self.dials = 0  # how many times it was dialled again

    def connected(self, now: float) -> None:
        """The connection's handshake succeeded."""
        self.connected_at = now

    def disconnected(self) -> None:
        self.connected_at = None

    def answered(self, now: float) -> None:
        self.answered_at = max(self.answered_at, now)
        self.gap_s = FIRST_GAP_S

    def unanswered(self, sent_at: float, now: float) -> bool:
        """A hello sent at ``sent_at`` had no answer by ``now``: True when the DEALER is
        to be dialled again (its connection is up, was made before that hello went and
        after the server last answered), which this counts as done."""
        made = self.connected_at
        if made is None or not self.answered_at < made <= sent_at:
            return False
        if now - self.dialled_at < self.gap_s:
            return False
        self.dialled_at = now
        self.gap_s = min(self.gap_s * 2, MOST_GAP_S)
        self.connected_at = None
        self.dials += 1
        return True

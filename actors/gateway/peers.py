"""Whether quota, the scheduler and the storage nodes are there: the gateway's view.

The gateway pings each of them every ``heartbeat_s`` over the very connection its
creates take, and notes when each answered last. One that has not answered for
``stale_after_s`` is down: a new create is refused at once with ``unavailable``
(instead of waiting for a quota call to time out, or casting to a scheduler that
never places it and leaving the volume ``creating`` until the reconciler gives
up). At start every peer counts as having just answered: a gateway that comes up
before its peers waits for them like any call does.

A peer down whose connection has not closed since it last answered is frozen or cut
off (SIGSTOP, a network partition), not dead and starting again (its supervisor's
restart closes the connection first): the calls in flight to it are given up then,
not at their deadline (``Gateway._ping_peers``).

The storage nodes are watched the same way, from the hellos they send the gateway
every heartbeat (it does not ping them): while one is silent past ``stale_after_s``
(stopped, frozen or cut off), the calls to it are given up every heartbeat instead of
waiting out their deadline (15 s for an attachment's export). They are not refused
before they are sent: what was asked still reaches a node that was only frozen, in
order, so an export asked for and given up is followed there by the unexport its
flow's revert sends, as when such a call timed out.
"""

from __future__ import annotations

from collections.abc import Iterable

from cinderblock.protocol.wire.errors import Unavailable

WHAT = {"quota": "the quota service", "scheduler": "the scheduler"}


class PeerWatch:
    """When each peer answered last; down past ``stale_after_s`` of silence."""

    def __init__(self, names: Iterable[str], stale_after_s: float, now: float) -> None:
        self.stale_after_s = stale_after_s
        self._answered = dict.fromkeys(names, now)
        self._down: set[str] = set()
        self._closed: set[str] = set()  # whose connection closed since they answered

    def answered(self, name: str, now: float) -> bool:
        """Note an answer; True when the peer was down (it is back)."""
        self._answered[name] = max(self._answered[name], now)
        self._closed.discard(name)
        if name in self._down:
            self._down.discard(name)
            return True
        return False

    def newly_down(self, now: float) -> list[str]:
        """The peers that went silent since the last look."""
        gone = [n for n, t in self._answered.items()
                if n not in self._down and now - t > self.stale_after_s]
        self._down.update(gone)
        return gone

    def connection_closed(self, name: str) -> None:
        """The connection to the peer closed: it died or stopped (and is started
        again), rather than froze."""
        self._closed.add(name)

    def open_but_silent(self, name: str) -> bool:
        """Down with its connection open since it last answered: frozen or cut off."""
        return name in self._down and name not in self._closed

    def silences(self, now: float) -> list[tuple[str, float]]:
        """The peers down now, each with how long it has been silent."""
        return [(name, now - self._answered[name]) for name in sorted(self._down)]

    def silent_for(self, name: str, now: float) -> float | None:
        """How long a down peer has been silent (None: it is up)."""
        silence = now - self._answered[name]
        return silence if silence > self.stale_after_s else None

    def refuse_if_down(self, names: Iterable[str], now: float, action: str) -> None:
        """Raise ``Unavailable`` naming the first of ``names`` that is down."""
        for name in names:
            silence = self.silent_for(name, now)
            if silence is not None:
                raise Unavailable(
                    f"{WHAT.get(name, name)} has not answered for {silence:.1f}s: "
                    f"{action} is refused until it is back",
                    {"service": name, "silent_s": round(silence, 1)},
                )

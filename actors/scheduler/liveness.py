"""Which nodes are alive, and which creates each may still hold: from their stats alone.

Down and up. Every node publishes stats on a heartbeat (``heartbeat_s``) and after
every change. A backend whose last stats are older than ``stale_after_s`` is down;
``sweep`` (called several times a heartbeat) reports it the moment it goes, and
``seen`` reports it the moment its stats come back. The capacity index applies the
same age rule when it picks, so a down node receives no new work.

Creates in flight. The scheduler records each create it casts (``placed``: backend,
sequence number, volume, context). A node's stats carry the highest sequence number
of ours it has received (``sched_seq``) and the lowest one it is still working on
(``oldest_seq``, 0 when none). So every placement below ``oldest_seq`` (or, when the
node is working on none, up to ``sched_seq``) has finished there: the volume is
available, or the node itself rescheduled it or reported its error. Those are
forgotten; what is left when the backend goes down may still be in its hands, or in
a connection that will never deliver it, and ``sweep`` hands it back to be failed.
Stats from another process of the node (``incarnation``: a crash and a restart
quicker than ``stale_after_s``) hand back what the previous process held the same way.
With keys the scheduler learns of a restart sooner, from the new process's first
message (``restarted``: a hello from a routing id that is not the last one's), which
is also the moment the node's casts start going to the new process; what was cast
before it is handed back then, and the new process's incarnation is taken from its
first stats, which hand back nothing (what was cast to it since is in its hands).
The same process on a connection it dialled again (``actors.runtime.redial``) keeps
what it holds; the scheduler asks it which of those it knows (``holding``, then
``settled`` for the ones its answer settles).
A newer placement of the same volume (a reschedule) supersedes the older one, so a
volume is held by one backend at most.

The set is an over-approximation (a create that finished after an older one that is
still running stays listed): failing it is harmless because the gateway applies the
scheduler's verdicts to volumes that are still ``creating`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

Note = TypeVar("Note")  # what the scheduler keeps with each create (its request context)


@dataclass(frozen=True, slots=True)
class Held(Generic[Note]):
    """A create cast to a backend and not yet seen finished there."""

    volume_id: str
    seq: int
    note: Note


@dataclass(frozen=True, slots=True)
class NodeReport:
    """What a node's stats say about the creates it was given."""

    epoch: str  # the scheduler epoch of the last placement it received
    sched_seq: int  # the highest sequence number of that epoch it has received
    oldest_seq: int  # the lowest it is still working on (0: none)
    incarnation: str  # its process: another one means a restart


@dataclass(slots=True)
class Seen(Generic[Note]):
    """What a backend's stats changed: it is back, or it was restarted and lost creates."""

    back: bool
    lost: list[Held[Note]] = field(default_factory=list)


@dataclass(slots=True)
class Sweep(Generic[Note]):
    """What changed since the last sweep: the backends that went down, each with the
    creates it may still hold."""

    down: dict[str, list[Held[Note]]] = field(default_factory=dict)


@dataclass(slots=True)
class _Backend(Generic[Note]):
    last_seen: float
    incarnation: str | None  # None: no stats taken yet (from this process)
    up: bool = True
    held: dict[int, Held[Note]] = field(default_factory=dict)  # by seq, in cast order


class Liveness(Generic[Note]):
    """Up/down per backend from its stats' age, and the creates each may still hold."""

    def __init__(self, epoch: str, stale_after_s: float) -> None:
        self.epoch = epoch
        self.stale_after_s = stale_after_s
        self._backends: dict[str, _Backend[Note]] = {}
        self._holder: dict[str, tuple[str, int]] = {}  # volume -> (backend, seq)
        self.went_down = 0
        self.came_back = 0

    def __len__(self) -> int:
        """How many creates are held."""
        return len(self._holder)

    def seen(self, backend: str, now: float, report: NodeReport) -> Seen[Note]:
        """Take a backend's stats: whether it is back, and the creates a restarted
        node lost (its previous process held them)."""
        entry = self._backends.get(backend)
        if entry is None:
            entry = self._backends[backend] = _Backend(now, report.incarnation)
        result: Seen[Note] = Seen(back=not entry.up)
        entry.last_seen, entry.up = now, True
        if result.back:
            self.came_back += 1
        if entry.incarnation is None:
            entry.incarnation = report.incarnation
        elif report.incarnation != entry.incarnation:
            entry.incarnation = report.incarnation
            result.lost = self._hand_back(backend, entry)
        if report.epoch == self.epoch:
            through = report.sched_seq if report.oldest_seq == 0 else report.oldest_seq - 1
            self._finished(backend, entry, through)
        return result

    def restarted(self, backend: str) -> list[Held[Note]]:
        """Another process of ``backend``'s node has spoken: from now on what is cast to
        the node goes to it, and what was cast before went to the one before, lost
        with it (handed back here). Its next stats name its incarnation."""
        entry = self._backends.get(backend)
        if entry is None:
            return []
        entry.incarnation = None
        return self._hand_back(backend, entry)

    def holding(self, backend: str) -> list[Held[Note]]:
        """What ``backend`` holds now, in cast order (kept here)."""
        entry = self._backends.get(backend)
        return list(entry.held.values()) if entry is not None else []

    def settled(self, backend: str, held: list[Held[Note]]) -> list[Held[Note]]:
        """Of ``held`` (``holding``'s), those ``backend`` still holds, forgotten here:
        the rest were finished, superseded or handed back meanwhile."""
        entry = self._backends.get(backend)
        if entry is None:
            return []
        still = [h for h in held if entry.held.get(h.seq) == h]
        for h in still:
            self._release(backend, entry.held.pop(h.seq))
        return still

    def _finished(self, backend: str, entry: _Backend[Note], through: int) -> None:
        held = entry.held  # in cast order: sequence numbers only grow
        while held:
            seq = next(iter(held))
            if seq > through:
                return
            self._release(backend, held.pop(seq))

    def _hand_back(self, backend: str, entry: _Backend[Note]) -> list[Held[Note]]:
        """Everything ``backend`` holds, forgotten here, in cast order."""
        held, entry.held = list(entry.held.values()), {}
        for h in held:
            self._release(backend, h)
        return held

    def _release(self, backend: str, held: Held[Note]) -> None:
        if self._holder.get(held.volume_id) == (backend, held.seq):
            del self._holder[held.volume_id]

    def placed(self, backend: str, seq: int, volume_id: str, note: Note, now: float) -> None:
        """A create was cast to ``backend``: it holds ``volume_id`` until its stats say
        otherwise (an earlier placement of the volume elsewhere is superseded)."""
        previous = self._holder.get(volume_id)
        if previous is not None:
            old = self._backends.get(previous[0])
            if old is not None:
                old.held.pop(previous[1], None)
        entry = self._backends.get(backend)
        if entry is None:  # cast before its stats were taken here (cannot happen in order)
            entry = self._backends[backend] = _Backend(now, None)
        entry.held[seq] = Held(volume_id, seq, note)
        self._holder[volume_id] = (backend, seq)

    def sweep(self, now: float) -> Sweep[Note]:
        """The backends that went silent for ``stale_after_s`` since the last sweep, each
        with the creates it held (now forgotten here)."""
        found: Sweep[Note] = Sweep()
        for name, entry in self._backends.items():
            if entry.up and now - entry.last_seen > self.stale_after_s:
                entry.up = False
                self.went_down += 1
                found.down[name] = self._hand_back(name, entry)
        return found

    def is_up(self, backend: str) -> bool:
        entry = self._backends.get(backend)
        return entry is not None and entry.up

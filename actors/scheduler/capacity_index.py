"""The scheduler's capacity index: filter, weigh, pick and consume without a linear scan.

Groups. Backends are grouped by (availability zone, capabilities); the zone and
capability filters are decided per group and cached per (zone, extra specs)
until the set of groups changes. A group's capabilities are the backend's
``capabilities`` plus ``thin_provisioning_support`` and
``thick_provisioning_support``, which Cinder also exposes as capabilities.

Heaps. Inside a group only capacity varies. Each group keeps a max-heap by
Cinder's capacity weight for thin requests and one for thick (the weigher
differs). Every change to a backend takes a fresh stamp from one counter and
pushes new items; an item whose stamp is not its backend's is dead, dropped
when it surfaces. A heap past ``2 * members + _SLACK`` items is rebuilt from
its members, so updates cannot grow it without bound (amortised O(1) a push).

select(). In each matching group, look at the heap top: drop dead items; drop
stale backends and *park* them until their next stats (so they cost nothing
after the first sight); pop excluded and too-full ones aside and push them
back afterwards. The best top across groups wins. For a thick request heap
order is capacity order (weight = free - reserved): a too-full top ends the walk.

In-flight accounting. select() consumes the winner's capacity at once and
records a pending (seq, size); seq counts 1, 2, 3... per backend within this
index's epoch and rides on the create cast. update() drops the pending entries
the node reports as counted (seq <= sched_seq, only if sched_epoch is ours) and
sets effective = reported + the remaining pending, so stats racing a cast never
make the index forget a placement. Entries older than ``pending_expiry_s`` go
too: a node that never acknowledges must not look full forever. release() drops those
a node will never acknowledge at once: the creates a node judged down, or started
again, took with it (its own figures count those it made).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import secrets
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import NamedTuple

from cinderblock.actors.scheduler.capacity import (
    BackendStats,
    Placement,
    PlacementRequest,
    capacity_passes,
    capacity_weight,
    consume,
    give_back,
    wants_thin,
)
from cinderblock.actors.scheduler.extra_specs import satisfies

__all__ = ["BackendView", "CapacityIndex", "IndexStatistics", "NoValidBackend"]

_SLACK = 64  # dead heap items tolerated beyond twice the members before a rebuild
_MAX_CACHED_MATCHES = 4096

_HeapItem = tuple[float, str, int]  # (-weight, backend, stamp)
_GroupKey = tuple[str, Hashable]
_MatchKey = tuple[str | None, frozenset[tuple[str, str]]]


class NoValidBackend(Exception):
    """No backend can take the volume; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"No valid backend was found. {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BackendView:
    """One backend as the scheduler sees it (for ``backend list``)."""

    stats: BackendStats  # effective: reported stats with in-flight placements consumed
    age_s: float  # since its last stats
    up: bool  # not stale
    pending: int  # placements the node has not yet acknowledged


@dataclass(frozen=True, slots=True)
class IndexStatistics:
    """A snapshot for dashboards."""

    epoch: str
    backends: int
    groups: int
    selections: int
    no_valid_backend: int
    updates: int
    pending: int
    heap_items: int
    compactions: int
    cached_matches: int


class _Pending(NamedTuple):
    seq: int
    size_gb: int
    placed_at: float


class _Verdict(enum.Enum):
    DEAD = "superseded heap item"
    STALE = "no stats for too long"
    ASIDE = "not for this request"
    STOP = "nothing below has room"
    TAKE = "best in its group"


class _Entry:
    __slots__ = ("effective", "group", "last_seen", "name", "pending", "stamp")

    def __init__(self, group: _Group, stats: BackendStats) -> None:
        self.name = stats.backend
        self.group = group
        self.effective = stats  # reported stats with the pending placements consumed
        self.last_seen = 0.0
        self.stamp = 0
        self.pending: deque[_Pending] = deque()


class _Group:
    __slots__ = ("capabilities", "key", "members", "parked", "thick_heap", "thin_heap", "zone")

    def __init__(self, key: _GroupKey, capabilities: dict[str, object]) -> None:
        self.key = key
        self.zone = key[0]
        self.capabilities = capabilities
        self.members: dict[str, _Entry] = {}
        # out of the heaps: stale members until their next stats, disabled ones until
        # they are enabled
        self.parked: set[str] = set()
        self.thin_heap: list[_HeapItem] = []
        self.thick_heap: list[_HeapItem] = []

    def heap(self, thin: bool) -> list[_HeapItem]:
        return self.thin_heap if thin else self.thick_heap

    def push(self, entry: _Entry) -> int:
        """Push the entry's current weights; returns how many heaps were rebuilt."""
        rebuilt = 0
        for thin in (True, False):
            heap = self.heap(thin)
            heappush(heap, (-capacity_weight(entry.effective, thin), entry.name, entry.stamp))
            if len(heap) > 2 * len(self.members) + _SLACK:
                self._rebuild(heap, thin)
                rebuilt += 1
        return rebuilt

    def _rebuild(self, heap: list[_HeapItem], thin: bool) -> None:
        live = [e for name, e in self.members.items() if name not in self.parked]
        heap[:] = [(-capacity_weight(e.effective, thin), e.name, e.stamp) for e in live]
        heapify(heap)


@dataclass(slots=True)
class _Walk:
    """One select() in progress, with what it has seen for the error message."""

    request: PlacementRequest
    thin: bool
    now: float
    excluded: int = 0
    hinted_away: int = 0
    too_full: int = 0


def _freeze(value: object) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(v) for v in value)
    if isinstance(value, str | int | float | None):
        return (type(value).__name__, value)  # keeps True, 1 and 1.0 apart
    return ("repr", repr(value))


def _group_capabilities(stats: BackendStats) -> dict[str, object]:
    return {
        "thin_provisioning_support": stats.thin_provisioning_support,
        "thick_provisioning_support": stats.thick_provisioning_support,
        **stats.capabilities,
    }


def _zone_phrase(zone: str | None) -> str:
    return "" if zone is None else f" in availability zone {zone!r}"


class CapacityIndex:
    """Every backend's capacity, kept for fast placement decisions."""

    def __init__(
        self,
        stale_after_s: float = 30.0,
        epoch: str | None = None,
        pending_expiry_s: float = 300.0,
    ) -> None:
        self.epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._stale_after_s = stale_after_s
        self._pending_expiry_s = pending_expiry_s
        self._entries: dict[str, _Entry] = {}
        self._groups: dict[_GroupKey, _Group] = {}
        self._matches: dict[_MatchKey, tuple[_Group, ...] | str] = {}
        self._last_seq: dict[str, int] = {}  # outlives remove(): a node remembers our seqs
        self._disabled: set[str] = set()  # an operator's: no placement until enabled
        self._stamps = itertools.count(1)
        self._selections = self._no_valid = self._updates = 0
        self._pending_total = self._compactions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, backend: object) -> bool:
        return backend in self._entries

    # -- stats from the nodes -------------------------------------------------

    def update(self, stats: BackendStats, now: float) -> None:
        """Take a node's published stats for one backend."""
        self._updates += 1
        group = self._group_for(stats)
        entry = self._entries.get(stats.backend)
        if entry is None:
            entry = self._entries[stats.backend] = _Entry(group, stats)
        elif entry.group is not group:
            self._leave(entry)
            entry.group = group
        self._absorb(entry, stats, now)
        group.members[entry.name] = entry
        if entry.name in self._disabled:
            group.parked.add(entry.name)
            entry.stamp = next(self._stamps)  # its heap items, if any, are dead
        else:
            group.parked.discard(entry.name)
            self._restamp(entry)

    def release(self, backend: str, seqs: Iterable[int]) -> int:
        """Give back the capacity of ``backend``'s placements numbered ``seqs``, which
        its node will never acknowledge: the creates it held when it was judged down or
        started again (the scheduler fails them, or finds them made, and then the
        node's own figures count them). Kept, they counted against the backend until
        ``pending_expiry_s``: a node started again with a burst in flight looked full
        for minutes. How many were given back."""
        entry = self._entries.get(backend)
        gone = set(seqs)
        if entry is None or not gone:
            return 0
        released = [p for p in entry.pending if p.seq in gone]
        if not released:
            return 0
        entry.pending = deque(p for p in entry.pending if p.seq not in gone)
        self._pending_total -= len(released)
        for placement in released:
            give_back(entry.effective, placement.size_gb)
        if entry.name not in entry.group.parked:  # re-weighed where it is placed from
            self._restamp(entry)
        return len(released)

    def disable(self, backend: str) -> None:
        """Keep ``backend`` out of every placement until ``enable`` (Cinder's service
        disable): out of the heaps, so a disabled backend costs a select nothing."""
        self._disabled.add(backend)
        entry = self._entries.get(backend)
        if entry is not None:
            entry.group.parked.add(backend)
            entry.stamp = next(self._stamps)

    def enable(self, backend: str) -> None:
        self._disabled.discard(backend)
        entry = self._entries.get(backend)
        if entry is not None:
            entry.group.parked.discard(backend)
            self._restamp(entry)

    def remove(self, backend: str) -> None:
        """Forget a backend (its node is gone for good)."""
        entry = self._entries.pop(backend, None)
        if entry is not None:
            self._pending_total -= len(entry.pending)
            self._leave(entry)

    def _group_for(self, stats: BackendStats) -> _Group:
        capabilities = _group_capabilities(stats)
        key = (stats.availability_zone, _freeze(capabilities))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, capabilities)
            self._matches.clear()
        return group

    def _leave(self, entry: _Entry) -> None:
        group = entry.group
        del group.members[entry.name]
        group.parked.discard(entry.name)
        if not group.members:
            del self._groups[group.key]
            self._matches.clear()

    def _absorb(self, entry: _Entry, stats: BackendStats, now: float) -> None:
        self._acknowledge(entry, stats, now)
        effective = dataclasses.replace(stats)
        for pending in entry.pending:
            consume(effective, pending.size_gb)
        entry.effective = effective
        entry.last_seen = now
        if stats.sched_epoch == self.epoch:
            known = self._last_seq.get(entry.name, 0)
            self._last_seq[entry.name] = max(known, stats.sched_seq)

    def _acknowledge(self, entry: _Entry, stats: BackendStats, now: float) -> None:
        """Drop the pending placements the node has counted (or that expired)."""
        pending = entry.pending
        counted = stats.sched_seq if stats.sched_epoch == self.epoch else 0
        horizon = now - self._pending_expiry_s
        before = len(pending)
        while pending and (pending[0].seq <= counted or pending[0].placed_at < horizon):
            pending.popleft()
        self._pending_total -= before - len(pending)

    def _restamp(self, entry: _Entry) -> None:
        entry.stamp = next(self._stamps)
        self._compactions += entry.group.push(entry)

    # -- placement ------------------------------------------------------------

    def select(self, request: PlacementRequest, now: float) -> Placement:
        """Filter, weigh, pick, and consume the winner's capacity at once."""
        try:
            entry = self._choose(request, now)
        except NoValidBackend:
            self._no_valid += 1
            raise
        return self._place(entry, request.size_gb, now)

    def _choose(self, request: PlacementRequest, now: float) -> _Entry:
        groups = self._matching(request)
        walk = _Walk(request, wants_thin(request.extra_specs), now)
        best: tuple[float, _Entry] | None = None
        for group in groups:
            found = self._top(group, walk)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is None:
            raise NoValidBackend(self._exhausted(walk, groups))
        return best[1]

    def _place(self, entry: _Entry, size_gb: int, now: float) -> Placement:
        seq = self._last_seq.get(entry.name, 0) + 1
        self._last_seq[entry.name] = seq
        entry.pending.append(_Pending(seq, size_gb, now))
        self._pending_total += 1
        consume(entry.effective, size_gb)
        self._restamp(entry)
        self._selections += 1
        return Placement(entry.name, entry.effective.host, seq)

    def _top(self, group: _Group, walk: _Walk) -> tuple[float, _Entry] | None:
        """The heaviest member of the group that passes, leaving the heap intact."""
        heap = group.heap(walk.thin)
        aside: list[_HeapItem] = []
        found: tuple[float, _Entry] | None = None
        while heap:
            verdict = self._judge(heap[0], walk)
            if verdict is _Verdict.TAKE:
                found = (-heap[0][0], self._entries[heap[0][1]])
            if verdict is _Verdict.TAKE or verdict is _Verdict.STOP:
                break
            item = heappop(heap)
            if verdict is _Verdict.STALE:
                group.parked.add(item[1])
            elif verdict is _Verdict.ASIDE:
                aside.append(item)
        for item in aside:
            heappush(heap, item)
        return found

    def _judge(self, item: _HeapItem, walk: _Walk) -> _Verdict:
        entry = self._entries.get(item[1])
        if entry is None or entry.stamp != item[2]:
            return _Verdict.DEAD
        if walk.now - entry.last_seen > self._stale_after_s:
            return _Verdict.STALE
        if entry.name in walk.request.excluded_backends:
            walk.excluded += 1
            return _Verdict.ASIDE
        if not walk.request.hint_passes(entry.name):
            walk.hinted_away += 1
            return _Verdict.ASIDE
        if capacity_passes(entry.effective, walk.request.size_gb, walk.thin):
            return _Verdict.TAKE
        walk.too_full += 1
        thick_order = not walk.thin and -item[0] < walk.request.size_gb
        return _Verdict.STOP if thick_order else _Verdict.ASIDE

    # -- zone and capability filters, cached per group set --------------------

    def _matching(self, request: PlacementRequest) -> tuple[_Group, ...]:
        key = (request.availability_zone, frozenset(request.extra_specs.items()))
        found = self._matches.get(key)
        if found is None:
            if len(self._matches) >= _MAX_CACHED_MATCHES:
                self._matches.clear()
            found = self._matches[key] = self._find_groups(request)
        if isinstance(found, str):
            raise NoValidBackend(found)
        return found

    def _find_groups(self, request: PlacementRequest) -> tuple[_Group, ...] | str:
        """The groups that pass the zone and capability filters, or why none does."""
        zone = request.availability_zone
        in_zone = [g for g in self._groups.values() if zone is None or g.zone == zone]
        if not in_zone:
            return f"No backend has reported stats{_zone_phrase(zone)}."
        fit = tuple(g for g in in_zone if satisfies(g.capabilities, request.extra_specs))
        if fit:
            return fit
        specs = dict(request.extra_specs)
        return f"No backend{_zone_phrase(zone)} has capabilities matching extra specs {specs}."

    def _exhausted(self, walk: _Walk, groups: tuple[_Group, ...]) -> str:
        """Why no member of the matching groups would do."""
        members = sum(len(g.members) for g in groups)
        disabled = sum(1 for g in groups for name in g.members if name in self._disabled)
        stale = sum(len(g.parked) for g in groups) - disabled
        detail = (
            f"({members} matching: {walk.excluded} already tried, {stale} stale, "
            f"{disabled} disabled, {walk.hinted_away} set aside by scheduler hints, "
            f"{walk.too_full} seen without room)"
        )
        if walk.too_full:
            return f"No backend has capacity for {walk.request.size_gb} GiB {detail}."
        if walk.hinted_away and not walk.excluded:
            return f"No backend passes the scheduler hints (same_host, different_host) {detail}."
        if disabled == members:
            return f"Every candidate is disabled by an operator {detail}."
        if walk.excluded and stale:
            return f"All candidates were already tried or are stale {detail}."
        if walk.excluded:
            return f"All candidates were already tried {detail}."
        return f"All candidates are stale: no stats for {self._stale_after_s:g}s {detail}."

    # -- views ----------------------------------------------------------------

    def backends(self, now: float) -> list[BackendView]:
        """Every backend with its effective stats, sorted by name."""
        return [self._view(self._entries[name], now) for name in sorted(self._entries)]

    def _view(self, entry: _Entry, now: float) -> BackendView:
        age = now - entry.last_seen
        effective = entry.effective
        stats = dataclasses.replace(effective, capabilities=dict(effective.capabilities))
        return BackendView(stats, age, age <= self._stale_after_s, len(entry.pending))

    def statistics(self) -> IndexStatistics:
        heap_items = sum(len(g.thin_heap) + len(g.thick_heap) for g in self._groups.values())
        return IndexStatistics(
            epoch=self.epoch,
            backends=len(self._entries),
            groups=len(self._groups),
            selections=self._selections,
            no_valid_backend=self._no_valid,
            updates=self._updates,
            pending=self._pending_total,
            heap_items=heap_items,
            compactions=self._compactions,
            cached_matches=len(self._matches),
        )

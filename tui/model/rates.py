"""Create throughput and latency over the last minute, in one-second buckets.

A create's latency runs from its ``volume_create_api`` flow going PENDING to
its volume's ``available`` event: both published by the gateway, so both on
one clock. Buckets are keyed by the dashboard's second when the create
finished; ``series`` answers the last ``window_s`` seconds, oldest first, the
current (partial) second last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cinderblock.protocol.states import VolumeStatus as V

WINDOW_S = 60


@dataclass(slots=True)
class Bucket:
    creates: int = 0
    errors: int = 0
    events: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RatesView:
    creates: list[float]  # per second, oldest first
    errors: list[float]
    events: list[float]
    p50: list[float]  # seconds, per second bucket (0 when nothing finished)
    p99: list[float]
    minute_creates: int
    minute_errors: int
    minute_p50: float | None
    minute_p99: float | None

    @property
    def creates_per_s(self) -> float:
        """The last complete second."""
        return self.creates[-2] if len(self.creates) > 1 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events[-2] if len(self.events) > 1 else 0.0


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


class Rates:
    def __init__(self, window_s: int = WINDOW_S, pending_ttl_s: float = 300.0) -> None:
        self.window_s = window_s
        self.pending_ttl_s = pending_ttl_s
        self.buckets: dict[int, Bucket] = {}
        self._started: dict[str, tuple[float, float]] = {}  # volume_id -> (ts, seen)
        self.creates_total = 0
        self.errors_total = 0
        self._view: tuple[tuple[int, int], RatesView] | None = None
        self.version = 0

    def _bucket(self, now: float) -> Bucket:
        second = int(now)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = Bucket()
        return bucket

    def count_events(self, n: int, now: float) -> None:
        self._bucket(now).events += n
        self.version += 1

    def api_started(self, volume_id: str, ts: float, now: float) -> None:
        self._started.setdefault(volume_id, (ts, now))

    def volume_status(self, volume_id: str, status: str, previous: str | None,
                      ts: float, now: float) -> None:
        """Count a create when a volume leaves ``creating`` (or its API flow was seen)."""
        started = self._started.get(volume_id)
        if status not in (V.AVAILABLE, V.ERROR):
            return
        if started is None and previous != V.CREATING:
            return
        self._started.pop(volume_id, None)
        bucket = self._bucket(now)
        if status == V.ERROR:
            bucket.errors += 1
            self.errors_total += 1
        else:
            bucket.creates += 1
            self.creates_total += 1
            if started is not None:
                bucket.latencies.append(max(0.0, ts - started[0]))
        self.version += 1

    def tick(self, now: float) -> None:
        oldest = int(now) - self.window_s
        for second in [s for s in self.buckets if s <= oldest]:
            del self.buckets[second]
        expired = [v for v, (_, seen) in self._started.items() if now - seen > self.pending_ttl_s]
        for volume_id in expired:
            del self._started[volume_id]

    def series(self, now: float) -> RatesView:
        key = (self.version, int(now))
        if self._view is not None and self._view[0] == key:
            return self._view[1]
        seconds = range(int(now) - self.window_s + 1, int(now) + 1)
        buckets = [self.buckets.get(s) or Bucket() for s in seconds]
        every = sorted(x for b in buckets for x in b.latencies)
        per = [sorted(b.latencies) for b in buckets]
        view = RatesView(
            creates=[float(b.creates) for b in buckets],
            errors=[float(b.errors) for b in buckets],
            events=[float(b.events) for b in buckets],
            p50=[percentile(p, 50) or 0.0 for p in per],
            p99=[percentile(p, 99) or 0.0 for p in per],
            minute_creates=sum(b.creates for b in buckets),
            minute_errors=sum(b.errors for b in buckets),
            minute_p50=percentile(every, 50),
            minute_p99=percentile(every, 99),
        )
        self._view = (key, view)
        return view

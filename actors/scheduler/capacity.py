"""Backend capacity as the scheduler sees it, and Cinder's arithmetic on it.

The three functions mirror Cinder's scheduler:

* ``capacity_passes`` is ``CapacityFilter.backend_passes``: reserved space is
  ``floor(total * reserved_percentage / 100)`` GiB and comes off the free
  space. A thin request on a backend that supports thin provisioning passes
  when the projected over-subscription ``(provisioned + size) / total`` stays
  within ``max_over_subscription_ratio`` and the free space, over-subscribed,
  still covers the size; a ratio below 1 disqualifies the backend for thin
  requests. Otherwise (thick, or no thin support) the free space must cover
  the size. A backend reporting no total capacity never passes.
* ``capacity_weight`` is ``CapacityWeigher`` (``calculate_virtual_free_capacity``):
  virtual free space ``total * ratio - provisioned - reserved`` for a thin
  request on a thin backend, else ``free - reserved``. Higher wins.
* ``consume`` is ``BackendState.consume_from_volume``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cinderblock.protocol.messages.scheduling import BackendStatsMsg

__all__ = [
    "BackendStats",
    "Placement",
    "PlacementRequest",
    "capacity_passes",
    "capacity_weight",
    "consume",
    "reserved_gb",
    "wants_thin",
]


@dataclass(slots=True)
class BackendStats:
    """What a storage node publishes about one backend."""

    backend: str  # "node-1@file" (Cinder's host@backend)
    host: str  # "node-1"
    availability_zone: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    reserved_percentage: float
    thin_provisioning_support: bool
    thick_provisioning_support: bool
    max_over_subscription_ratio: float
    capabilities: dict[str, object]  # volume_backend_name, storage_protocol, multiattach, ...
    sched_epoch: str  # the scheduler incarnation whose casts the node has counted ("" if none)
    sched_seq: int  # highest create-cast sequence number from that scheduler accounted for
    volumes: int = 0  # how many volumes the node reports holding (for `backend list`)


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One volume to place."""

    size_gb: int
    availability_zone: str | None  # None: any zone
    extra_specs: Mapping[str, str]  # the volume type's; "provisioning:type" is "thin" or "thick"
    excluded_backends: frozenset[str] = frozenset()  # already tried (reschedule)
    # Cinder's affinity hints: not one of these backends (different_host), and, unless
    # None, one of these (same_host)
    avoid_backends: frozenset[str] = frozenset()
    only_backends: frozenset[str] | None = None

    def hint_passes(self, backend: str) -> bool:
        """Whether the scheduler hints let ``backend`` hold the volume."""
        return backend not in self.avoid_backends and (
            self.only_backends is None or backend in self.only_backends)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a volume goes, and the sequence number its create cast carries."""

    backend: str
    host: str
    sched_seq: int


def wants_thin(extra_specs: Mapping[str, str]) -> bool:
    """Cinder provisions thin unless the volume type says ``provisioning:type=thick``."""
    return extra_specs.get("provisioning:type") != "thick"


def reserved_gb(stats: BackendStats) -> float:
    """The space the backend keeps back, in whole GiB (Cinder rounds down)."""
    return math.floor(stats.total_capacity_gb * (stats.reserved_percentage / 100))


def _uses_thin_arithmetic(stats: BackendStats, thin: bool) -> bool:
    return thin and stats.thin_provisioning_support


def _thin_passes(stats: BackendStats, size_gb: float, free_gb: float) -> bool:
    ratio = stats.max_over_subscription_ratio
    if ratio < 1:
        return False
    projected = (stats.provisioned_capacity_gb + size_gb) / stats.total_capacity_gb
    return projected <= ratio and free_gb * ratio >= size_gb


def capacity_passes(stats: BackendStats, size_gb: float, thin: bool) -> bool:
    """Cinder's CapacityFilter: can this backend take ``size_gb`` more?"""
    if stats.total_capacity_gb <= 0:
        return False
    free_gb = stats.free_capacity_gb - reserved_gb(stats)
    if _uses_thin_arithmetic(stats, thin):
        return _thin_passes(stats, size_gb, free_gb)
    return free_gb >= size_gb


def capacity_weight(stats: BackendStats, thin: bool) -> float:
    """Cinder's CapacityWeigher: (virtual) free space after the reserve."""
    if _uses_thin_arithmetic(stats, thin):
        virtual_gb = stats.total_capacity_gb * stats.max_over_subscription_ratio
        return virtual_gb - stats.provisioned_capacity_gb - reserved_gb(stats)
    return stats.free_capacity_gb - reserved_gb(stats)


def consume(stats: BackendStats, size_gb: float) -> None:
    """Cinder's consume_from_volume: count a new volume against the backend, in place."""
    stats.allocated_capacity_gb += size_gb
    stats.provisioned_capacity_gb += size_gb
    stats.free_capacity_gb -= size_gb


def give_back(stats: BackendStats, size_gb: float) -> None:
    """``consume`` undone, in place: a placement that will never be made or counted."""
    stats.allocated_capacity_gb -= size_gb
    stats.provisioned_capacity_gb -= size_gb
    stats.free_capacity_gb += size_gb


def stats_from_message(m: BackendStatsMsg, *, counted: bool = True) -> BackendStats:
    """A node's stats message as the scheduler's arithmetic sees it. ``counted=False``
    drops the sequence bookkeeping (for a check on the node itself)."""
    return BackendStats(
        backend=m.backend, host=m.host, availability_zone=m.availability_zone,
        total_capacity_gb=m.total_capacity_gb, free_capacity_gb=m.free_capacity_gb,
        allocated_capacity_gb=m.allocated_capacity_gb,
        provisioned_capacity_gb=m.provisioned_capacity_gb,
        reserved_percentage=m.reserved_percentage,
        thin_provisioning_support=m.thin_provisioning_support,
        thick_provisioning_support=m.thick_provisioning_support,
        max_over_subscription_ratio=m.max_over_subscription_ratio,
        capabilities=dict(m.capabilities),
        sched_epoch=m.sched_epoch if counted else "",
        sched_seq=m.sched_seq if counted else 0,
        volumes=m.volumes,
    )

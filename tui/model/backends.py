"""Storage backends, folded from the ``backend`` events the scheduler republishes.

A backend's age is measured on the dashboard's clock from the moment its last
stats arrived (or, after a catch-up, from the age the scheduler reported), and
it is *down* once that age passes ``stale_after_s``: the scheduler's own rule
for leaving a backend out of placement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.messages.scheduling import Backend


@dataclass(slots=True)
class BackendRecord:
    backend: str
    host: str
    availability_zone: str
    total_gb: float
    free_gb: float
    allocated_gb: float
    provisioned_gb: float
    reserved_percentage: float
    thin: bool
    max_over_subscription_ratio: float
    volumes: int
    last_seen: float  # dashboard clock
    updates: int = 1

    @property
    def reserved_gb(self) -> float:
        """Cinder's reserved space: floor(total * reserved_percentage / 100)."""
        return float(math.floor(self.total_gb * self.reserved_percentage / 100))

    @property
    def used_gb(self) -> float:
        """Space physically in use (the pool's total less its free space)."""
        return max(0.0, self.total_gb - self.free_gb)

    def age(self, now: float) -> float:
        return max(0.0, now - self.last_seen)


class BackendBook:
    def __init__(self, stale_after_s: float = 2.5) -> None:  # ClusterConfig.stale_after_s
        self.stale_after_s = stale_after_s
        self.backends: dict[str, BackendRecord] = {}
        self.version = 0

    def up(self, record: BackendRecord, now: float) -> bool:
        return record.age(now) <= self.stale_after_s

    def on_backend(self, e: Mapping[str, Any], now: float) -> None:
        name = str(e["backend"])
        old = self.backends.get(name)
        self.backends[name] = BackendRecord(
            name, str(e.get("host") or name.partition("@")[0]),
            str(e.get("availability_zone") or "?"),
            float(e["total_capacity_gb"]), float(e["free_capacity_gb"]),
            float(e.get("allocated_capacity_gb") or 0.0),
            float(e.get("provisioned_capacity_gb") or 0.0),
            float(e.get("reserved_percentage") or 0.0),
            bool(e.get("thin_provisioning_support", True)),
            float(e.get("max_over_subscription_ratio") or 1.0),
            int(e.get("volumes") or 0), now, (old.updates + 1) if old else 1,
        )
        self.version += 1

    def load(self, snapshot: Iterable[Backend], now: float) -> None:
        for b in snapshot:
            old = self.backends.get(b.backend)
            seen = now - b.age_s
            if old is not None and old.last_seen >= seen:
                continue
            self.backends[b.backend] = BackendRecord(
                b.backend, b.host, b.availability_zone, b.total_capacity_gb,
                b.free_capacity_gb, b.allocated_capacity_gb, b.provisioned_capacity_gb,
                b.reserved_percentage, b.thin_provisioning_support,
                b.max_over_subscription_ratio, b.volumes, seen,
                (old.updates + 1) if old else 1,
            )
        self.version += 1

    def ordered(self) -> list[BackendRecord]:
        return sorted(self.backends.values(), key=lambda b: b.backend)

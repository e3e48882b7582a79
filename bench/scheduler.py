"""What one scheduling decision costs as the cluster grows: 10, 1,000, 10,000 backends.

    python -m cinderblock.bench.scheduler [--json]

Each run builds a CapacityIndex of simulated backends (three zones times three
capability sets, realistic capacities, one backend in twenty silent for a
minute and so stale), then makes ``SELECTIONS`` decisions on a simulated clock
of one decision a millisecond. Between batches of decisions, untimed, the
nodes publish stats as real ones would: every backend on a ten-second
heartbeat, and every backend that was chosen right after it counted its casts
(so the index sees acknowledgements racing new placements). The cluster is in
a steady state (deletes balance creates), so nodes report their base capacity.

Only select() is timed (``time.perf_counter`` around each batch); the figure is
microseconds per decision, the median of ``REPEATS`` runs. The design goal is
that the three figures stay within a factor of 2 of each other.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cinderblock.actors.scheduler.capacity import BackendStats, Placement, PlacementRequest
from cinderblock.actors.scheduler.capacity_index import CapacityIndex, NoValidBackend

COUNTS = (10, 1_000, 10_000)
SELECTIONS = 20_000
BATCH = 100
REPEATS = 5
DECISION_INTERVAL_S = 0.001
HEARTBEAT_S = 10.0
STALE_ONE_IN = 20
BUDGET = 2.0
EPOCH = "bench"

ZONES = ("az1", "az2", "az3")
CAPSETS: tuple[tuple[bool, dict[str, object]], ...] = (  # (thin support, capabilities)
    (True, {"volume_backend_name": "file", "storage_protocol": "iSCSI", "multiattach": True}),
    (True, {"volume_backend_name": "lvm", "storage_protocol": "iSCSI", "multiattach": False}),
    (False, {"volume_backend_name": "lvm", "storage_protocol": "FC", "multiattach": False}),
)
SPECS: tuple[tuple[float, Mapping[str, str]], ...] = (  # (share of requests, extra specs)
    (0.30, {}),
    (0.20, {"volume_backend_name": "lvm"}),
    (0.15, {"capabilities:storage_protocol": "iSCSI"}),
    (0.15, {"provisioning:type": "thick"}),
    (0.10, {"multiattach": "<is> True"}),
    (0.10, {"volume_backend_name": "file", "provisioning:type": "thin"}),
)
SIZES_GB = (1, 5, 10, 10, 20, 50, 100, 500)


@dataclass(frozen=True, slots=True)
class Result:
    backends: int
    select_us: float
    update_us: float
    groups: int
    heap_items: int
    failures: int


def make_backend(rng: random.Random, i: int) -> BackendStats:
    thin, capabilities = CAPSETS[(i // len(ZONES)) % len(CAPSETS)]
    total = float(rng.choice((2_000, 10_000, 50_000, 100_000)))
    used = total * rng.uniform(0.1, 0.8)
    provisioned = used * rng.uniform(1.0, 2.5) if thin else used
    return BackendStats(
        backend=f"node-{i}@{capabilities['volume_backend_name']}",
        host=f"node-{i}",
        availability_zone=ZONES[i % len(ZONES)],
        total_capacity_gb=total,
        free_capacity_gb=round(total - used),
        allocated_capacity_gb=round(provisioned),
        provisioned_capacity_gb=round(provisioned),
        reserved_percentage=rng.choice((0, 5, 10)),
        thin_provisioning_support=thin,
        thick_provisioning_support=True,
        max_over_subscription_ratio=rng.choice((10.0, 20.0)) if thin else 1.0,
        capabilities=dict(capabilities),
        sched_epoch="",
        sched_seq=0,
    )


def make_request(rng: random.Random, names: list[str]) -> PlacementRequest:
    specs = rng.choices([s for _, s in SPECS], weights=[w for w, _ in SPECS])[0]
    zone = rng.choice(ZONES) if rng.random() < 0.6 else None
    tried = frozenset([rng.choice(names)]) if rng.random() < 0.05 else frozenset[str]()
    return PlacementRequest(rng.choice(SIZES_GB), zone, specs, tried)


class Cluster:
    """The simulated nodes: what each would publish, and what each has counted."""

    def __init__(self, count: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.base = [make_backend(self.rng, i) for i in range(count)]
        self.by_name = {b.backend: b for b in self.base}
        self.counted: dict[str, int] = {}
        self.next_heartbeat = 0
        self.update_s = 0.0
        self.updates = 0

    def index(self) -> CapacityIndex:
        index = CapacityIndex(stale_after_s=30.0, epoch=EPOCH)
        for i, backend in enumerate(self.base):
            index.update(backend, -60.0 if i % STALE_ONE_IN == STALE_ONE_IN - 1 else 0.0)
        return index

    def publish(self, index: CapacityIndex, name: str, now: float) -> None:
        stats = replace(self.by_name[name], sched_epoch=EPOCH, sched_seq=self.counted.get(name, 0))
        started = time.perf_counter()
        index.update(stats, now)
        self.update_s += time.perf_counter() - started
        self.updates += 1

    def after_batch(self, index: CapacityIndex, placed: list[Placement], now: float) -> None:
        for placement in placed:
            self.counted[placement.backend] = placement.sched_seq
        for name in {p.backend for p in placed}:
            self.publish(index, name, now)
        self.heartbeats(index, now)

    def heartbeats(self, index: CapacityIndex, now: float) -> None:
        due = round(now / HEARTBEAT_S * len(self.base))
        while self.next_heartbeat < due:
            i = self.next_heartbeat % len(self.base)
            if i % STALE_ONE_IN != STALE_ONE_IN - 1:
                self.publish(index, self.base[i].backend, now)
            self.next_heartbeat += 1


def timed_batch(
    index: CapacityIndex, batch: list[PlacementRequest], now: float
) -> tuple[float, list[Placement], int]:
    placed: list[Placement] = []
    failures = 0
    started = time.perf_counter()
    for request in batch:
        try:
            placed.append(index.select(request, now))
        except NoValidBackend:
            failures += 1
        now += DECISION_INTERVAL_S
    return time.perf_counter() - started, placed, failures


def run_once(count: int, seed: int) -> Result:
    cluster = Cluster(count, seed)
    index = cluster.index()
    names = [b.backend for b in cluster.base]
    requests = [make_request(cluster.rng, names) for _ in range(SELECTIONS)]
    select_s, failures, now = 0.0, 0, 0.0
    for start in range(0, SELECTIONS, BATCH):
        spent, placed, failed = timed_batch(index, requests[start : start + BATCH], now)
        select_s, failures = select_s + spent, failures + failed
        now += BATCH * DECISION_INTERVAL_S
        cluster.after_batch(index, placed, now)
    snapshot = index.statistics()
    update_us = cluster.update_s / max(cluster.updates, 1) * 1e6
    return Result(
        count,
        select_s / SELECTIONS * 1e6,
        update_us,
        snapshot.groups,
        snapshot.heap_items,
        failures,
    )


def measure(count: int) -> Result:
    runs = [run_once(count, seed) for seed in range(REPEATS)]
    median = statistics.median(r.select_us for r in runs)
    middle = min(runs, key=lambda r: abs(r.select_us - median))
    return replace(middle, select_us=median)


def report(results: list[Result]) -> str:
    lines = [
        f"CapacityIndex.select(): {SELECTIONS:,} decisions a run, median of {REPEATS} runs",
        f"{'backends':>10} {'us/decision':>12} {'us/update':>10} {'groups':>7} "
        f"{'heap items':>11} {'no valid':>9}",
    ]
    for r in results:
        lines.append(
            f"{r.backends:>10,} {r.select_us:>12.2f} {r.update_us:>10.2f} {r.groups:>7} "
            f"{r.heap_items:>11,} {r.failures:>9}"
        )
    figures = [r.select_us for r in results]
    ratio = max(figures) / min(figures)
    verdict = "within budget" if ratio <= BUDGET else "OVER BUDGET"
    lines.append(f"max/min ratio: {ratio:.2f} (budget {BUDGET:g}): {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cinderblock.bench.scheduler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print {count: us per decision}")
    args = parser.parse_args(argv)
    results = [measure(count) for count in COUNTS]
    if args.json:
        print(json.dumps({str(r.backends): round(r.select_us, 3) for r in results}))
    else:
        print(report(results))


if __name__ == "__main__":
    main()

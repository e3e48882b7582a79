"""The capacity index: Cinder's filters and weigher, in-flight accounting, and its heaps."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from cinderblock.actors.scheduler.capacity import (
    BackendStats,
    PlacementRequest,
    capacity_passes,
    capacity_weight,
    wants_thin,
)
from cinderblock.actors.scheduler.capacity_index import BackendView, CapacityIndex, NoValidBackend
from cinderblock.actors.scheduler.extra_specs import satisfies

EPOCH = "e1"


def stats(name: str = "a", **overrides: Any) -> BackendStats:
    fields: dict[str, Any] = {
        "backend": f"{name}@file",
        "host": name,
        "availability_zone": "nova",
        "total_capacity_gb": 1000.0,
        "free_capacity_gb": 1000.0,
        "allocated_capacity_gb": 0.0,
        "provisioned_capacity_gb": 0.0,
        "reserved_percentage": 0.0,
        "thin_provisioning_support": False,
        "thick_provisioning_support": True,
        "max_over_subscription_ratio": 1.0,
        "capabilities": {"volume_backend_name": "file", "storage_protocol": "iSCSI"},
        "sched_epoch": "",
        "sched_seq": 0,
    }
    fields.update(overrides)
    return BackendStats(**fields)


def request(size: int = 10, zone: str | None = None, **kw: Any) -> PlacementRequest:
    specs: Mapping[str, str] = kw.pop("specs", {})
    return PlacementRequest(size, zone, specs, **kw)


def index_of(*backends: BackendStats, now: float = 0.0, **kw: Any) -> CapacityIndex:
    index = CapacityIndex(epoch=EPOCH, **kw)
    for backend in backends:
        index.update(backend, now)
    return index


def view(index: CapacityIndex, backend: str, now: float = 0.0) -> BackendView:
    return next(v for v in index.backends(now) if v.stats.backend == backend)


def reason_of(index: CapacityIndex, req: PlacementRequest, now: float = 0.0) -> str:
    with pytest.raises(NoValidBackend) as caught:
        index.select(req, now)
    return caught.value.reason


# -- filters and weigher --------------------------------------------------------


def test_the_backend_with_most_free_space_wins() -> None:
    index = index_of(stats("a", free_capacity_gb=300), stats("b", free_capacity_gb=700))
    assert index.select(request(), 0.0).backend == "b@file"


def test_thin_requests_weigh_by_virtual_free_space() -> None:
    roomy = stats("a", free_capacity_gb=500)
    thin = stats(
        "b",
        free_capacity_gb=200,
        thin_provisioning_support=True,
        max_over_subscription_ratio=20.0,
        provisioned_capacity_gb=800,
    )
    index = index_of(roomy, thin)
    assert index.select(request(), 0.0).backend == "b@file"
    thick = request(specs={"provisioning:type": "thick"})
    assert index.select(thick, 0.0).backend == "a@file"


def test_a_request_for_a_zone_without_backends_says_so() -> None:
    index = index_of(stats("a", availability_zone="az1"))
    assert "availability zone 'az2'" in reason_of(index, request(zone="az2"))
    assert index.select(request(zone="az1"), 0.0).backend == "a@file"


def test_an_empty_index_has_no_valid_backend() -> None:
    assert "reported" in reason_of(CapacityIndex(), request())


def test_capabilities_must_match_the_volume_type() -> None:
    index = index_of(stats("a"), stats("b", capabilities={"volume_backend_name": "lvm"}))
    assert index.select(request(specs={"volume_backend_name": "lvm"}), 0.0).backend == "b@file"
    reason = reason_of(index, request(specs={"capabilities:storage_protocol": "FC"}))
    assert "capabilities" in reason


def test_thin_support_can_be_asked_for_as_a_capability() -> None:
    index = index_of(stats("a", free_capacity_gb=900), stats("b", thin_provisioning_support=True))
    specs = {"capabilities:thin_provisioning_support": "<is> True"}
    assert index.select(request(specs=specs), 0.0).backend == "b@file"


def test_excluded_backends_are_skipped_and_then_reported() -> None:
    index = index_of(stats("a", free_capacity_gb=900), stats("b", free_capacity_gb=100))
    tried = frozenset({"a@file"})
    assert index.select(request(excluded_backends=tried), 0.0).backend == "b@file"
    all_tried = frozenset({"a@file", "b@file"})
    assert "already tried" in reason_of(index, request(excluded_backends=all_tried))
    assert index.select(request(), 0.0).backend == "a@file"


def test_scheduler_hints_keep_a_volume_off_or_on_the_backends_they_name() -> None:
    """Cinder's DifferentBackendFilter and SameBackendFilter, as the backends of the
    volumes the hints named: different_host avoids them, same_host takes one of them;
    when none passes, the reason says the hints set them aside."""
    index = index_of(stats("a", free_capacity_gb=900), stats("b", free_capacity_gb=100),
                     stats("c", free_capacity_gb=500))
    assert index.select(request(avoid_backends=frozenset({"a@file"})), 0.0).backend == "c@file"
    only_b = request(only_backends=frozenset({"b@file"}))
    assert index.select(only_b, 0.0).backend == "b@file"
    both = request(only_backends=frozenset({"a@file", "b@file"}),
                   avoid_backends=frozenset({"a@file"}))
    assert index.select(both, 0.0).backend == "b@file"
    reason = reason_of(index, request(only_backends=frozenset()))
    assert reason.startswith("No backend passes the scheduler hints") and \
        "3 set aside by scheduler hints" in reason, reason
    assert "set aside by scheduler hints" in reason_of(
        index, request(avoid_backends=frozenset({"a@file", "b@file", "c@file"})))
    assert index.select(request(), 0.0).backend == "a@file"  # set aside, not lost


def test_stale_backends_are_skipped_until_they_report_again() -> None:
    index = index_of(stats("a", free_capacity_gb=900), stale_after_s=30.0)
    index.update(stats("b", free_capacity_gb=100), 20.0)
    assert index.select(request(), 40.0).backend == "b@file"
    assert "stale" in reason_of(index, request(), 60.0)
    index.update(stats("a", free_capacity_gb=900), 61.0)
    assert index.select(request(), 62.0).backend == "a@file"


def test_a_disabled_backend_gets_nothing_whatever_it_reports_until_enabled() -> None:
    index = index_of(stats("a", free_capacity_gb=900), stats("b", free_capacity_gb=100))
    index.disable("a@file")
    for now in (1.0, 2.0, 3.0):  # its stats keep coming: it stays out
        index.update(stats("a", free_capacity_gb=900), now)
        assert index.select(request(), now).backend == "b@file"
    index.disable("b@file")
    reason = reason_of(index, request(), 3.0)
    assert "disabled by an operator" in reason and "2 disabled" in reason
    index.enable("a@file")
    assert index.select(request(), 3.0).backend == "a@file"
    index.disable("c@file")  # not reported yet: out from its first stats on
    index.update(stats("c", free_capacity_gb=5000), 4.0)
    assert index.select(request(), 4.0).backend == "a@file"
    assert len(index) == 3 and view(index, "c@file", 4.0).up


def test_a_request_too_big_for_every_backend_names_the_size() -> None:
    index = index_of(stats("a"), stats("b", free_capacity_gb=500))
    assert "capacity for 2000 GiB" in reason_of(index, request(2000))
    thick = request(2000, specs={"provisioning:type": "thick"})
    assert "capacity for 2000 GiB" in reason_of(index, thick)
    assert index.statistics().no_valid_backend == 2


def test_a_backend_too_full_for_this_request_stays_a_candidate_for_smaller_ones() -> None:
    index = index_of(stats("a", free_capacity_gb=100), stats("b", free_capacity_gb=50))
    assert "capacity" in reason_of(index, request(200))
    assert index.select(request(80), 0.0).backend == "a@file"
    assert index.select(request(40), 0.0).backend == "b@file"


# -- in-flight accounting ----------------------------------------------------------


def test_a_burst_alternates_between_equal_backends_and_never_overfills() -> None:
    index = index_of(stats("a", free_capacity_gb=500), stats("b", free_capacity_gb=500))
    chosen = [index.select(request(10), 0.0).backend for _ in range(100)]
    assert chosen == ["a@file", "b@file"] * 50
    assert "capacity for 10 GiB" in reason_of(index, request(10))
    assert [v.stats.free_capacity_gb for v in index.backends(0.0)] == [0.0, 0.0]


def test_placements_number_their_casts_per_backend() -> None:
    index = index_of(stats("a", free_capacity_gb=500), stats("b", free_capacity_gb=500))
    seqs = [index.select(request(10), 0.0).sched_seq for _ in range(6)]
    assert seqs == [1, 1, 2, 2, 3, 3]


def test_stats_arriving_mid_burst_keep_the_uncounted_placements() -> None:
    index = index_of(stats("a"))
    for _ in range(5):
        index.select(request(10), 0.0)
    counted_three = stats("a", free_capacity_gb=970, sched_epoch=EPOCH, sched_seq=3)
    index.update(counted_three, 1.0)
    assert view(index, "a@file").stats.free_capacity_gb == 950
    assert view(index, "a@file").pending == 2
    index.update(stats("a", free_capacity_gb=950, sched_epoch=EPOCH, sched_seq=5), 2.0)
    assert view(index, "a@file").stats.free_capacity_gb == 950
    assert index.statistics().pending == 0


def test_stats_that_raced_ahead_of_the_casts_forget_nothing() -> None:
    index = index_of(stats("a"))
    for _ in range(5):
        index.select(request(10), 0.0)
    index.update(stats("a", sched_epoch=EPOCH, sched_seq=0), 1.0)
    assert view(index, "a@file").stats.free_capacity_gb == 950
    assert view(index, "a@file").stats.allocated_capacity_gb == 50


def test_stats_counted_for_another_scheduler_epoch_drop_nothing() -> None:
    index = index_of(stats("a"))
    for _ in range(3):
        index.select(request(10), 0.0)
    index.update(stats("a", free_capacity_gb=990, sched_epoch="older", sched_seq=3), 1.0)
    assert view(index, "a@file").stats.free_capacity_gb == 960
    assert view(index, "a@file").pending == 3


def test_pending_placements_expire_when_a_node_never_counts_them() -> None:
    index = index_of(stats("a"), pending_expiry_s=60.0)
    index.select(request(10), 0.0)
    index.update(stats("a"), 30.0)
    assert view(index, "a@file", 30.0).stats.free_capacity_gb == 990
    index.update(stats("a"), 61.0)
    assert view(index, "a@file", 61.0).stats.free_capacity_gb == 1000


def test_sequence_numbers_survive_a_backend_being_removed_and_readded() -> None:
    index = index_of(stats("a"))
    assert index.select(request(), 0.0).sched_seq == 1
    index.remove("a@file")
    assert "reported" in reason_of(index, request())
    index.update(stats("a", sched_epoch=EPOCH, sched_seq=1), 1.0)
    assert index.select(request(), 1.0).sched_seq == 2


def test_the_view_shows_effective_stats_age_and_liveness() -> None:
    index = index_of(stats("a"), stale_after_s=30.0)
    index.select(request(100), 5.0)
    (seen,) = index.backends(31.0)
    assert (seen.stats.free_capacity_gb, seen.age_s, seen.up, seen.pending) == (900, 31.0, False, 1)
    assert index.backends(30.0)[0].up


# -- groups and heaps ----------------------------------------------------------------


def test_a_backend_whose_capabilities_change_moves_to_its_new_group() -> None:
    index = index_of(stats("a"))
    lvm = {"volume_backend_name": "lvm"}
    assert "capabilities" in reason_of(index, request(specs=lvm))
    index.update(stats("a", capabilities=lvm), 1.0)
    assert index.select(request(specs=lvm), 1.0).backend == "a@file"
    assert "capabilities" in reason_of(index, request(specs={"volume_backend_name": "file"}))
    assert index.statistics().groups == 1


def test_removing_the_last_member_removes_the_group() -> None:
    index = index_of(stats("a"), stats("b", availability_zone="az2"))
    index.remove("b@file")
    index.remove("nobody@file")
    assert index.statistics().groups == 1
    assert "az2" in reason_of(index, request(zone="az2"))


def test_repeated_updates_do_not_grow_the_heaps_without_bound() -> None:
    index = index_of(*(stats(f"n{i}") for i in range(10)))
    for step in range(5000):
        index.update(stats(f"n{step % 10}", free_capacity_gb=float(step % 997)), 1.0)
    snapshot = index.statistics()
    assert snapshot.compactions > 0
    assert snapshot.heap_items <= 2 * (2 * 10 + 64)


def test_selections_alone_compact_the_heaps_too() -> None:
    index = index_of(stats("a", free_capacity_gb=1e9))
    for _ in range(1000):
        index.select(request(1), 0.0)
    assert index.statistics().heap_items <= 2 * (2 + 64)


def test_statistics_count_what_happened() -> None:
    index = index_of(stats("a"), stats("b", availability_zone="az2"))
    index.select(request(), 0.0)
    snapshot = index.statistics()
    assert (snapshot.backends, snapshot.groups, snapshot.selections) == (2, 2, 1)
    assert (snapshot.updates, snapshot.pending, snapshot.epoch) == (2, 1, EPOCH)
    assert len(index) == 2


# -- property: the index picks what a linear scan picks ------------------------------

ZONES = ["az1", "az2", "az3"]
CAPSETS: list[dict[str, object]] = [
    {"volume_backend_name": "file", "storage_protocol": "iSCSI", "multiattach": True},
    {"volume_backend_name": "lvm", "storage_protocol": "iSCSI", "multiattach": False},
    {"volume_backend_name": "lvm", "storage_protocol": "FC"},
]
SPECS: list[dict[str, str]] = [
    {},
    {"provisioning:type": "thick"},
    {"volume_backend_name": "lvm"},
    {"capabilities:storage_protocol": "<or> FC <or> NVMe"},
    {"multiattach": "<is> True", "provisioning:type": "thin"},
    {"capabilities:thin_provisioning_support": "<is> True"},
]


def random_stats(rng: random.Random, name: str) -> BackendStats:
    total = rng.choice([0.0, 100.0, 1000.0, 5000.0])
    free = rng.uniform(0, total)
    thin = rng.random() < 0.5
    return stats(
        name,
        availability_zone=rng.choice(ZONES),
        total_capacity_gb=total,
        free_capacity_gb=round(free),
        provisioned_capacity_gb=round(total - free),
        reserved_percentage=rng.choice([0, 5, 10]),
        thin_provisioning_support=thin,
        max_over_subscription_ratio=rng.choice([0.5, 1.0, 2.0, 20.0]),
        capabilities=dict(rng.choice(CAPSETS)),
    )


def random_request(rng: random.Random, names: list[str]) -> PlacementRequest:
    tried = frozenset(rng.sample(names, rng.choice([0, 0, 1, 3])))
    zone = rng.choice([None, *ZONES])
    avoid = frozenset(rng.sample(names, rng.choice([0, 0, 2, 10])))
    only = rng.choice([None, None, frozenset(rng.sample(names, rng.choice([0, 1, 5])))])
    return request(
        rng.choice([1, 10, 100, 1000]), zone, specs=rng.choice(SPECS), excluded_backends=tried,
        avoid_backends=avoid, only_backends=only,
    )


def passes(seen: BackendView, req: PlacementRequest) -> bool:
    s = seen.stats
    caps = {
        "thin_provisioning_support": s.thin_provisioning_support,
        "thick_provisioning_support": s.thick_provisioning_support,
        **s.capabilities,
    }
    return (
        seen.up
        and req.availability_zone in (None, s.availability_zone)
        and satisfies(caps, req.extra_specs)
        and s.backend not in req.excluded_backends
        and s.backend not in req.avoid_backends
        and (req.only_backends is None or s.backend in req.only_backends)
        and capacity_passes(s, req.size_gb, wants_thin(req.extra_specs))
    )


def best_weight_by_linear_scan(views: list[BackendView], req: PlacementRequest) -> float | None:
    thin = wants_thin(req.extra_specs)
    weights = [capacity_weight(v.stats, thin) for v in views if passes(v, req)]
    return max(weights, default=None)


def churn(index: CapacityIndex, rng: random.Random, names: list[str], now: float) -> None:
    """Nodes report (some counting a few of our casts), move groups, or go away."""
    name = rng.choice(names)
    if rng.random() < 0.1:
        index.remove(name)
        return
    counted = replace(random_stats(rng, name[: -len("@file")]), sched_epoch=EPOCH)
    counted.sched_seq = rng.randint(0, 5)
    index.update(counted, now)


@pytest.mark.parametrize("seed", range(8))
def test_select_picks_a_backend_as_heavy_as_a_linear_scan_would(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}@file" for i in range(40)]
    index = CapacityIndex(stale_after_s=30.0, epoch=EPOCH)
    for name in names:
        index.update(random_stats(rng, name[: -len("@file")]), now=-rng.uniform(0, 45))
    for step in range(400):
        now = step * 0.1
        if rng.random() < 0.25:
            churn(index, rng, names, now)
        views = {v.stats.backend: v for v in index.backends(now)}
        req = random_request(rng, names)
        expected = best_weight_by_linear_scan(list(views.values()), req)
        if expected is None:
            with pytest.raises(NoValidBackend):
                index.select(req, now)
            continue
        chosen = views[index.select(req, now).backend]
        assert passes(chosen, req)
        assert capacity_weight(chosen.stats, wants_thin(req.extra_specs)) == expected


def test_placements_a_node_will_never_count_are_given_back_at_once() -> None:
    """A node started again (or judged down) with creates in flight: the scheduler
    releases their placements, where they counted against it until their expiry and a
    node with little room looked full meanwhile."""
    index = index_of(stats("a", free_capacity_gb=30))
    seqs = [index.select(request(10), 0.0).sched_seq for _ in range(3)]
    with pytest.raises(NoValidBackend, match="1 seen without room"):
        index.select(request(10), 1.0)
    index.update(stats("a", free_capacity_gb=20, sched_epoch=EPOCH, sched_seq=1), 1.0)
    assert view(index, "a@file").pending == 2  # the first counted by the node
    assert index.release("a@file", seqs) == 2  # the other two lost with its process
    assert index.release("a@file", seqs) == 0 and index.release("b@file", seqs) == 0
    seen = view(index, "a@file")
    assert (seen.pending, seen.stats.free_capacity_gb) == (0, 20)
    assert seen.stats.allocated_capacity_gb == 0  # as the node reported it
    assert index.statistics().pending == 0
    assert index.select(request(10), 2.0).sched_seq == 4  # placed again, numbered on

"""Cinder's capacity arithmetic: CapacityFilter, CapacityWeigher, consume_from_volume."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.scheduler.capacity import (
    BackendStats,
    capacity_passes,
    capacity_weight,
    consume,
    reserved_gb,
    wants_thin,
)


def stats(**overrides: Any) -> BackendStats:
    fields: dict[str, Any] = {
        "backend": "node-1@file",
        "host": "node-1",
        "availability_zone": "nova",
        "total_capacity_gb": 500.0,
        "free_capacity_gb": 200.0,
        "allocated_capacity_gb": 0.0,
        "provisioned_capacity_gb": 0.0,
        "reserved_percentage": 0.0,
        "thin_provisioning_support": False,
        "thick_provisioning_support": True,
        "max_over_subscription_ratio": 1.0,
        "capabilities": {},
        "sched_epoch": "",
        "sched_seq": 0,
    }
    fields.update(overrides)
    return BackendStats(**fields)


def test_reserved_space_is_a_whole_number_of_gib_rounded_down() -> None:
    assert reserved_gb(stats(total_capacity_gb=2048, reserved_percentage=10)) == 204
    assert reserved_gb(stats(total_capacity_gb=500, reserved_percentage=5)) == 25
    assert reserved_gb(stats(total_capacity_gb=500, reserved_percentage=0)) == 0


def test_thick_backend_passes_when_free_space_covers_the_size() -> None:
    assert capacity_passes(stats(free_capacity_gb=200), 100, thin=True)
    assert capacity_passes(stats(free_capacity_gb=100), 100, thin=True)
    assert not capacity_passes(stats(free_capacity_gb=99), 100, thin=True)


def test_reserved_percentage_comes_off_the_free_space() -> None:
    backend = stats(total_capacity_gb=200, free_capacity_gb=120, reserved_percentage=20)
    assert not capacity_passes(backend, 100, thin=False)
    assert capacity_passes(backend, 80, thin=False)


def test_a_backend_without_total_capacity_never_passes() -> None:
    assert not capacity_passes(stats(total_capacity_gb=0, free_capacity_gb=100), 1, thin=True)


def thin(**overrides: Any) -> BackendStats:
    base: dict[str, Any] = {
        "total_capacity_gb": 500,
        "free_capacity_gb": 200,
        "provisioned_capacity_gb": 500,
        "max_over_subscription_ratio": 2.0,
        "reserved_percentage": 5,
        "thin_provisioning_support": True,
        "thick_provisioning_support": False,
    }
    base.update(overrides)
    return stats(**base)


def test_thin_passes_within_the_over_subscription_ratio() -> None:
    assert capacity_passes(thin(), 100, thin=True)


def test_thin_passes_at_exactly_the_over_subscription_ratio() -> None:
    backend = thin(provisioned_capacity_gb=7000, max_over_subscription_ratio=20)
    assert capacity_passes(backend, 3000, thin=True)  # (7000 + 3000) / 500 == 20


def test_thin_fails_past_the_over_subscription_ratio() -> None:
    backend = thin(provisioned_capacity_gb=700, max_over_subscription_ratio=1.5)
    assert not capacity_passes(backend, 100, thin=True)  # 800 / 500 = 1.6


def test_thin_fails_when_over_subscribed_free_space_is_too_small() -> None:
    backend = thin(free_capacity_gb=30, provisioned_capacity_gb=0, reserved_percentage=0)
    assert capacity_passes(backend, 60, thin=True)  # 30 * 2 == 60
    assert not capacity_passes(backend, 61, thin=True)


def test_thin_backend_with_a_ratio_below_one_takes_no_thin_volume() -> None:
    backend = thin(max_over_subscription_ratio=0.8, provisioned_capacity_gb=0)
    assert not capacity_passes(backend, 1, thin=True)
    assert capacity_passes(backend, 1, thin=False)


def test_thick_request_on_a_thin_backend_uses_free_space_only() -> None:
    backend = thin()  # free after reserve: 175
    assert capacity_passes(backend, 300, thin=True)
    assert not capacity_passes(backend, 300, thin=False)
    assert capacity_passes(backend, 175, thin=False)


def test_thin_request_on_a_thick_only_backend_uses_the_thick_check() -> None:
    backend = stats(free_capacity_gb=200, max_over_subscription_ratio=20.0)
    assert not capacity_passes(backend, 300, thin=True)


def test_weight_is_virtual_free_space_for_thin_and_free_space_otherwise() -> None:
    one = thin(
        total_capacity_gb=1024,
        free_capacity_gb=1024,
        provisioned_capacity_gb=0,
        max_over_subscription_ratio=1.0,
        reserved_percentage=0,
    )
    two = thin(
        total_capacity_gb=2048,
        free_capacity_gb=300,
        provisioned_capacity_gb=1748,
        max_over_subscription_ratio=1.5,
        reserved_percentage=10,
    )
    three = stats(
        total_capacity_gb=512,
        free_capacity_gb=256,
        provisioned_capacity_gb=256,
        max_over_subscription_ratio=2.0,
    )
    assert capacity_weight(one, thin=True) == 1024
    assert capacity_weight(two, thin=True) == 3072 - 1748 - 204
    assert capacity_weight(three, thin=True) == 256
    assert capacity_weight(two, thin=False) == 300 - 204


def test_consuming_a_volume_counts_it_everywhere_cinder_does() -> None:
    backend = stats(free_capacity_gb=200, allocated_capacity_gb=10, provisioned_capacity_gb=30)
    consume(backend, 50)
    assert (backend.free_capacity_gb, backend.allocated_capacity_gb) == (150, 60)
    assert backend.provisioned_capacity_gb == 80


@pytest.mark.parametrize(
    ("specs", "expected"),
    [({}, True), ({"provisioning:type": "thin"}, True), ({"provisioning:type": "thick"}, False)],
)
def test_volumes_are_thin_unless_the_type_says_thick(specs: dict[str, str], expected: bool) -> None:
    assert wants_thin(specs) is expected

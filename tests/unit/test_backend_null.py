"""Tests for the null driver, the fault-injecting wrapper and `make_driver`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinderblock.storage_node.backends import FaultyDriver, FileDriver, NullDriver, make_driver
from cinderblock.storage_node.backends.base import DriverError, Sizes

VOL = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def driver() -> NullDriver:
    return NullDriver(capacity_gb=100.0)


async def test_the_null_driver_keeps_sizes_in_memory(driver: NullDriver) -> None:
    await driver.create_volume(VOL, 10)
    await driver.extend_volume(VOL, 12)
    await driver.create_snapshot("s1", VOL)
    await driver.create_volume_from_snapshot("from-snap", "s1", 15)
    await driver.create_cloned_volume("clone", VOL, 12)
    assert driver.volumes() == {VOL: 12, "from-snap": 15, "clone": 12}
    assert driver.snapshots() == {"s1": 12}
    assert driver.volume_path(VOL) is None


async def test_the_null_driver_capacity_arithmetic(driver: NullDriver) -> None:
    await driver.create_volume(VOL, 10)
    await driver.create_volume("other", 20)
    await driver.create_snapshot("s1", "other")
    capacity = driver.capacity()
    assert capacity.total_capacity_gb == 100.0
    assert capacity.allocated_capacity_gb == 30.0
    assert capacity.provisioned_capacity_gb == 50.0
    assert capacity.free_capacity_gb == 50.0
    assert capacity.thin_provisioning_support and not capacity.thick_provisioning_support


async def test_the_null_driver_refuses_what_the_file_driver_refuses(driver: NullDriver) -> None:
    await driver.create_volume(VOL, 10)
    with pytest.raises(DriverError, match="already exists"):
        await driver.create_volume(VOL, 10)
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.extend_volume(VOL, 9)
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.create_cloned_volume("clone", VOL, 9)
    with pytest.raises(DriverError, match="does not exist"):
        await driver.create_volume_from_snapshot("clone", "missing", 10)
    with pytest.raises(DriverError, match="invalid volume id"):
        await driver.create_volume("../escape", 1)
    assert driver.volumes() == {VOL: 10}


async def test_the_null_driver_reverts_a_volume_to_a_snapshot_it_holds(
    driver: NullDriver,
) -> None:
    await driver.create_volume(VOL, 2)
    await driver.create_snapshot("s1", VOL)
    await driver.revert_to_snapshot(VOL, "s1")
    with pytest.raises(DriverError, match="does not exist"):
        await driver.revert_to_snapshot(VOL, "missing")
    await driver.create_volume("small", 1)
    with pytest.raises(DriverError, match="cannot shrink"):
        await driver.revert_to_snapshot("small", "s1")
    faulty = FaultyDriver(driver, frozenset({"revert_to_snapshot"}))
    with pytest.raises(DriverError, match="injected fault: revert_to_snapshot"):
        await faulty.revert_to_snapshot(VOL, "s1")
    assert driver.volumes() == {VOL: 2, "small": 1}


async def test_the_null_driver_deletes_twice_without_complaint(driver: NullDriver) -> None:
    await driver.create_volume(VOL, 1)
    await driver.create_snapshot("s1", VOL)
    for _ in range(2):
        await driver.delete_snapshot("s1")
        await driver.delete_volume(VOL)
    assert driver.volumes() == {} and driver.snapshots() == {}


def test_the_null_driver_says_it_cannot_clone(driver: NullDriver) -> None:
    assert driver.backend_name == "null"
    assert driver.capabilities()["clone_method"] == "none"


# --- FaultyDriver ----------------------------------------------------------------------


async def test_a_faulty_driver_fails_the_named_operation_only() -> None:
    inner = NullDriver()
    faulty = FaultyDriver(inner, frozenset({"create_snapshot"}))
    await faulty.create_volume(VOL, 1)
    with pytest.raises(DriverError, match=r"^injected fault: create_snapshot$"):
        await faulty.create_snapshot("s1", VOL)
    await faulty.create_cloned_volume("clone", VOL, 1)
    assert inner.snapshots() == {}
    assert faulty.volumes() == {VOL: 1, "clone": 1}
    assert faulty.backend_name == "null"
    assert faulty.capabilities()["injected_faults"] == ["create_snapshot"]


async def test_an_injected_fault_leaves_the_inner_driver_untouched() -> None:
    inner = NullDriver()
    faulty = FaultyDriver(inner, frozenset({"create_volume", "capacity"}))
    with pytest.raises(DriverError, match="injected fault: create_volume"):
        await faulty.create_volume(VOL, 1)
    with pytest.raises(DriverError, match="injected fault: capacity"):
        faulty.capacity()
    assert inner.volumes() == {}


def test_a_misspelled_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown driver faults \\['create_volumes'\\]"):
        FaultyDriver(NullDriver(), frozenset({"create_volumes"}))
    with pytest.raises(ValueError, match="unknown driver faults \\['stall:capacity'\\]"):
        FaultyDriver(NullDriver(), frozenset({"stall:capacity"}))


async def test_a_stalled_operation_hangs_and_touches_nothing() -> None:
    inner = NullDriver()
    faulty = FaultyDriver(inner, frozenset({"stall:delete_volume"}))
    await faulty.create_volume(VOL, 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(faulty.delete_volume(VOL), 0.05)
    assert inner.volumes() == {VOL: 1}


# --- make_driver -----------------------------------------------------------------------


def test_make_driver_builds_a_file_driver(tmp_path: Path) -> None:
    driver = make_driver("file", tmp_path / "pool", 20.0, frozenset())
    assert isinstance(driver, FileDriver)
    assert driver.capacity().total_capacity_gb == 20.0
    assert os.path.isdir(tmp_path / "pool")


def test_make_driver_builds_a_null_driver_with_default_capacity(tmp_path: Path) -> None:
    driver = make_driver("null", tmp_path, None, frozenset())
    assert isinstance(driver, NullDriver)
    assert driver.capacity().total_capacity_gb == 100000.0
    assert list(tmp_path.iterdir()) == [], "the null driver never touches the disk"


def test_make_driver_wraps_in_faults_when_asked(tmp_path: Path) -> None:
    driver = make_driver("null", tmp_path, 5.0, frozenset({"delete_volume"}))
    assert isinstance(driver, FaultyDriver)
    assert driver.capacity().total_capacity_gb == 5.0


def test_make_driver_refuses_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown driver kind 'lvm'"):
        make_driver("lvm", tmp_path, None, frozenset())


# --- the inventory's totals and views ------------------------------------------------


@given(st.lists(st.tuples(st.sampled_from(["set", "del", "pop"]),
                          st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 1000)),
                max_size=60))
def test_the_sizes_total_is_always_the_sum_of_what_is_held(
    ops: list[tuple[str, str, int]],
) -> None:
    sizes, model = Sizes(), {}
    for op, object_id, size in ops:
        if op == "set":
            sizes[object_id] = model[object_id] = size
        elif op == "del" and object_id in model:
            del sizes[object_id], model[object_id]
        else:
            assert sizes.pop(object_id, None) == model.pop(object_id, None)
        assert sizes.total == sum(model.values()) and sizes.copy() == model
        assert len(sizes) == len(model) and all(i in sizes for i in model)


async def test_counts_membership_and_capacity_follow_every_change(driver: NullDriver) -> None:
    faulty = FaultyDriver(driver, frozenset())  # delegating, as a node with faults does
    await faulty.create_volume(VOL, 10)
    await faulty.create_snapshot("s1", VOL)
    await faulty.extend_volume(VOL, 12)
    await faulty.create_cloned_volume("clone", VOL, 20)
    assert faulty.volume_count() == 2
    assert faulty.holds("volume", VOL) and faulty.holds("snapshot", "s1")
    assert not faulty.holds("volume", "s1") and not faulty.holds("snapshot", VOL)
    cap = faulty.capacity()
    assert (cap.allocated_capacity_gb, cap.provisioned_capacity_gb) == (32.0, 42.0)
    await faulty.delete_volume("clone")
    await faulty.delete_snapshot("s1")
    cap = faulty.capacity()
    assert (cap.allocated_capacity_gb, cap.provisioned_capacity_gb) == (12.0, 12.0)
    assert faulty.volume_count() == 1 and not faulty.holds("snapshot", "s1")

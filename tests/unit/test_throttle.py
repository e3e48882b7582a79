"""The back-end QoS of an export (storage_node/nbd/throttle.py), on a clock the test
moves: each limit is a bucket of a second's worth that a request may take into debt, and
a request waits until every bucket it draws on is out of debt."""

from __future__ import annotations

import pytest

from cinderblock.storage_node.nbd.throttle import IoLimits, Throttle

MIB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limits_are_the_six_known_ones_above_zero() -> None:
    limits = IoLimits.from_specs({"total_iops_sec": 100, "read_bytes_sec": 0,
                                  "write_bytes_sec": -5, "size_iops_sec": 4096})
    assert limits == IoLimits(total_iops_sec=100)
    assert limits.as_specs() == {"total_iops_sec": 100}
    assert not IoLimits.from_specs({}) and limits


def test_bytes_a_second_are_a_second_s_burst_then_the_rate() -> None:
    clock = Clock()
    throttle = Throttle(IoLimits(total_bytes_sec=MIB), clock)
    assert throttle.delay(True, MIB // 2) == 0.0
    assert throttle.delay(False, MIB // 2) == 0.0  # the burst is spent
    assert throttle.delay(True, MIB // 4) == pytest.approx(0.25)
    clock.now += 0.25
    assert throttle.delay(True, MIB // 4) == pytest.approx(0.25)  # in step with the rate
    clock.now += 10.0  # idle: the bucket refills to a second's worth, not more
    assert throttle.delay(True, MIB) == 0.0
    assert throttle.delay(True, 4 * MIB) == pytest.approx(4.0)  # larger than a second
    assert throttle.delayed == 3 and throttle.waited_s == pytest.approx(4.5)


def test_reads_and_writes_draw_on_their_own_limits_and_the_total() -> None:
    clock = Clock()
    throttle = Throttle(IoLimits(read_iops_sec=2, write_iops_sec=10, total_iops_sec=4), clock)
    waits = [throttle.delay(True, 512) for _ in range(3)]
    assert waits == [0.0, 0.0, pytest.approx(0.5)]  # the read limit: 2 a second
    assert throttle.delay(False, 512) == 0.0  # writes have their own, and the total has room
    assert throttle.delay(False, 0) == pytest.approx(0.25)  # a trim: the total is spent
    flows = Throttle(IoLimits(write_bytes_sec=MIB), clock)
    assert flows.delay(True, 8 * MIB) == 0.0, "reads are not held to the write limit"

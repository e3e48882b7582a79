"""The cyclic collector: an answered request's exception leaves no cycle behind, and
an actor's collector pauses and frees are counted."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from cinderblock.actors.gateway.guards import Outcome, outcome
from cinderblock.actors.runtime.actor import drop_frames
from cinderblock.actors.runtime.collector import (
    WATCH,
    YOUNG_THRESHOLD,
    CollectorWatch,
    freeze_what_started,
)
from cinderblock.protocol.wire.errors import InternalError, OverQuota


@pytest.fixture
def collector_off() -> Iterator[None]:
    """What is freed must be freed by reference counts alone."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _failed_in_a_frame_that_keeps_it() -> BaseException:
    """An exception whose traceback holds a frame that holds the exception (as a
    flow's run holds its failure, or a create the future it set): a cycle."""
    try:
        try:
            raise InternalError("inner")
        except InternalError as inner:
            raise OverQuota("over quota", {"resource": "volumes"}) from inner
    except OverQuota as exc:
        kept = [exc]  # this frame, in exc's traceback, holds exc
        return kept[0]


def test_an_exception_in_a_cycle_is_freed_by_counts_once_its_frames_are_dropped(
    collector_off: None,
) -> None:
    exc = _failed_in_a_frame_that_keeps_it()
    gone = weakref.ref(exc)
    assert drop_frames(exc) is exc
    assert exc.__traceback__ is None and exc.__cause__ is not None
    assert exc.__cause__.__traceback__ is None
    del exc
    assert gone() is None


def test_without_dropping_its_frames_only_the_collector_frees_it(collector_off: None) -> None:
    exc = _failed_in_a_frame_that_keeps_it()
    gone = weakref.ref(exc)
    del exc
    assert gone() is not None  # the cycle: what a flood of failures left to collect
    gc.collect()
    assert gone() is None


def test_a_retry_waits_for_an_outcome_that_holds_no_traceback(collector_off: None) -> None:
    """The first attempt's error goes to its retries as a value (``Outcome``), which
    keeps no traceback of its own (``set_exception`` keeps one): dropping the error's
    frames frees it."""

    async def first_attempt(done: Outcome[str]) -> None:
        try:
            raise OverQuota("over quota", {"resource": "volumes"})
        except OverQuota as exc:
            done.set_result(exc)
            drop_frames(exc)

    async def main() -> weakref.ref[OverQuota]:
        done: Outcome[str] = asyncio.get_running_loop().create_future()
        await first_attempt(done)
        with pytest.raises(OverQuota) as retried:
            outcome(await done)
        gone = weakref.ref(retried.value)
        drop_frames(retried.value)
        del done, retried
        return gone

    assert asyncio.run(main())() is None


def test_the_watch_counts_collections_what_they_freed_and_their_pauses() -> None:
    watch = CollectorWatch()
    watch("start", {"generation": 2, "collected": 0, "uncollectable": 0})
    watch("stop", {"generation": 2, "collected": 5, "uncollectable": 0})
    watch("start", {"generation": 0, "collected": 0, "uncollectable": 0})
    watch("stop", {"generation": 0, "collected": 1, "uncollectable": 0})
    stats = watch.statistics()
    assert stats["collections"] == 2 and stats["collected"] == 6
    assert stats["pause_s"] >= 0 and stats["longest_pause_ms"] >= 0
    assert set(WATCH.statistics()) == set(stats)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_started_actor_collects_young_objects_less_often_and_still_frees_cycles() -> None:
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    try:
        frozen = freeze_what_started()
        assert frozen == gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert WATCH in gc.callbacks
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle made after the start: not frozen
        gone = weakref.ref(a)
        del a, b
        gc.collect(0)
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.callbacks[:] = callbacks

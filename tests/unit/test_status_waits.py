"""``StatusWaits``: the one mechanism behind every ``wait=True`` of the client."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import pytest

from cinderblock.protocol.client.status_waits import StatusWaits, VolumeError
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import VOLUME_ERRORS, VolumeStatus, statuses
from cinderblock.protocol.wire.errors import InvalidInput, Timeout
from tests.conftest import eventually

V = VolumeStatus
AVAILABLE: frozenset[StrEnum] = frozenset({V.AVAILABLE})


def vol(status: VolumeStatus, at: float, reason: str | None = None) -> Volume:
    return Volume("v1", "demo", 1, status, updated_at=at, reason=reason)


def waits() -> StatusWaits[Volume]:
    return StatusWaits("volume", VolumeError, VOLUME_ERRORS)


async def test_a_state_that_already_matches_is_returned_at_once() -> None:
    assert (await waits().wait(vol(V.AVAILABLE, 1.0), AVAILABLE, 1.0)).status is V.AVAILABLE


async def test_the_push_that_matches_settles_the_wait() -> None:
    w = waits()
    waiting = asyncio.create_task(w.wait(vol(V.CREATING, 1.0), AVAILABLE, 5.0))
    await eventually(lambda: w.statistics()["waiting"] == 1)
    w.seen(vol(V.CREATING, 2.0))
    assert not waiting.done()
    w.seen(vol(V.AVAILABLE, 3.0))
    assert (await waiting).updated_at == 3.0
    assert w.statistics() == {"waiting": 0, "remembered": 0}


async def test_a_push_seen_before_the_wait_and_newer_than_its_answer_counts() -> None:
    w = waits()
    w.seen(vol(V.AVAILABLE, 2.0))  # the push overtook the create's reply
    assert (await w.wait(vol(V.CREATING, 1.0), AVAILABLE, 1.0)).status is V.AVAILABLE


async def test_an_older_push_does_not_count() -> None:
    w = waits()
    w.seen(vol(V.AVAILABLE, 1.0))
    with pytest.raises(Timeout, match="did not reach"):
        await w.wait(vol(V.EXTENDING, 2.0), AVAILABLE, 0.05)


async def test_an_error_status_not_asked_for_raises_the_kinds_error_with_its_reason() -> None:
    w = waits()
    waiting = asyncio.create_task(w.wait(vol(V.CREATING, 1.0), AVAILABLE, 5.0))
    await eventually(lambda: w.statistics()["waiting"] == 1)
    w.seen(vol(V.ERROR, 2.0, reason="no valid backend"))
    with pytest.raises(VolumeError, match="went to error: no valid backend"):
        await waiting
    with pytest.raises(VolumeError):
        await w.wait(vol(V.ERROR_EXTENDING, 3.0), AVAILABLE, 1.0)


async def test_an_error_status_asked_for_is_an_answer() -> None:
    wanted: frozenset[StrEnum] = frozenset({V.ERROR})
    assert (await waits().wait(vol(V.ERROR, 1.0), wanted, 1.0)).status is V.ERROR


async def test_a_wait_that_times_out_names_what_it_waited_for() -> None:
    with pytest.raises(Timeout, match=r"volume v1 did not reach \['available'\]") as caught:
        await waits().wait(vol(V.CREATING, 1.0), AVAILABLE, 0.05)
    assert caught.value.details == {"volume_id": "v1", "status": V.CREATING}


def test_wanted_statuses_are_members_and_an_unknown_word_is_refused() -> None:
    assert statuses(VolumeStatus, "available") == {V.AVAILABLE}
    assert statuses(VolumeStatus, [V.IN_USE, "available"]) == {V.IN_USE, V.AVAILABLE}
    with pytest.raises(InvalidInput, match="unknown VolumeStatus 'availble'"):
        statuses(VolumeStatus, "availble")

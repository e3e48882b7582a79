"""A create retried with its request id while its first attempt still runs waits for
that attempt, even once its record is written (found by the kill suite, bench.chaos):
the first attempt may still fail and remove the record, and the retry must not have
been told of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cinderblock.actors.gateway.gateway import Gateway
from cinderblock.actors.gateway.guards import Outcome
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.actors.runtime.config import DEFAULT_TYPE, DEFAULT_ZONE, embedded
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import Timeout

KEY = ("demo", "req-1")


def gateway_with_a_create_in_flight(
    tmp_path: Path,
) -> tuple[Gateway, VolumeRecord, Outcome[VolumeRecord]]:
    """A gateway (not started) whose first attempt of ``KEY`` has written its record
    (``creating``) and is still running its flow."""
    gw = Gateway(embedded(tmp_path))
    rec = VolumeRecord(id="v-1", project_id="demo", user_id="demo", size=1,
                       status=VolumeStatus.CREATING, volume_type=VolumeType("t-1", DEFAULT_TYPE),
                       availability_zone=DEFAULT_ZONE, request_id="req-1", request_fp="fp")
    gw.store._remember(rec)  # as EntryCreateTask leaves it while its row is being written
    assert gw.store.made_by(*KEY) == (rec, "fp")
    first: Outcome[VolumeRecord] = asyncio.get_running_loop().create_future()
    gw._inflight[KEY] = ("fp", first)
    return gw, rec, first


async def test_the_retry_is_answered_with_the_record_once_the_first_attempt_succeeds(
    tmp_path: Path,
) -> None:
    gw, rec, first = gateway_with_a_create_in_flight(tmp_path)
    retry = asyncio.create_task(gw._existing(KEY, "fp"))
    await asyncio.sleep(0.01)
    assert not retry.done()  # waiting for the first attempt, not answering its record
    first.set_result(rec)
    assert (await retry) is rec


async def test_the_retry_gets_the_first_attempts_error_when_it_fails(tmp_path: Path) -> None:
    gw, rec, first = gateway_with_a_create_in_flight(tmp_path)
    retry = asyncio.create_task(gw._existing(KEY, "fp"))
    await asyncio.sleep(0.01)
    gw.store._forget(rec)  # the first attempt's revert removes its record ...
    first.set_result(Timeout("no reply to quota.reserve within 10s"))  # as the create sets it
    with pytest.raises(Timeout):  # ... and the retry was never told of it
        await retry

"""The two pieces under every actor and client: ``Calls`` (requests in flight) and
``Channel`` (one ZeroMQ socket on the asyncio loop), on real sockets."""

from __future__ import annotations

import asyncio

import pytest

from cinderblock.protocol.wire.codec import Envelope
from cinderblock.protocol.wire.errors import (
    Closed,
    NotFound,
    PeerGone,
    Timeout,
    Unavailable,
    error_from_wire,
)
from cinderblock.protocol.wire.rpc import Calls
from cinderblock.protocol.wire.transport import BATCH
from tests.unit.channel_pair import ChannelPair

# ---- Calls ---------------------------------------------------------------------


def reply(corr_id: int, body: object = None, error: dict[str, object] | None = None) -> Envelope:
    return Envelope("rep", 1000 + corr_id, "op", body, None, corr_id, error)


async def test_a_reply_settles_the_call_it_answers_and_only_that_one() -> None:
    calls = Calls()
    first, second = calls.start(1, "volume.show", 5.0), calls.start(2, "volume.show", 5.0)
    assert calls.settle(reply(2, {"id": "b"}))
    assert await second == {"id": "b"}
    assert not first.done() and len(calls) == 1
    calls.fail_all(Closed("done"))


async def test_an_error_reply_raises_the_error_of_its_code() -> None:
    calls = Calls()
    fut = calls.start(1, "volume.show", 5.0)
    calls.settle(reply(1, error=NotFound("no volume v", {"volume_id": "v"}).to_wire()))
    with pytest.raises(NotFound, match="no volume v"):
        await fut


async def test_a_late_or_unknown_reply_is_not_settled() -> None:
    calls = Calls()
    assert not calls.settle(reply(7))
    fut = calls.start(1, "ping", 5.0)
    calls.forget(1)  # the caller gave up on it (its send failed)
    assert not calls.settle(reply(1))
    assert not fut.done() and len(calls) == 0


async def test_a_call_unanswered_by_its_deadline_fails_with_a_timeout_naming_the_op() -> None:
    calls = Calls()
    fut = calls.start(1, "volume.extend", 0.05)
    with pytest.raises(Timeout, match=r"no reply to volume\.extend within 0\.05s"):
        await fut
    assert len(calls) == 0


async def test_fail_all_leaves_no_caller_waiting() -> None:
    calls = Calls()
    futs = [calls.start(i, "ping", 5.0) for i in range(3)]
    calls.fail_all(Closed("the actor is stopping"))
    for fut in futs:
        with pytest.raises(Closed, match="stopping"):
            await fut
    assert len(calls) == 0


async def test_calls_lost_with_one_peers_connection_fail_and_the_others_wait() -> None:
    calls = Calls()
    to_quota = [calls.start(i, "quota.reserve", 5.0, "quota") for i in (1, 2)]
    to_scheduler = calls.start(3, "scheduler.backends", 5.0, "scheduler")
    assert calls.lost_to("quota", "the connection to quota closed before it answered") == 2
    for fut in to_quota:
        with pytest.raises(PeerGone, match=r"quota\.reserve: the connection to quota closed"):
            await fut
    assert not to_scheduler.done() and len(calls) == 1
    assert calls.lost_to("quota", "again") == 0
    calls.fail_all(Closed("done"))
    with pytest.raises(Closed):
        await to_scheduler


async def test_calls_given_up_on_a_frozen_peer_fail_with_a_timeout_saying_why() -> None:
    calls = Calls()
    to_quota = calls.start(1, "quota.reserve", 10.0, "quota")
    to_scheduler = calls.start(2, "scheduler.backends", 10.0, "scheduler")
    assert calls.given_up_on("quota", "quota has not answered for 2.5s") == 1
    with pytest.raises(Timeout, match=r"no reply to quota\.reserve: quota has not answered"):
        await to_quota
    assert not to_scheduler.done() and len(calls) == 1
    calls.fail_all(Closed("done"))
    with pytest.raises(Closed):
        await to_scheduler


# ---- Channel --------------------------------------------------------------------


async def test_frames_go_both_ways_in_order(pair: ChannelPair) -> None:
    for i in range(BATCH + 10):  # more than one drain takes at a time
        pair.dealer.send([f"m{i}".encode()])
    got = [await asyncio.wait_for(pair.router_got.get(), 5.0) for _ in range(BATCH + 10)]
    assert got == [[b"dealer-1", f"m{i}".encode()] for i in range(BATCH + 10)]
    pair.router.send([b"dealer-1", b"back"])
    assert await asyncio.wait_for(pair.dealer_got.get(), 5.0) == [b"back"]


async def test_sending_on_a_channel_we_closed_is_our_closed_not_a_peer_gone(
    pair: ChannelPair,
) -> None:
    pair.dealer.close()
    with pytest.raises(Closed, match="channel is closed") as caught:
        pair.dealer.send([b"x"])
    assert not isinstance(caught.value, PeerGone)


async def test_sending_to_a_peer_that_is_not_connected_is_a_peer_gone_naming_it(
    pair: ChannelPair,
) -> None:
    with pytest.raises(PeerGone, match="peer 'node-9' is not connected") as caught:
        pair.router.send([b"node-9", b"x"])
    assert caught.value.details == {"peer": "node-9"}
    assert not isinstance(caught.value, Closed)


def test_closed_and_peer_gone_cross_the_wire_as_their_own_codes() -> None:
    for error in (Closed("we closed it"), PeerGone("gone", {"peer": "n"})):
        back = error_from_wire(error.to_wire())
        assert type(back) is type(error) and isinstance(back, Unavailable)
        assert back.details == error.details
    assert Closed.code != PeerGone.code != Unavailable.code

"""Batches: what one loop turn sends to one peer travels as one ZeroMQ message
(``protocol/wire/batching.py``), and the receiver reads each envelope in it as if it had
come alone (``codec.decode_frame``); on real sockets."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
import zmq

from cinderblock.protocol.wire.codec import (
    MAX_BATCH,
    MAX_FRAME,
    Envelope,
    MalformedMessage,
    decode_frame,
    encode,
    pack_batch,
)
from cinderblock.protocol.wire.errors import Closed, PeerGone
from cinderblock.protocol.wire.transport import BATCH, Channel
from tests.unit.channel_pair import ChannelPair


def envelope(i: int, kind: str = "cast") -> bytes:
    return encode(Envelope(kind, i, "ping", {"i": i}))


# ---- the frame ------------------------------------------------------------------------


def test_a_frame_of_one_envelope_decodes_to_it_with_its_size() -> None:
    frame = envelope(1)
    [(env, size)] = decode_frame(frame)
    assert isinstance(env, Envelope) and env.body == {"i": 1}
    assert size == len(frame)


def test_a_batch_decodes_to_each_envelope_in_order_with_its_own_size() -> None:
    payloads = [envelope(i) for i in range(5)]
    decoded = decode_frame(pack_batch(payloads))
    assert [e.body for e, _ in decoded if isinstance(e, Envelope)] == [{"i": i} for i in range(5)]
    assert [size for _, size in decoded] == [len(p) for p in payloads]


def test_a_malformed_envelope_in_a_batch_stands_alone_and_the_others_are_read() -> None:
    bad = msgpack.packb([1, "shout", 9, None, "ping", None, None, None])
    decoded = decode_frame(pack_batch([envelope(1), bad, envelope(2)]))
    first, broken, last = (env for env, _ in decoded)
    assert isinstance(first, Envelope) and isinstance(last, Envelope)
    assert isinstance(broken, MalformedMessage)
    assert "kind must be one of" in broken.problem and broken.msg_id == 9


def test_a_batch_item_that_is_not_bin_is_malformed() -> None:
    frame = msgpack.packb([envelope(1), "not an envelope"])
    (_, _), (broken, _) = decode_frame(frame)
    assert isinstance(broken, MalformedMessage) and "as bin" in broken.problem


def test_a_batch_of_more_than_max_batch_envelopes_is_refused_whole() -> None:
    with pytest.raises(MalformedMessage, match=f"at most {MAX_BATCH} envelopes"):
        decode_frame(pack_batch([envelope(i) for i in range(MAX_BATCH + 1)]))


# ---- the sender -----------------------------------------------------------------------


def bodies(frame: bytes) -> list[object]:
    return [env.body for env, _ in decode_frame(frame) if isinstance(env, Envelope)]


async def test_the_first_envelope_of_a_turn_goes_at_once_and_the_rest_as_one_message(
    pair: ChannelPair,
) -> None:
    for i in range(10):
        pair.dealer_out.send(b"", envelope(i))
    assert await pair.router_message() == [b"dealer-1", envelope(0)]
    identity, frame = await pair.router_message()
    assert identity == b"dealer-1"
    assert bodies(frame) == [{"i": i} for i in range(1, 10)]
    assert pair.dealer_out.statistics() == {"messages": 2, "envelopes": 10, "lost": 0}


async def test_one_envelope_alone_in_its_turn_travels_as_it_always_did(pair: ChannelPair) -> None:
    pair.dealer_out.send(b"", envelope(7))
    assert await pair.router_message() == [b"dealer-1", envelope(7)]
    await asyncio.sleep(0)  # the next turn
    pair.dealer_out.send(b"", envelope(8))
    assert await pair.router_message() == [b"dealer-1", envelope(8)]


async def test_a_turn_past_max_batch_envelopes_is_split_keeping_the_order(
    pair: ChannelPair,
) -> None:
    for i in range(1 + MAX_BATCH + 3):
        pair.dealer_out.send(b"", envelope(i))
    frames = [(await pair.router_message())[1] for _ in range(3)]
    assert [len(decode_frame(frame)) for frame in frames] == [1, MAX_BATCH, 3]
    assert [b for f in frames for b in bodies(f)] == [{"i": i} for i in range(MAX_BATCH + 4)]


async def test_a_batch_never_grows_past_the_frame_limit(pair: ChannelPair) -> None:
    big = encode(Envelope("cast", 1, "ping", {"blob": "x" * (MAX_FRAME // 3)}))
    for _ in range(5):
        pair.dealer_out.send(b"", big)
    frames: list[bytes] = []
    while sum(len(decode_frame(frame)) for frame in frames) < 5:
        frames.append((await pair.router_message())[1])
    assert all(len(frame) <= MAX_FRAME for frame in frames)
    assert len(frames) == 3, "one at once, then two batches of what fits"


async def test_now_goes_at_once_after_what_waits_for_its_peer(pair: ChannelPair) -> None:
    pair.dealer_out.send(b"", envelope(0))  # at once
    pair.dealer_out.send(b"", envelope(1))  # waits for the end of the turn
    pair.dealer_out.send(b"", envelope(2), now=True)  # a reply made while draining
    got = [(await pair.router_message())[1] for _ in range(3)]
    assert got == [envelope(0), envelope(1), envelope(2)]


async def test_a_held_envelope_goes_with_the_next_to_its_peer_as_one_message(
    pair: ChannelPair,
) -> None:
    pair.dealer_out.send(b"", envelope(0), hold=True)  # the quota journal's apply ...
    pair.dealer_out.send(b"", envelope(1))  # ... and the call that kicked it
    [identity, frame] = await pair.router_message()
    assert identity == b"dealer-1" and bodies(frame) == [{"i": 0}, {"i": 1}]
    assert pair.dealer_out.statistics() == {"messages": 1, "envelopes": 2, "lost": 0}
    await asyncio.sleep(0)  # the next turn
    pair.dealer_out.send(b"", envelope(2), hold=True)  # nothing follows it this turn
    assert await pair.router_message() == [b"dealer-1", envelope(2)]


async def test_what_stops_a_held_envelope_and_the_next_raises_and_fails_the_held_call(
    pair: ChannelPair,
) -> None:
    pair.dealer_out.send(b"", envelope(1, "req"), call=1, hold=True)
    pair.dealer.close()
    with pytest.raises(Closed):
        pair.dealer_out.send(b"", envelope(2, "req"), call=2)
    assert pair.lost == [([1], Closed("x").code)]


async def test_a_router_batches_only_to_a_peer_that_sent_it_a_batch(pair: ChannelPair) -> None:
    pair.dealer_out.send(b"", envelope(0))  # the router learns the dealer's identity
    await pair.router_message()
    for i in range(3):
        pair.router_out.send(b"dealer-1", envelope(i))
    singles = [await pair.dealer_message() for _ in range(3)]
    assert singles == [[envelope(i)] for i in range(3)], "one message each, as before"
    pair.router_out.reads_batches(b"dealer-1")
    for i in range(3):
        pair.router_out.send(b"dealer-1", envelope(i))
    assert await pair.dealer_message() == [envelope(0)]
    [frame] = await pair.dealer_message()
    assert bodies(frame) == [{"i": 1}, {"i": 2}]


async def test_the_first_send_to_a_peer_that_is_not_connected_is_a_peer_gone_at_once(
    pair: ChannelPair,
) -> None:
    with pytest.raises(PeerGone, match="peer 'node-9' is not connected"):
        pair.router_out.send(b"node-9", envelope(1))


async def test_calls_that_could_not_be_sent_by_the_end_of_the_turn_are_failed(
    pair: ChannelPair,
) -> None:
    pair.dealer_out.send(b"", envelope(1, "cast"))  # at once
    pair.dealer_out.send(b"", envelope(2, "req"), call=2)  # these two wait for the turn's end
    pair.dealer_out.send(b"", envelope(3, "cast"))
    pair.dealer.close()  # gone before the turn ends
    await asyncio.sleep(0)
    assert pair.lost == [([2], Closed("x").code)]
    assert pair.dealer_out.statistics()["lost"] == 2


async def test_a_drain_counts_the_envelopes_of_a_batch_against_its_share_of_a_turn() -> None:
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    after_first_drain: list[int] = []

    def handle(frames: list[bytes]) -> int:
        if not seen:  # runs once this drain has yielded to the loop
            loop.call_soon(lambda: after_first_drain.append(len(seen)))
        seen.append(1)
        return MAX_BATCH  # as an actor says of a batch of MAX_BATCH envelopes

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://batch-drain")
    push.connect("inproc://batch-drain")
    channel = Channel(pull, handle)
    try:
        await asyncio.sleep(0.05)  # the channel has settled: the pushes below make one drain
        for _ in range(BATCH // MAX_BATCH + 5):
            push.send(b"batch")
        async with asyncio.timeout(5.0):
            while len(seen) < BATCH // MAX_BATCH + 5:
                await asyncio.sleep(0.01)
        assert after_first_drain == [BATCH // MAX_BATCH]
    finally:
        channel.close()
        push.close(linger=0)

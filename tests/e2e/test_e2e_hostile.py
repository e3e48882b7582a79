"""Hostile load on the gateway: memory bounded in bytes. A peer that floods it with
large requests and never reads its replies, or with frames over the frame limit,
leaves the gateway's RSS near where it started, and another client is served
meanwhile and afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import msgpack
import pytest
import zmq

from cinderblock.actors.runtime.peer_turns import RUNNING_PER_PEER
from cinderblock.bench.hostile import (
    PingTimes,
    create_frame,
    never_reading_peer,
    ping_while,
    rss_mb,
    stream,
)
from cinderblock.bench.zmtp_peer import HandshakeRefused, ZmtpCurvePeer
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import Unavailable
from cinderblock.protocol.wire.keys import client_keys, curve_client, load_public
from cinderblock.protocol.wire.pending_guard import PEER_BYTES
from tests.conftest import E2ECluster, eventually, make_config, running_cluster

MIB = 1 << 20
# What a hostile stream writes in the suite (128 MiB: RSS bounds hold from the first
# cut on, and one is past PEER_BYTES a few times over; 256 MiB cost the suite 25 s
# more); the gigabyte is ``CINDERBLOCK_HOSTILE_MIB=1024`` or
# ``python -m cinderblock.bench.hostile --gib 1`` (figures in docs/reliability.md).
STREAM = int(os.environ.get("CINDERBLOCK_HOSTILE_MIB", "128")) * MIB
# Another client's slowest ping while a peer floods: the target is 100 ms
# (``bench.hostile`` reports it); the suite, on a shared machine, allows some noise.
SLOWEST_PING_S = 0.25
# An endless message's connection is cut once it holds ``PEER_BYTES``, at the guard's
# next check (every ``CHECK_S`` on the gateway's loop); what the peer wrote meanwhile,
# and what was still in the kernel's buffers at the cut, is written and never counted.
# On a loaded machine the connections took about 64 MiB each (3 cuts in 256 MiB; 5 or
# 6 on a quiet one), so the suite asks for a cut every 3 ``PEER_BYTES``: without the
# guard there is none, and the RSS bounds below say what the cuts are for.
CUT_EVERY = 3 * PEER_BYTES


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    with running_cluster(make_config(tmp_path_factory.mktemp("hostile"))) as c:
        yield c


def _rss_mb(pid: int) -> float:
    rss = rss_mb(pid)
    assert rss > 0, f"no VmRSS for {pid}"
    return rss


async def _under_flood(lone: E2ECluster, frame: bytes, count: int, user: str = "flood"
                       ) -> tuple[float, PingTimes, dict[str, int]]:
    """A peer that sends ``count`` frames and never reads what comes back (its own
    process, a user the gateway admits) while another client pings: the gateway's RSS
    growth at its peak, the pings, and the most running and waiting at once."""
    pid = lone.cluster.procs["gateway"].pid
    before = _rss_mb(pid)
    peak, most = before, {"running": 0, "waiting": 0}
    async with lone.client("bystander", timeout=10.0) as client, \
            lone.client("admin", admin=True, timeout=10.0) as admin:
        await client.ping()
        peer = never_reading_peer(lone.gateway, lone.user_key(user), frame, count)
        turns: list[dict[str, int]] = []

        def sample() -> None:
            nonlocal peak
            peak = max(peak, _rss_mb(pid))

        watching = asyncio.create_task(_watch_turns(admin, peer, turns))
        pings = await ping_while(client, peer, sample=sample)
        await watching
        for seen in turns:
            most = {key: max(most[key], seen[key]) for key in most}
        await eventually(lambda: _creates(client), timeout=30.0)  # once it has caught up
    return peak - before, pings, most


async def _watch_turns(admin: Client, peer: BaseProcess, seen: list[dict[str, int]]) -> None:
    while peer.is_alive():
        seen.append((await admin.stats()).details["turns"])
        await asyncio.sleep(0.05)


async def _collector(lone: E2ECluster) -> dict[str, float]:
    async with lone.client("admin", admin=True) as admin:
        found: dict[str, float] = (await admin.stats()).details["collector"]
        return found


async def _creates(client: Client) -> bool:
    try:
        return (await client.create_volume(1, wait=True)).status == "available"
    except Unavailable:  # "quota has not answered": the gateway is still catching up
        return False


async def test_a_gigabyte_of_large_requests_from_a_peer_that_never_reads_is_held_in_bytes(
    lone: E2ECluster,
) -> None:
    """1,000 creates of 1 MiB each (metadata over Cinder's limit: each is read, then
    refused): the gateway's RSS stays near where it was and another client is
    answered meanwhile (``python -m cinderblock.bench.hostile`` gives the figures)."""
    grown, pings, _ = await _under_flood(lone, create_frame("flood", MIB - 400), 1000)
    print(f"1,000 requests of 1 MiB from a peer that never reads: gateway RSS grew by "
          f"{grown:.0f} MB at the peak; {pings.summary()}")
    assert grown < 100, f"the gateway grew by {grown:.0f} MB"
    assert pings.slowest() < SLOWEST_PING_S, pings.summary()


async def test_a_stream_of_frames_over_the_limit_costs_the_gateway_nothing(
    lone: E2ECluster,
) -> None:
    """Each frame over the limit is refused at its header and its connection cut; the
    peer dials again and goes on until it has written ``STREAM`` bytes."""
    grown, slowest, (written, cuts) = await _while_streaming(
        lone, "oversized", STREAM, b"\x93" + os.urandom(2 * MIB), more=False)
    print(f"oversized frames: {written} bytes written, cut off {cuts} times; gateway RSS "
          f"grew by {grown:.0f} MB at the peak; slowest ping {slowest:.3f}s")
    assert written >= STREAM
    assert cuts >= STREAM // (2 * MIB + 1) // 2
    assert grown < 100, f"the gateway grew by {grown:.0f} MB"


def _stream(endpoint: str, key: Path | None, total: int, chunk: bytes, more: bool,
            socket_type: bytes = b"DEALER") -> tuple[int, int]:
    """``bench.hostile.stream`` at ``endpoint`` with a key the gateway admits."""
    keys = client_keys(key)
    assert keys is not None, "the hostile peer needs a key the gateway admits"
    own, server = keys
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return stream(host, int(port), server, own.public, own.secret, total, chunk, more,
                  socket_type)


async def _while_streaming(lone: E2ECluster, user: str, total: int, chunk: bytes, more: bool
                          ) -> tuple[float, float, tuple[int, int]]:
    """The gateway's RSS growth at its peak and the slowest ping of another client while
    a hostile peer streams; then a create still works. Returns those and ``_stream``'s."""
    pid = lone.cluster.procs["gateway"].pid
    before = peak = _rss_mb(pid)
    slowest = 0.0
    stream = asyncio.create_task(asyncio.to_thread(
        _stream, lone.gateway, lone.user_key(user), total, chunk, more))
    async with lone.client("bystander", timeout=10.0) as client:
        while not stream.done():
            started = time.monotonic()
            await client.ping()
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, _rss_mb(pid))
            await asyncio.sleep(0.02)
        streamed = await stream
        assert (await client.create_volume(1, wait=True)).status == "available"
    return peak - before, slowest, streamed


async def test_a_message_that_never_ends_is_cut_off_and_costs_the_gateway_little(
    lone: E2ECluster,
) -> None:
    grown, slowest, (written, cuts) = await _while_streaming(
        lone, "endless", STREAM, b"x" * (64 << 10), more=True)
    print(f"endless message: {written} bytes written, cut off {cuts} times; gateway RSS "
          f"grew by {grown:.0f} MB at the peak; slowest ping {slowest:.3f}s")
    assert written >= STREAM
    assert cuts >= written // CUT_EVERY, f"cut off {cuts} times in {written} bytes"
    assert grown < 100, f"the gateway grew by {grown:.0f} MB"
    assert slowest < 2.0, f"a ping took {slowest:.3f}s while the endless message came"


def test_a_peer_without_an_admitted_key_never_gets_a_frame_in(
    lone: E2ECluster, tmp_path: Path,
) -> None:
    stranger_public, stranger_secret = zmq.curve_keypair()
    gateway_public = load_public(lone.cfg.path("keys", "gateway.key"))
    host, port = lone.gateway.removeprefix("tcp://").rsplit(":", 1)
    peer = ZmtpCurvePeer(host, int(port), gateway_public, stranger_public, stranger_secret)
    try:
        with pytest.raises(HandshakeRefused):
            peer.handshake()
    finally:
        peer.close()


def _bad_messages(count: int) -> Iterator[bytes]:
    """Requests and casts that are each wrong in one of the ways a peer can be wrong:
    not msgpack, an unknown op, a body that does not fit the op's schema, an op the
    sender's role may not send."""
    ctx = {"project_id": "bad", "user_id": "bad", "roles": ["member"], "request_id": ""}
    kinds: list[bytes] = [b"\xc1 not msgpack"]
    for kind in ("req", "cast"):
        kinds += [
            msgpack.packb([1, kind, 7, None, "no.such.op", ctx, {}, None]),
            msgpack.packb([1, kind, 7, None, "volume.create", ctx, {"size": "big"}, None]),
            msgpack.packb([1, kind, 7, None, "volume.update", ctx,
                           {"volume_id": "v", "status": "available"}, None]),
        ]
    for i in range(count):
        yield kinds[i % len(kinds)]


def _log_bytes(lone: E2ECluster) -> int:
    logs = lone.cluster.log_path("gateway").parent
    return sum(p.stat().st_size for p in logs.glob("gateway.*"))


async def test_a_hundred_thousand_bad_messages_grow_the_gateway_log_by_little(
    lone: E2ECluster,
) -> None:
    await asyncio.sleep(1.0)  # the log lines of the earlier tests are written
    before = _log_bytes(lone)
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    keys = client_keys(lone.user_key("bad"))
    if keys is not None:
        curve_client(sock, *keys)
    sock.connect(lone.gateway)
    replies = 0
    try:
        for i, frame in enumerate(_bad_messages(100_000)):
            sock.send(frame)
            if i % 1000 == 999:
                while sock.poll(0 if i < 99_999 else 3000):
                    sock.recv()
                    replies += 1
    finally:
        sock.close(linger=0)
        zctx.term()
    gateway_public = load_public(lone.cfg.path("keys", "gateway.key"))
    host, port = lone.gateway.removeprefix("tcp://").rsplit(":", 1)
    for _ in range(200):  # strangers, whose handshakes fail
        stranger = ZmtpCurvePeer(host, int(port), gateway_public, *zmq.curve_keypair())
        with contextlib.suppress(HandshakeRefused, OSError):
            stranger.handshake()
        stranger.close()
    assert keys is not None
    for _ in range(200):  # a frame over the limit each, from an admitted key
        peer = ZmtpCurvePeer(host, int(port), keys[1], keys[0].public, keys[0].secret)
        with contextlib.suppress(OSError):
            peer.handshake()
            peer.send_frames(b"x" * (2 * MIB), 1, more=False)
        peer.close()
    await asyncio.sleep(1.0)
    grown = _log_bytes(lone) - before
    print(f"100,000 bad messages, 200 refused handshakes, 200 oversized frames: {replies} "
          f"error replies, the gateway's log grew by {grown} bytes")
    assert replies >= 40_000, "the requests among them were answered"
    assert grown < 64 << 10, f"the gateway's log grew by {grown} bytes"


async def test_a_peer_that_floods_creates_and_never_reads_runs_a_few_at_a_time(
    lone: E2ECluster,
) -> None:
    """20,000 creates sent at once by a peer that never reads (most over quota): at
    most RUNNING_PER_PEER of them run at a time (the rest wait in its line or are
    refused), so a group commit never settles thousands at once; their failures leave
    no garbage cycles for the collector to stop the loop over; another client's ping
    stays quick."""
    collector = await _collector(lone)
    _, pings, most = await _under_flood(lone, create_frame("crowd"), 20_000, user="crowd")
    freed = (await _collector(lone))["collected"] - collector["collected"]
    print(f"20,000 creates from a peer that never reads: {pings.summary()}; at most "
          f"{most['running']} running and {most['waiting']} waiting; the cyclic collector "
          f"freed {freed} objects meanwhile")
    assert most["waiting"] > 0, "the flood had to wait in line"
    assert most["running"] <= RUNNING_PER_PEER + 8
    assert freed < 2_000, f"the failed creates left {freed} objects in garbage cycles"
    assert pings.slowest() < SLOWEST_PING_S, pings.summary()


async def test_a_subscriber_whose_message_never_ends_is_cut_off_by_the_event_hub(
    lone: E2ECluster,
) -> None:
    """The hub's XPUB (users subscribe there) holds an endless message the same way."""
    pid = lone.cluster.procs["gateway"].pid
    before = _rss_mb(pid)
    streaming = asyncio.create_task(asyncio.to_thread(
        _stream, lone.cfg.events, lone.user_key("listener"), STREAM,
        b"\x01" + b"x" * ((64 << 10) - 1), True, b"XSUB"))
    peak = before
    while not streaming.done():
        peak = max(peak, _rss_mb(pid))
        await asyncio.sleep(0.02)
    written, cuts = await streaming
    print(f"event hub, endless message: {written} bytes written, cut off {cuts} times; "
          f"gateway RSS {before:.0f} MB -> {peak:.0f} MB at the peak")
    assert written >= STREAM
    assert cuts >= written // CUT_EVERY, f"cut off {cuts} times in {written} bytes"
    assert peak - before < 100, f"the gateway grew by {peak - before:.0f} MB"

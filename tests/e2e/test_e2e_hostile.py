"""Hostile load on the gateway: memory bounded in bytes. A peer that floods it with
large requests and never reads its replies, or with frames over the frame limit,
leaves the gateway's RSS near where it started, and another client is served
meanwhile and afterwards."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import Unavailable
from cinderblock.protocol.wire.keys import client_keys, curve_client
from tests.conftest import E2ECluster, eventually, make_config, running_cluster

MIB = 1 << 20


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    with running_cluster(make_config(tmp_path_factory.mktemp("hostile"))) as c:
        yield c


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _create_with_a_mib_of_metadata() -> bytes:
    ctx = {"project_id": "flood", "user_id": "flood", "roles": ["member"], "request_id": ""}
    body = {"size": 1, "metadata": {"k": "v" * (MIB - 400)}}
    frame: bytes = msgpack.packb([1, "req", 1, None, "volume.create", ctx, body, None])
    return frame


async def _flood(lone: E2ECluster, frame: bytes, count: int) -> None:
    """Send ``count`` frames from a peer that never reads what comes back: a user the
    gateway admits (its own key), so that what it sends reaches the gateway."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, count + 1)
    sock.setsockopt(zmq.LINGER, 0)
    keys = client_keys(lone.user_key("flood"))
    if keys is not None:
        curve_client(sock, *keys)
    sock.connect(lone.gateway)
    try:
        for i in range(count):
            sock.send(frame)
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the measuring task run
        await asyncio.sleep(3.0)  # what was sent arrives and is worked off
    finally:
        sock.close(linger=0)
        zctx.term()


async def _under_flood(lone: E2ECluster, frame: bytes, count: int) -> tuple[float, float]:
    """The gateway's RSS growth at its peak, and the slowest ping of another client."""
    pid = lone.cluster.procs["gateway"].pid
    before = _rss_mb(pid)
    peak, slowest = before, 0.0
    flood = asyncio.create_task(_flood(lone, frame, count))
    async with lone.client("bystander", timeout=10.0) as client:
        while not flood.done():
            started = time.monotonic()
            await client.ping()
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, _rss_mb(pid))
            await asyncio.sleep(0.05)
        await flood
        await eventually(lambda: _creates(client), timeout=30.0)  # once it has caught up
    return peak - before, slowest


async def _creates(client: Client) -> bool:
    try:
        return (await client.create_volume(1, wait=True)).status == "available"
    except Unavailable:  # "quota has not answered": the gateway is still catching up
        return False


async def test_a_gigabyte_of_large_requests_from_a_peer_that_never_reads_is_held_in_bytes(
    lone: E2ECluster,
) -> None:
    grown, slowest = await _under_flood(lone, _create_with_a_mib_of_metadata(), 1000)
    assert grown < 200, f"the gateway grew by {grown:.0f} MB"
    assert slowest < 1.0, f"a ping took {slowest:.3f}s during the flood"


async def test_frames_over_the_limit_cost_the_gateway_nothing(lone: E2ECluster) -> None:
    oversized = b"\x93" + os.urandom(2 * MIB)
    grown, _ = await _under_flood(lone, oversized, 500)
    assert grown < 100, f"the gateway grew by {grown:.0f} MB"

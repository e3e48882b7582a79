"""Hostile load, measured: what a peer that breaks the rules costs.

    python -m cinderblock.bench.hostile [--gib 1] [--creates 20000]

1. libzmq alone: a CURVE ROUTER in a child process, and a hand-written ZMTP peer
   (``bench/zmtp_peer.py``) that streams one multipart message that never ends.
   libzmq's own limits (``ZMQ_MAXMSGSIZE`` per frame, ``ZMQ_RCVHWM`` in whole
   messages) never fire, and the child's RSS grows with what was sent.
2. The gateway (a real cluster): the same stream, dialling again each time it is cut
   off (``protocol/wire/pending_guard.py``); then a gigabyte of frames over the frame
   limit; then a peer that sends ``--creates`` creates and never reads, while another
   client pings. Prints the gateway's RSS before and at the peak, the cuts, and the
   pings' slowest and median round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import zmq

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import embedded
from cinderblock.actors.runtime.keyring import add_user, list_users, secret_key_file
from cinderblock.bench.zmtp_peer import ZmtpCurvePeer
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.keys import client_keys, curve_client

MIB = 1 << 20
BARE_ROUTER = """
import sys, zmq
ctx = zmq.Context()
public, secret = zmq.curve_keypair()
router = ctx.socket(zmq.ROUTER)
router.curve_server, router.curve_secretkey, router.curve_publickey = True, secret, public
router.setsockopt(zmq.MAXMSGSIZE, (1 << 20) + 4096)
router.setsockopt(zmq.RCVHWM, 100)
port = router.bind_to_random_port("tcp://127.0.0.1")
print(port, public.decode(), flush=True)
while True:
    if router.poll(1000):
        router.recv_multipart()
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """A thread sampling a process's RSS every 20 ms, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.before = pid, rss_mb(pid)
        self.peak, self._stop = self.before, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return self.before, self.peak


def stream(host: str, port: int, server: bytes, public: bytes, secret: bytes, total: int,
           chunk: bytes, more: bool, socket_type: bytes = b"DEALER") -> tuple[int, int]:
    """Write ``total`` bytes of ``chunk`` frames from a hand-written ZMTP peer (``more``
    set: one message that never ends), dialling again when cut off. Returns (bytes
    written, times cut off)."""
    written = cuts = 0
    while written < total:
        peer = ZmtpCurvePeer(host, port, server, public, secret, socket_type)
        try:
            peer.handshake()
            while written + peer.sent < total:
                peer.send_frames(chunk, 16 if more else 1, more)
        except OSError:
            cuts += 1
        finally:
            written += peer.sent
            peer.close()
    return written, cuts


def bare_libzmq(total: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", BARE_ROUTER], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        port, key = child.stdout.readline().split()
        watch = PeakRss(child.pid)
        public, secret = zmq.curve_keypair()
        written, _ = stream("127.0.0.1", int(port), key.encode(), public, secret, total,
                            b"x" * (64 << 10), more=True)
        before, peak = watch.stop()
        print(f"libzmq alone, one endless message of {written / MIB:.0f} MiB: RSS "
              f"{before:.0f} MB -> {peak:.0f} MB")
    finally:
        child.kill()
        child.wait()


def user_key(data_dir: Path, name: str) -> Path:
    if name not in {u.name for u in list_users(data_dir)}:
        add_user(data_dir, name, name, ("admin",) if name == "admin" else ("member",))
    return secret_key_file(data_dir, name)


def gateway_streams(cluster: Cluster, data_dir: Path, total: int) -> None:
    keys = client_keys(user_key(data_dir, "hostile"))
    assert keys is not None
    own, server = keys
    host, port = cluster.cfg.gateway.removeprefix("tcp://").rsplit(":", 1)
    for label, chunk, more in (("one endless message", b"x" * (64 << 10), True),
                               ("frames over the limit", b"\x93" + os.urandom(2 * MIB), False)):
        watch = PeakRss(cluster.procs["gateway"].pid)
        written, cuts = stream(host, int(port), server, own.public, own.secret, total, chunk,
                               more)
        before, peak = watch.stop()
        print(f"gateway, {label}: {written / MIB:.0f} MiB written, cut off {cuts} times; "
              f"RSS {before:.0f} MB -> {peak:.0f} MB at the peak")


async def create_flood(cluster: Cluster, data_dir: Path, creates: int) -> None:
    ctx = {"project_id": "crowd", "user_id": "crowd", "roles": ["member"], "request_id": ""}
    frame = msgpack.packb([1, "req", 1, None, "volume.create", ctx, {"size": 1}, None])
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, creates + 1)
    sock.setsockopt(zmq.LINGER, 0)
    keys = client_keys(user_key(data_dir, "crowd"))
    if keys is not None:
        curve_client(sock, *keys)
    sock.connect(cluster.cfg.gateway)
    pings: list[float] = []
    async with Client(cluster.cfg.gateway, key=user_key(data_dir, "bystander")) as client:
        await client.ping()
        for i in range(creates):
            sock.send(frame)
            if i % 500 == 0:
                await asyncio.sleep(0)
        until = time.monotonic() + 5.0
        while time.monotonic() < until:
            started = time.monotonic()
            await client.ping()
            pings.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
    sock.close(linger=0)
    zctx.term()
    pings.sort()
    print(f"gateway, {creates} creates from a peer that never reads: {len(pings)} pings "
          f"by another client, slowest {pings[-1] * 1000:.0f} ms, median "
          f"{pings[len(pings) // 2] * 1000:.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="GiB each stream writes")
    p.add_argument("--creates", type=int, default=20_000)
    args = p.parse_args()
    total = int(args.gib * (1 << 30))
    bare_libzmq(total)
    data_dir = Path(tempfile.mkdtemp(prefix="hostile-"))
    cluster = Cluster(embedded(data_dir))
    cluster.start(timeout=30.0)
    try:
        gateway_streams(cluster, data_dir, total)
        asyncio.run(create_flood(cluster, data_dir, args.creates))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

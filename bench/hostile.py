"""Hostile load, measured: what a peer that breaks the rules costs.

    python -m cinderblock.bench.hostile [--gib 1] [--creates 20000]

1. libzmq alone: a CURVE ROUTER in a child process, and a hand-written ZMTP peer
   (``bench/zmtp_peer.py``) that streams one multipart message that never ends.
   libzmq's own limits (``ZMQ_MAXMSGSIZE`` per frame, ``ZMQ_RCVHWM`` in whole
   messages) never fire, and the child's RSS grows with what was sent.
2. The gateway (a real cluster): the same stream, dialling again each time it is cut
   off (``protocol/wire/pending_guard.py``); then a gigabyte of frames over the frame
   limit; then peers that never read: one sends ``--creates`` small creates, another
   ``--large`` requests of 1 MiB each (refused: their metadata is too long), each from
   its own process while another client pings every 20 ms. Prints the gateway's RSS
   before and at the peak, the cuts, and the pings' slowest, 99th and median round
   trips (the target: none slower than 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
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


def create_frame(project: str, metadata_bytes: int = 0) -> bytes:
    """A create as a peer writes it by hand; ``metadata_bytes``: one metadata value that
    long (over Cinder's 255 characters, so refused, but only once it has been read)."""
    ctx = {"project_id": project, "user_id": project, "roles": ["member"], "request_id": ""}
    body: dict[str, object] = {"size": 1}
    if metadata_bytes:
        body["metadata"] = {"k": "v" * metadata_bytes}
    frame: bytes = msgpack.packb([1, "req", 1, None, "volume.create", ctx, body, None])
    return frame


def send_never_reading(endpoint: str, key: Path | None, frame: bytes, count: int,
                       stay_s: float) -> None:
    """Send ``count`` copies of ``frame`` at once from a DEALER that never reads what
    comes back, then stay connected ``stay_s`` (what was sent is worked off)."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, count + 1)
    sock.setsockopt(zmq.LINGER, 0)
    keys = client_keys(key)
    if keys is not None:
        curve_client(sock, *keys)
    sock.connect(endpoint)
    for _ in range(count):
        sock.send(frame)
    time.sleep(stay_s)
    sock.close(linger=0)
    zctx.term()


def never_reading_peer(endpoint: str, key: Path | None, frame: bytes, count: int,
                       stay_s: float = 3.0) -> BaseProcess:
    """``send_never_reading`` in a process of its own, started: a hostile peer is
    another program, and its sending costs the measuring process nothing."""
    proc = multiprocessing.get_context("spawn").Process(
        target=send_never_reading, args=(endpoint, key, frame, count, stay_s), daemon=True)
    proc.start()
    return proc


class PingTimes:
    """Round trips of one client's pings, summarised."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def add(self, seconds: float) -> None:
        self.times.append(seconds)

    def slowest(self) -> float:
        return max(self.times)

    def summary(self) -> str:
        ordered = sorted(self.times)
        n = len(ordered)
        return (f"{n} pings by another client, slowest {ordered[-1] * 1000:.0f} ms, 99th "
                f"{ordered[min(n - 1, n * 99 // 100)] * 1000:.0f} ms, median "
                f"{ordered[n // 2] * 1000:.1f} ms")


async def ping_while(client: Client, peer: BaseProcess, every_s: float = 0.02,
                     sample: Callable[[], None] | None = None) -> PingTimes:
    """Ping every ``every_s`` until ``peer`` has ended (``sample`` after each)."""
    pings = PingTimes()
    while peer.is_alive():
        started = time.monotonic()
        await client.ping()
        pings.add(time.monotonic() - started)
        if sample is not None:
            sample()
        await asyncio.sleep(every_s)
    peer.join()
    return pings


async def never_reading_floods(cluster: Cluster, data_dir: Path, creates: int, large: int
                               ) -> None:
    gateway = cluster.procs["gateway"].pid
    async with Client(cluster.cfg.gateway, key=user_key(data_dir, "bystander"),
                      timeout=10.0) as client:
        await client.ping()
        for label, frame, count in (
                (f"{creates} creates", create_frame("crowd"), creates),
                (f"{large} requests of 1 MiB", create_frame("flood", MIB - 400), large)):
            watch = PeakRss(gateway)
            peer = never_reading_peer(cluster.cfg.gateway, user_key(data_dir, "crowd"), frame,
                                      count)
            pings = await ping_while(client, peer)
            before, peak = watch.stop()
            print(f"gateway, {label} from a peer that never reads: {pings.summary()}; RSS "
                  f"{before:.0f} MB -> {peak:.0f} MB at the peak")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=1.0, help="GiB each stream writes")
    p.add_argument("--creates", type=int, default=20_000)
    p.add_argument("--large", type=int, default=1_000, help="requests of 1 MiB")
    args = p.parse_args()
    total = int(args.gib * (1 << 30))
    bare_libzmq(total)
    data_dir = Path(tempfile.mkdtemp(prefix="hostile-"))
    cluster = Cluster(embedded(data_dir))
    cluster.start(timeout=30.0)
    try:
        gateway_streams(cluster, data_dir, total)
        asyncio.run(never_reading_floods(cluster, data_dir, args.creates, args.large))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

"""The machine's raw messaging ceiling for the shape of a volume create.

A create travels client -> gateway -> quota -> gateway -> quota -> gateway -> scheduler
-> node -> gateway -> client: 5 processes, about 10 messages.  This benchmark runs the
same number of messages through the same number of real OS processes with none of the
work: ``hops`` processes after the client, in a line, each a ``python -m cinderblock.bench.ceiling
--hop I`` subprocess with a ROUTER bound on a random tcp://127.0.0.1 port for the
process before it and a DEALER connected to the process after it::

    client -> p1 -> p2 -> p1 -> p2 -> p3 -> ... -> pN -> ... -> p3 -> p2 -> p1 -> client

p1 (the "gateway") first makes one round trip to p2 (the "quota reserve"), then sends
the request down the line; the last hop replies and the reply travels back hop by hop.
That is ``2 * hops + 2`` messages a request (10 for the default 4 hops, 5 processes;
``hops=1`` is a plain round trip of 2).  Every hop decodes the ~200-byte msgpack
payload, changes it and re-encodes it, as an actor would.  Every process waits for
readiness once (``zmq.Poller``) and then drains its sockets with ``zmq.NOBLOCK`` until
``zmq.Again``.  The client keeps ``window`` requests outstanding.

Batched (``--batched``): the same chain, but every process sends what one wake-up
made for one peer as one ZeroMQ message (a msgpack array of the encoded envelopes,
cinderblock's batch frame) and reads every envelope of each message it receives, as
cinderblock's actors do since they batch (``protocol/wire/batching.py``). The unbatched
chain stays the ceiling that ``ratio`` is measured against (the issue's definition);
the batched one is reported beside it, so that a ratio over 1 cannot hide in it.

CPU per request is the client's ``time.process_time()`` plus each hop's (asked over its
stdin while the chain is idle), over the timed phase only.  The children run in their
own session (Ctrl-C goes to the parent, which stops them), exit when their stdin closes
(so they die with the parent), and are always stopped and reaped by PID.

    python -m cinderblock.bench.ceiling [--hops N] [--requests N] [--window W]
                                        [--duration S] [--batched] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import msgpack
import zmq

_STARTUP_TIMEOUT_S = 30.0
_STALL_TIMEOUT_S = 10.0
_MAX_BATCH = 64  # as cinderblock's codec.MAX_BATCH


@dataclass(frozen=True)
class CeilingResult:
    rps: float
    messages_per_request: int
    hops: int
    window: int
    cpu_ms_per_request: float
    batched: bool = False


def messages_per_request(hops: int) -> int:
    return 2 * hops + (2 if hops >= 2 else 0)


def _request(i: int) -> dict[str, Any]:
    """A ~200-byte envelope shaped like a create request."""
    ctx = {"project": "p-7d3f0c2a9b1e4f56", "user": "u-41c9e2d8a7b3", "roles": ["member"]}
    ctx["request_id"] = f"req-8f14e45f-{i:012d}"
    body = {"size": 1, "name": f"vol-{i:08d}", "volume_type": "FCVolumeType"}
    body["availability_zone"] = "nova"
    return {"v": 1, "kind": "req", "id": i, "op": "create", "hop": 0, "ctx": ctx, "body": body}


# --------------------------------------------------------------------------- hop side


class _Outbox:
    """What one wake-up sends, per destination: sent at once (unbatched) or kept and
    sent as one message per destination at the end of the wake-up (batched)."""

    def __init__(self, batched: bool) -> None:
        self.batched = batched
        self.waiting: dict[tuple[zmq.Socket[bytes], bytes], list[bytes]] = {}

    def send(self, sock: zmq.Socket[bytes], peer: bytes, data: bytes) -> None:
        if not self.batched:
            sock.send_multipart((peer, data)) if peer else sock.send(data)
            return
        self.waiting.setdefault((sock, peer), []).append(data)

    def flush(self) -> None:
        for (sock, peer), items in self.waiting.items():
            for i in range(0, len(items), _MAX_BATCH):
                chunk = items[i:i + _MAX_BATCH]
                data = chunk[0] if len(chunk) == 1 else msgpack.packb(chunk)
                sock.send_multipart((peer, data)) if peer else sock.send(data)
        self.waiting.clear()


def _envelopes(raw: bytes) -> list[Any]:
    """The envelopes of a message: one, or each of a batch (an array of bin)."""
    msg = msgpack.unpackb(raw)
    if type(msg) is list:
        return [msgpack.unpackb(item) for item in msg]
    return [msg]


def _run_hop(index: int, hops: int) -> int:
    """One hop: ROUTER upstream, DEALER downstream, commands on stdin, replies on stdout."""
    ctx = zmq.Context()
    up = ctx.socket(zmq.ROUTER)
    up.linger = 0
    port = up.bind_to_random_port("tcp://127.0.0.1")
    down: zmq.Socket[bytes] | None = None
    os.write(1, f"port {port}\n".encode())
    poller = zmq.Poller()
    poller.register(up, zmq.POLLIN)
    stdin = sys.stdin.fileno()
    poller.register(stdin, zmq.POLLIN)
    last = index == hops
    peer = b""
    out = _Outbox(False)
    pack, unpack, again, nb = msgpack.packb, msgpack.unpackb, zmq.Again, zmq.NOBLOCK
    try:
        while True:
            for sock, _ in poller.poll():
                if sock is up:
                    while True:
                        try:
                            peer, raw = up.recv_multipart(nb)
                        except again:
                            break
                        for msg in _envelopes(raw) if out.batched else (unpack(raw),):
                            msg["hop"] = index
                            if msg["op"] == "reserve":
                                msg["op"] = "reserved"
                                out.send(up, peer, pack(msg))
                            elif last:
                                msg["kind"] = "rep"
                                out.send(up, peer, pack(msg))
                            else:
                                if index == 1 and hops >= 2:
                                    msg["op"] = "reserve"
                                assert down is not None
                                out.send(down, b"", pack(msg))
                elif sock is down:
                    assert down is not None
                    while True:
                        try:
                            raw = down.recv(nb)
                        except again:
                            break
                        for msg in _envelopes(raw) if out.batched else (unpack(raw),):
                            msg["hop"] = index
                            if index == 1 and msg["op"] == "reserved":
                                msg["op"] = "create"
                                out.send(down, b"", pack(msg))
                            else:
                                out.send(up, peer, pack(msg))
                else:
                    words = os.read(stdin, 4096).decode().split()
                    if not words or words[0] == "stop":
                        return 0
                    if words[0] == "connect":
                        if words[1] != "-":
                            down = ctx.socket(zmq.DEALER)
                            down.linger = 0
                            down.connect(f"tcp://127.0.0.1:{words[1]}")
                            poller.register(down, zmq.POLLIN)
                        out = _Outbox(words[2:] == ["batched"])
                        os.write(1, b"ok\n")
                    elif words[0] == "cpu":
                        os.write(1, f"{time.process_time()!r}\n".encode())
            out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        ctx.destroy(linger=0)


# --------------------------------------------------------------------------- client side


def _spawn_hop(index: int, hops: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cinderblock.bench.ceiling", "--hop", str(index),
         "--hops", str(hops)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
        start_new_session=True,
    )


def _ask(proc: subprocess.Popen[bytes], command: str | None, timeout: float) -> str:
    """Send one command line (if any) and read one reply line, or fail after timeout."""
    assert proc.stdin is not None and proc.stdout is not None
    if command is not None:
        proc.stdin.write(f"{command}\n".encode())
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise RuntimeError(f"hop pid {proc.pid} did not answer {command!r} in {timeout}s")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise RuntimeError(f"hop pid {proc.pid} exited (rc={proc.poll()})")
        line += chunk
    return line.decode().strip()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Close stdin (the hop exits), then SIGTERM / SIGKILL by PID whatever is left; reap all."""
    for proc in procs:
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except OSError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _pump(sock: zmq.Socket[bytes], total: int, window: int, duration_s: float | None,
          batched: bool = False) -> int:
    """Keep `window` requests outstanding until `total` were sent (or the time is up)."""
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    deadline = None if duration_s is None else time.perf_counter() + duration_s
    out = _Outbox(batched)
    pack, unpack, again, nb = msgpack.packb, msgpack.unpackb, zmq.Again, zmq.NOBLOCK
    sent = done = 0
    while sent < min(window, total):
        out.send(sock, b"", pack(_request(sent)))
        sent += 1
    out.flush()
    while done < sent:
        if not poller.poll(int(_STALL_TIMEOUT_S * 1000)):
            raise RuntimeError(f"chain stalled: {done}/{sent} replies")
        more = deadline is None or time.perf_counter() < deadline
        while True:
            try:
                raw = sock.recv(nb)
            except again:
                break
            for reply in _envelopes(raw) if batched else (unpack(raw),):
                done += 1
                if more and sent < total:
                    reply["id"] = sent
                    reply["kind"] = "req"
                    reply["op"] = "create"
                    out.send(sock, b"", pack(reply))
                    sent += 1
        out.flush()
    return done


def measure_ceiling(
    hops: int = 4, requests: int = 20000, window: int = 64, duration_s: float | None = None,
    batched: bool = False,
) -> CeilingResult:
    """Run the chain; with `duration_s`, run that long instead of `requests` requests;
    `batched`: every process sends one message per destination per wake-up."""
    if hops < 1 or requests < 1 or window < 1:
        raise ValueError("hops, requests and window must be >= 1")
    procs: list[subprocess.Popen[bytes]] = []
    ctx = zmq.Context()
    try:
        for i in range(1, hops + 1):
            procs.append(_spawn_hop(i, hops))
        ports = [_ask(p, None, _STARTUP_TIMEOUT_S).split()[1] for p in procs]
        for i, proc in enumerate(procs):
            mode = " batched" if batched else ""
            _ask(proc, f"connect {ports[i + 1] if i + 1 < hops else '-'}{mode}",
                 _STARTUP_TIMEOUT_S)
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{ports[0]}")
        _pump(sock, max(1000, 4 * window), window, None if duration_s is None else 0.3,
              batched=batched)
        total = requests if duration_s is None else sys.maxsize

        def cpu() -> float:
            return time.process_time() + sum(float(_ask(p, "cpu", 5.0)) for p in procs)

        cpu0, t0 = cpu(), time.perf_counter()
        done = _pump(sock, total, window, duration_s, batched=batched)
        elapsed, cpu1 = time.perf_counter() - t0, cpu()
        return CeilingResult(
            rps=done / elapsed,
            messages_per_request=messages_per_request(hops),
            hops=hops,
            window=window,
            cpu_ms_per_request=(cpu1 - cpu0) * 1000.0 / done,
            batched=batched,
        )
    finally:
        ctx.destroy(linger=0)
        _stop(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cinderblock.bench.ceiling",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--hops", type=int, default=4, help="processes after the client")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64, help="requests outstanding")
    parser.add_argument("--duration", type=float, default=None, help="seconds, not --requests")
    parser.add_argument("--batched", action="store_true",
                        help="one message per destination per wake-up (cinderblock's batches)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--hop", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hop:
        return _run_hop(args.hop, args.hops)
    try:
        result = measure_ceiling(args.hops, args.requests, args.window, args.duration,
                                 args.batched)
    except KeyboardInterrupt:
        print("interrupted; hop processes stopped", file=sys.stderr)
        return 130
    mps = result.rps * result.messages_per_request
    if args.json:
        print(json.dumps({**asdict(result), "messages_per_s": mps}))
    else:
        print(
            f"ceiling{' (batched)' if result.batched else ''}: {result.hops} hops, "
            f"{result.hops + 1} processes, "
            f"{result.messages_per_request} messages/request, window {result.window}"
        )
        print(
            f"  {result.rps:,.0f} requests/s  {mps:,.0f} messages/s  "
            f"{result.cpu_ms_per_request:.3f} CPU ms/request "
            f"({result.cpu_ms_per_request * 1000 / result.messages_per_request:.1f} µs/message)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

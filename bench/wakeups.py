"""What one ZeroMQ message, and a little plain Python, cost on this host after a quiet
spell, against back to back.

    python -m cinderblock.bench.wakeups [--messages N] [--json]

A create one at a time (``bench.throughput --concurrency 1``) is a chain of 9 messages
across 5 processes, each handled by a process that did nothing since its last one.
libzmq does every TCP read and write in its I/O thread: a send wakes that thread, its
write wakes the peer's I/O thread, which wakes the peer's own thread; and code that has
not run for a while runs from cold caches. How much either costs depends on the host
(a virtual machine whose cores are shared can make both dear), not on cinderblock; this
measures them, so that the c=1 figures can be read against them.

A DEALER in this process and a ROUTER that echoes in a child process (a spawned
``multiprocessing`` process, stopped by its PID), on a random 127.0.0.1 port.

* ``streamed``: ``N`` sends of a 300-byte message back to back (the echoes read after),
  the wall time and the sending thread's CPU (``time.thread_time``) of one send, means:
  what a send costs while everybody is awake.
* ``pauses``: for each pause (0: the next at once after the last echo), ``N`` times:
  wait the pause (sleeping), send, wait for the echo. ``send_us`` (median) and
  ``send_cpu_us`` (mean: the CPU clock ticks coarser than one send) as above, and
  ``round_trip_us`` (median), from the send to the echo's arrival: two hops. And
  ``python_us`` (median), in a loop of its own: the same pause, then
  ``sum(range(200))`` (about 2 µs when run back to back): what any code costs once the
  process has been quiet that long, with no message at all.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from typing import Any

import zmq

from cinderblock.actors.runtime.config import free_port

PAUSES_MS = (0.0, 0.2, 1.0, 5.0)
PAYLOAD = b"x" * 300


def echo(endpoint: str) -> None:
    """The child: a ROUTER that sends every message back, until it gets b"stop"."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    while True:
        frames = sock.recv_multipart()
        if frames[-1] == b"stop":
            break
        sock.send_multipart(frames)
    sock.close()
    ctx.term()


def python_after(pause_s: float, times: int) -> float:
    """The median seconds of a little plain Python run after ``pause_s`` asleep."""
    took: list[float] = []
    for _ in range(times):
        if pause_s:
            time.sleep(pause_s)
        start = time.perf_counter()
        sum(range(200))
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def measure_pause(sock: zmq.Socket[bytes], pause_s: float, messages: int) -> dict[str, float]:
    wall: list[float] = []
    cpu: list[float] = []
    trip: list[float] = []
    for _ in range(messages):
        if pause_s:
            time.sleep(pause_s)
        start, start_cpu = time.perf_counter(), time.thread_time()
        sock.send(PAYLOAD, zmq.NOBLOCK)
        sent, sent_cpu = time.perf_counter(), time.thread_time()
        if not sock.poll(5000):
            raise RuntimeError("the echo process did not answer within 5 s")
        sock.recv()
        trip.append(time.perf_counter() - start)
        wall.append(sent - start)
        cpu.append(sent_cpu - start_cpu)
    return {"pause_ms": pause_s * 1000,
            "send_us": round(statistics.median(wall) * 1e6, 1),
            "send_cpu_us": round(statistics.mean(cpu) * 1e6, 1),
            "round_trip_us": round(statistics.median(trip) * 1e6, 1),
            "python_us": round(python_after(pause_s, messages) * 1e6, 1)}


def measure_stream(sock: zmq.Socket[bytes], messages: int) -> dict[str, float]:
    start, start_cpu = time.perf_counter(), time.thread_time()
    for _ in range(messages):
        sock.send(PAYLOAD)  # blocks only if the pipe is full (1000 by default)
    wall, cpu = time.perf_counter() - start, time.thread_time() - start_cpu
    for _ in range(messages):
        if not sock.poll(5000):
            raise RuntimeError("the echo process did not answer within 5 s")
        sock.recv()
    return {"send_us": round(wall / messages * 1e6, 1),
            "send_cpu_us": round(cpu / messages * 1e6, 1)}


def run(messages: int, pauses_ms: tuple[float, ...] = PAUSES_MS) -> dict[str, Any]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    child = multiprocessing.get_context("spawn").Process(target=echo, args=(endpoint,))
    child.start()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        measure_pause(sock, 0.0, 50)  # connected, and the echo is up
        streamed = measure_stream(sock, messages)
        by_pause = [measure_pause(sock, ms / 1000, messages) for ms in pauses_ms]
        sock.send(b"stop")
        child.join(5)
    finally:
        sock.close()
        ctx.term()
        if child.is_alive():
            child.kill()
        child.join()
    return {"messages": messages, "streamed": streamed, "pauses": by_pause}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.wakeups", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=2000, help="per pause (default 2000)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.messages < 1:
        p.error("--messages must be at least 1")
    result = run(args.messages)
    if args.json:
        print(json.dumps(result))
        return 0
    streamed = result["streamed"]
    print(f"streamed: a send {streamed['send_us']}us, {streamed['send_cpu_us']}us of CPU")
    print(f"{'pause':>8} {'send':>10} {'send CPU':>10} {'round trip':>12} {'python':>10}")
    for row in result["pauses"]:
        print(f"{row['pause_ms']:>6g}ms {row['send_us']:>8.1f}us {row['send_cpu_us']:>8.1f}us "
              f"{row['round_trip_us']:>10.1f}us {row['python_us']:>8.1f}us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

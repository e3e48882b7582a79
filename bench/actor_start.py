"""How long a cluster's actors take to start: what every ``up``, every supervised
restart and every test cluster pays.

Each run starts the embedded cluster (quota, scheduler, gateway, two file-backend nodes,
one REST front; security on) in a data directory of its own, waits until every node is
listed up and the front answers (``Cluster.start``), stops it, and counts the actors'
CPU (user and system, from start to exit) and the time from the first spawn to ready.

``--whole-cli`` starts each actor as ``cinderblock`` did before its entry point ran an
actor's command line on its own (the whole command line, every subcommand and the client
library, imported first), so the two can be compared in one sitting: runs alternate
between the two ways when ``--compare`` is given.

    python -m cinderblock.bench.actor_start [--runs N] [--whole-cli | --compare] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import embedded, with_rest_fronts

ENTRY = "entry"  # python -m cinderblock: an actor's command line runs on its own
WHOLE_CLI = "whole-cli"  # the whole command line imported first
_WHOLE_CLI_PREFIX = [sys.executable, "-c", "import sys; from cinderblock.actors.cli.main "
                     "import main; sys.exit(main())"]
_REAL_POPEN = subprocess.Popen


def _through_whole_cli(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
    assert cmd[1:3] == ["-m", "cinderblock"], cmd
    return _REAL_POPEN(_WHOLE_CLI_PREFIX + cmd[3:], *args, **kwargs)


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def one_start(way: str) -> tuple[float, float]:
    """(seconds from the first spawn to ready, CPU seconds of the actors' whole lives)."""
    with tempfile.TemporaryDirectory(prefix="cinderblock-start-") as directory:
        cfg = with_rest_fronts(embedded(Path(directory)), 1)
        cluster = Cluster(cfg)
        cpu = children_cpu()
        with mock.patch.object(subprocess, "Popen",
                               _through_whole_cli if way == WHOLE_CLI else _REAL_POPEN):
            began = time.perf_counter()
            try:
                cluster.start(timeout=60.0)
                ready = time.perf_counter() - began
            finally:
                cluster.stop()
        return ready, children_cpu() - cpu


def measure(ways: list[str], runs: int) -> dict[str, dict[str, float]]:
    found: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    for _ in range(runs):
        for way in ways:  # alternated, so a machine's drift falls on both alike
            found[way].append(one_start(way))
    return {way: {"runs": len(rows),
                  "ready_s_median": statistics.median(r[0] for r in rows),
                  "actors_cpu_s_median": statistics.median(r[1] for r in rows),
                  "ready_s_min": min(r[0] for r in rows),
                  "actors_cpu_s_min": min(r[1] for r in rows)}
            for way, rows in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cinderblock.bench.actor_start",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    way = parser.add_mutually_exclusive_group()
    way.add_argument("--whole-cli", action="store_true",
                     help="start each actor through the whole command line")
    way.add_argument("--compare", action="store_true",
                     help="alternate runs of both ways")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    ways = [ENTRY, WHOLE_CLI] if args.compare else [WHOLE_CLI if args.whole_cli else ENTRY]
    results = measure(ways, args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, r in results.items():
        print(f"{name:9}  {r['runs']} runs  start to ready: median {r['ready_s_median']:.2f} s "
              f"(min {r['ready_s_min']:.2f})  actors' CPU, 6 processes, start to exit: median "
              f"{r['actors_cpu_s_median']:.2f} s (min {r['actors_cpu_s_min']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

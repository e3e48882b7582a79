"""Keeping a cluster's actors alive: what ``cinderblock up`` does while it runs.

Theory
------
Every actor is a process of its own, started from the cluster file, which fixes
its endpoints: an actor started again binds (or connects to) the same addresses,
so its peers' ZeroMQ sockets, clients and dashboards reconnect to it on their own.

``Supervisor.watch`` looks at every process ``POLL_S``. A dead one is reported
(printed and appended to ``logs/up.log``, with its exit status) and started
again after a backoff that doubles with each death of that actor in the last
minute (``RestartPolicy``, plain code). Two deaths end supervision instead, and
with it the cluster (``SupervisionError``, whose text says why):

* an actor dying more than ``max_per_minute`` times within a minute (something
  is wrong that another start will not mend);
* an actor exiting with ``EXIT_CANNOT_START``: it found a file it must not
  start over (a damaged or foreign database, ...), or found its database damaged
  while it ran, and said so in its log.

``status.json`` in the data directory is rewritten (atomically) at every start
and death: each actor's pid, start time, restarts and last exit, which
``cinderblock status`` reads.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.parent import EXIT_CANNOT_START

POLL_S = 0.1
WINDOW_S = 60.0
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
MAX_RESTARTS_PER_MINUTE = 5
STATUS_FILE = "status.json"


class SupervisionError(RuntimeError):
    """Supervision gave up and stopped the cluster; the text says which actor and why."""


@dataclass
class RestartPolicy:
    """When to start a dead actor again, and when to give up (no I/O, no clock of its own)."""

    max_per_minute: int = MAX_RESTARTS_PER_MINUTE
    first_s: float = BACKOFF_FIRST_S
    max_s: float = BACKOFF_MAX_S
    _deaths: dict[str, deque[float]] = field(default_factory=dict)

    def died(self, name: str, now: float) -> float | None:
        """Record a death; the delay before the next start, or None past the cap."""
        recent = self._deaths.setdefault(name, deque())
        recent.append(now)
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        if len(recent) > self.max_per_minute:
            return None
        return float(min(self.max_s, self.first_s * 2 ** (len(recent) - 1)))


@dataclass
class ActorStatus:
    name: str
    pid: int
    started_at: float
    restarts: int = 0
    last_exit: str | None = None


def describe_exit(returncode: int) -> str:
    """``killed by SIGKILL`` or ``exited with status 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Supervisor:
    """Watches a started ``Cluster`` and keeps its actors running (see the module text)."""

    def __init__(self, cluster: Cluster, policy: RestartPolicy | None = None,
                 say: Callable[[str], None] = print) -> None:
        self.cluster = cluster
        self.policy = policy or RestartPolicy()
        self._say = say
        self.status = {name: ActorStatus(name, pid, time.time())
                       for name, pid in cluster.pids().items()}
        self._due: dict[str, float] = {}  # dead actors and when to start them again
        self.started_at = time.time()
        self.write_status()

    @property
    def status_path(self) -> Path:
        return self.cluster.data_dir / STATUS_FILE

    def watch(self) -> None:
        """Run until interrupted (KeyboardInterrupt) or until supervision gives up."""
        while True:
            self.check(time.monotonic())
            time.sleep(POLL_S)

    def check(self, now: float) -> None:
        """One look: report the dead, start again those whose backoff is over."""
        for name, proc in list(self.cluster.procs.items()):
            if name not in self._due and proc.poll() is not None:
                self._died(name, proc.returncode, now)
        for name, when in list(self._due.items()):
            if when <= now:
                del self._due[name]
                self._restart(name)

    def _died(self, name: str, returncode: int, now: float) -> None:
        entry = self.status[name]
        how = describe_exit(returncode)
        entry.last_exit = how
        log = self.cluster.log_path(name)
        if returncode == EXIT_CANNOT_START:
            self._give_up(f"{name} (pid {entry.pid}) must not be started again: "
                          f"{self.cluster.last_words(name)} "
                          f"(log: {log})")
        delay = self.policy.died(name, now)
        if delay is None:
            self._give_up(f"{name} died {self.policy.max_per_minute + 1} times within a "
                          f"minute, last {how} ({self.cluster.last_words(name)}); stopping the "
                          f"cluster (log: {log})")
        self.report(f"{name} (pid {entry.pid}) {how}; starting it again in {delay:.1f}s")
        self._due[name] = now + delay
        self.write_status()

    def _restart(self, name: str) -> None:
        proc = self.cluster.respawn(name)  # as it was started: same endpoints
        entry = self.status[name]
        entry.pid, entry.started_at, entry.restarts = proc.pid, time.time(), entry.restarts + 1
        self.report(f"{name} started again (pid {proc.pid}, restart {entry.restarts})")
        self.write_status()

    def _give_up(self, why: str) -> NoReturn:
        self.report(f"giving up: {why}")
        raise SupervisionError(why)

    def report(self, line: str) -> None:
        """Printed for whoever runs ``up``, and kept in ``logs/up.log``."""
        self._say(line)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.cluster.data_dir / "logs" / "up.log", "a") as f:
            f.write(f"{stamp} {line}\n")

    def write_status(self) -> None:
        doc: dict[str, Any] = {
            "pid": os.getpid(), "started_at": self.started_at,
            "actors": {n: {"pid": s.pid, "started_at": s.started_at, "restarts": s.restarts,
                           "last_exit": s.last_exit, "running": n not in self._due}
                       for n, s in self.status.items()},
        }
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(self.status_path)

    def remove_status(self) -> None:
        self.status_path.unlink(missing_ok=True)

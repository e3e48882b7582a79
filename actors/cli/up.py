"""``cinderblock up`` and ``cinderblock down``: one cluster per data directory.

``up`` supervises: it starts every actor, publishes ``endpoints.json`` (with its
own pid), starts again an actor that dies (``actors.runtime.supervisor``: same
endpoints, backoff, a cap per minute) and stops them all on Ctrl-C or SIGTERM;
its actors also stop if it is killed outright (``actors.parent``). Another ``up``
in the same data directory keeps the endpoints of the last one when their ports
are free, so dashboards and clients find the cluster again. ``status`` shows
each actor's pid, uptime and restarts. ``down`` finds ``up`` through
``endpoints.json``, sends it SIGTERM and waits until it has stopped everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinderblock.actors.cli.base import UsageError, endpoint_from, read_endpoints
from cinderblock.actors.cli.format import table
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.keys import secret_path

if TYPE_CHECKING:
    from cinderblock.actors.runtime.config import ClusterConfig

DOWN_TIMEOUT_S = 30.0


def cmd_up(args: argparse.Namespace) -> int:
    from cinderblock.actors.runtime.cluster import Cluster, ClusterError
    from cinderblock.actors.runtime.config import (
        ConfigError,
        embedded,
        rest_url,
        with_endpoints_of,
        with_rest_fronts,
    )
    from cinderblock.actors.runtime.supervisor import RestartPolicy, SupervisionError, Supervisor

    _refuse_if_running(args.data_dir)
    try:  # a CINDERBLOCK_PORTS that is not a range is one line, not a traceback
        cfg = embedded(args.data_dir, backend=args.backend, nodes=args.nodes,
                       capacity_gb=args.capacity_gb, metrics=True)
        cfg = _with_settings(cfg, args)
        if args.api_fronts:
            cfg = with_rest_fronts(cfg, args.api_fronts, args.api_port)
        # the last start's endpoints, when free (an --api-port asked for goes where asked)
        cfg = with_endpoints_of(cfg, args.data_dir / "cluster.json",
                                keep_rest=args.api_port is None)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    cluster = Cluster(cfg, supervisor=True, log_format=args.log_format)
    signal.signal(signal.SIGTERM, _interrupt)
    supervisor: Supervisor | None = None
    try:
        try:
            cluster.start()
        except ClusterError as exc:
            raise UsageError(f"the cluster did not start: {exc}") from exc
        print(f"cinderblock is up: gateway {cfg.gateway}, events {cfg.events}, "
              f"metrics http://{cfg.metrics}/metrics")
        for listen in cfg.rest:
            print(f"Cinder API v3 on {rest_url(listen, bool(cfg.rest_certfile))} "
                  "(noauth: X-Auth-Token user:project)")
        print(f"data in {cfg.data_dir}; logs in {cfg.data_dir}/logs; "
              "Ctrl-C (or `cinderblock down`) stops everything")
        print(f"keys in {cfg.data_dir}/keys: commands speak as user demo (project demo), "
              "or admin with --admin; `cinderblock user add` makes more")
        for name, pid in cluster.pids().items():
            print(f"  {name:<10} pid {pid}")
        sys.stdout.flush()
        supervisor = Supervisor(cluster, RestartPolicy(args.max_restarts), say=_say)
        supervisor.watch()
    except KeyboardInterrupt:
        pass
    except SupervisionError as exc:
        raise UsageError(f"the cluster was stopped: {exc}") from exc
    finally:
        cluster.stop()
        if supervisor is not None:
            supervisor.remove_status()
        print("cinderblock stopped")
    return 0


# the cluster file's settings that ``up`` takes as options (None: the file's default)
UP_SETTINGS = {"reconcile_after": "reconcile_after_s", "reconcile_every": "reconcile_every_s",
               "synchronous": "synchronous", "check_before_start_mb": "check_before_start_mb",
               "check_every_hours": "check_every_hours",
               "quota_keep_answered": "quota_keep_answered_s"}


def _with_settings(cfg: ClusterConfig, args: argparse.Namespace) -> ClusterConfig:
    """The cluster file's settings as ``up``'s options ask: the reconciler's timing (the
    kill suite settles in seconds), SQLite's durability and the files' checks."""
    given = {field: getattr(args, option) for option, field in UP_SETTINGS.items()
             if getattr(args, option) is not None}
    return replace(cfg, **given)


def cmd_status(args: argparse.Namespace) -> int:
    """Each actor of the running ``up``: pid, uptime, restarts, how it last ended."""
    from cinderblock.actors.runtime.supervisor import STATUS_FILE

    data_dir: Path = args.data_dir
    path = data_dir / STATUS_FILE
    try:
        doc = json.loads(path.read_text())
        actors: dict[str, dict[str, Any]] = doc["actors"]
        pid = int(doc["pid"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"no cluster started by `cinderblock up` in {data_dir} "
                         f"({path}: {exc})") from exc
    if not _is_up(pid):
        raise UsageError(f"no cluster running in {data_dir} (`cinderblock up` pid {pid} "
                         "is gone)")
    now = time.time()
    if args.json:
        print(json.dumps({"pid": pid, "actors": {
            name: {**a, "uptime_s": round(now - a["started_at"], 1) if a["running"] else None}
            for name, a in actors.items()}}, indent=2))
        return 0
    print(f"cinderblock up: pid {pid}, up {_duration(now - float(doc['started_at']))}")
    rows = [(name, a["pid"] if a["running"] else "-",
             _duration(now - a["started_at"]) if a["running"] else "restarting",
             a["restarts"], a["last_exit"] or "-") for name, a in actors.items()]
    print(table(["Actor", "PID", "Uptime", "Restarts", "Last exit"], rows))
    return 0


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else \
        f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_down(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    pid = read_endpoints(data_dir).get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise UsageError(f"the cluster in {data_dir} was not started by `cinderblock up`; "
                         "stop whatever started it")
    if not _is_up(pid):
        (data_dir / "endpoints.json").unlink(missing_ok=True)
        raise UsageError(f"no cluster running in {data_dir} (`cinderblock up` pid {pid} "
                         "is gone; its stale endpoints.json was removed)")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while _is_up(pid):
        if time.monotonic() > deadline:
            raise UsageError(f"`cinderblock up` (pid {pid}) has not stopped after "
                             f"{DOWN_TIMEOUT_S:g}s; see {data_dir / 'logs'}")
        time.sleep(0.05)
    print(f"cinderblock stopped (pid {pid}, data in {data_dir})")
    return 0


def _is_up(pid: int) -> bool:
    """Whether ``pid`` is a live ``cinderblock up`` (a reused pid is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    ours = any(b"cinderblock" in arg for arg in cmdline)
    return state != "Z" and b"up" in cmdline and ours


def _refuse_if_running(data_dir: Path) -> None:
    """One cluster per data directory: say so plainly if one already answers there."""
    try:
        endpoint = endpoint_from(data_dir)
    except UsageError:
        return
    admin_key = secret_path(data_dir / "keys", "admin")
    with SyncClient(endpoint, timeout=1.0, key=admin_key if admin_key.exists() else None) as c:
        try:
            c.ping()
        except CinderblockError:
            return  # a stale endpoints file from a cluster that is gone
    raise UsageError(f"a cluster is already running in {data_dir} (gateway {endpoint}); "
                     f"stop it first (`cinderblock down --data-dir {data_dir}`), or give "
                     "another --data-dir")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops `up` the way Ctrl-C does

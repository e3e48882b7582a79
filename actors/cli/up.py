"""``cinderblock up`` and ``cinderblock down``: one cluster per data directory.

``up`` supervises: it starts every actor, publishes ``endpoints.json`` (with its
own pid) and stops them all on Ctrl-C or SIGTERM; its actors also stop if it is
killed outright (``actors.parent``). ``down`` finds ``up`` through
``endpoints.json``, sends it SIGTERM and waits until it has stopped everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from cinderblock.actors.cli.base import UsageError, endpoint_from, read_endpoints
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.keys import secret_path

DOWN_TIMEOUT_S = 30.0


def cmd_up(args: argparse.Namespace) -> int:
    from cinderblock.actors.runtime.cluster import Cluster, ClusterError
    from cinderblock.actors.runtime.config import embedded, rest_url, with_rest_fronts

    _refuse_if_running(args.data_dir)
    cfg = embedded(args.data_dir, backend=args.backend, nodes=args.nodes,
                   capacity_gb=args.capacity_gb, metrics=True)
    if args.api_fronts:
        cfg = with_rest_fronts(cfg, args.api_fronts, args.api_port)
    cluster = Cluster(cfg, supervisor=True, log_format=args.log_format)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            cluster.start()
        except ClusterError as exc:
            raise UsageError(f"the cluster did not start: {exc}") from exc
        print(f"cinderblock is up: gateway {cfg.gateway}, events {cfg.events}, "
              f"metrics http://{cfg.metrics}/metrics")
        for listen in cfg.rest:
            print(f"Cinder API v3 on {rest_url(listen)} "
                  "(noauth: X-Auth-Token user:project)")
        print(f"data in {cfg.data_dir}; logs in {cfg.data_dir}/logs; "
              "Ctrl-C (or `cinderblock down`) stops everything")
        print(f"keys in {cfg.data_dir}/keys: commands speak as user demo (project demo), "
              "or admin with --admin; `cinderblock user add` makes more")
        for name, pid in cluster.pids().items():
            print(f"  {name:<10} pid {pid}")
        sys.stdout.flush()
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        print("cinderblock stopped")
    return 0


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

"""Run one actor in this process: ``cinderblock actor NAME --config FILE [--host H]``
(``cinderblock node --config FILE --host H`` is the node's own spelling)."""

from __future__ import annotations

import asyncio
import cProfile
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import zmq

from cinderblock.actors.runtime import logs
from cinderblock.actors.runtime.actor import Actor
from cinderblock.actors.runtime.config import ClusterConfig, ConfigError, load
from cinderblock.actors.runtime.database import (
    DatabaseDamaged,
    DatabaseFileError,
    NotTheOwner,
)
from cinderblock.actors.runtime.parent import EXIT_CANNOT_START, die_with_parent
from cinderblock.actors.runtime.trust import Trust
from cinderblock.protocol.wire.keys import KeyFileError

ACTORS = ("gateway", "quota", "scheduler", "node", "exporter")


def build(kind: str, cfg: ClusterConfig, host: str | None) -> Actor:
    if kind == "gateway":
        from cinderblock.actors.gateway.gateway import Gateway

        return Gateway(cfg)
    if kind == "quota":
        from cinderblock.actors.quota.quota import QuotaActor

        return QuotaActor(cfg)
    if kind == "scheduler":
        from cinderblock.actors.scheduler.scheduler import Scheduler

        return Scheduler(cfg)
    if kind == "exporter":
        from cinderblock.actors.exporter.exporter import MetricsExporter

        return MetricsExporter(cfg)
    if kind == "node":
        from cinderblock.storage_node.node import StorageNode

        if not host:
            raise SystemExit("cinderblock actor node needs --host NAME")
        return StorageNode(cfg, cfg.node(host))
    raise SystemExit(f"unknown actor {kind!r}; expected one of {', '.join(ACTORS)}")


def actor_config(kind: str, config: Path, host: str | None) -> ClusterConfig:
    """The cluster file as this actor runs it: a storage node on its own host keeps
    its state (volumes, exports, keys) under its own ``data_dir`` when it has one."""
    cfg = load(config)
    if kind == "node" and host:
        return cfg.for_node(host)
    return cfg


def run_actor(kind: str, config: Path, host: str | None, verbose: bool = False,
              log_file: Path | None = None, log_format: str = "text") -> int:
    logs.setup(host or kind, verbose, log_file, log_format)
    die_with_parent()
    try:
        cfg = actor_config(kind, config, host)
    except ConfigError as exc:  # another start would not mend it: up gives up
        _cannot_start(host or kind, [exc])
        return EXIT_CANNOT_START
    actor = build(kind, cfg, host)
    if cfg.security:
        try:
            actor.trust = Trust(cfg, host or kind, with_users=kind == "gateway")
        except KeyFileError as exc:  # `cinderblock keys make` or `up` makes them
            logging.getLogger("cinderblock").error("%s cannot start: %s", host or kind, exc)
            return 1
    profile_dir = os.environ.get("CINDERBLOCK_PROFILE_DIR")
    profiler = cProfile.Profile(time.process_time) if profile_dir else None
    if profiler is not None:
        profiler.enable()
    try:
        return _run(actor, host or kind)
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_dir) / f"{host or kind}.prof"))


def _run(actor: Actor, name: str) -> int:
    """Run until stopped; a start that cannot happen is one clear line and exit
    status 1 (its address is taken: another start may work) or ``EXIT_CANNOT_START``
    (its database is owned by another process, or is not a file to start over)."""
    status = 0
    try:
        asyncio.run(actor.run())
    except* KeyboardInterrupt:
        pass
    except* DatabaseDamaged as group:  # found while it ran: not to be started again either
        for exc in group.exceptions:
            logging.getLogger("cinderblock").error("%s stopped: %s", name, exc)
        status = EXIT_CANNOT_START
    except* (NotTheOwner, DatabaseFileError, KeyFileError, ConfigError) as group:
        _cannot_start(name, group.exceptions)
        status = EXIT_CANNOT_START
    except* (zmq.ZMQError, OSError) as group:
        _cannot_start(name, group.exceptions)
        status = 1
    return status


def _cannot_start(name: str, errors: Sequence[BaseException]) -> None:
    for exc in errors:
        logging.getLogger("cinderblock").error("%s cannot start: %s", name, exc)

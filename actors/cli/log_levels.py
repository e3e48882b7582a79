"""``cinderblock log ...``: the log levels of running actors, read and changed without a
restart (Cinder's ``cinder service-get-log``/``service-set-log``; an admin's).

    cinderblock log list [--service BINARY] [--host HOST] [--prefix PREFIX]
    cinderblock log set LEVEL [--service BINARY] [--host HOST] [--prefix PREFIX]

BINARY is ``cinder-volume`` (the nodes), ``cinder-scheduler``, ``cinderblock-gateway``
or ``cinderblock-quota`` (none: every one); HOST a node's host or backend
(``node-1``, ``node-1@file``), ``scheduler``, ``gateway`` or ``quota``; PREFIX the start
of the loggers' names (``cinderblock.storage_node``; none: every logger). LEVEL is
DEBUG, INFO, WARNING or ERROR, and lasts until the actor restarts. A service that did
not answer in time is named on stderr, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cinderblock.actors.cli.base import Leaf, client
from cinderblock.actors.cli.format import Column, listing
from cinderblock.actors.runtime.log_levels import LOG_LEVELS
from cinderblock.protocol.messages.log_levels import ServiceLogList

COLUMNS = (Column("binary", "Binary"), Column("host", "Host"), Column("prefix", "Prefix"),
           Column("level", "Level"))


def add_log_levels(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    logs = sub.add_parser("log", help="admin: actors' log levels, changed while they "
                          "run").add_subparsers(required=True)
    p = leaf(logs, common, "list", "each logger's level in the services named", cmd_list)
    _naming(p)
    p = leaf(logs, common, "set", "set the loggers' level until their actor restarts",
             cmd_set)
    p.add_argument("level", metavar="LEVEL", type=str.upper, choices=LOG_LEVELS)
    _naming(p)


def _naming(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", metavar="BINARY", help="cinder-volume, cinder-scheduler, "
                   "cinderblock-gateway or cinderblock-quota (default: every one)")
    p.add_argument("--host", metavar="HOST", help="one service's host (node-1@file, ...)")
    p.add_argument("--prefix", default="", help="the start of the loggers' names")


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _print(args, c.log_levels(args.service, args.host, args.prefix))


def cmd_set(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _print(args, c.set_log_levels(args.level, args.service, args.host,
                                             args.prefix))


def _print(args: argparse.Namespace, found: ServiceLogList) -> int:
    rows = [[s.binary, s.host, name, level] for s in found.services
            for name, level in sorted(s.levels.items())]
    listing(args, COLUMNS, rows)
    for host in found.missing:
        print(f"cinderblock: {host} did not answer in time", file=sys.stderr)
    return 1 if found.missing else 0

"""``cinderblock actor KIND`` and ``cinderblock node``: run one actor in this process.

A module of its own, light on purpose: an actor's process needs these arguments, the
runtime and its own actor, not the rest of the command line (every subcommand and the
client library it talks through). ``cinderblock.actors.cli.entry`` runs a command line
that is one of these straight from here; anything else (a mistake, ``--help``) goes to
the whole command line, which defines them with the same ``add_actor_commands`` and
says what is wrong in its own words.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, NoReturn

ACTOR_COMMANDS = ("actor", "node")
ACTOR_KINDS = ("gateway", "quota", "scheduler", "node", "rest", "exporter")


def add_log_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("text", "json"),
                   default=os.environ.get("CINDERBLOCK_LOG_FORMAT", "text"),
                   help="actor log lines as text or one JSON object each "
                        "[CINDERBLOCK_LOG_FORMAT]")


def add_log_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-file", type=Path, default=None,
                   help="log to this file, rotated at 10 MiB, 5 kept (default: stderr)")
    add_log_format(p)


def add_actor_commands(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``actor`` and ``node`` subcommands' parsers (the caller sets what runs)."""
    actor = sub.add_parser("actor", help="run one actor in this process (used by up)")
    actor.add_argument("kind", choices=ACTOR_KINDS)
    actor.add_argument("--config", type=Path, required=True)
    actor.add_argument("--host", default=None)
    actor.add_argument("--listen", default=None, help="rest: HOST:PORT to serve the API on")
    actor.add_argument("--verbose", action="store_true")
    add_log_file(actor)
    node = sub.add_parser("node", help="run this host's storage node from a cluster file "
                          "(docs/operations.md)")
    node.add_argument("--config", type=Path, required=True, help="the cluster file (TOML)")
    node.add_argument("--host", required=True, help="this node's host name in the file")
    node.add_argument("--verbose", action="store_true")
    add_log_file(node)
    node.set_defaults(kind="node")
    return actor, node


def run(args: argparse.Namespace) -> int:
    """Run the actor an actor command line names (a REST front's ``listen`` given)."""
    if args.kind == "rest":
        from cinderblock.actors.rest.server import run_front

        return run_front(args.config, args.listen, args.verbose, log_file=args.log_file,
                         log_format=args.log_format)
    from cinderblock.actors.runtime.main import run_actor

    return run_actor(args.kind, args.config, args.host, args.verbose,
                     log_file=args.log_file, log_format=args.log_format)


class _NotOurs(Exception):
    pass


class _Refusing(argparse.ArgumentParser):
    """argparse that raises instead of printing: the whole command line says it."""

    def error(self, message: str) -> NoReturn:
        raise _NotOurs(message)


def parse(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` parsed, if it is an actor command line that runs; None if it is not one
    (another command, a mistake, or a request for help)."""
    if not argv or argv[0] not in ACTOR_COMMANDS or "-h" in argv or "--help" in argv:
        return None
    parser = _Refusing(prog="cinderblock", add_help=False)
    add_actor_commands(parser.add_subparsers(required=True))
    try:
        args = parser.parse_args(argv)
    except _NotOurs:
        return None
    if args.kind == "rest" and not args.listen:
        return None
    return args

"""The ``cinderblock`` command's entry point (``python -m cinderblock`` too).

An actor's command line (``cinderblock actor KIND ...``, ``cinderblock node ...``, what
``up`` and the service files start) runs straight from ``actors.cli.actor``: its
process imports the runtime and its own actor, not every other subcommand and the
client library (a two-node cluster's six actors start in 15% less CPU: "How long an
actor takes to start" in docs/performance.md). Every other command line, and an actor's
that is mistaken or asks for help, goes to the whole command line."""

from __future__ import annotations

import sys

from cinderblock.actors.cli import actor


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = actor.parse(argv)
    if args is not None:
        return actor.run(args)
    from cinderblock.actors.cli.main import main as whole_command_line

    return whole_command_line(argv)

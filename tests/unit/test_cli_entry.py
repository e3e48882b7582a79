"""The ``cinderblock`` command's entry point: an actor's command line runs without the
rest of the command line; every other, and an actor's that is mistaken or asks for
help, is the whole command line's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cinderblock.actors.cli import actor


@pytest.mark.parametrize("argv", [
    ["actor", "gateway", "--config", "c.json"],
    ["actor", "node", "--config", "c.json", "--host", "node-1", "--log-format", "json"],
    ["actor", "rest", "--config", "c.json", "--listen", "127.0.0.1:8776"],
    ["node", "--config", "c.toml", "--host", "node-2", "--log-file", "n.log", "--verbose"],
])
def test_an_actor_command_line_is_run_by_the_actor_module(argv: list[str]) -> None:
    args = actor.parse(argv)
    assert args is not None
    assert args.kind == (argv[1] if argv[0] == "actor" else "node")
    assert args.config == Path(argv[argv.index("--config") + 1])


@pytest.mark.parametrize("argv", [
    [],
    ["volume", "list"],
    ["--data-dir", "d", "actor", "gateway", "--config", "c.json"],  # a global first
    ["actor", "gateway"],  # no --config
    ["actor", "bogus", "--config", "c.json"],
    ["actor", "gateway", "--config", "c.json", "--extra"],
    ["actor", "rest", "--config", "c.json"],  # a front without --listen
    ["node", "--config", "c.toml"],  # no --host
    ["actor", "-h"],
    ["node", "--help"],
])
def test_anything_else_is_left_to_the_whole_command_line(argv: list[str]) -> None:
    assert actor.parse(argv) is None


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "cinderblock", *argv],
                          capture_output=True, text=True, timeout=60)


def _imported(stderr: str) -> set[str]:
    return {line.rpartition("|")[2].strip() for line in stderr.splitlines()
            if line.startswith("import time:")}


def test_an_actors_process_imports_neither_the_other_commands_nor_the_client(
    tmp_path: Path,
) -> None:
    done = _run("actor", "quota", "--config", str(tmp_path / "missing.json"))
    assert done.returncode == 78, done.stderr  # cannot start: no cluster file
    assert "cannot read cluster file" in done.stderr
    imported = _imported(done.stderr)
    assert "cinderblock.actors.runtime.main" in imported
    assert not {m for m in imported if m.startswith(("cinderblock.actors.cli.main",
                                                     "cinderblock.protocol.client",
                                                     "importlib.metadata"))}


def test_a_mistaken_actor_command_line_gets_the_whole_command_lines_error() -> None:
    done = _run("actor", "rest", "--config", "c.json")
    assert done.returncode == 1
    assert "cinderblock actor rest needs --listen HOST:PORT" in done.stderr
    assert "cinderblock.actors.cli.main" in _imported(done.stderr)
    done = _run("node", "--config", "c.toml")
    assert done.returncode == 2
    assert "the following arguments are required: --host" in done.stderr

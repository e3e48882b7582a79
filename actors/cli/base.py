"""What every ``cinderblock`` command shares: the usage error and finding a
running cluster from its data directory's ``endpoints.json``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.keys import KEY_ENV, secret_path

# adds a subcommand: (subparsers, common options, name, help, its function) -> its parser
Leaf = Callable[..., argparse.ArgumentParser]


class UsageError(Exception):
    """Bad command-line input, or no cluster where one was expected; printed as one line."""


def read_endpoints(data_dir: Path) -> dict[str, Any]:
    """The endpoints a running ``cinderblock up`` published (and its pid)."""
    path = data_dir / "endpoints.json"
    try:
        found = json.loads(path.read_text())
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
        return found
    except (OSError, ValueError) as exc:
        raise UsageError(f"no running cluster found ({path}: {exc}); start one with "
                         "`cinderblock up`, or give --gateway / CINDERBLOCK_GATEWAY") from exc


DEFAULT_PROJECT = "demo"  # the project a command acts for without keys and --project


def endpoint_from(data_dir: Path, name: str = "gateway") -> str:
    endpoint = read_endpoints(data_dir).get(name)
    if not isinstance(endpoint, str):
        raise UsageError(f"no {name} endpoint in {data_dir / 'endpoints.json'}")
    return endpoint


def client(args: argparse.Namespace) -> SyncClient:
    """The client a command's common options (``--gateway``/``--data-dir``, ``--project``,
    ``--admin``, ``--user``) describe; one found in the data directory follows its
    endpoints.json.

    With keys, the key decides the project a command acts for (the gateway believes
    nothing a message says), so a ``--project`` given for another project is refused
    here, before the command, rather than quietly acting for the key's."""
    key = key_for(args)
    if args.gateway:
        made = SyncClient(args.gateway, project=args.project, admin=args.admin, key=key)
    else:
        made = SyncClient(endpoint_from(args.data_dir), project=args.project,
                          admin=args.admin, key=key, follow=args.data_dir / "endpoints.json")
    if key is not None and getattr(args, "project_given", False):
        try:
            _refuse_another_project(made, args.project)
        except BaseException:
            made.close()
            raise
    return made


def _refuse_another_project(c: SyncClient, project: str) -> None:
    me = c.whoami()
    if me.project_id != project:
        raise UsageError(f"--project {project}: this key (user {me.user_id}) acts for "
                         f"project {me.project_id}, and a key decides the project; speak "
                         f"with a key of project {project} (--user NAME), or leave "
                         "--project out")


def key_for(args: argparse.Namespace) -> Path | None:
    """The key file a command speaks with (None: no keys here, plaintext):
    ``--user NAME`` (``$CINDERBLOCK_USER``) picks ``DATA_DIR/keys/NAME.key_secret``;
    else ``$CINDERBLOCK_KEY``; else the ``admin`` user's with ``--admin``, ``demo``'s."""
    user = getattr(args, "user", None)
    env = os.environ.get(KEY_ENV)
    if user is None and env:
        return Path(env)
    named = user or ("admin" if args.admin else "demo")
    keys: Path = args.data_dir / "keys"
    path = secret_path(keys, named)
    if path.exists():
        return path
    if user is not None:
        raise UsageError(f"no key for user {user!r} in {keys} "
                         "(`cinderblock user add` makes one)")
    return None



def key_values(items: list[str], what: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a mapping (the last of a key wins)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def int_arg(name: str, error: type[Exception] = argparse.ArgumentTypeError,
            ) -> Callable[[str], int]:
    """An argparse type: an integer (whether it can be stored is the client library's
    judgement: ``invalid_input``, as the server's); ``error`` is what a non-integer raises."""
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise error(f"{name} must be an integer, got {text!r}") from None

    return parse


def ranged_int(name: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, else a one-line usage error
    naming the argument."""
    def parse(text: str) -> int:
        value = int_arg(name)(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be {low} to {high}, got {value}")
        return value

    return parse

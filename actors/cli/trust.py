"""``cinderblock keys`` and ``cinderblock user``: the data directory's keys and users,
and how every other command finds the key it speaks with.

A command's key: ``--user NAME`` (or ``$CINDERBLOCK_USER``) picks
``DATA_DIR/keys/NAME.key_secret``; else ``$CINDERBLOCK_KEY`` (a key file);
else the ``admin`` user's with ``--admin``, the ``demo`` user's without. No
key file at all (a cluster run with ``security = false``): plaintext. Secret
keys are never printed, except by ``keys show NAME --secret``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError
from cinderblock.actors.cli.format import table
from cinderblock.actors.runtime.keyring import (
    add_user,
    keys_dir,
    list_keys,
    list_users,
    remove_user,
    secret_key_file,
    users_path,
)
from cinderblock.actors.runtime.trust import actor_names
from cinderblock.protocol.wire.access import UsersFileError
from cinderblock.protocol.wire.keys import (
    KeyFileError,
    ensure_keys,
    load_secret,
)

CLUSTER_ACTORS = ("gateway", "quota", "scheduler")


def add_user_option(common: argparse.ArgumentParser) -> None:
    common.add_argument("--user", default=os.environ.get("CINDERBLOCK_USER"),
                        help="speak as this user (its key in DATA_DIR/keys; default demo, "
                             "or admin with --admin; else $CINDERBLOCK_KEY)")


def add_trust(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    keys = sub.add_parser("keys", help="CURVE keys of actors and users").add_subparsers(
        required=True)
    p = leaf(keys, common, "list", "list the keys (public keys only)", cmd_keys_list)
    p = leaf(keys, common, "make", "make the missing key pairs NAME... (none named: the "
             "service actors' and node-1..N's); a storage host makes its own here", cmd_keys_make)
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--nodes", type=int, default=2, help="storage nodes node-1..N (default 2)")
    p = leaf(keys, common, "show", "a key's public key (--secret: its secret key file too)",
             cmd_keys_show)
    p.add_argument("name")
    p.add_argument("--secret", action="store_true", help="print the secret key file too")
    user = sub.add_parser("user", help="users: keys, projects and roles").add_subparsers(
        required=True)
    p = leaf(user, common, "add", "add a user (makes its key)", cmd_user_add)
    p.add_argument("name")  # its project: --project (default demo)
    p.add_argument("--role", dest="roles", action="append",
                   choices=("member", "admin", "front", "monitor"),
                   help="member (default), admin, front (a REST front), monitor; repeatable")
    leaf(user, common, "list", "list the users", cmd_user_list)
    p = leaf(user, common, "remove", "remove a user (its key no longer admitted)",
             cmd_user_remove)
    p.add_argument("name")


def cmd_keys_list(args: argparse.Namespace) -> int:
    actors = (*CLUSTER_ACTORS, *(f"node-{i}" for i in range(1, 65)))
    keys = list_keys(args.data_dir, actors)
    if args.json:
        print(json.dumps([asdict(k) for k in keys], indent=2))
        return 0
    print(table(["Name", "Kind", "Public key", "Secret here"],
                [(k.name, k.kind, k.public_key, "yes" if k.has_secret else "no") for k in keys]))
    return 0


def cmd_keys_make(args: argparse.Namespace) -> int:
    names = args.names or [*CLUSTER_ACTORS, *(f"node-{i}" for i in range(1, args.nodes + 1))]
    try:
        made = ensure_keys(keys_dir(args.data_dir), names)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from exc
    print(f"made {len(made)} key pairs in {keys_dir(args.data_dir)}"
          + (f": {', '.join(made)}" if made else " (all were there)"))
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    try:
        path = secret_key_file(args.data_dir, args.name)
        pair = load_secret(path)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from exc
    print(pair.public.decode())
    if args.secret:
        print(path.read_text(), end="")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    roles = tuple(dict.fromkeys(args.roles or ["member"]))
    reserved = {**{a: a for a in CLUSTER_ACTORS}, **_nodes_of(args.data_dir)}
    try:
        user = add_user(args.data_dir, args.name, args.project, roles, reserved)
    except (KeyFileError, UsersFileError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"user {user.name} added: project {user.project}, roles {','.join(user.roles)}; "
          f"key {secret_key_file(args.data_dir, user.name)}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    try:
        users = list_users(args.data_dir)
    except UsersFileError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(json.dumps([asdict(u) for u in users], indent=2))
        return 0
    print(table(["User", "Project", "Roles", "Public key"],
                [(u.name, u.project, ",".join(u.roles), u.public_key) for u in users]))
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    try:
        user = remove_user(args.data_dir, args.name)
    except UsersFileError as exc:
        raise UsageError(str(exc)) from exc
    print(f"user {user.name} removed from {users_path(args.data_dir)} "
          "(its key files stay in the keys directory)")
    return 0


def _nodes_of(data_dir: Path) -> dict[str, str]:
    """The actor names of the cluster last started in ``data_dir`` (if any)."""
    from cinderblock.actors.runtime.config import ConfigError, load

    try:
        return actor_names(load(data_dir / "cluster.json"))
    except ConfigError:
        return {}

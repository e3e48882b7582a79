"""``cinderblock volume delete|extend`` and ``cinderblock snapshot ...``, as ``cinder`` has them.

    cinderblock volume delete VOLUME [--wait]
    cinderblock volume extend VOLUME NEW_SIZE [--wait]
    cinderblock volume create [SIZE] --snapshot-id SNAPSHOT | --source-volid VOLUME
    cinderblock snapshot create VOLUME [--name N] [--description D] [--force] [--wait] [--json]
    cinderblock snapshot list [--volume V] [--status S] [--all-projects] [--limit N] [--marker ID]
    cinderblock snapshot show SNAPSHOT
    cinderblock snapshot delete SNAPSHOT [--wait]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cinderblock.actors.cli.base import client, int_arg
from cinderblock.actors.cli.format import add_paging, as_json, properties, table
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume

Leaf = Callable[..., argparse.ArgumentParser]


def add_volume_lifecycle(vol: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    """``volume delete`` and ``volume extend`` (``vol``: the volume subcommands)."""
    p = leaf(vol, common, "delete", "delete a volume", cmd_volume_delete)
    p.add_argument("volume_id")
    _waiting(p, "wait until it is gone")
    p = leaf(vol, common, "extend", "grow a volume", cmd_volume_extend)
    p.add_argument("volume_id")
    p.add_argument("new_size", type=int_arg("new_size"))
    _waiting(p, "wait until it is available at the new size")


def add_create_sources(create: argparse.ArgumentParser) -> None:
    """``volume create --snapshot-id | --source-volid``."""
    source = create.add_mutually_exclusive_group()
    source.add_argument("--snapshot-id", help="create from this snapshot")
    source.add_argument("--source-volid", help="create as a copy of this volume")


def add_snapshot(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    snap = sub.add_parser("snapshot", help="volume snapshots").add_subparsers(required=True)
    p = leaf(snap, common, "create", "snapshot a volume", cmd_snapshot_create)
    p.add_argument("volume_id")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--force", action="store_true", help="snapshot an in-use volume")
    _waiting(p, "wait until it is available")
    p = leaf(snap, common, "list", "list snapshots", cmd_snapshot_list)
    p.add_argument("--volume", dest="volume_id")
    p.add_argument("--status")
    p.add_argument("--all-projects", action="store_true")
    add_paging(p)
    p = leaf(snap, common, "show", "show a snapshot", cmd_snapshot_show)
    p.add_argument("snapshot_id")
    p = leaf(snap, common, "delete", "delete a snapshot", cmd_snapshot_delete)
    p.add_argument("snapshot_id")
    _waiting(p, "wait until it is gone")


def _waiting(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--request-id")
    p.add_argument("--wait", action="store_true", help=help_text)
    p.add_argument("--timeout", type=float, default=120.0)


def _print(args: argparse.Namespace, obj: Volume | Snapshot) -> int:
    print(as_json(obj) if args.json else properties(obj))
    return 0


def cmd_volume_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.delete_volume(args.volume_id, request_id=args.request_id, wait=args.wait,
                              timeout=args.timeout)
    return _print(args, vol)


def cmd_volume_extend(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.extend_volume(args.volume_id, args.new_size, request_id=args.request_id,
                              wait=args.wait, timeout=args.timeout)
    return _print(args, vol)


def cmd_snapshot_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        snap = c.create_snapshot(args.volume_id, name=args.name, description=args.description,
                                 force=args.force, request_id=args.request_id, wait=args.wait,
                                 timeout=args.timeout)
    return _print(args, snap)


def cmd_snapshot_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _print(args, c.show_snapshot(args.snapshot_id))


def cmd_snapshot_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        snap = c.delete_snapshot(args.snapshot_id, request_id=args.request_id, wait=args.wait,
                                 timeout=args.timeout)
    return _print(args, snap)


def cmd_snapshot_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        snaps = c.list_snapshots(all_projects=args.all_projects, volume_id=args.volume_id,
                                 status=args.status, limit=args.limit, marker=args.marker)
    if args.json:
        print(as_json(snaps))
        return 0
    rows = [(s.id, s.volume_id, s.status, s.name, s.size) for s in snaps]
    print(table(["ID", "Volume ID", "Status", "Name", "Size"], rows))
    return 0

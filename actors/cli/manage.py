"""``cinderblock volume|snapshot manage|unmanage|manageable``: adopt what a node's
backend holds, and let go of a volume or snapshot (Cinder's ``cinder manage``,
``unmanage``, ``manageable-list`` and their ``snapshot-`` forms; an admin's).

    cinderblock volume manageable HOST [--long]
    cinderblock volume manage HOST SOURCE_NAME [--name N] [--description D] [--type T]
                              [--availability-zone Z] [--property K=V ...] [--bootable]
                              [--wait]
    cinderblock volume unmanage VOLUME [VOLUME ...] [--wait]
    cinderblock snapshot manageable HOST [--long]
    cinderblock snapshot manage VOLUME SOURCE_NAME [--name N] [--description D]
                                [--property K=V ...] [--wait]
    cinderblock snapshot unmanage SNAPSHOT [SNAPSHOT ...] [--wait]

HOST is a node (``node-1``), its backend (``node-1@file``) or its pool
(``node-1@file#file``). On the file backend SOURCE_NAME is a file in the node's
directory (for a snapshot, the node of its volume); it becomes ``volume-<id>`` (or
``snapshot-<id>``), and an unmanaged volume's file is kept as ``unmanaged-volume-<id>``
(a snapshot's as ``unmanaged-snapshot-<id>``), manageable again.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, client, key_values
from cinderblock.actors.cli.format import Column, listing, show
from cinderblock.actors.cli.lookup import find_snapshot, find_volume
from cinderblock.actors.cli.volumes import each
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume


def add_manage(vol: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    """``volume manageable``, ``volume manage`` and ``volume unmanage`` (``vol``: the
    volume subcommands)."""
    _manageable(vol, common, leaf, "volume")
    p = leaf(vol, common, "manage", "admin: what a node's backend holds becomes a volume",
             cmd_manage)
    p.add_argument("host", metavar="HOST", help="node, backend (node-1@file) or pool")
    p.add_argument("source_name", metavar="SOURCE_NAME",
                   help="the backend's name for it (a file in the node's directory)")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--type", dest="volume_type", metavar="TYPE")
    p.add_argument("--availability-zone", metavar="ZONE")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata item; repeat for more")
    p.add_argument("--bootable", action="store_true")
    _waiting(p, "wait until it is available")
    p = leaf(vol, common, "unmanage", "admin: volumes leave cinderblock, their data kept on "
             "their backend", cmd_unmanage)
    p.add_argument("volumes", nargs="+", metavar="VOLUME", help="name or id; several may be "
                   "given")
    _waiting(p, "wait until it is gone")


def add_snapshot_manage(snap: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    """``snapshot manageable``, ``snapshot manage`` and ``snapshot unmanage`` (``snap``:
    the snapshot subcommands)."""
    _manageable(snap, common, leaf, "snapshot")
    p = leaf(snap, common, "manage", "admin: what a volume's node holds becomes a snapshot "
             "of it", cmd_snapshot_manage)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("source_name", metavar="SOURCE_NAME",
                   help="the backend's name for it (a file in the volume's node's directory)")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata item; repeat for more")
    _waiting(p, "wait until it is available")
    p = leaf(snap, common, "unmanage", "admin: snapshots leave cinderblock, their data kept "
             "on their backend", cmd_snapshot_unmanage)
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT", help="name or id; several "
                   "may be given")
    _waiting(p, "wait until it is gone")


def _manageable(sub: Any, common: argparse.ArgumentParser, leaf: Leaf, what: str) -> None:
    p = leaf(sub, common, "manageable", f"admin: what a node's backend holds that could be "
             f"managed as a {what}", cmd_manageable)
    p.add_argument("host", metavar="HOST", help="node, backend (node-1@file) or pool")
    p.add_argument("--long", action="store_true", help="why one is not safe, and the "
                   f"{what} it already is")
    p.set_defaults(snapshots=what == "snapshot")


def _waiting(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--wait", action="store_true", help=help_text)
    p.add_argument("--timeout", type=float, default=120.0)


def cmd_manageable(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_manageable(args.host, snapshots=args.snapshots)
    cols = [Column("reference", "Reference"), Column("size", "Size"),
            Column("safe_to_manage", "Safe To Manage")]
    if args.long:
        cols += [Column("reason_not_safe", "Reason Not Safe"), Column("cinder_id", "Cinder ID")]
    rows = [[m.reference, m.size, m.safe_to_manage,
             *([m.reason_not_safe, m.cinder_id] if args.long else [])] for m in found]
    return listing(args, cols, rows)


def cmd_manage(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.manage_volume(
            args.host, args.source_name, name=args.name, description=args.description,
            volume_type=args.volume_type, availability_zone=args.availability_zone,
            metadata=key_values(args.property, "--property"), bootable=args.bootable,
            wait=args.wait, timeout=args.timeout)
    return show(args, vol)


def cmd_unmanage(args: argparse.Namespace) -> int:
    with client(args) as c:
        def unmanage(ref: str) -> Volume:
            return c.unmanage_volume(find_volume(c, ref).id, wait=args.wait,
                                     timeout=args.timeout)

        return each(args, "volume", args.volumes, unmanage, verb="unmanage")


def cmd_snapshot_manage(args: argparse.Namespace) -> int:
    with client(args) as c:
        snap = c.manage_snapshot(
            find_volume(c, args.volume).id, args.source_name, name=args.name,
            description=args.description, metadata=key_values(args.property, "--property"),
            wait=args.wait, timeout=args.timeout)
    return show(args, snap)


def cmd_snapshot_unmanage(args: argparse.Namespace) -> int:
    with client(args) as c:
        def unmanage(ref: str) -> Snapshot:
            return c.unmanage_snapshot(find_snapshot(c, ref).id, wait=args.wait,
                                       timeout=args.timeout)

        return each(args, "snapshot", args.snapshots, unmanage, verb="unmanage")

"""``cinderblock backup ...``: volume backups (Cinder's, ``openstack volume backup`` /
``cinder backup-*``).

    cinderblock backup create VOLUME [--name N] [--force] [--snapshot SNAPSHOT]
                              [--incremental] [--request-id R] [--wait]
    cinderblock backup list [--volume VOLUME] [--status S] [--all-projects] [--long]
    cinderblock backup show BACKUP
    cinderblock backup set BACKUP [--name N] [--description D] [--property K=V]
    cinderblock backup restore BACKUP [VOLUME] [--name N] [--request-id R] [--wait]
                                                            # no VOLUME: a new one
    cinderblock backup delete BACKUP [BACKUP ...] [--wait]
    cinderblock backup reset-state BACKUP [--state error|available]  # an admin's
    cinderblock backup export BACKUP                  # an admin's: the backup's record
    cinderblock backup import SERVICE URL             # an admin's: know that backup again

A backup is made by its volume's storage node into the backup repository (the
node's ``backup_path``); VOLUME, SNAPSHOT and BACKUP are names (unique in the
project) or ids. ``cinderblock volume create --backup BACKUP`` makes a volume holding a
backup's data too.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError, client, key_values
from cinderblock.actors.cli.format import Column, add_paging, columns_named, iso_time, listing, show
from cinderblock.actors.cli.lookup import find_backup, find_snapshot, find_volume, volume_id
from cinderblock.actors.cli.volumes import each
from cinderblock.protocol.messages.backups import Backup


def add_backup(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    backup = sub.add_parser("backup", help="volume backups").add_subparsers(required=True)
    p = leaf(backup, common, "create", "back a volume up (its node copies it into the "
             "backup repository)", cmd_create)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--force", action="store_true", help="back up an in-use volume")
    p.add_argument("--snapshot", help="back up this snapshot of the volume (name or id)")
    p.add_argument("--incremental", action="store_true",
                   help="store only what changed since the volume's latest backup")
    p.add_argument("--container", help="kept and shown, as Cinder's")
    p.add_argument("--request-id", help="a retry with the same id answers what the first made")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata item; repeat for more")
    _waiting(p, "wait until it is available")
    p = leaf(backup, common, "list", "list backups, newest first", cmd_list)
    p.add_argument("--volume", help="of this volume (name or id)")
    p.add_argument("--status")
    p.add_argument("--name")
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    p.add_argument("--tenant", metavar="PROJECT",
                   help="admin: this project's backups only (cinder's --tenant)")
    p.add_argument("--long", action="store_true",
                   help="with descriptions, containers and creation times")
    add_paging(p)
    p = leaf(backup, common, "show", "show a backup", cmd_show)
    p.add_argument("backup", metavar="BACKUP", help="name or id")
    p = leaf(backup, common, "set", "rename or describe a backup, set its properties",
             cmd_set)
    p.add_argument("backup", metavar="BACKUP", help="name or id")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="the backup's metadata becomes these items; repeat for more")
    p = leaf(backup, common, "restore", "write a backup's data into a volume (its data is "
             "replaced), or into a new one", cmd_restore)
    p.add_argument("backup", metavar="BACKUP", help="name or id")
    p.add_argument("volume", metavar="VOLUME", nargs="?",
                   help="an available volume of at least the backup's size (name or id); "
                        "none: a new volume")
    p.add_argument("--name", help="the new volume's name (without VOLUME)")
    p.add_argument("--request-id", help="a restore into a new volume retried with the same "
                   "id answers the volume the first made")
    _waiting(p, "wait until the restore is done")
    p = leaf(backup, common, "delete", "delete backups", cmd_delete)
    p.add_argument("backups", nargs="+", metavar="BACKUP", help="name or id; several may "
                   "be given")
    _waiting(p, "wait until it is gone")
    p = leaf(backup, common, "reset-state", "admin: move a stuck backup to error or "
             "available", cmd_reset_state)
    p.add_argument("backup", metavar="BACKUP", help="name or id")
    p.add_argument("--state", default="error", help="error (default) or available")
    p = leaf(backup, common, "export", "admin: print an available backup's record, which "
             "a cluster whose nodes read the same repository imports", cmd_export)
    p.add_argument("backup", metavar="BACKUP", help="name or id")
    p = leaf(backup, common, "import", "admin: know again the backup a record describes "
             "(its node must find it in its repository)", cmd_import)
    p.add_argument("backup_service", metavar="SERVICE", help="the record's backup_service")
    p.add_argument("backup_url", metavar="URL", help="the record's backup_url")


def _waiting(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--wait", action="store_true", help=help_text)
    p.add_argument("--timeout", type=float, default=600.0)


def cmd_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        volume = find_volume(c, args.volume)
        snapshot = None if args.snapshot is None else find_snapshot(c, args.snapshot).id
        backup = c.create_backup(volume.id, name=args.name, description=args.description,
                                 force=args.force, snapshot_id=snapshot,
                                 incremental=args.incremental, container=args.container,
                                 metadata=key_values(args.property, "--property"),
                                 wait=args.wait, timeout=args.timeout,
                                 request_id=args.request_id)
    return show(args, backup)


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_backups(all_projects=args.all_projects or args.tenant is not None,
                               project_id=args.tenant, status=args.status,
                               volume_id=volume_id(c, args.volume), name=args.name,
                               limit=args.limit, marker=args.marker)
    cols = list(columns_named("ID", "Name", "Description", "Status", "Size"))
    if args.long:
        cols += [*columns_named("Volume ID", "Container"), Column("created_at", "Created At")]
    rows: list[list[Any]] = []
    for b in found:
        row: list[Any] = [b.id, b.name, b.description, b.status.value, b.size]
        if args.long:
            row += [b.volume_id, b.container, iso_time(b.created_at)]
        rows.append(row)
    return listing(args, cols, rows)


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, find_backup(c, args.backup))


def cmd_set(args: argparse.Namespace) -> int:
    metadata = key_values(args.property, "--property") if args.property else None
    if args.name is None and args.description is None and metadata is None:
        raise UsageError("nothing to set: give --name, --description or --property")
    with client(args) as c:
        backup = find_backup(c, args.backup)
        return show(args, c.update_backup(backup.id, name=args.name,
                                          description=args.description, metadata=metadata))


def cmd_restore(args: argparse.Namespace) -> int:
    if args.volume is not None and args.name is not None:
        raise UsageError("--name names a new volume: give VOLUME or --name, not both")
    with client(args) as c:
        backup = find_backup(c, args.backup)
        target = None if args.volume is None else find_volume(c, args.volume).id
        info = c.restore_backup(backup.id, volume_id=target, name=args.name, wait=args.wait,
                                timeout=args.timeout, request_id=args.request_id)
    return show(args, info)


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        def delete(ref: str) -> Backup:
            return c.delete_backup(find_backup(c, ref).id, wait=args.wait,
                                   timeout=args.timeout)

        return each(args, "backup", args.backups, delete)


def cmd_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.reset_backup_state(find_backup(c, args.backup).id, args.state))


def cmd_export(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.export_backup_record(find_backup(c, args.backup).id))


def cmd_import(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.import_backup_record(args.backup_service, args.backup_url))

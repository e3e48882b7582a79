"""``cinderblock group ...``: generic volume groups and their snapshots (Cinder's
``cinder group-*`` and ``group-snapshot-*``, ``openstack volume group ...``).

    cinderblock group type create NAME [--description D] [--private] [--spec K=V ...]
    cinderblock group type list
    cinderblock group type delete TYPE
    cinderblock group create GROUP_TYPE VOLUME_TYPE [VOLUME_TYPE ...] [--name N]
                             [--description D] [--availability-zone Z]
    cinderblock group create-from-src (--group-snapshot GS | --source-group G) [--name N]
    cinderblock group list [--all-projects]
    cinderblock group show GROUP
    cinderblock group set GROUP [--name N] [--description D] [--add-volume V ...]
                          [--remove-volume V ...]
    cinderblock group delete GROUP [--delete-volumes]
    cinderblock group snapshot create GROUP [--name N] [--description D] [--wait]
    cinderblock group snapshot list [--all-projects] [--group GROUP]
    cinderblock group snapshot show GROUP_SNAPSHOT
    cinderblock group snapshot delete GROUP_SNAPSHOT

A volume is made in a group with ``cinderblock volume create ... --group GROUP``.
GROUP, GROUP_SNAPSHOT and TYPE are ids (a type's name too); VOLUME a name or an id.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError, client, key_values
from cinderblock.actors.cli.format import columns_named, iso_time, listing, show
from cinderblock.actors.cli.lookup import find_volume


def add_group(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    group = sub.add_parser("group", help="generic volume groups").add_subparsers(
        required=True)
    types = group.add_parser("type", help="group types (an admin's)").add_subparsers(
        required=True)
    p = leaf(types, common, "create", "admin: a group type", cmd_type_create)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description")
    p.add_argument("--private", action="store_true", help="not listed to projects")
    p.add_argument("--spec", action="append", default=[], metavar="KEY=VALUE",
                   help="a group spec; repeat for more")
    leaf(types, common, "list", "the group types this user may use", cmd_type_list)
    leaf(types, common, "delete", "admin: delete a group type no group has",
         cmd_type_delete).add_argument("type", metavar="TYPE")

    p = leaf(group, common, "create", "a group, placed on a backend every volume type fits",
             cmd_create)
    p.add_argument("group_type", metavar="GROUP_TYPE")
    p.add_argument("volume_types", nargs="+", metavar="VOLUME_TYPE")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--availability-zone")
    p.add_argument("--request-id", help="a retry with the same id answers what the first made")
    p = leaf(group, common, "create-from-src", "a group with a volume from each snapshot of "
             "a group snapshot, or a clone of each volume of a group", cmd_create_from_src)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--group-snapshot", metavar="GROUP_SNAPSHOT")
    source.add_argument("--source-group", metavar="GROUP")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--request-id", help="a retry with the same id answers what the first made")
    p = leaf(group, common, "list", "this project's groups, newest first", cmd_list)
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    leaf(group, common, "show", "show a group", cmd_show).add_argument("group",
                                                                       metavar="GROUP")
    p = leaf(group, common, "set", "rename a group, or add or remove volumes", cmd_set)
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--add-volume", action="append", default=[], metavar="VOLUME")
    p.add_argument("--remove-volume", action="append", default=[], metavar="VOLUME")
    p = leaf(group, common, "delete", "delete a group (with --delete-volumes, its volumes "
             "too)", cmd_delete)
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--delete-volumes", action="store_true")
    p = leaf(group, common, "reset-state", "admin: a group's status, nothing else",
             cmd_reset_state)
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--state", default="error", help="error (default) or available")

    snap = group.add_parser("snapshot", help="group snapshots").add_subparsers(required=True)
    p = leaf(snap, common, "create", "a snapshot of each of the group's volumes, at one "
             "instant", cmd_snapshot_create)
    p.add_argument("group", metavar="GROUP")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--request-id", help="a retry with the same id answers what the first made")
    p.add_argument("--wait", action="store_true", help="until it is available (or error)")
    p.add_argument("--timeout", type=float, default=120.0)
    p = leaf(snap, common, "list", "this project's group snapshots, newest first",
             cmd_snapshot_list)
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    p.add_argument("--group", metavar="GROUP", help="this group's only")
    leaf(snap, common, "show", "show a group snapshot", cmd_snapshot_show).add_argument(
        "group_snapshot", metavar="GROUP_SNAPSHOT")
    leaf(snap, common, "delete", "delete a group snapshot and its snapshots",
         cmd_snapshot_delete).add_argument("group_snapshot", metavar="GROUP_SNAPSHOT")
    p = leaf(snap, common, "reset-state", "admin: reset each of its snapshots (its status "
             "is theirs)", cmd_snapshot_reset_state)
    p.add_argument("group_snapshot", metavar="GROUP_SNAPSHOT")
    p.add_argument("--state", default="error", help="error (default) or available")


def cmd_type_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.create_group_type(
            args.name, description=args.description, is_public=not args.private,
            group_specs=key_values(args.spec, "--spec")))


def cmd_type_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_group_types()
    return listing(args, columns_named("ID", "Name", "Description", "Is Public"),
                   [[t.id, t.name, t.description, t.is_public] for t in found])


def cmd_type_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_group_type(args.type)
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.create_group(args.group_type, args.volume_types, name=args.name,
                                         description=args.description,
                                         availability_zone=args.availability_zone,
                                         request_id=args.request_id))


def cmd_create_from_src(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.create_group_from_src(
            group_snapshot_id=args.group_snapshot, source_group_id=args.source_group,
            name=args.name, description=args.description, request_id=args.request_id))


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_groups(all_projects=args.all_projects)
    return listing(args, columns_named("ID", "Name", "Status", "Volumes", "Created At"),
                   [[g.id, g.name, g.status.value, len(g.volumes), iso_time(g.created_at)]
                    for g in found])


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.show_group(args.group))


def cmd_set(args: argparse.Namespace) -> int:
    if not (args.name is not None or args.description is not None or args.add_volume
            or args.remove_volume):
        raise UsageError("nothing to set: give --name, --description, --add-volume or "
                         "--remove-volume")
    with client(args) as c:
        return show(args, c.update_group(
            args.group, name=args.name, description=args.description,
            add_volumes=[find_volume(c, v).id for v in args.add_volume],
            remove_volumes=[find_volume(c, v).id for v in args.remove_volume]))


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_group(args.group, args.delete_volumes)
    return 0


def cmd_snapshot_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        made = c.create_group_snapshot(args.group, name=args.name,
                                       description=args.description, wait=args.wait,
                                       timeout=args.timeout, request_id=args.request_id)
    show(args, made)
    return 1 if args.wait and made.status != "available" else 0


def cmd_snapshot_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_group_snapshots(all_projects=args.all_projects, group_id=args.group)
    return listing(args, columns_named("ID", "Name", "Status", "Group ID", "Created At"),
                   [[g.id, g.name, g.status, g.group_id, iso_time(g.created_at)]
                    for g in found])


def cmd_snapshot_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.show_group_snapshot(args.group_snapshot))


def cmd_snapshot_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_group_snapshot(args.group_snapshot)
    return 0


def cmd_snapshot_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.reset_group_snapshot_status(args.group_snapshot, args.state))


def cmd_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.reset_group_status(args.group, args.state))

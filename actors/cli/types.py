"""``cinderblock type ...``: volume types, as ``openstack volume type`` has them.

    cinderblock type list [--long]
    cinderblock type show TYPE                  (a private type: the projects it is shared with)
    cinderblock type create NAME [--description D] [--property K=V ...] [--private]
    cinderblock type set TYPE [--name N] [--description D] [--property K=V ...]
                              [--public | --private] [--project-id P]
                                                (admin: change it; share a private type with P)
    cinderblock type unset TYPE [--property K ...] [--project-id P]
                                                (admin: drop extra specs; no longer share)
    cinderblock type delete TYPE                (admin: a type no volume uses)
    cinderblock type default-set TYPE PROJECT   (admin: PROJECT's creates without a type
                                                 get TYPE; default-list, default-unset)

TYPE is a name or an id. Creating, changing, sharing and deleting are an admin's
(``--admin``). As Cinder's, the extra specs of a type some volume has do not change.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError, client, key_values
from cinderblock.actors.cli.format import columns_named, listing, show
from cinderblock.actors.cli.lookup import find_type
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.volumes import VolumeType


def add_type(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    typ = sub.add_parser("type", help="volume types").add_subparsers(required=True)
    p = leaf(typ, common, "list", "list volume types", cmd_list)
    p.add_argument("--long", action="store_true", help="with descriptions")
    p = leaf(typ, common, "show", "show a volume type", cmd_show)
    p.add_argument("type", metavar="TYPE", help="name or id")
    p = leaf(typ, common, "create", "create a volume type (admin)", cmd_create)
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--property", nargs="*", action="extend", default=[], metavar="KEY=VALUE")
    add_visibility(p, "every project may use it (the default)")
    p.set_defaults(is_public=True)
    p = leaf(typ, common, "set", "rename, describe, publish or hide a type, set its extra "
             "specs, share a private type with a project (admin)", cmd_set)
    p.add_argument("type", metavar="TYPE", help="name or id")
    p.add_argument("--name", help="the new name")
    p.add_argument("--description", help="the new description ('' clears it)")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="set an extra spec; repeat for more")
    add_visibility(p, "every project may use it")
    p.set_defaults(is_public=None)
    add_access_project(p, "share the private type with this project")
    p = leaf(typ, common, "unset", "drop a type's extra specs, stop sharing a private type "
             "with a project (admin)", cmd_unset)
    p.add_argument("type", metavar="TYPE", help="name or id")
    p.add_argument("--property", action="append", default=[], metavar="KEY",
                   help="the extra spec to drop; repeat for more")
    add_access_project(p, "no longer share the private type with this project")
    p = leaf(typ, common, "delete", "delete a volume type no volume uses (admin)", cmd_delete)
    p.add_argument("type", metavar="TYPE", help="name or id")
    p = leaf(typ, common, "default-set", "the type a project's creates without a type get "
             "(admin)", cmd_default_set)
    p.add_argument("type", metavar="TYPE", help="name or id")
    p.add_argument("project_id", metavar="PROJECT")
    leaf(typ, common, "default-list", "the projects with a default type of their own "
         "(admin)", cmd_default_list)
    p = leaf(typ, common, "default-unset", "a project's creates get the cluster's default "
             "type again (admin)", cmd_default_unset)
    p.add_argument("project_id", metavar="PROJECT")


def add_visibility(p: argparse.ArgumentParser, public_help: str) -> None:
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="is_public", action="store_false",
                            help="only admins and the projects it is shared with see it")
    visibility.add_argument("--public", dest="is_public", action="store_true",
                            help=public_help)


def add_access_project(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--project-id", dest="access_project", metavar="PROJECT",
                   help=f"{help_text} (cinder type-access-add's --project-id)")


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        types = c.list_types()
    headers = ["ID", "Name", "Extra Specs", "Is Public"]
    if args.long:
        headers.append("Description")
    rows = [[t.id, t.name, t.extra_specs, t.is_public, t.description][:len(headers)]
            for t in types]
    return listing(args, columns_named(*headers), rows)


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, type_view(c, find_type(c, args.type), args.admin))


def type_view(c: SyncClient, vtype: VolumeType, admin: bool) -> dict[str, Any]:
    """A type as ``show`` prints it; a private one, to an admin, with its projects."""
    shown: dict[str, Any] = {"id": vtype.id, "name": vtype.name,
                             "description": vtype.description,
                             "extra_specs": vtype.extra_specs, "is_public": vtype.is_public,
                             "qos_specs_id": vtype.qos_specs_id}
    if not vtype.is_public and admin:
        shown["access_project_ids"] = c.type_access(vtype.id)
    return shown


def cmd_create(args: argparse.Namespace) -> int:
    specs = key_values(args.property, "property")
    with client(args) as c:
        vtype = c.create_type(args.name, extra_specs=specs, description=args.description,
                              is_public=args.is_public)
    return show(args, vtype)


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {f: getattr(args, f) for f in ("name", "description", "is_public")
                               if getattr(args, f) is not None}
    specs = key_values(args.property, "--property")
    if specs:
        changes["extra_specs"] = specs
    if not changes and args.access_project is None:
        raise UsageError("nothing to set: give --name, --description, --property, "
                         "--public/--private or --project-id")
    with client(args) as c:
        vtype = find_type(c, args.type)
        if changes:
            vtype = c.update_type(vtype.id, **changes)
        if args.access_project is not None:
            c.set_type_access(vtype.id, args.access_project, True)
        return show(args, type_view(c, vtype, args.admin))


def cmd_unset(args: argparse.Namespace) -> int:
    if not args.property and args.access_project is None:
        raise UsageError("nothing to unset: give --property or --project-id")
    with client(args) as c:
        vtype = find_type(c, args.type)
        if args.property:
            vtype = c.update_type(vtype.id, delete_specs=args.property)
        if args.access_project is not None:
            c.set_type_access(vtype.id, args.access_project, False)
        return show(args, type_view(c, vtype, args.admin))


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_type(args.type)
    return 0


def cmd_default_set(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.set_default_type(args.project_id, args.type))


def cmd_default_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        rows = [[d.project_id, d.volume_type_id] for d in c.list_default_types()]
    return listing(args, columns_named("Project ID", "Volume Type ID"), rows)


def cmd_default_unset(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.unset_default_type(args.project_id)
    return 0

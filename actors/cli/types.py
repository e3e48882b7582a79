"""``cinderblock type ...``: volume types, as ``openstack volume type`` has them.

    cinderblock type list [--long]
    cinderblock type show TYPE                  (a private type: the projects it is shared with)
    cinderblock type create NAME [--description D] [--property K=V ...] [--private]
    cinderblock type set TYPE --project-id P    (admin: share a private type with P)
    cinderblock type unset TYPE --project-id P  (admin: no longer)
    cinderblock type delete TYPE                (admin: a type no volume uses)

TYPE is a name or an id. Creating, sharing and deleting are an admin's (``--admin``).
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, client, key_values
from cinderblock.actors.cli.format import columns_named, listing, show
from cinderblock.actors.cli.lookup import find_type


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
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="is_public", action="store_false",
                            help="only admins and the projects it is shared with see it")
    visibility.add_argument("--public", dest="is_public", action="store_true",
                            help="every project may use it (the default)")
    p.set_defaults(is_public=True)
    for name, help_text, allowed in (
        ("set", "share a private type with a project (admin)", True),
        ("unset", "stop sharing a private type with a project (admin)", False),
    ):
        p = leaf(typ, common, name, help_text, cmd_access)
        p.add_argument("type", metavar="TYPE", help="name or id")
        p.add_argument("--project-id", dest="access_project", required=True, metavar="PROJECT",
                       help="the project (cinder type-access-add's --project-id)")
        p.set_defaults(allowed=allowed)
    p = leaf(typ, common, "delete", "delete a volume type no volume uses (admin)", cmd_delete)
    p.add_argument("type", metavar="TYPE", help="name or id")


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
        vtype = find_type(c, args.type)
        shown: dict[str, Any] = {"id": vtype.id, "name": vtype.name,
                                 "description": vtype.description,
                                 "extra_specs": vtype.extra_specs, "is_public": vtype.is_public}
        if not vtype.is_public and args.admin:
            shown["access_project_ids"] = c.type_access(vtype.id)
    return show(args, shown)


def cmd_create(args: argparse.Namespace) -> int:
    specs = key_values(args.property, "property")
    with client(args) as c:
        vtype = c.create_type(args.name, extra_specs=specs, description=args.description,
                              is_public=args.is_public)
    return show(args, vtype)


def cmd_access(args: argparse.Namespace) -> int:
    with client(args) as c:
        projects = c.set_type_access(args.type, args.access_project, args.allowed)
    return show(args, {"type": args.type, "access_project_ids": projects})


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_type(args.type)
    return 0

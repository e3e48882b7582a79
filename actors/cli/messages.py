"""``cinderblock message ...``: why a volume went to an error status (Cinder's user
messages, ``openstack volume message`` / ``cinder message-list``).

    cinderblock message list [--volume VOLUME] [--all-projects] [--limit N] [--marker ID]
    cinderblock message show MESSAGE
    cinderblock message delete MESSAGE

A message is kept 30 days; newest first, as volumes are listed. VOLUME is a name (unique
in the project) or an id; a volume already deleted is named by its id.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, client
from cinderblock.actors.cli.format import (
    Column,
    add_order,
    add_paging,
    columns_named,
    iso_time,
    listing,
    show,
    sort_dir,
)
from cinderblock.actors.cli.lookup import find_volume
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import NotFound


def add_message(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    msg = sub.add_parser("message", help="why volumes went to an error status").add_subparsers(
        required=True)
    p = leaf(msg, common, "list", "list user messages, newest first", cmd_list)
    p.add_argument("--volume", help="about this volume (name or id; a deleted one by id)")
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    add_paging(p)
    add_order(p)
    for name, help_text, run in (("show", "show a message", cmd_show),
                                 ("delete", "delete a message", cmd_delete)):
        leaf(msg, common, name, help_text, run).add_argument("message_id", metavar="MESSAGE")


def resource_id(c: SyncClient, ref: str | None) -> str | None:
    """The volume a listing is about: found by name or id, or, when no volume of that name
    or id exists any more, the reference itself (a deleted volume's messages remain)."""
    if ref is None:
        return None
    try:
        return find_volume(c, ref).id
    except NotFound:
        return ref


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_messages(resource_uuid=resource_id(c, args.volume),
                                all_projects=args.all_projects, limit=args.limit,
                                marker=args.marker, sort_dir=sort_dir(args))
    cols = [*columns_named("ID", "Resource UUID", "Event ID", "User Message"),
            Column("created_at", "Created At")]
    if args.all_projects:
        cols.append(Column("project_id", "Project"))
    rows = [[m.id, m.resource_uuid, m.event_id, m.user_message, iso_time(m.created_at),
             *([m.project_id] if args.all_projects else [])] for m in found]
    return listing(args, cols, rows)


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.show_message(args.message_id))


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_message(args.message_id)
    return 0

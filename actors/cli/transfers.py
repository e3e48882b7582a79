"""``cinderblock transfer ...``: give a volume to another project (Cinder's volume
transfers, ``openstack volume transfer request`` / ``cinder transfer-*``).

    cinderblock transfer create VOLUME [--name NAME] [--no-snapshots]
    cinderblock transfer accept TRANSFER AUTH_KEY      # as the project taking it
    cinderblock transfer list [--all-projects]
    cinderblock transfer show TRANSFER
    cinderblock transfer delete TRANSFER               # withdraw the offer

The auth key is printed once, by ``create``: give it, with the transfer's id, to the
project that is to take the volume. VOLUME is a name (unique in the project) or an id.
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


def add_transfer(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    transfer = sub.add_parser("transfer", help="give volumes to another project"
                              ).add_subparsers(required=True)
    p = leaf(transfer, common, "create", "offer a volume to another project (prints the "
             "auth key, once)", cmd_create)
    p.add_argument("volume", metavar="VOLUME")
    p.add_argument("--name")
    p.add_argument("--no-snapshots", action="store_true",
                   help="the volume's snapshots stay with this project")
    p = leaf(transfer, common, "accept", "take an offered volume into this project",
             cmd_accept)
    p.add_argument("transfer_id", metavar="TRANSFER")
    p.add_argument("auth_key", metavar="AUTH_KEY")
    p = leaf(transfer, common, "list", "this project's offers not yet taken, newest first",
             cmd_list)
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    add_paging(p)
    add_order(p)
    for name, help_text, run in (("show", "show an offer", cmd_show),
                                 ("delete", "withdraw an offer", cmd_delete)):
        leaf(transfer, common, name, help_text, run).add_argument("transfer_id",
                                                                  metavar="TRANSFER")


def cmd_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        volume = find_volume(c, args.volume)
        return show(args, c.create_transfer(volume.id, name=args.name,
                                            no_snapshots=args.no_snapshots))


def cmd_accept(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.accept_transfer(args.transfer_id, args.auth_key))


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_transfers(all_projects=args.all_projects, limit=args.limit,
                                 marker=args.marker, sort_dir=sort_dir(args))
    cols = [*columns_named("ID", "Volume ID", "Name"), Column("created_at", "Created At"),
            Column("source_project_id", "Project")]
    rows = [[t.id, t.volume_id, t.name, iso_time(t.created_at), t.source_project_id]
            for t in found]
    return listing(args, cols, rows)


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.show_transfer(args.transfer_id))


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_transfer(args.transfer_id)
    return 0

"""``cinderblock attachment ...``: Cinder's v3 attachments from the command line.

    cinderblock attachment create VOLUME --instance ID [--mode rw|ro]
    cinderblock attachment update ATTACHMENT --connector '{"host": "h1"}'   (prints connection_info)
    cinderblock attachment credentials ATTACHMENT --dir DIR   (the export's TLS files, 0600)
    cinderblock attachment complete ATTACHMENT
    cinderblock attachment delete ATTACHMENT [--force]   (--force: an admin's, its node may be down)
    cinderblock attachment show ATTACHMENT
    cinderblock attachment list [--volume VOLUME] [--all-projects]

VOLUME is a name (unique in the project) or an id; attachments have ids only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError, client
from cinderblock.actors.cli.format import (
    Column,
    add_order,
    add_paging,
    columns_named,
    listing,
    output_format,
    show,
    sort_dir,
)
from cinderblock.actors.cli.lookup import find_volume, volume_id
from cinderblock.protocol.client.attachments import (
    CREDENTIAL_FILES,
    nbd_uri,
    qemu_args,
    write_credentials,
)
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.wire.errors import InvalidInput


def add_attachment(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    att = sub.add_parser("attachment", help="volume attachments").add_subparsers(required=True)
    p = leaf(att, common, "create", "reserve a volume for an instance", cmd_create)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("--instance", dest="instance_id", help="the instance (server) id")
    p.add_argument("--mode", choices=("rw", "ro"), default=None)
    p = leaf(att, common, "update", "give the connector; prints the connection_info",
             cmd_update)
    p.add_argument("attachment_id")
    p.add_argument("--connector", required=True, metavar="JSON",
                   help='the host\'s connector, e.g. \'{"host": "h1", "mode": "rw"}\'')
    p = leaf(att, common, "credentials",
             "write the export's CA certificate, client certificate and key (0600) into DIR "
             "for qemu and nbdinfo", cmd_credentials)
    p.add_argument("attachment_id")
    p.add_argument("--dir", dest="directory", type=Path, required=True, metavar="DIR")
    for name, help_text, run in (
        ("complete", "mark an attachment attached (volume in-use)", cmd_complete),
        ("show", "show an attachment", cmd_show),
    ):
        leaf(att, common, name, help_text, run).add_argument("attachment_id")
    p = leaf(att, common, "delete", "detach: remove the export and the attachment", cmd_delete)
    p.add_argument("attachment_id")
    p.add_argument("--force", action="store_true",
                   help="admin: forget it even if its node cannot be reached (Cinder's "
                        "force-detach); the export is closed once the node answers")
    p = leaf(att, common, "list", "list attachments, newest first (a volume's: oldest "
             "first)", cmd_list)
    p.add_argument("--volume", help="of this volume (name or id)")
    p.add_argument("--all-projects", action="store_true")
    add_paging(p)
    add_order(p)


def parse_connector(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--connector is not JSON: {exc}", {"field": "connector"}) from exc


def cmd_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = find_volume(c, args.volume)
        return _show(args, c.create_attachment(vol.id, args.instance_id, args.mode))


def cmd_update(args: argparse.Namespace) -> int:
    connector = parse_connector(args.connector)
    with client(args) as c:
        att = c.update_attachment(args.attachment_id, connector)
    info = att.connection_info
    if output_format(args) == "json" and not args.columns:
        print(json.dumps(info, indent=2, sort_keys=True))  # connection_info as Cinder gives it
        return 0
    data = info.get("data") or {}
    shown = {k: v for k, v in data.items() if k not in CREDENTIAL_FILES}
    if any(k in data for k in CREDENTIAL_FILES):  # PEM: too long for a table
        shown["credentials"] = f"cinderblock attachment credentials {att.id} --dir DIR"
    return show(args, {"driver_volume_type": info.get("driver_volume_type"), **shown})


def _show(args: argparse.Namespace, att: Attachment) -> int:
    """An attachment; in a table (or value, csv) its PEM credentials are named, not printed."""
    return show(args, att if output_format(args) in ("json", "yaml") else _without_pems(att))


def _without_pems(att: Attachment) -> Attachment:
    data = att.connection_info.get("data")
    if not isinstance(data, dict) or not CREDENTIAL_FILES.keys() & data.keys():
        return att
    shown = {k: v for k, v in data.items() if k not in CREDENTIAL_FILES}
    shown["credentials"] = f"cinderblock attachment credentials {att.id} --dir DIR"
    return dataclasses.replace(att, connection_info={**att.connection_info, "data": shown})


def cmd_credentials(args: argparse.Namespace) -> int:
    with client(args) as c:
        att = c.show_attachment(args.attachment_id)
    directory = args.directory.expanduser().absolute()
    try:
        write_credentials(att, directory)
    except OSError as exc:
        raise UsageError(f"cannot write the credentials into {directory}: {exc}") from exc
    uri, qemu = nbd_uri(att, directory), qemu_args(att, directory)
    if output_format(args) != "table":
        return show(args, {"directory": str(directory), "uri": uri, "qemu_args": qemu})
    print(f"wrote {', '.join(CREDENTIAL_FILES.values())} into {directory} (mode 0600)")
    print(f"  nbdinfo {shlex.quote(uri)}")
    print(f"  {shlex.join(['qemu-io', *qemu[:-1], '-c', 'read 0 1M', qemu[-1]])}")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _show(args, c.complete_attachment(args.attachment_id))


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        if args.force:
            return _show(args, c.force_delete_attachment(args.attachment_id))
        return _show(args, c.delete_attachment(args.attachment_id))


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _show(args, c.show_attachment(args.attachment_id))


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        found = c.list_attachments(volume_id(c, args.volume), args.all_projects,
                                   limit=args.limit, marker=args.marker,
                                   sort_dir=sort_dir(args))
    rows = [(a.id, a.volume_id, a.status, a.instance_id, a.attach_mode, a.host) for a in found]
    cols = (*columns_named("ID", "Volume ID", "Status"), Column("instance_id", "Instance"),
            Column("attach_mode", "Mode"), Column("host", "Host"))
    return listing(args, cols, rows)

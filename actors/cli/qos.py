"""``cinderblock qos ...``: QoS specs, as ``openstack volume qos`` has them (an admin's).

    cinderblock qos list
    cinderblock qos show QOS
    cinderblock qos create NAME [--consumer front-end|back-end|both] [--property K=V ...]
    cinderblock qos set QOS [--consumer C] [--property K=V ...]
    cinderblock qos unset QOS --property K [--property K ...]
    cinderblock qos associate QOS TYPE
    cinderblock qos disassociate QOS (--volume-type TYPE | --all)
    cinderblock qos delete QOS [--force]     (--force: also while types have it)

QOS is a name or an id, TYPE a volume type's. A volume has the QoS of its type; the
front-end (and ``both``) specs reach the host that attaches it, in the attachment's
connection info.
"""

from __future__ import annotations

import argparse
from typing import Any

from cinderblock.actors.cli.base import Leaf, UsageError, client, key_values
from cinderblock.actors.cli.format import columns_named, listing, show
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.qos import QosSpecs

CONSUMERS = ("front-end", "back-end", "both")


def add_qos(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    qos = sub.add_parser("qos", help="QoS specs of volume types (admin)"
                         ).add_subparsers(required=True)
    leaf(qos, common, "list", "list QoS specs", cmd_list)
    leaf(qos, common, "show", "show QoS specs and the types that have them", cmd_show
         ).add_argument("qos", metavar="QOS", help="name or id")
    p = leaf(qos, common, "create", "create QoS specs", cmd_create)
    p.add_argument("name")
    p.add_argument("--consumer", choices=CONSUMERS,
                   help="who applies them (default: back-end)")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a spec, e.g. total_iops_sec=500; repeat for more")
    p = leaf(qos, common, "set", "change QoS specs", cmd_set)
    p.add_argument("qos", metavar="QOS", help="name or id")
    p.add_argument("--consumer", choices=CONSUMERS)
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="set a spec; repeat for more")
    p = leaf(qos, common, "unset", "drop specs", cmd_unset)
    p.add_argument("qos", metavar="QOS", help="name or id")
    p.add_argument("--property", action="append", default=[], metavar="KEY",
                   help="the spec to drop; repeat for more")
    p = leaf(qos, common, "associate", "give a volume type these QoS specs", cmd_associate)
    p.add_argument("qos", metavar="QOS", help="name or id")
    p.add_argument("type", metavar="TYPE", help="a volume type's name or id")
    p = leaf(qos, common, "disassociate", "take these QoS specs from a volume type",
             cmd_disassociate)
    p.add_argument("qos", metavar="QOS", help="name or id")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--volume-type", metavar="TYPE", help="from this type")
    which.add_argument("--all", action="store_true", help="from every type")
    p = leaf(qos, common, "delete", "delete QoS specs", cmd_delete)
    p.add_argument("qos", metavar="QOS", help="name or id")
    p.add_argument("--force", action="store_true",
                   help="also while volume types have them (they lose them)")


def qos_view(c: SyncClient, qos: QosSpecs) -> dict[str, Any]:
    return {"id": qos.id, "name": qos.name, "consumer": qos.consumer,
            "properties": qos.specs,
            "associations": [t.name for t in c.qos_associations(qos.id)]}


def cmd_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        rows = [[q.id, q.name, q.consumer, [t.name for t in c.qos_associations(q.id)],
                 q.specs] for q in c.list_qos()]
    return listing(args, columns_named("ID", "Name", "Consumer", "Associations",
                                       "Properties"), rows)


def cmd_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, qos_view(c, c.show_qos(args.qos)))


def cmd_create(args: argparse.Namespace) -> int:
    specs = key_values(args.property, "--property")
    with client(args) as c:
        return show(args, qos_view(c, c.create_qos(args.name, consumer=args.consumer,
                                                   specs=specs)))


def cmd_set(args: argparse.Namespace) -> int:
    specs = key_values(args.property, "--property")
    if not specs and args.consumer is None:
        raise UsageError("nothing to set: give --property or --consumer")
    with client(args) as c:
        return show(args, qos_view(c, c.update_qos(args.qos, consumer=args.consumer,
                                                   specs=specs)))


def cmd_unset(args: argparse.Namespace) -> int:
    if not args.property:
        raise UsageError("nothing to unset: give --property")
    with client(args) as c:
        return show(args, qos_view(c, c.update_qos(args.qos, delete_keys=args.property)))


def cmd_associate(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.associate_qos(args.qos, args.type)
    return 0


def cmd_disassociate(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.disassociate_qos(args.qos, None if args.all else args.volume_type)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        c.delete_qos(args.qos, force=args.force)
    return 0

"""``cinderblock volume delete|extend|set|unset`` and ``cinderblock snapshot ...``, as
``cinder`` and ``openstack volume`` have them.

    cinderblock volume delete VOLUME [VOLUME ...] [--wait]
    cinderblock volume extend VOLUME NEW_SIZE [--wait]
    cinderblock volume migrate VOLUME HOST [--force-host-copy] [--lock-volume] [--wait]
    cinderblock volume set VOLUME [--name N] [--description D] [--property K=V ...]
                                  [--no-property] [--bootable|--non-bootable]
                                  [--read-only|--read-write] [--image-property K=V ...]
                                  [--type TYPE [--retype-policy never|on-demand] [--wait]]
    cinderblock volume unset VOLUME [--property KEY ...] [--image-property KEY ...]
    cinderblock volume create [SIZE] --snapshot-id SNAPSHOT | --source-volid VOLUME

VOLUME and SNAPSHOT are a name (unique in the project) or an id. A delete of several
goes on past a failure: each one is reported on stderr, the others are done, and the
exit status is 1.
    cinderblock snapshot create VOLUME [--name N] [--description D] [--force] [--wait] [--json]
    cinderblock snapshot list [--volume V] [--status S] [--all-projects] [--tenant P]
                              [--limit N] [--marker ID]
    cinderblock snapshot show SNAPSHOT
    cinderblock snapshot set SNAPSHOT [--name N] [--description D]
    cinderblock snapshot delete SNAPSHOT [--wait]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cinderblock.actors.cli.base import Leaf, UsageError, client, int_arg, key_values
from cinderblock.actors.cli.format import (
    add_paging,
    columns_named,
    error_text,
    listing,
    output_format,
    show,
)
from cinderblock.actors.cli.lookup import describe, find_snapshot, find_volume, volume_id
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.limits import MAX_SIZE_GB, check_range
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError

if TYPE_CHECKING:
    pass



def add_volume_lifecycle(vol: Any, common: argparse.ArgumentParser, leaf: Leaf) -> None:
    """``volume delete`` and ``volume extend`` (``vol``: the volume subcommands)."""
    p = leaf(vol, common, "delete", "delete volumes", cmd_volume_delete)
    p.add_argument("volumes", nargs="+", metavar="VOLUME", help="name or id; several may be given")
    _waiting(p, "wait until it is gone")
    p = leaf(vol, common, "extend", "grow a volume", cmd_volume_extend)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("new_size", type=int_arg("new_size"))
    _waiting(p, "wait until it is available at the new size")
    p = leaf(vol, common, "migrate", "move an available volume's data to another backend "
             "(an admin's; openstack volume migrate --host)", cmd_volume_migrate)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("host", metavar="HOST", help="the destination backend, host@backend "
                   "(as backend list names it)")
    p.add_argument("--force-host-copy", action="store_true",
                   help="Cinder's; accepted: the hosts always copy the data here")
    p.add_argument("--lock-volume", action="store_true",
                   help="Cinder's; accepted: the volume is always locked while it moves")
    p.add_argument("--wait", action="store_true",
                   help="wait until the volume is on its new backend (exit 1 if it stayed)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (--wait)")
    p = leaf(vol, common, "revert", "revert a volume to its latest snapshot, in place "
             "(openstack volume revert)", cmd_volume_revert)
    p.add_argument("snapshot", metavar="SNAPSHOT",
                   help="name or id: the newest snapshot of the volume, of its size")
    p.add_argument("--wait", action="store_true",
                   help="wait until the volume is available again")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (--wait)")
    p = leaf(vol, common, "set", "rename or describe a volume, set its properties or flags",
             cmd_volume_set)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    add_naming(p)
    add_properties(p)
    flag_pair(p, "bootable", "--bootable", "--non-bootable")
    flag_pair(p, "readonly", "--read-only", "--read-write")
    p.add_argument("--image-property", action="append", default=[], metavar="KEY=VALUE",
                   help="set an image metadata item (what Nova reads to boot the volume); "
                        "repeat for more")
    p.add_argument("--type", dest="new_type", metavar="TYPE",
                   help="retype it: in place if its backend satisfies the new type")
    p.add_argument("--retype-policy", choices=("never", "on-demand"), default=None,
                   help="Cinder's migration policy (default never): under on-demand a "
                        "volume whose backend does not satisfy the new type moves to one "
                        "that does")
    p.add_argument("--wait", action="store_true",
                   help="with --type: wait until a volume that moves has (exit 1 if it "
                        "stayed, saying why)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (--wait)")
    p = leaf(vol, common, "unset", "remove metadata or image metadata items from a volume",
             cmd_volume_unset)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    add_unset_properties(p, required=False)
    p.add_argument("--image-property", action="append", default=[], metavar="KEY",
                   help="the image metadata item to remove; repeat for more")


def add_naming(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="the new name ('' clears it)")
    p.add_argument("--description", help="the new description ('' clears it)")


def add_properties(p: argparse.ArgumentParser) -> None:
    """``set``'s ``--property KEY=VALUE`` and ``--no-property``."""
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="set a metadata item; repeat for more")
    p.add_argument("--no-property", action="store_true",
                   help="remove every metadata item first (with --property: replace them)")


def add_unset_properties(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--property", action="append", required=required, default=[],
                   metavar="KEY", help="the item to remove; repeat for more")


def property_changes(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_properties``'s options ask to change, as ``modify_*`` keywords."""
    properties = key_values(args.property, "--property")
    if not (properties or args.no_property):
        return {}
    return {"metadata": properties, "replace_metadata": args.no_property}


def flag_pair(p: argparse.ArgumentParser, dest: str, on: str, off: str) -> None:
    """``on`` sets ``dest`` true, ``off`` false; neither leaves it (None)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(on, dest=dest, action="store_const", const=True, default=None)
    group.add_argument(off, dest=dest, action="store_const", const=False)


def add_create_sources(create: argparse.ArgumentParser) -> None:
    """``volume create --snapshot-id | --source-volid | --backup``."""
    source = create.add_mutually_exclusive_group()
    source.add_argument("--backup", help="create holding this backup's data (name or id; "
                        "its size by default)")
    source.add_argument("--snapshot-id", "--snapshot", help="create from this snapshot "
                        "(name or id)")
    source.add_argument("--source-volid", "--source", help="create as a copy of this volume "
                        "(name or id)")
    create.add_argument("--same-host", action="append", metavar="VOLUME",
                        help="on a backend holding this volume of yours (name or id; "
                             "repeat: one of several), as Cinder's same_host hint")
    create.add_argument("--different-host", action="append", metavar="VOLUME",
                        help="on a backend holding none of these volumes of yours (name or "
                             "id; repeat for several), as Cinder's different_host hint")


def add_snapshot(sub: Any, common: argparse.ArgumentParser, leaf: Leaf) -> Any:
    """``snapshot ...``; returns the snapshot subcommands (for ``manage.py``'s)."""
    snap = sub.add_parser("snapshot", help="volume snapshots").add_subparsers(required=True)
    p = leaf(snap, common, "create", "snapshot a volume", cmd_snapshot_create)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--force", action="store_true", help="snapshot an in-use volume")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata item; repeat for more")
    _waiting(p, "wait until it is available")
    p = leaf(snap, common, "list", "list snapshots", cmd_snapshot_list)
    p.add_argument("--volume", help="of this volume (name or id)")
    p.add_argument("--status")
    p.add_argument("--all-projects", action="store_true")
    p.add_argument("--tenant", metavar="PROJECT",
                   help="admin: this project's snapshots only (cinder's --tenant)")
    p.add_argument("--availability-zone", metavar="ZONE",
                   help="only snapshots of volumes in this zone")
    p.add_argument("--long", action="store_true", help="with descriptions and creation times")
    add_paging(p)
    p = leaf(snap, common, "show", "show a snapshot", cmd_snapshot_show)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="name or id")
    p = leaf(snap, common, "set", "rename or describe a snapshot, set its properties",
             cmd_snapshot_set)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="name or id")
    add_naming(p)
    add_properties(p)
    p = leaf(snap, common, "unset", "remove metadata items from a snapshot",
             cmd_snapshot_unset)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="name or id")
    add_unset_properties(p)
    p = leaf(snap, common, "reset-state", "admin: move a stuck snapshot to error or "
             "available", cmd_snapshot_reset_state)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="name or id")
    p.add_argument("--state", default="error", help="error (default) or available")
    p = leaf(snap, common, "delete", "delete snapshots", cmd_snapshot_delete)
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT",
                   help="name or id; several may be given")
    _waiting(p, "wait until it is gone")
    return snap


def _waiting(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--request-id")
    p.add_argument("--wait", action="store_true", help=help_text)
    p.add_argument("--timeout", type=float, default=120.0)


def cmd_volume_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        def delete(ref: str) -> Volume:
            return c.delete_volume(find_volume(c, ref).id, request_id=args.request_id,
                                   wait=args.wait, timeout=args.timeout)

        return each(args, "volume", args.volumes, delete)


def cmd_volume_extend(args: argparse.Namespace) -> int:
    check_range("new_size", args.new_size, 1, MAX_SIZE_GB)  # before the name is looked up
    with client(args) as c:
        vol = c.extend_volume(find_volume(c, args.volume).id, args.new_size,
                              request_id=args.request_id, wait=args.wait, timeout=args.timeout)
    return show(args, vol)


def cmd_volume_migrate(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.migrate_volume(find_volume(c, args.volume).id, args.host,
                               force_host_copy=args.force_host_copy,
                               lock_volume=args.lock_volume, wait=args.wait,
                               timeout=args.timeout)
    return show(args, vol)


def cmd_volume_revert(args: argparse.Namespace) -> int:
    with client(args) as c:
        snap = find_snapshot(c, args.snapshot)
        vol = c.revert_volume(snap.volume_id, snap.id, wait=args.wait, timeout=args.timeout)
    return show(args, vol)


def naming_changes(args: argparse.Namespace) -> dict[str, str | None]:
    """The name and description a ``set`` gives (``''``: clear it, as ``None`` on the wire)."""
    return {f: getattr(args, f) or None for f in ("name", "description")
            if getattr(args, f) is not None}


def cmd_volume_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = naming_changes(args) | property_changes(args)
    changes.update({f: getattr(args, f) for f in ("bootable", "readonly")
                    if getattr(args, f) is not None})
    if args.image_property:
        changes["image_metadata"] = key_values(args.image_property, "--image-property")
    if (args.retype_policy is not None or args.wait) and args.new_type is None:
        raise UsageError("--retype-policy and --wait go with --type")
    if not changes and args.new_type is None:
        raise UsageError("nothing to set: give --name, --description, --property, "
                         "--no-property, --bootable/--non-bootable, --read-only/--read-write, "
                         "--image-property or --type")
    with client(args) as c:
        volume = find_volume(c, args.volume)
        if changes:
            volume = c.modify_volume(volume.id, **changes)
        if args.new_type is not None:
            volume = c.retype_volume(volume.id, args.new_type, args.retype_policy or "never",
                                     wait=args.wait, timeout=args.timeout)
        return show(args, volume)


def cmd_volume_unset(args: argparse.Namespace) -> int:
    if not (args.property or args.image_property):
        raise UsageError("nothing to unset: give --property or --image-property")
    with client(args) as c:
        return show(args, c.modify_volume(find_volume(c, args.volume).id,
                                          delete_metadata=args.property,
                                          delete_image_metadata=args.image_property))


def cmd_snapshot_set(args: argparse.Namespace) -> int:
    changes = naming_changes(args) | property_changes(args)
    if not changes:
        raise UsageError("nothing to set: give --name, --description, --property or "
                         "--no-property")
    with client(args) as c:
        return show(args, c.modify_snapshot(find_snapshot(c, args.snapshot).id, **changes))


def cmd_snapshot_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.reset_snapshot_state(find_snapshot(c, args.snapshot).id,
                                                 args.state))


def cmd_snapshot_unset(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.modify_snapshot(find_snapshot(c, args.snapshot).id,
                                            delete_metadata=args.property))


def cmd_snapshot_create(args: argparse.Namespace) -> int:
    with client(args) as c:
        snap = c.create_snapshot(find_volume(c, args.volume).id, name=args.name,
                                 description=args.description, force=args.force,
                                 metadata=key_values(args.property, "--property"),
                                 request_id=args.request_id, wait=args.wait,
                                 timeout=args.timeout)
    return show(args, snap)


def cmd_snapshot_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, find_snapshot(c, args.snapshot))


def cmd_snapshot_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        def delete(ref: str) -> Snapshot:
            return c.delete_snapshot(find_snapshot(c, ref).id, request_id=args.request_id,
                                     wait=args.wait, timeout=args.timeout)

        return each(args, "snapshot", args.snapshots, delete)


def cmd_snapshot_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        snaps = c.list_snapshots(all_projects=args.all_projects or args.tenant is not None,
                                 volume_id=volume_id(c, args.volume), status=args.status,
                                 limit=args.limit, marker=args.marker, project_id=args.tenant,
                                 availability_zone=args.availability_zone)
    headers = ["ID", "Name", "Status", "Size", "Volume ID"]
    if args.long:
        headers += ["Description", "Created At"]
    rows = [[s.id, s.name, s.status, s.size, s.volume_id, s.description,
             _iso(s.created_at)][:len(headers)] for s in snaps]
    return listing(args, columns_named(*headers), rows)


def _iso(ts: float) -> Any:
    from cinderblock.actors.cli.format import iso_time

    return iso_time(ts)


def each(args: argparse.Namespace, what: str, refs: Sequence[str],
         act: Callable[[str], Volume | Snapshot | Backup], verb: str = "delete") -> int:
    """``act`` on every reference; a failure is reported on stderr and the rest are
    still done (as ``openstack volume delete`` does). One reference prints its record;
    several print a listing of those done. Exit status 1 if any failed."""
    done: list[Volume | Snapshot | Backup] = []
    failed = 0
    fmt = output_format(args)
    for ref in refs:
        try:
            done.append(act(ref))
        except CinderblockError as exc:
            failed += 1
            code, message, details = describe(exc)
            text = f"failed to {verb} {what} {ref!r}: {message}"
            print(error_text(code, text, {**details, what: ref}, fmt), file=sys.stderr)
    if len(refs) == 1 and done:
        show(args, done[0])
    elif done:
        listing(args, columns_named("ID", "Name", "Status"),
                [(r.id, r.name, r.status) for r in done])
    if failed:
        if fmt != "json":
            print(f"{failed} of {len(refs)} {what}s failed to {verb}", file=sys.stderr)
        return 1
    return 0

"""The ``cinderblock`` command: run a cluster, and talk to it as ``cinder`` does."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from cinderblock.actors.cli.attachments import add_attachment
from cinderblock.actors.cli.base import (
    UsageError,
    client,
    endpoint_from,
    int_arg,
    key_for,
    ranged_int,
)
from cinderblock.actors.cli.format import add_paging, as_json, properties, table
from cinderblock.actors.cli.trust import add_trust, add_user_option
from cinderblock.actors.cli.up import cmd_down, cmd_status, cmd_up
from cinderblock.actors.cli.volumes import add_create_sources, add_snapshot, add_volume_lifecycle
from cinderblock.protocol.wire.errors import CinderblockError
from cinderblock.protocol.wire.keys import KEY_ENV, KeyFileError

MAX_NODES = 64  # each node is a process of its own on this machine
DEFAULT_DATA_DIR = Path(os.environ.get("CINDERBLOCK_DATA_DIR", "~/.cinderblock")).expanduser()


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the same shape as every
    other error), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ERROR (usage): {self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result: int = args.run(args)
        sys.stdout.flush()  # here, where a broken pipe is caught, not at exit
        return result
    except (CinderblockError, UsageError, KeyFileError) as exc:
        code = getattr(exc, "code", "usage")
        print(f"ERROR ({code}): {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cinderblock volume list | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 141


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="cluster data directory (default %(default)s)")
    common.add_argument("--gateway", default=os.environ.get("CINDERBLOCK_GATEWAY"),
                        help="gateway endpoint, else read from DATA_DIR/endpoints.json")
    common.add_argument("--project", default=os.environ.get("CINDERBLOCK_PROJECT", "demo"))
    common.add_argument("--admin", action="store_true",
                        default=os.environ.get("CINDERBLOCK_ADMIN", "") in ("1", "true", "yes"))
    add_user_option(common)
    common.add_argument("--json", action="store_true", help="print JSON")
    parser = OneLineErrors(prog="cinderblock", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_up(sub, common)
    _add_actor(sub)
    _add_volume(sub, common)
    _add_type(sub, common)
    _add_quota(sub, common)
    add_snapshot(sub, common, _leaf)
    add_attachment(sub, common, _leaf)
    az = sub.add_parser("az", help="availability zones").add_subparsers(required=True)
    _leaf(az, common, "list", "list availability zones", cmd_az_list)
    p = _leaf(sub, common, "tui", "the live dashboard: flows, backends, volumes, rates", cmd_tui)
    p.add_argument("--events", default=os.environ.get("CINDERBLOCK_EVENTS"),
                   help="event endpoint, else read from DATA_DIR/endpoints.json")
    backend = sub.add_parser("backend", help="storage backends").add_subparsers(required=True)
    _leaf(backend, common, "list", "backends with their capacity", cmd_backend_list)
    add_trust(sub, common, _leaf)
    return parser


def _leaf(sub: Any, common: argparse.ArgumentParser, name: str, help: str,
          run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help)
    p.set_defaults(run=run)
    return p


def _add_up(sub: Any, common: argparse.ArgumentParser) -> None:
    p = _leaf(sub, common, "up", "start every actor on loopback until Ctrl-C", cmd_up)
    p.add_argument("--backend", choices=("file", "null"), default="file")
    p.add_argument("--nodes", type=ranged_int("--nodes", 1, MAX_NODES), default=2,
                   help=f"storage nodes to start, 1 to {MAX_NODES} (default 2)")
    p.add_argument("--capacity-gb", type=_positive_float("--capacity-gb"), default=None,
                   help="each node's capacity in GiB (default: the file system's; null: 100000)")
    p.add_argument("--api-port", type=ranged_int("--api-port", 1, 65535), default=None,
                   help="port of the REST front (Cinder's API v3; default: a free one)")
    p.add_argument("--api-fronts", type=ranged_int("--api-fronts", 0, 16), default=1,
                   help="REST front processes to start (default 1; 0: none)")
    p.add_argument("--max-restarts", type=ranged_int("--max-restarts", 0, 1000), default=5,
                   help="restarts of one actor within a minute past which the cluster is "
                        "stopped (default 5)")
    _leaf(sub, common, "down", "stop the cluster `up` runs in --data-dir", cmd_down)
    _leaf(sub, common, "status", "each actor of the running `up`: pid, uptime, restarts",
          cmd_status)


def _add_actor(sub: Any) -> None:
    p = sub.add_parser("actor", help="run one actor in this process (used by up)")
    p.add_argument("kind", choices=("gateway", "quota", "scheduler", "node", "rest"))
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--host", default=None)
    p.add_argument("--listen", default=None, help="rest: HOST:PORT to serve the API on")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_actor)
    p = sub.add_parser("node", help="run this host's storage node from a cluster file "
                       "(docs/operations.md)")
    p.add_argument("--config", type=Path, required=True, help="the cluster file (TOML)")
    p.add_argument("--host", required=True, help="this node's host name in the file")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_actor, kind="node")


def _add_volume(sub: Any, common: argparse.ArgumentParser) -> None:
    vol = sub.add_parser("volume", help="volumes").add_subparsers(required=True)
    p = _leaf(vol, common, "create", "create a volume", cmd_volume_create)
    p.add_argument("size", type=int_arg("size"), nargs="?",
                   help="GiB (from a snapshot or source volume: its size by default)")
    add_create_sources(p)
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--type", dest="volume_type")
    p.add_argument("--availability-zone")
    p.add_argument("--metadata", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--request-id")
    p.add_argument("--wait", action="store_true", help="wait until available")
    p.add_argument("--timeout", type=float, default=120.0)
    p = _leaf(vol, common, "show", "show a volume", cmd_volume_show)
    p.add_argument("volume_id")
    p = _leaf(vol, common, "reset-state", "admin: move a stuck volume to error or available",
              cmd_volume_reset_state)
    p.add_argument("volume_id")
    p.add_argument("--state", default="error", help="error (default) or available")
    p = _leaf(vol, common, "list", "list volumes", cmd_volume_list)
    p.add_argument("--all-projects", action="store_true")
    p.add_argument("--status")
    add_paging(p)
    add_volume_lifecycle(vol, common, _leaf)


def _add_type(sub: Any, common: argparse.ArgumentParser) -> None:
    typ = sub.add_parser("type", help="volume types").add_subparsers(required=True)
    _leaf(typ, common, "list", "list volume types", cmd_type_list)
    p = _leaf(typ, common, "create", "create a volume type (admin)", cmd_type_create)
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--property", nargs="*", default=[], metavar="KEY=VALUE")


def _add_quota(sub: Any, common: argparse.ArgumentParser) -> None:
    quota = sub.add_parser("quota", help="quotas").add_subparsers(required=True)
    p = _leaf(quota, common, "show", "show a project's quota and usage", cmd_quota_show)
    p.add_argument("target_project", nargs="?")
    p = _leaf(quota, common, "set", "set a project's limits (admin)", cmd_quota_set)
    p.add_argument("target_project")
    for name in ("volumes", "gigabytes", "snapshots", "per-volume-gigabytes"):
        p.add_argument(f"--{name}", type=int_arg(name))
    p = _leaf(quota, common, "sync", "admin: set a project's usage to what it has",
              cmd_quota_sync)
    p.add_argument("target_project")
    p.add_argument("--dry-run", action="store_true", help="only show the differences")


def _positive_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {text!r}")
        return value

    return parse


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


# ---- commands ------------------------------------------------------------
def cmd_tui(args: argparse.Namespace) -> int:
    from cinderblock.tui.app import run

    gateway = args.gateway or endpoint_from(args.data_dir)
    events = args.events or endpoint_from(args.data_dir, "events")
    key = key_for(args)
    if key is not None:  # the dashboard's client and event stream find it there
        os.environ[KEY_ENV] = str(key)
    run(gateway, events, project=args.project, admin=args.admin)
    return 0


def cmd_actor(args: argparse.Namespace) -> int:
    from cinderblock.actors.runtime.main import run_actor

    if args.kind == "rest":
        from cinderblock.actors.rest.server import run_front

        if not args.listen:
            raise UsageError("cinderblock actor rest needs --listen HOST:PORT")
        return run_front(args.config, args.listen, args.verbose)
    return run_actor(args.kind, args.config, args.host, args.verbose)


def cmd_volume_create(args: argparse.Namespace) -> int:
    metadata = _pairs(args.metadata, "metadata")
    if args.size is None and not (args.snapshot_id or args.source_volid):
        raise UsageError("give a SIZE, or --snapshot-id / --source-volid")
    with client(args) as c:
        vol = c.create_volume(
            args.size, name=args.name, description=args.description,
            volume_type=args.volume_type, availability_zone=args.availability_zone,
            metadata=metadata, request_id=args.request_id, wait=args.wait,
            timeout=args.timeout, snapshot_id=args.snapshot_id, source_volid=args.source_volid,
        )
    print(as_json(vol) if args.json else properties(vol))
    return 0


def cmd_volume_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.show_volume(args.volume_id)
    print(as_json(vol) if args.json else properties(vol))
    return 0


def cmd_volume_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        vol = c.reset_volume_state(args.volume_id, args.state)
    print(as_json(vol) if args.json else properties(vol))
    return 0


def cmd_volume_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        vols = c.list_volumes(all_projects=args.all_projects, status=args.status,
                              limit=args.limit, marker=args.marker)
    if args.json:
        print(as_json(vols))
        return 0
    rows = [(v.id, v.status, v.name, v.size, v.volume_type, v.host) for v in vols]
    print(table(["ID", "Status", "Name", "Size", "Volume Type", "Host"], rows))
    return 0


def cmd_type_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        types = c.list_types()
    if args.json:
        print(as_json(types))
        return 0
    print(table(["ID", "Name", "Extra specs"], [(t.id, t.name, t.extra_specs) for t in types]))
    return 0


def cmd_type_create(args: argparse.Namespace) -> int:
    specs = _pairs(args.property, "property")
    with client(args) as c:
        vtype = c.create_type(args.name, extra_specs=specs, description=args.description)
    print(as_json(vtype) if args.json else properties(vtype))
    return 0


def cmd_quota_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        quota = c.show_quota(args.target_project)
    if args.json:
        print(as_json(quota))
        return 0
    rows = [(r, quota.limits.get(r), quota.in_use.get(r, "-"), quota.reserved.get(r, "-"))
            for r in quota.limits]
    print(table(["Resource", "Limit", "In use", "Reserved"], rows))
    return 0


def cmd_quota_set(args: argparse.Namespace) -> int:
    limits = {name: getattr(args, name) for name in
              ("volumes", "gigabytes", "snapshots", "per_volume_gigabytes")
              if getattr(args, name) is not None}
    if not limits:
        raise UsageError("give at least one of --volumes, --gigabytes, --snapshots, "
                         "--per-volume-gigabytes")
    with client(args) as c:
        quota = c.set_quota(args.target_project, **limits)
    print(as_json(quota) if args.json else properties(quota))
    return 0


def cmd_quota_sync(args: argparse.Namespace) -> int:
    with client(args) as c:
        result = c.sync_quota(args.target_project, dry_run=args.dry_run)
    if args.json:
        print(as_json(result))
        return 0
    names = sorted({*result.before, *result.after})
    rows = [(n, result.before.get(n, 0), result.after.get(n, 0),
             "" if result.before.get(n, 0) == result.after.get(n, 0) else "yes")
            for n in names]
    print(table(["Resource", "In use (quota)", "In use (counted)", "Differs"], rows))
    print("applied" if result.applied else "dry run: nothing changed")
    return 0


def cmd_az_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        zones = c.list_zones()
    print(json.dumps(zones) if args.json else table(["Name"], [(z,) for z in zones]))
    return 0


def cmd_backend_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        backends = c.list_backends()
    if args.json:
        print(as_json(backends))
        return 0
    rows = [(b.backend, b.availability_zone, "up" if b.up else "down", b.total_capacity_gb,
             b.free_capacity_gb, b.provisioned_capacity_gb,
             "thin" if b.thin_provisioning_support else "thick", f"{b.age_s:.1f}s")
            for b in backends]
    print(table(["Backend", "Zone", "State", "Total GB", "Free GB", "Provisioned GB",
                 "Provisioning", "Stats age"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

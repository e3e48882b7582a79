"""The ``cinderblock`` command: run a cluster, and talk to it as ``openstack volume`` does.

Global options (``--data-dir``, ``--gateway``, ``--project``, ``--admin``, ``-f``,
``-c``, ``--json``) may come before or after the subcommand: the top-level parser
holds their defaults and each subcommand's copy leaves a value unset unless it is
given there (argparse.SUPPRESS), so neither place overrides the other.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cinderblock import __version__
from cinderblock.actors.cli.actor import add_actor_commands, add_log_format
from cinderblock.actors.cli.actor import run as run_actor_command
from cinderblock.actors.cli.attachments import add_attachment
from cinderblock.actors.cli.backups import add_backup
from cinderblock.actors.cli.base import (
    DEFAULT_PROJECT,
    UsageError,
    client,
    endpoint_from,
    int_arg,
    key_for,
    key_values,
    ranged_int,
)
from cinderblock.actors.cli.completion import add_completion
from cinderblock.actors.cli.format import (
    FORMATS,
    Column,
    ColumnError,
    add_output,
    add_paging,
    columns_named,
    error_text,
    listing,
    output_format,
    show,
)
from cinderblock.actors.cli.groups import add_group
from cinderblock.actors.cli.health import add_health
from cinderblock.actors.cli.log_levels import add_log_levels
from cinderblock.actors.cli.lookup import describe, find_backup, find_snapshot, find_volume
from cinderblock.actors.cli.manage import add_manage, add_snapshot_manage
from cinderblock.actors.cli.messages import add_message
from cinderblock.actors.cli.qos import add_qos
from cinderblock.actors.cli.transfers import add_transfer
from cinderblock.actors.cli.trust import add_trust
from cinderblock.actors.cli.types import add_type
from cinderblock.actors.cli.up import cmd_down, cmd_status, cmd_up
from cinderblock.actors.cli.volumes import (
    add_create_sources,
    add_snapshot,
    add_volume_lifecycle,
    flag_pair,
)
from cinderblock.actors.runtime.config import SYNCHRONOUS
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.quota import QuotaSet, typed_resource
from cinderblock.protocol.messages.volumes import Volume, time_comparisons
from cinderblock.protocol.states import AttachmentStatus
from cinderblock.protocol.wire.errors import CinderblockError, InvalidInput
from cinderblock.protocol.wire.keys import KEY_ENV, KeyFileError

MAX_NODES = 64  # each node is a process of its own on this machine
ENVIRONMENT = """\
environment variables (an option given on the command line wins):
  CINDERBLOCK_DATA_DIR     the data directory (--data-dir; default ~/.cinderblock)
  CINDERBLOCK_GATEWAY      the gateway endpoint (--gateway; default: DATA_DIR/endpoints.json)
  CINDERBLOCK_PROJECT      the project to act for (--project; default demo)
  CINDERBLOCK_ADMIN        1, true or yes: act as an admin (--admin)
  CINDERBLOCK_USER         the user to speak as: its key in DATA_DIR/keys (--user)
  CINDERBLOCK_KEY          a secret key file to speak with when no --user is given
  CINDERBLOCK_EVENTS       the event hub endpoint (tui --events; default: endpoints.json)
  CINDERBLOCK_LOG_FORMAT   text or json: how actors log (up/actor --log-format)
  CINDERBLOCK_PROFILE_DIR  actors write cProfile statistics there when they stop
  CINDERBLOCK_PORTS        LOW-HIGH: where up picks free ports for a new cluster
                           (default 10000 up to the kernel's ephemeral range)
"""


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the same shape as every
    other error; a JSON object under -f json), exit status 2."""

    def error(self, message: str) -> NoReturn:
        text = f"{self.prog}: {message} (see {self.prog} --help)"
        self.exit(2, error_text("usage", text, None, _format_in(sys.argv[1:])) + "\n")


class BadArgument(UsageError):
    """A usage error found after parsing (exit status 2, as argparse's own)."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        args.project_given = getattr(args, "project", None) is not None  # checked by client()
        args.project = getattr(args, "project", None) or DEFAULT_PROJECT
        result: int = args.run(args)
        sys.stdout.flush()  # here, where a broken pipe is caught, not at exit
        return result
    except (CinderblockError, UsageError, KeyFileError, ColumnError) as exc:
        code, message, details = describe(exc)
        print(error_text(code, message, details, _format_in(argv)), file=sys.stderr)
        return 2 if isinstance(exc, BadArgument) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cinderblock volume list | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 141


def _format_in(argv: Sequence[str]) -> str:
    """The output format the command line asks for, read without parsing it (errors
    in parsing itself are printed in it too)."""
    fmt = "table"
    for i, arg in enumerate(argv):
        if arg == "--json":
            return "json"
        if arg in ("-f", "--format") and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
        elif arg.startswith("-f") and arg[2:] in FORMATS:
            fmt = arg[2:]
    return fmt


def add_globals(p: argparse.ArgumentParser, top: bool) -> None:
    """Where the cluster is and whom to act as; on the top-level parser (``top``) with
    their defaults, on a subcommand without (so one given before it stands)."""
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = p.add_argument_group("global options (before or after the subcommand)")
    add_data_dir(group, top)
    group.add_argument("--gateway", default=default(os.environ.get("CINDERBLOCK_GATEWAY")),
                       help="gateway endpoint, else read from DATA_DIR/endpoints.json "
                            "[CINDERBLOCK_GATEWAY]")
    group.add_argument("--project", default=default(os.environ.get("CINDERBLOCK_PROJECT")),
                       help=f"the project to act for (default {DEFAULT_PROJECT}; with keys, "
                            "the key's project, and a command refuses another) "
                            "[CINDERBLOCK_PROJECT]")
    group.add_argument("--admin", action="store_true",
                       default=default(os.environ.get("CINDERBLOCK_ADMIN", "")
                                       in ("1", "true", "yes")),
                       help="act as an admin [CINDERBLOCK_ADMIN]")
    group.add_argument("--user", default=default(os.environ.get("CINDERBLOCK_USER")),
                       help="speak as this user (its key in DATA_DIR/keys; default demo, or "
                            "admin with --admin; else $CINDERBLOCK_KEY) [CINDERBLOCK_USER]")


def default_data_dir() -> Path:
    """``CINDERBLOCK_DATA_DIR`` as the command runs, else ``~/.cinderblock``."""
    return Path(os.environ.get("CINDERBLOCK_DATA_DIR", "~/.cinderblock")).expanduser()


def add_data_dir(p: Any, top: bool) -> None:
    default = default_data_dir()
    p.add_argument("--data-dir", type=Path,
                   default=default if top else argparse.SUPPRESS,
                   help=f"cluster data directory (default {default}) [CINDERBLOCK_DATA_DIR]")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_globals(common, top=False)
    add_output(common, argparse.SUPPRESS)
    parser = OneLineErrors(prog="cinderblock",
                           description="run a cinderblock cluster, and talk to it as "
                           "`openstack volume` does",
                           epilog=ENVIRONMENT,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"cinderblock {__version__}")
    add_globals(parser, top=True)
    add_output(parser)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_up(sub)
    _add_actor(sub)
    _add_volume(sub, common)
    add_type(sub, common, _leaf)
    _add_quota(sub, common)
    add_snapshot_manage(add_snapshot(sub, common, _leaf), common, _leaf)
    add_attachment(sub, common, _leaf)
    add_message(sub, common, _leaf)
    add_transfer(sub, common, _leaf)
    add_group(sub, common, _leaf)
    add_backup(sub, common, _leaf)
    add_qos(sub, common, _leaf)
    add_log_levels(sub, common, _leaf)
    az = sub.add_parser("az", help="availability zones").add_subparsers(required=True)
    _leaf(az, common, "list", "list availability zones", cmd_az_list)
    _leaf(sub, common, "whoami", "the project, user and roles the gateway takes this "
          "command's key for", cmd_whoami)
    p = _leaf(sub, common, "tui", "the live dashboard: flows, backends, volumes, rates", cmd_tui)
    p.add_argument("--events", default=os.environ.get("CINDERBLOCK_EVENTS"),
                   help="event endpoint, else read from DATA_DIR/endpoints.json "
                        "[CINDERBLOCK_EVENTS]")
    backend = sub.add_parser("backend", help="storage backends").add_subparsers(required=True)
    _leaf(backend, common, "list", "backends with their capacity", cmd_backend_list)
    p = _leaf(backend, common, "disable", "admin: no new volume on this backend (cinder "
              "service-disable)", cmd_backend_disable)
    p.add_argument("backend", metavar="BACKEND", help="host@backend, as backend list shows")
    p.add_argument("--reason", help="why (shown by backend list and os-services)")
    p = _leaf(backend, common, "enable", "admin: place volumes on this backend again",
              cmd_backend_enable)
    p.add_argument("backend", metavar="BACKEND")
    p = _leaf(sub, common, "cleanup", "admin: mend now what a crash left in a transitional "
              "status (cinder work-cleanup): deletes, extends and reverts sent again, creates "
              "a node holds whole made available; a create no node holds waits for the "
              "reconciler's rounds", cmd_cleanup)
    p.add_argument("--node", action="append", default=[], metavar="NODE",
                   help="the records of this node (repeat it); default: every node's, and "
                        "those on no node yet")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--volume", metavar="VOLUME", help="only this volume (id or name)")
    what.add_argument("--snapshot", metavar="SNAPSHOT", help="only this snapshot (id or name)")
    add_trust(sub, common, _leaf)
    add_health(sub, common, _leaf)
    add_completion(sub, parser)
    return parser


def _leaf(sub: Any, common: argparse.ArgumentParser, name: str, help: str,
          run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help,
                                                description=help)
    p.set_defaults(run=run)
    return p


def _add_up(sub: Any) -> None:
    """``up`` and ``down`` take only what means something to them."""
    p = sub.add_parser("up", help="start every actor on loopback until Ctrl-C",
                       description="start every actor on loopback until Ctrl-C")
    add_data_dir(p, top=False)
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
    p.add_argument("--reconcile-after", type=_positive_float("--reconcile-after"),
                   default=None, metavar="SECONDS",
                   help="how old a transitional status must be before the gateway looks "
                        "into it (default 120)")
    p.add_argument("--reconcile-every", type=_positive_float("--reconcile-every"),
                   default=None, metavar="SECONDS",
                   help="how often the gateway looks for stuck records (default 30)")
    p.add_argument("--synchronous", choices=SYNCHRONOUS, default=None,
                   help="SQLite durability of the actors' files (default NORMAL: a process "
                        "crash loses nothing, a power loss the last commits; FULL: neither)")
    p.add_argument("--check-before-start-mb", type=_not_negative("--check-before-start-mb"),
                   default=None, metavar="MB",
                   help="a database file up to this size is checked before its actor "
                        "answers, a larger one right after (default 256)")
    p.add_argument("--check-every-hours", type=_not_negative("--check-every-hours"),
                   default=None, metavar="HOURS",
                   help="check each database file again this often while its actor runs "
                        "(default 24; 0: never)")
    p.add_argument("--quota-keep-answered", type=_not_negative("--quota-keep-answered"),
                   default=None, metavar="SECONDS",
                   help="how long the quota actor remembers an applied op's id once the "
                        "gateway has had its answer (default 3600)")
    add_log_format(p)
    p.set_defaults(run=cmd_up)
    p = sub.add_parser("down", help="stop the cluster `up` runs in --data-dir",
                       description="stop the cluster `up` runs in --data-dir")
    add_data_dir(p, top=False)
    p.set_defaults(run=cmd_down)
    p = sub.add_parser("status", help="each actor of the running `up`: pid, uptime, restarts",
                       description="each actor of the running `up`: pid, uptime, restarts")
    add_data_dir(p, top=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_status)


def _add_actor(sub: Any) -> None:
    for p in add_actor_commands(sub):
        p.set_defaults(run=cmd_actor)


def _add_volume(sub: Any, common: argparse.ArgumentParser) -> None:
    vol = sub.add_parser("volume", help="volumes").add_subparsers(required=True)
    p = _leaf(vol, common, "create", "create a volume", cmd_volume_create)
    p.add_argument("size", nargs="?", metavar="SIZE|NAME",
                   help="GiB, as `cinder create SIZE`; with --size, the volume's name, as "
                        "`openstack volume create --size N NAME` (from a snapshot or a "
                        "source volume the size is the source's by default)")
    p.add_argument("--size", dest="size_gb", type=int_arg("--size"), metavar="GiB")
    add_create_sources(p)
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--type", "--volume-type", dest="volume_type")
    p.add_argument("--availability-zone")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata item; repeat for more")
    p.add_argument("--metadata", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--group", metavar="GROUP", help="make it in this group (an id)")
    p.add_argument("--request-id")
    p.add_argument("--wait", action="store_true", help="wait until available")
    p.add_argument("--timeout", type=float, default=120.0)
    p = _leaf(vol, common, "show", "show a volume", cmd_volume_show)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p = _leaf(vol, common, "reset-state", "admin: move a stuck volume to error or available",
              cmd_volume_reset_state)
    p.add_argument("volume", metavar="VOLUME", help="name or id")
    p.add_argument("--state", default="error", help="error (default) or available")
    p = _leaf(vol, common, "summary", "how many volumes and GiB, and which properties "
              "(openstack volume summary)", cmd_volume_summary)
    p.add_argument("--all-projects", action="store_true", help="admin: every project's")
    p.add_argument("--project-id", metavar="PROJECT",
                   help="admin, with --all-projects: this project's")
    p = _leaf(vol, common, "list", "list volumes", cmd_volume_list)
    p.add_argument("--all-projects", action="store_true")
    p.add_argument("--tenant", metavar="PROJECT",
                   help="admin: this project's volumes only (cinder's --tenant)")
    p.add_argument("--status")
    p.add_argument("--name", help="only volumes of this name")
    p.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                   help="only volumes with this metadata item; repeat for all of several")
    flag_pair(p, "bootable", "--bootable", "--non-bootable")
    p.add_argument("--availability-zone", metavar="ZONE", help="only volumes of this zone")
    p.add_argument("--size", type=int, metavar="GIB", help="only volumes of this size")
    p.add_argument("--migration-status", metavar="STATUS",
                   choices=("migrating", "completing", "success", "error"),
                   help="only volumes whose latest migration is in this status")
    p.add_argument("--group", metavar="GROUP", help="only this group's volumes (an id)")
    for name in ("created_at", "updated_at"):
        p.add_argument(f"--{name.replace('_', '-')}", type=time_arg(name),
                       metavar="OP:TIME[,OP:TIME]",
                       help=f"only volumes whose {name} compares so (gt, gte, eq, neq, lt, "
                            "lte; an ISO 8601 time, UTC unless it says otherwise), as "
                            f"cinder list --filters {name}=gt:2026-12-01T00:00:00")
    p.add_argument("--sort", metavar="KEY[:asc|:desc]",
                   help="created_at (the default, newest first), size, name, status, "
                        "updated_at or id")
    p.add_argument("--count", action="store_true",
                   help="print only how many volumes the listing has in all (its filters, "
                        "every page), as cinder list --with-count counts them")
    p.add_argument("--long", action="store_true",
                   help="more columns: type, zone, host, properties, created at")
    add_paging(p)
    add_volume_lifecycle(vol, common, _leaf)
    add_manage(vol, common, _leaf)


QUOTA_OPTIONS = ("volumes", "gigabytes", "snapshots", "backups", "backup-gigabytes",
                 "per-volume-gigabytes")
TYPE_HELP = ("the limits are the volume type's own (volumes_TYPE ...), as cinder "
             "quota-update --volume-type")


def _add_quota(sub: Any, common: argparse.ArgumentParser) -> None:
    quota = sub.add_parser("quota", help="quotas").add_subparsers(required=True)
    p = _leaf(quota, common, "show", "show a project's quota and usage", cmd_quota_show)
    p.add_argument("target_project", nargs="?")
    p = _leaf(quota, common, "set", "set a project's limits (admin)", cmd_quota_set)
    p.add_argument("target_project")
    for name in QUOTA_OPTIONS:
        p.add_argument(f"--{name}", type=int_arg(name))
    p.add_argument("--volume-type", metavar="TYPE", help=TYPE_HELP)
    _leaf(quota, common, "defaults", "show the default limits (cinder quota-class-show "
          "default)", cmd_quota_defaults)
    p = _leaf(quota, common, "set-defaults", "set default limits, every project's without "
              "its own (admin; cinder quota-class-update default)", cmd_quota_set_defaults)
    for name in QUOTA_OPTIONS:
        p.add_argument(f"--{name}", type=int_arg(name))
    p.add_argument("--volume-type", metavar="TYPE", help=TYPE_HELP)
    p = _leaf(quota, common, "delete", "put a project back on the default limits (admin; "
              "cinder quota-delete)", cmd_quota_delete)
    p.add_argument("target_project")
    p = _leaf(quota, common, "sync", "admin: set a project's usage to what it has",
              cmd_quota_sync)
    p.add_argument("target_project")
    p.add_argument("--dry-run", action="store_true", help="only show the differences")


def _not_negative(name: str) -> Callable[[str], float]:
    return _number(name, zero=True)


def _positive_float(name: str) -> Callable[[str], float]:
    return _number(name, zero=False)


def _number(name: str, zero: bool) -> Callable[[str], float]:
    """A finite number above 0 (or with ``zero``, 0 or more), else a usage error."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
            must = "0 or more" if zero else "a positive number"
            raise argparse.ArgumentTypeError(f"{name} must be {must}, got {text!r}")
        return value

    return parse


# ---- commands ------------------------------------------------------------
def cmd_tui(args: argparse.Namespace) -> int:
    from cinderblock.tui.app import run

    gateway = args.gateway or endpoint_from(args.data_dir)
    events = args.events or endpoint_from(args.data_dir, "events")
    key = key_for(args)
    if key is not None:  # the dashboard's client and event stream find it there
        os.environ[KEY_ENV] = str(key)
        if args.project_given:
            client(args).close()  # refuses a --project other than the key's, as commands do
    run(gateway, events, project=args.project, admin=args.admin, data_dir=args.data_dir,
        follow=not (args.gateway or args.events))
    return 0


def cmd_actor(args: argparse.Namespace) -> int:
    if args.kind == "rest" and not args.listen:
        raise UsageError("cinderblock actor rest needs --listen HOST:PORT")
    return run_actor_command(args)


def cmd_volume_create(args: argparse.Namespace) -> int:
    size, name = _size_and_name(args)
    metadata = {**key_values(args.metadata, "metadata"), **key_values(args.property, "--property")}
    if size is None and not (args.snapshot_id or args.source_volid or args.backup):
        raise UsageError("give a SIZE (or --size), or --snapshot-id / --source-volid / "
                         "--backup")
    with client(args) as c:
        snapshot = args.snapshot_id and find_snapshot(c, args.snapshot_id).id
        source = args.source_volid and find_volume(c, args.source_volid).id
        backup = args.backup and find_backup(c, args.backup).id
        same, different = ([find_volume(c, ref).id for ref in refs] if refs else None
                           for refs in (args.same_host, args.different_host))
        vol = c.create_volume(
            size, name=name, description=args.description,
            volume_type=args.volume_type, availability_zone=args.availability_zone,
            metadata=metadata, request_id=args.request_id, wait=args.wait,
            timeout=args.timeout, snapshot_id=snapshot or None, source_volid=source or None,
            same_host=same, different_host=different, backup_id=backup or None,
            group_id=args.group,
        )
    return show(args, vol)


def _size_and_name(args: argparse.Namespace) -> tuple[int | None, str | None]:
    """``cinder create SIZE --name N`` or ``openstack volume create --size SIZE N``."""
    if args.size_gb is None:
        return (None if args.size is None else int_arg("size", BadArgument)(args.size),
                args.name)
    if args.size is not None and args.name is not None:
        raise BadArgument(f"the volume is named twice: {args.size!r} and --name {args.name!r}")
    return args.size_gb, args.name if args.size is None else args.size


def cmd_volume_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, find_volume(c, args.volume))


def cmd_volume_summary(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.volume_summary(args.all_projects, args.project_id))


def cmd_volume_reset_state(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.reset_volume_state(find_volume(c, args.volume).id, args.state))


def cmd_volume_list(args: argparse.Namespace) -> int:
    all_projects = args.all_projects or args.tenant is not None
    everyone = all_projects and args.admin
    filters: dict[str, Any] = dict(
        all_projects=all_projects, status=args.status, project_id=args.tenant,
        name=args.name, metadata=key_values(args.property, "--property") or None,
        bootable=args.bootable, availability_zone=args.availability_zone, size=args.size,
        created_at=args.created_at, updated_at=args.updated_at,
        migration_status=args.migration_status, group_id=args.group)
    with client(args) as c:
        if args.count:
            return show(args, {"count": c.count_volumes(**filters)})
        vols = c.list_volumes(limit=args.limit, marker=args.marker, sort=args.sort,
                              **filters)
        attached = _attached_to(c, everyone, [v.id for v in vols]) if vols else {}
    cols = list(columns_named("ID", "Name", "Status", "Size", "Attached to"))
    if args.admin:
        cols.append(Column("project_id", "Project"))
    if args.long:
        cols += [Column("volume_type", "Type"), Column("availability_zone", "Zone"),
                 Column("host", "Host"), Column("metadata", "Properties"),
                 Column("created_at", "Created At")]
    rows = [_volume_row(v, attached.get(v.id, []), args.admin, args.long) for v in vols]
    return listing(args, cols, rows)


def time_arg(name: str) -> Callable[[str], dict[str, float]]:
    """An argparse type: Cinder's time comparisons (``gt:TIME,lte:TIME``) of ``name``."""
    def parse(text: str) -> dict[str, float]:
        try:
            return time_comparisons(text, name)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


def _attached_to(c: SyncClient, everyone: bool, volume_ids: list[str]
                 ) -> dict[str, list[str]]:
    """Each listed volume's attached instances (an attachment without one: its id): the
    attachments of those volumes only, not every attachment the caller may see."""
    found: dict[str, list[str]] = {}
    for a in c.list_attachments(None, everyone, volume_ids=volume_ids):
        if a.status is not AttachmentStatus.DETACHED:
            found.setdefault(a.volume_id, []).append(a.instance_id or a.id)
    return found


def _volume_row(v: Volume, attached: list[str], admin: bool, long: bool) -> list[Any]:
    from cinderblock.actors.cli.format import iso_time

    row: list[Any] = [v.id, v.name, v.status, v.size, attached]
    if admin:
        row.append(v.project_id)
    if long:
        row += [v.volume_type, v.availability_zone, v.host, v.metadata, iso_time(v.created_at)]
    return row


def cmd_quota_show(args: argparse.Namespace) -> int:
    with client(args) as c:
        quota = c.show_quota(args.target_project)
    if output_format(args) in ("json", "yaml"):
        return show(args, quota)
    rows = [(r, quota.limits.get(r), quota.in_use.get(r, 0), quota.reserved.get(r, 0))
            for r in quota.limits]
    return listing(args, columns_named("Resource", "Limit", "In Use", "Reserved"), rows)


def _limits_given(args: argparse.Namespace) -> dict[str, int]:
    limits = {name: getattr(args, name) for name in
              (o.replace("-", "_") for o in QUOTA_OPTIONS) if getattr(args, name) is not None}
    if not limits:
        raise UsageError(f"give at least one of {', '.join('--' + o for o in QUOTA_OPTIONS)}")
    if args.volume_type is None:
        return limits
    if "per_volume_gigabytes" in limits:
        raise UsageError("--per-volume-gigabytes is every volume's: a volume type has none "
                         "of its own")
    return {typed_resource(name, args.volume_type): limit for name, limit in limits.items()}


def cmd_quota_set(args: argparse.Namespace) -> int:
    limits = _limits_given(args)
    with client(args) as c:
        return show(args, c.set_quota(args.target_project, **limits))


def cmd_quota_defaults(args: argparse.Namespace) -> int:
    with client(args) as c:
        return _default_limits(args, c.show_quota(None, defaults=True))


def cmd_quota_set_defaults(args: argparse.Namespace) -> int:
    limits = _limits_given(args)
    with client(args) as c:
        return _default_limits(args, c.set_default_quotas(**limits))


def _default_limits(args: argparse.Namespace, quota: QuotaSet) -> int:
    """The default limits: no project's, so no usage."""
    return listing(args, columns_named("Resource", "Limit"), list(quota.limits.items()))


def cmd_quota_delete(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.delete_quota(args.target_project))


def cmd_quota_sync(args: argparse.Namespace) -> int:
    with client(args) as c:
        result = c.sync_quota(args.target_project, dry_run=args.dry_run)
    if output_format(args) in ("json", "yaml"):
        return show(args, result)
    names = sorted({*result.before, *result.after})
    rows = [(n, result.before.get(n, 0), result.after.get(n, 0),
             result.before.get(n, 0) != result.after.get(n, 0)) for n in names]
    listing(args, columns_named("Resource", "In Use (quota)", "In Use (counted)", "Differs"),
            rows)
    if output_format(args) == "table":
        print("applied" if result.applied else "dry run: nothing changed")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.whoami())


def cmd_az_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        zones = c.list_zones()
    if output_format(args) == "json" and not args.columns:
        print(json.dumps(zones))  # a list of names, as it always was
        return 0
    return listing(args, columns_named("Zone Name", "Zone Status"),
                   [(z, "available") for z in zones])


def cmd_backend_list(args: argparse.Namespace) -> int:
    with client(args) as c:
        backends = c.list_backends()
    cols = (Column("backend", "Backend"), Column("availability_zone", "Zone"),
            Column("up", "Up"), Column("total_capacity_gb", "Total GB"),
            Column("free_capacity_gb", "Free GB"),
            Column("provisioned_capacity_gb", "Provisioned GB"),
            Column("provisioning", "Provisioning"), Column("volumes", "Volumes"),
            Column("age_s", "Stats Age (s)"), Column("disabled", "Disabled"))
    rows = [(b.backend, b.availability_zone, b.up, b.total_capacity_gb,
             b.free_capacity_gb, b.provisioned_capacity_gb,
             "thin" if b.thin_provisioning_support else "thick", b.volumes, b.age_s,
             (b.disabled_reason or "yes") if b.disabled else "")
            for b in backends]
    return listing(args, cols, rows)


def cmd_backend_disable(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.set_backend_enabled(args.backend, False, args.reason))


def cmd_backend_enable(args: argparse.Namespace) -> int:
    with client(args) as c:
        return show(args, c.set_backend_enabled(args.backend, True))


def cmd_cleanup(args: argparse.Namespace) -> int:
    with client(args) as c:
        kind: str | None = None
        rid: str | None = None
        if args.volume:
            kind, rid = "volume", find_volume(c, args.volume).id
        elif args.snapshot:
            kind, rid = "snapshot", find_snapshot(c, args.snapshot).id
        done = c.work_cleanup(tuple(args.node), not args.node, rid, kind,
                              every_node=not args.node)
    note = f"{done.looked_at} in a transitional status looked at, {len(done.mended)} mended"
    if done.unanswered:
        note += f"; {', '.join(done.unanswered)} did not answer: what they hold waits"
    print(note, file=sys.stderr)
    cols = (Column("kind", "Kind"), Column("id", "ID"), Column("status", "Was"),
            Column("action", "Done"), Column("node", "Node"), Column("reason", "Why"))
    return listing(args, cols, [(a.kind, a.id, a.status, a.action, a.node, a.reason)
                                for a in done.mended])


if __name__ == "__main__":
    sys.exit(main())

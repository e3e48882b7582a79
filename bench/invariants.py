"""What must hold once a cluster has settled, whatever died on the way (issue 9).

``settled_violations`` asks the gateway as an admin and looks at every node's
directory, and names each way the cluster disagrees with itself (the tests use it
through ``tests/cluster_invariants.py``, the failpoint matrix and the benchmarks
directly):

* nothing stuck: no volume, snapshot, attachment or backup in a transitional status;
* quota equal to what exists: per project, ``in_use`` is the count of its
  volumes and snapshots and their gigabytes (both count, as Cinder's), and so is each
  volume type's own (``volumes_<type>``: a volume by its type, a snapshot by its
  own), and of its backups and their GiB (``backups``, ``backup_gigabytes``) and
  its groups (``groups``), and ``reserved`` is 0 (no reservation outlives its
  operation); also no group is left ``creating`` or ``deleting``, nor a group
  snapshot ``creating`` or ``deleting``;
* node files equal what the gateway lists: every ``volume-``/``snapshot-`` file
  belongs to a volume or snapshot recorded on that host (no orphan), every
  volume recorded on a host that is not in an error status has its file there
  (none missing), and no ``.tmp-`` work in progress is left;
* backup repositories equal what the gateway lists (when the caller names what they
  hold): every directory is a backup the gateway records (no orphan), every backup
  ``available`` or ``restoring`` is there whole (its manifest), and no ``.tmp-`` work
  in progress is left;
* every volume type's QoS specs, and every project's own default type, exist.

An empty list means settled and exact. Callers wait for it with ``eventually``
(the reconciler, the supervisor and the quota journal need a moment), then
assert it is empty; the list is the failure message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.quota import split_typed
from cinderblock.protocol.states import (
    VOLUME_ERRORS,
    AttachmentStatus,
    BackupStatus,
    SnapshotStatus,
    VolumeStatus,
)
from cinderblock.storage_node.backup_repository import MANIFEST

V, P, A, B = VolumeStatus, SnapshotStatus, AttachmentStatus, BackupStatus
VOLUME_MOVING = frozenset({V.CREATING, V.ATTACHING, V.DETACHING, V.DELETING, V.EXTENDING,
                           V.REVERTING, V.UNMANAGING, V.BACKING_UP, V.RESTORING_BACKUP,
                           V.MAINTENANCE})
SNAPSHOT_MOVING = frozenset({P.CREATING, P.DELETING, P.RESTORING, P.UNMANAGING,
                             P.BACKING_UP})
ATTACHMENT_MOVING = frozenset({A.ATTACHING, A.DETACHING})
BACKUP_MOVING = frozenset({B.CREATING, B.DELETING, B.RESTORING})
USAGES = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups")
HELD_IN_A_REPOSITORY = frozenset({B.AVAILABLE, B.RESTORING})


def repository_names(cfg: ClusterConfig) -> set[str]:
    """What the cluster's backup repositories hold: each entry's name (a backup's id, or a
    ``.tmp-`` one), and ``<id>/manifest.json`` for each backup whose manifest is there."""
    names: set[str] = set()
    for root in {cfg.backup_root(node) for node in cfg.nodes}:
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            names.add(entry.name)
            if (entry / MANIFEST).is_file():
                names.add(f"{entry.name}/{MANIFEST}")
    return names


async def settled_violations(
    admin: Client, node_files: Callable[[], Mapping[str, set[str]]],
    projects: Iterable[str] = (), backup_files: Callable[[], set[str]] | None = None,
) -> list[str]:
    """Every way the settled cluster is not exact; [] when it is (see the module doc).
    ``node_files``: every file name in each node's directory, by host, for the nodes
    whose backend keeps files (a host it leaves out, a ``null`` node, is not looked at).
    ``backup_files``: what the backup repositories hold (``repository_names``); None:
    they are not looked at."""
    volumes = await admin.list_volumes(all_projects=True)
    snapshots = await admin.list_snapshots(all_projects=True)
    attachments = await admin.list_attachments(all_projects=True)
    backups = await admin.list_backups(all_projects=True)
    problems: list[str] = []

    problems += [f"volume {v.id} stuck in {v.status}" for v in volumes
                 if v.status in VOLUME_MOVING]
    problems += [f"snapshot {s.id} stuck in {s.status}" for s in snapshots
                 if s.status in SNAPSHOT_MOVING]
    problems += [f"attachment {a.id} stuck in {a.status}" for a in attachments
                 if a.status in ATTACHMENT_MOVING]
    problems += [f"backup {b.id} stuck in {b.status}" for b in backups
                 if b.status in BACKUP_MOVING]

    owners = {v.id: v.project_id for v in volumes}
    type_names = {t.id: t.name for t in await admin.list_types()}
    groups = await admin.list_groups(all_projects=True)
    counted = {p: Counter[str]() for p in {*projects, *owners.values(),
                                           *(b.project_id for b in backups),
                                           *(g.project_id for g in groups)}}
    for g in groups:  # a group's quota is committed with its row
        counted[g.project_id].update({"groups": 1})
    problems += [f"group {g.id} stuck in {g.status}" for g in groups
                 if g.status in ("creating", "deleting")]
    problems += [f"group snapshot {g.id} stuck in {g.status}"
                 for g in await admin.list_group_snapshots(all_projects=True)
                 if g.status in ("creating", "deleting")]
    for b in backups:  # a backup's GiB are its own, never gigabytes
        counted[b.project_id].update({"backups": 1, "backup_gigabytes": b.size})
    for v in volumes:  # each counts as its type's too (volumes_<type name>, ...)
        counted[v.project_id].update({"volumes": 1, "gigabytes": v.size})
        if v.volume_type:
            counted[v.project_id].update({f"volumes_{v.volume_type}": 1,
                                          f"gigabytes_{v.volume_type}": v.size})
    for s in snapshots:
        project = s.project_id or owners.get(s.volume_id, "")
        usage = counted.setdefault(project, Counter())
        usage.update({"snapshots": 1, "gigabytes": s.size})
        if (type_name := type_names.get(s.volume_type_id or "")) is not None:
            usage.update({f"snapshots_{type_name}": 1, f"gigabytes_{type_name}": s.size})
    for project, exists in sorted(counted.items()):
        quota = await admin.show_quota(project)
        typed = {r for r in {*quota.in_use, *quota.reserved} if split_typed(r)}
        for resource in (*USAGES, *sorted(typed | {r for r in exists if split_typed(r)})):
            in_use = quota.in_use.get(resource, 0)
            if in_use != exists[resource]:
                problems.append(f"{project}: quota says {in_use} {resource} in use, "
                                f"{exists[resource]} exist")
            if quota.reserved.get(resource, 0):
                problems.append(f"{project}: {quota.reserved[resource]} {resource} still "
                                "reserved after every operation ended")

    hosts = {v.id: (v.host or "").partition("@")[0] for v in volumes}
    expected = {(hosts[v.id], f"volume-{v.id}") for v in volumes if hosts[v.id]}
    expected |= {(hosts.get(s.volume_id, ""), f"snapshot-{s.id}") for s in snapshots}
    required = {(hosts[v.id], f"volume-{v.id}") for v in volumes
                if hosts[v.id] and v.status not in VOLUME_ERRORS}
    required |= {(hosts.get(s.volume_id, ""), f"snapshot-{s.id}") for s in snapshots
                 if s.status is P.AVAILABLE}
    files = node_files()  # only nodes whose backend keeps files (not null's, in memory)
    required = {(host, name) for host, name in required if host in files}
    found = {(host, name) for host, names in files.items() for name in names}
    problems += [f"{host}: {name} is left over (work in progress)"
                 for host, name in sorted(found) if name.startswith(".tmp-")]
    problems += [f"{host}: orphan file {name} (no volume or snapshot there)"
                 for host, name in sorted(found - expected) if not name.startswith(".tmp-")
                 and name.startswith(("volume-", "snapshot-"))]
    problems += [f"{host}: file {name} is missing" for host, name in sorted(required - found)]

    if backup_files is not None:
        problems += repository_violations(backups, backup_files())

    qos = {q.id for q in await admin.list_qos()}
    types = await admin.list_types()
    problems += [f"volume type {t.name} names QoS specs {t.qos_specs_id}, which do not exist"
                 for t in types if t.qos_specs_id is not None and t.qos_specs_id not in qos]
    type_ids = {t.id for t in types}
    problems += [f"project {d.project_id}'s default type {d.volume_type_id} does not exist"
                 for d in await admin.list_default_types() if d.volume_type_id not in type_ids]
    return problems


def repository_violations(backups: Iterable[Backup], names: set[str]) -> list[str]:
    """How the repositories (``repository_names``) disagree with the gateway's backups."""
    backups = list(backups)
    known = {b.id for b in backups}
    entries = {n for n in names if "/" not in n}
    problems = [f"backup repository: {n} is left over (work in progress)"
                for n in sorted(entries) if n.startswith(".tmp-")]
    problems += [f"backup repository: orphan backup {n} (the gateway has no such backup)"
                 for n in sorted(entries - known) if not n.startswith(".tmp-")]
    problems += [f"backup {b.id} is {b.status} but not whole in its repository"
                 for b in backups if b.status in HELD_IN_A_REPOSITORY
                 and f"{b.id}/{MANIFEST}" not in names]
    return problems

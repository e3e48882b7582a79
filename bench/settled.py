"""What must hold once a cluster has settled, whatever died on the way (issue 9).

``settled_problems`` asks the gateway as an admin and looks at every node's
directory, and names each way the cluster disagrees with itself, by kind:

* ``stuck``: a volume, snapshot or attachment in a transitional status;
* ``quota``: per project, ``in_use`` differs from the count of its volumes and
  snapshots and their gigabytes (both count, as Cinder's), or ``reserved`` is
  not 0 (a reservation outlived its operation);
* ``files``: node files differ from what the gateway lists: every
  ``volume-``/``snapshot-`` file belongs to a volume or snapshot recorded on that
  host (no orphan), every volume recorded on a host that is not in an error
  status has its file there (none missing), and no ``.tmp-`` work in progress is
  left.

An empty list means settled and exact. The cluster is anything that can list
its nodes' files (``NodeFiles``): the tests' ``E2ECluster``, or the kill suite's
view of a cluster ``cinderblock up`` runs (``bench.chaos``). Callers wait for an
empty list (the reconciler, the supervisor and the quota journal need a moment)
and show the problems otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import (
    VOLUME_ERRORS,
    AttachmentStatus,
    SnapshotStatus,
    VolumeStatus,
)

V, P, A = VolumeStatus, SnapshotStatus, AttachmentStatus
VOLUME_MOVING = frozenset({V.CREATING, V.ATTACHING, V.DETACHING, V.DELETING, V.EXTENDING})
SNAPSHOT_MOVING = frozenset({P.CREATING, P.DELETING})
ATTACHMENT_MOVING = frozenset({A.ATTACHING, A.DETACHING})
USAGES = ("volumes", "snapshots", "gigabytes")

Kind = Literal["stuck", "quota", "files"]


class NodeFiles(Protocol):
    def node_files(self) -> dict[str, set[str]]:
        """Every file name in each node's directory, by host name."""
        ...


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Kind
    text: str


async def settled_problems(
    cluster: NodeFiles, admin: Client, projects: Iterable[str] = ()
) -> list[Problem]:
    """Every way the settled cluster is not exact; [] when it is (see the module doc)."""
    volumes = await admin.list_volumes(all_projects=True)
    snapshots = await admin.list_snapshots(all_projects=True)
    attachments = await admin.list_attachments(all_projects=True)
    stuck = [f"volume {v.id} stuck in {v.status}" for v in volumes
             if v.status in VOLUME_MOVING]
    stuck += [f"snapshot {s.id} stuck in {s.status}" for s in snapshots
              if s.status in SNAPSHOT_MOVING]
    stuck += [f"attachment {a.id} stuck in {a.status}" for a in attachments
              if a.status in ATTACHMENT_MOVING]
    quota = await _quota_drift(admin, volumes, snapshots, projects)
    files = _file_drift(cluster, volumes, snapshots)
    return ([Problem("stuck", t) for t in stuck] + [Problem("quota", t) for t in quota]
            + [Problem("files", t) for t in files])


async def _quota_drift(admin: Client, volumes: list[Volume], snapshots: list[Snapshot],
                       projects: Iterable[str]) -> list[str]:
    owners = {v.id: v.project_id for v in volumes}
    counted = {p: dict.fromkeys(USAGES, 0) for p in {*projects, *owners.values()}}
    for v in volumes:
        counted[v.project_id]["volumes"] += 1
        counted[v.project_id]["gigabytes"] += v.size
    for s in snapshots:
        project = s.project_id or owners.get(s.volume_id, "")
        usage = counted.setdefault(project, dict.fromkeys(USAGES, 0))
        usage["snapshots"] += 1
        usage["gigabytes"] += s.size
    problems: list[str] = []
    for project, exists in sorted(counted.items()):
        quota = await admin.show_quota(project)
        for resource in USAGES:
            in_use = quota.in_use.get(resource, 0)
            if in_use != exists[resource]:
                problems.append(f"{project}: quota says {in_use} {resource} in use, "
                                f"{exists[resource]} exist")
            if quota.reserved.get(resource, 0):
                problems.append(f"{project}: {quota.reserved[resource]} {resource} still "
                                "reserved after every operation ended")
    return problems


def _file_drift(cluster: NodeFiles, volumes: list[Volume], snapshots: list[Snapshot]
                ) -> list[str]:
    hosts = {v.id: (v.host or "").partition("@")[0] for v in volumes}
    expected = {(hosts[v.id], f"volume-{v.id}") for v in volumes if hosts[v.id]}
    expected |= {(hosts.get(s.volume_id, ""), f"snapshot-{s.id}") for s in snapshots}
    required = {(hosts[v.id], f"volume-{v.id}") for v in volumes
                if hosts[v.id] and v.status not in VOLUME_ERRORS}
    required |= {(hosts.get(s.volume_id, ""), f"snapshot-{s.id}") for s in snapshots
                 if s.status is P.AVAILABLE}
    found = {(host, name) for host, names in cluster.node_files().items() for name in names}
    problems = [f"{host}: {name} is left over (work in progress)"
                for host, name in sorted(found) if name.startswith(".tmp-")]
    problems += [f"{host}: orphan file {name} (no volume or snapshot there)"
                 for host, name in sorted(found - expected) if not name.startswith(".tmp-")
                 and name.startswith(("volume-", "snapshot-"))]
    problems += [f"{host}: file {name} is missing" for host, name in sorted(required - found)]
    return problems

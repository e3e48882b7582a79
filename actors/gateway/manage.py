"""Volume and snapshot manage (Cinder's ``os-volume-manage`` and
``os-snapshot-manage``, an admin's): what a node's backend already holds becomes a
volume, or a snapshot of a volume there, and the lists of what could.

    volume_manage_api    ExtractManageRequestTask → QuotaReserveTask → EntryCreateTask
                           → VolumeCastTask
    snapshot_manage_api  ExtractSnapshotManageRequestTask → QuotaReserveTask
                           → SnapshotEntryCreateTask → SnapshotCastTask

The last three are the create flow's (``create_flow.py``): a manage is a create whose
size is what the backend holds (rounded up to whole GiB) and whose node is the one the
admin named. ExtractManageRequestTask asks that node about the data
(``node.manageable``: is it there, is it safe to manage, how big is it, what can the
backend do), checks the volume type against the backend's capabilities as the
scheduler would, and builds the spec as a create's. The cast then goes straight to
that node (a ``node.create_volume`` naming a ``manage_ref``), whose driver renames the
data into a volume and grows it to its whole GiB; until then it is ``creating``, as
Cinder shows a volume it manages. Quota is charged as for a create.

A snapshot manage is the snapshot create flow's (``lifecycle_flows.py``) after its
own first task: the data must be on the node of the volume it is to be a snapshot of,
and no larger than the volume (a revert to it could not shrink the volume). As Cinder's,
it may be of an in-use volume; it is charged as a snapshot of the volume's size, and
the node grows the data to that size. The cast names a ``manage_ref``.

Unmanage is a delete whose node keeps the data (``lifecycle.py``, status
``unmanaging``), of a volume or of a snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.create_flow import (
    ApiServices,
    CreateApiContext,
    EntryCreateTask,
    ManageSource,
    QuotaReserveTask,
    VolumeCastTask,
)
from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.lifecycle_checks import (
    check_snapshot_source,
    claim_volume,
    visible_volume,
)
from cinderblock.actors.gateway.lifecycle_flows import (
    SNAPSHOT_RESERVE,
    LifecycleServices,
    SnapshotCastTask,
    SnapshotCreateContext,
    SnapshotEntryCreateTask,
    check_snapshot_fields,
)
from cinderblock.actors.gateway.lifecycle_flows import QuotaReserveTask as SnapshotQuotaTask
from cinderblock.actors.gateway.volume_request import (
    MAX_NAME,
    check_zone,
    normalize_create,
    validate_create,
)
from cinderblock.actors.runtime.config import NodeConfig
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.lifecycle import SnapshotCreate
from cinderblock.protocol.messages.limits import check_range
from cinderblock.protocol.messages.manage import (
    MANAGEABLE_PAGE_MAX,
    ManageableList,
    ManageableRequest,
    ManageableVolume,
    NodeManageable,
    SnapshotManage,
    VolumeManage,
)
from cinderblock.protocol.messages.quota import snapshot_amounts
from cinderblock.protocol.messages.volumes import VolumeCreate
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.protocol.wire.schema import parse


def find_node(host: str, nodes: Sequence[NodeConfig]) -> NodeConfig:
    """The node `host` names: its host name (``node-1``), backend (``node-1@file``)
    or pool (``node-1@file#file``, as ``get_pools`` names it)."""
    for node in nodes:
        if host in (node.host, node.backend_id, f"{node.backend_id}#{node.backend}"):
            return node
    known = ", ".join(f"{n.backend_id}#{n.backend}" for n in nodes)
    raise NotFound(f"host {host!r} is no storage node here (the pools are: {known})",
                   {"host": host})


def check_source_name(name: object) -> str:
    """The backend's name for the data: a string of 1-255 characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"source-name must be a string of 1-{MAX_NAME} characters",
                           {"field": "source-name"})
    return name


def manage_as_create(body: VolumeManage) -> VolumeCreate:
    """The create a manage is, but for its size (the backend's, found by the flow)."""
    return VolumeCreate(name=body.name, description=body.description,
                        volume_type=body.volume_type,
                        availability_zone=body.availability_zone, metadata=body.metadata)


def check_manage(body: VolumeManage) -> None:
    """What the flow refuses before it asks the node (a retry's fingerprint needs it)."""
    check_source_name(body.source_name)
    normalize_create(manage_as_create(body))


class NodeQuestions(Protocol):
    nodes: Sequence[NodeConfig]

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, object]: ...


class ManageServices(ApiServices, NodeQuestions, Protocol):
    pass


class SnapshotManageServices(LifecycleServices, NodeQuestions, Protocol):
    pass


async def ask_node(s: NodeQuestions, node: NodeConfig, body: NodeManageable, ctx: Context
                   ) -> ManageableList:
    return parse(ManageableList, await s.node_call(node.host, "node.manageable", body, ctx),
                 strict=False)


async def find_manageable(s: NodeQuestions, node: NodeConfig, name: str, snapshot: bool,
                          ctx: Context) -> tuple[ManageableVolume, dict[str, Any]]:
    """What the node holds as `name`, safe to manage (else InvalidInput, saying why), and
    the node's backend's capabilities."""
    listed = await ask_node(s, node, NodeManageable(name=name, snapshot=snapshot), ctx)
    what = "snapshot" if snapshot else "volume"
    if not listed.volumes:
        raise InvalidInput(f"{node.backend_id} holds nothing named {name!r} (its manageable "
                           f"{what}s are listed by {what}.manageable)",
                           {"source-name": name, "host": node.backend_id})
    found = listed.volumes[0]
    if not found.safe_to_manage:
        raise InvalidInput(f"{name} on {node.backend_id} cannot be managed: "
                           f"{found.reason_not_safe}",
                           {"source-name": name, "cinder_id": found.cinder_id})
    return found, listed.capabilities


class ExtractManageRequestTask(Task[CreateApiContext]):
    requires = ("body", "manage")
    provides = ("spec",)

    def __init__(self, services: ManageServices) -> None:
        self.s = services

    async def execute(self, c: CreateApiContext) -> None:
        s, m = self.s, c.manage
        assert m is not None
        require_admin(c.ctx, "manage a volume")
        check_manage(m)
        node = find_node(m.host, s.nodes)
        found, capabilities = await find_manageable(s, node, m.source_name, False, c.ctx)
        body = normalize_create(replace(c.body, size=found.size))
        zone = check_zone(body.availability_zone or node.availability_zone, s.zones,
                          s.default_zone)
        if zone != node.availability_zone:
            raise InvalidInput(f"{node.backend_id} is in availability zone "
                               f"{node.availability_zone!r}, not {zone!r}",
                               {"field": "availability_zone"})
        default_type = s.types.default_for(c.ctx.project_id, s.default_type)
        c.spec = validate_create(replace(body, availability_zone=zone), s.types, s.zones,
                                 s.default_zone, default_type)
        s.types.find_for(body.volume_type or default_type, c.ctx.project_id, c.ctx.is_admin)
        if not satisfies(capabilities, c.spec.volume_type.extra_specs):
            raise InvalidInput(f"volume type {c.spec.volume_type.name} asks for what "
                               f"{node.backend_id} does not have (its extra specs do not match "
                               "the backend's capabilities)",
                               {"volume_type": c.spec.volume_type.name})
        c.manage_source = ManageSource(node.backend_id, m.source_name)


def volume_manage_api(services: ManageServices) -> LinearFlow[CreateApiContext]:
    return LinearFlow(
        "volume_manage_api",
        [
            ExtractManageRequestTask(services),
            QuotaReserveTask(services),
            EntryCreateTask(services),
            VolumeCastTask(services),
        ],
        given=("body", "ctx", "volume_id", "fingerprint", "manage"),
    )


# ---- snapshots ------------------------------------------------------------------


def manage_as_snapshot(body: SnapshotManage) -> SnapshotCreate:
    """The snapshot create a manage is (of an in-use volume too, as Cinder's)."""
    return SnapshotCreate(volume_id=body.volume_id, name=body.name,
                          description=body.description, force=True, metadata=body.metadata)


def check_snapshot_manage(body: SnapshotManage) -> None:
    """What the flow refuses before it asks the node (a retry's fingerprint needs it)."""
    check_source_name(body.source_name)
    check_snapshot_fields(manage_as_snapshot(body))


class ExtractSnapshotManageRequestTask(Task[SnapshotCreateContext]):
    requires = ("body", "manage_ref")
    provides = ("volume", "project", "deltas")

    def __init__(self, services: SnapshotManageServices) -> None:
        self.s = services

    async def execute(self, c: SnapshotCreateContext) -> None:
        s, name = self.s, c.manage_ref
        assert name is not None
        require_admin(c.ctx, "manage a snapshot")
        check_source_name(name)
        check_snapshot_fields(c.body)
        volume = visible_volume(s.store, c.body.volume_id, c.ctx)
        check_snapshot_source(volume, c.body.force)
        if volume.host is None:
            raise InvalidState(f"volume {volume.id} is on no backend: it can have no "
                               "snapshots", {"volume_id": volume.id})
        node = find_node(volume.host, s.nodes)
        found, _ = await find_manageable(s, node, name, True, c.ctx)
        if found.size > volume.size:
            raise InvalidInput(f"{name} is {found.size} GiB, more than volume {volume.id} "
                               f"({volume.size} GiB): a snapshot of it cannot be larger",
                               {"source-name": name, "size": found.size})
        c.claimed = claim_volume(s.store, volume, "snapshotting")
        c.volume, c.project = volume, volume.project_id
        c.deltas = snapshot_amounts(volume.size, volume.volume_type.id)


def snapshot_manage_api(services: SnapshotManageServices
                        ) -> LinearFlow[SnapshotCreateContext]:
    return LinearFlow(
        "snapshot_manage_api",
        [ExtractSnapshotManageRequestTask(services),
         SnapshotQuotaTask[SnapshotCreateContext](services, SNAPSHOT_RESERVE),
         SnapshotEntryCreateTask(services),
         SnapshotCastTask(services)],
        given=("body", "ctx", "snapshot_id", "fingerprint", "manage_ref"),
    )


async def manageable(s: NodeQuestions, req: ManageableRequest, ctx: Context,
                     snapshots: bool = False) -> ManageableList:
    """A page of what a node's backend holds that could be managed as volumes (or
    snapshots): an admin's."""
    require_admin(ctx, f"list manageable {'snapshots' if snapshots else 'volumes'}")
    node = find_node(req.host, s.nodes)
    limit = check_range("limit", MANAGEABLE_PAGE_MAX if req.limit is None else req.limit, 1,
                        MANAGEABLE_PAGE_MAX)
    if req.marker is not None:
        check_source_name(req.marker)
    return await ask_node(s, node, NodeManageable(marker=req.marker, limit=limit,
                                                  snapshot=snapshots), ctx)

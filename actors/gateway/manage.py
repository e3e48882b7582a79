"""Volume manage (Cinder's ``os-volume-manage``, an admin's): what a node's backend
already holds becomes a volume, and the list of what could.

    volume_manage_api   ExtractManageRequestTask → QuotaReserveTask → EntryCreateTask
                          → VolumeCastTask

The last three are the create flow's (``create_flow.py``): a manage is a create whose
size is what the backend holds (rounded up to whole GiB) and whose node is the one the
admin named. ExtractManageRequestTask asks that node about the data
(``node.manageable``: is it there, is it safe to manage, how big is it, what can the
backend do), checks the volume type against the backend's capabilities as the
scheduler would, and builds the spec as a create's. The cast then goes straight to
that node (a ``node.create_volume`` naming a ``manage_ref``), whose driver renames the
data into a volume and grows it to its whole GiB; until then it is ``creating``, as
Cinder shows a volume it manages. Quota is charged as for a create.

Unmanage is a delete whose node keeps the data (``lifecycle.py``, status
``unmanaging``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

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
from cinderblock.actors.gateway.volume_request import (
    MAX_NAME,
    check_zone,
    normalize_create,
    validate_create,
)
from cinderblock.actors.runtime.config import NodeConfig
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.limits import check_range
from cinderblock.protocol.messages.manage import (
    MANAGEABLE_PAGE_MAX,
    ManageableList,
    ManageableRequest,
    NodeManageable,
    VolumeManage,
)
from cinderblock.protocol.messages.volumes import VolumeCreate
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, NotFound
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


class ManageServices(ApiServices, Protocol):
    nodes: Sequence[NodeConfig]

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, object]: ...


async def ask_node(s: ManageServices, node: NodeConfig, body: NodeManageable, ctx: Context
                   ) -> ManageableList:
    return parse(ManageableList, await s.node_call(node.host, "node.manageable", body, ctx),
                 strict=False)


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
        listed = await ask_node(s, node, NodeManageable(name=m.source_name), c.ctx)
        if not listed.volumes:
            raise InvalidInput(f"{node.backend_id} holds nothing named {m.source_name!r} (its "
                               "manageable volumes are listed by volume.manageable)",
                               {"source-name": m.source_name, "host": node.backend_id})
        found = listed.volumes[0]
        if not found.safe_to_manage:
            raise InvalidInput(f"{m.source_name} on {node.backend_id} cannot be managed: "
                               f"{found.reason_not_safe}",
                               {"source-name": m.source_name, "cinder_id": found.cinder_id})
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
        if not satisfies(listed.capabilities, c.spec.volume_type.extra_specs):
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


async def manageable(s: ManageServices, req: ManageableRequest, ctx: Context
                     ) -> ManageableList:
    """A page of what a node's backend holds that could be managed (an admin's)."""
    require_admin(ctx, "list manageable volumes")
    node = find_node(req.host, s.nodes)
    limit = check_range("limit", MANAGEABLE_PAGE_MAX if req.limit is None else req.limit, 1,
                        MANAGEABLE_PAGE_MAX)
    if req.marker is not None:
        check_source_name(req.marker)
    return await ask_node(s, node, NodeManageable(marker=req.marker, limit=limit), ctx)

"""Volume types beyond create and list: delete, and access to private types.

As Cinder's ``types`` and ``os-volume-type-access`` APIs, for admins: a type in use
by a volume, or the default type, cannot be deleted (``invalid_input``); a private
type (``is_public=False``) is usable, visible and listable only by the projects
given access and by admins. The catalog (``TypeCatalog``) keeps the access lists in
memory; the store keeps them in ``volume_type_access``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Protocol

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, type_from_row
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeAccess,
    TypeAccessList,
    TypeList,
    VolumeType,
)
from cinderblock.protocol.wire.errors import InvalidInput


class TypeServices(Protocol):
    store: GatewayStore
    types: TypeCatalog
    default_type: str


class VolumeTypes:
    def __init__(self, services: TypeServices) -> None:
        self.s = services

    def handlers(self) -> dict[str, Handler]:
        return {
            "type.list": self.on_list,
            "type.delete": self.on_delete,
            "type.access_list": self.on_access_list,
            "type.access_add": self.on_access_change,
            "type.access_remove": self.on_access_change,
        }

    async def load(self) -> None:
        for type_id, project in await self.s.store.type_access():
            self.s.types.access.setdefault(type_id, set()).add(project)

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread, after a failed write: the types and who may use the
        private ones; what it returns makes the catalog those rows (types never change:
        replaced)."""
        types = [type_from_row(row) for row in conn.execute(
            "SELECT id, name, description, extra_specs, is_public FROM volume_types")]
        access: dict[str, set[str]] = {}
        for type_id, project in conn.execute("SELECT type_id, project_id FROM volume_type_access"):
            access.setdefault(type_id, set()).add(project)
        return partial(self._install, types, access)

    def _install(self, types: list[VolumeType], access: dict[str, set[str]]) -> None:
        catalog = self.s.types
        catalog.by_id.clear()  # in place: the volume store reads its records' types here
        catalog.by_name.clear()
        for vtype in types:
            catalog.add(vtype)
        catalog.access = access

    def on_list(self, req: Request) -> TypeList:
        ctx = req.ctx
        usable = [t for t in self.s.types.by_id.values()
                  if self.s.types.usable(t, ctx.project_id, ctx.is_admin)]
        return TypeList(tuple(sorted(usable, key=lambda t: t.name)))

    async def on_delete(self, req: Request) -> Empty:
        require_admin(req.ctx, "delete a volume type")
        vtype = self.s.types.find(req.body.type_id)
        if vtype.name == self.s.default_type:
            raise InvalidInput(f"Default volume type {vtype.name} can not be deleted.",
                               {"volume_type": vtype.name})
        users = self.s.store.volumes.of_type(vtype.id)
        if users:
            raise InvalidInput(f"Volume Type {vtype.id} deletion is not allowed with volumes "
                               f"present with the type ({users}).", {"volume_type": vtype.name})
        self.s.types.remove(vtype)
        await self.s.store.remove_type(vtype)
        return Empty()

    def on_access_list(self, req: Request) -> TypeAccessList:
        require_admin(req.ctx, "see who may use a volume type")
        vtype = self._private(req.body.type_id)
        return TypeAccessList(vtype.id, tuple(sorted(self.s.types.access.get(vtype.id, ()))))

    async def on_access_change(self, req: Request) -> TypeAccessList:
        body: TypeAccess = req.body
        granted = req.env.op == "type.access_add"
        require_admin(req.ctx, "change who may use a volume type")
        vtype = self._private(body.type_id)
        projects = self.s.types.access.setdefault(vtype.id, set())
        if not body.project or len(body.project) > 255:
            raise InvalidInput("project must be 1-255 characters", {"field": "project"})
        if granted and body.project in projects:
            raise InvalidInput(f"Volume type access for {vtype.id}/{body.project} combination "
                               "already exists.", {"project": body.project})
        if not granted and body.project not in projects:
            raise InvalidInput(f"Volume type access not found for {vtype.id}/{body.project} "
                               "combination.", {"project": body.project})
        await self.s.store.save_access(vtype.id, body.project, granted)
        (projects.add if granted else projects.discard)(body.project)
        return TypeAccessList(vtype.id, tuple(sorted(projects)))

    def _private(self, name_or_id: str) -> VolumeType:
        vtype = self.s.types.find(name_or_id)
        if vtype.is_public:
            raise InvalidInput(f"Invalid volume type: type access modification is not "
                               f"applicable to public volume type {vtype.name}.",
                               {"volume_type": vtype.name})
        return vtype

"""Volume types: create, list, update, delete, and access to private types.

As Cinder's ``types``, ``types/{id}/extra_specs`` and ``os-volume-type-access`` APIs,
for admins: a type in use by a volume, or the default type, cannot be deleted
(``invalid_input``); the extra specs of a type in use cannot be changed either, as
Cinder's ("Volume Type is currently in use."), since volumes were placed by them; a
type the gateway's configuration names (created at each start if missing) keeps its
name; a private type (``is_public=False``) is usable, visible and listable only by the
projects given access and by admins. A project may have a default type of its own
(Cinder's default-types, 3.62): what its creates without a type get, instead of the
configured default; a type that is some project's default cannot be deleted, and a
private one must be shared with the project first. The catalog (``TypeCatalog``) keeps
the types, access lists and projects' defaults in memory; the store keeps them in
``volume_types``, ``volume_type_access`` and ``project_default_types``. A change is
made in memory, then written; a write that fails brings memory back to the file
(``reread``), volumes' records included.

What a project sees of a type is Cinder's view of it for a non-admin
(``type_as_seen``): of its extra specs only those Cinder shows users
(``USER_VISIBLE_SPECS``: a type's zones, multiattach, replication; the rest, a backend
name or a capability, say how the deployment is built), and not its QoS specs' id.
Admins see every spec.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.paging import page_size
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_text
from cinderblock.actors.gateway.volume_store import (
    SELECT_PROJECT_DEFAULTS,
    SELECT_TYPES,
    GatewayStore,
    type_from_row,
)
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.pages import page_after
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeAccess,
    TypeAccessList,
    TypeCreate,
    TypeDefault,
    TypeDefaultList,
    TypeDefaultListRequest,
    TypeList,
    TypeUpdate,
    VolumeType,
)
from cinderblock.protocol.wire.errors import InvalidInput, NotFound

# Cinder's ``USER_VISIBLE_EXTRA_SPECS`` (cinder/policies/type_extra_specs.py)
USER_VISIBLE_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")


def type_as_seen(vtype: VolumeType, admin: bool) -> VolumeType:
    """``vtype`` as its caller may see it: whole for an admin; for a project, only its
    user-visible extra specs and no QoS specs id (Cinder's ``read_sensitive`` and
    ``access_types_qos_specs_id`` policies, both admin-only)."""
    if admin:
        return vtype
    return replace(vtype, extra_specs={k: v for k, v in vtype.extra_specs.items()
                                       if k in USER_VISIBLE_SPECS}, qos_specs_id=None)


class TypeServices(Protocol):
    store: GatewayStore
    types: TypeCatalog
    default_type: str
    configured_types: frozenset[str]  # made at each start if missing: their names stay


class VolumeTypes:
    def __init__(self, services: TypeServices) -> None:
        self.s = services

    def handlers(self) -> dict[str, Handler]:
        return {
            "type.create": self.on_create,
            "type.list": self.on_list,
            "type.update": self.on_update,
            "type.delete": self.on_delete,
            "type.access_list": self.on_access_list,
            "type.access_add": self.on_access_change,
            "type.access_remove": self.on_access_change,
            "type.default": self.on_default,
            "type.default_set": self.on_default_set,
            "type.default_show": self.on_default_show,
            "type.default_list": self.on_default_list,
            "type.default_unset": self.on_default_unset,
        }

    async def load(self) -> None:
        for type_id, project in await self.s.store.type_access():
            self.s.types.access.setdefault(type_id, set()).add(project)
        self.s.types.project_defaults = await self.s.store.project_defaults()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread, after a failed write: the types and who may use the
        private ones; what it returns makes the catalog those rows (types never change:
        replaced)."""
        types = [type_from_row(row) for row in conn.execute(SELECT_TYPES)]
        access: dict[str, set[str]] = {}
        for type_id, project in conn.execute("SELECT type_id, project_id FROM volume_type_access"):
            access.setdefault(type_id, set()).add(project)
        defaults = dict(conn.execute(SELECT_PROJECT_DEFAULTS).fetchall())
        return partial(self._install, types, access, defaults)

    def _install(self, types: list[VolumeType], access: dict[str, set[str]],
                 defaults: dict[str, str]) -> None:
        catalog = self.s.types
        catalog.by_id.clear()  # in place: the volume store reads its records' types here
        catalog.by_name.clear()
        for vtype in types:
            catalog.add(vtype)
        catalog.access = access
        catalog.project_defaults = defaults

    def on_list(self, req: Request) -> TypeList:
        ctx = req.ctx
        usable = [type_as_seen(t, ctx.is_admin) for t in self.s.types.by_id.values()
                  if self.s.types.usable(t, ctx.project_id, ctx.is_admin)]
        return TypeList(tuple(sorted(usable, key=lambda t: t.name)))

    async def on_create(self, req: Request) -> VolumeType:
        body: TypeCreate = req.body
        require_admin(req.ctx, "create a volume type")
        name = self._free_name(body.name)
        vtype = VolumeType(str(uuid.uuid4()), name, check_text("description", body.description),
                           check_specs(body.extra_specs), body.is_public)
        self.s.types.add(vtype)
        await self.s.store.add_type(vtype)
        return vtype

    async def on_update(self, req: Request) -> VolumeType:
        body: TypeUpdate = req.body
        require_admin(req.ctx, "change a volume type")
        old = self.s.types.find(body.type_id)
        new = updated_type(old, body)
        if new.name != old.name:
            if old.name in self.s.configured_types:
                raise InvalidInput(
                    f"volume type {old.name!r} is named in the gateway's configuration "
                    "(volume_types, or the default type) and is made again at each start "
                    "if missing: it keeps its name", {"volume_type": old.name})
            self._free_name(new.name)
        if new.extra_specs != old.extra_specs and self.s.store.type_users(old.id):
            raise InvalidInput("Volume Type is currently in use.", {"volume_type": old.name})
        if new == old:
            return old
        self.install_changed(old, new)
        await self.s.store.save_type(new)
        return new

    def install_changed(self, old: VolumeType, new: VolumeType) -> None:
        """``new`` in place of ``old`` in the catalog and in every volume record memory
        holds (a volume shows its type's name as it is now)."""
        catalog = self.s.types
        catalog.by_name.pop(old.name, None)
        catalog.add(new)
        for rec in self.s.store.volumes.in_memory().values():
            if rec.volume_type.id == new.id:
                rec.volume_type = new

    def _free_name(self, asked: str) -> str:
        """``asked`` stripped, if it can name a new type."""
        name = asked.strip()
        if not name or check_text("name", name) is None:
            raise InvalidInput("volume type name must be 1-255 characters", {"field": "name"})
        if name in self.s.types.by_name:
            raise InvalidInput(f"volume type {name!r} already exists", {"field": "name"})
        return name

    async def on_delete(self, req: Request) -> Empty:
        require_admin(req.ctx, "delete a volume type")
        vtype = self.s.types.find(req.body.type_id)
        if vtype.name == self.s.default_type:
            raise InvalidInput(f"Default volume type {vtype.name} can not be deleted.",
                               {"volume_type": vtype.name})
        if vtype.name in self.s.configured_types:
            raise InvalidInput(
                f"volume type {vtype.name!r} is named in the gateway's configuration "
                "(volume_types) and is made again at each start if missing: take it out of "
                "the configuration to delete it", {"volume_type": vtype.name})
        defaulting = sorted(p for p, t in self.s.types.project_defaults.items() if t == vtype.id)
        if defaulting:  # Cinder's VolumeTypeDefaultDeletionError
            raise InvalidInput(f"The volume type {vtype.id} is a default volume type and cannot "
                               f"be deleted (the default of {', '.join(defaulting[:5])}"
                               f"{' ...' if len(defaulting) > 5 else ''}).",
                               {"volume_type": vtype.name, "projects": defaulting[:100]})
        users = self.s.store.type_users(vtype.id)
        if users:
            raise InvalidInput(f"Volume Type {vtype.id} deletion is not allowed with volumes "
                               f"present with the type ({users}).", {"volume_type": vtype.name})
        self.s.types.remove(vtype)
        await self.s.store.remove_type(vtype)
        return Empty()

    def on_access_list(self, req: Request) -> TypeAccessList:
        require_admin(req.ctx, "see who may use a volume type")
        vtype = self.s.types.find(req.body.type_id)
        if vtype.is_public:  # Cinder's VolumeTypeAccessNotFound: a 404
            raise NotFound("Access list not available for public volume types.",
                           {"volume_type": vtype.name})
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

    # ---- projects' own default types (Cinder's default-types, 3.62) ----------------------
    def on_default(self, req: Request) -> VolumeType:
        """The type a create of the caller's project without a type gets."""
        return type_as_seen(self.s.types.find(self.s.types.default_for(
            req.ctx.project_id, self.s.default_type)), req.ctx.is_admin)

    async def on_default_set(self, req: Request) -> TypeDefault:
        body: TypeDefault = req.body
        require_admin(req.ctx, "set a project's default volume type")
        project = check_project(body.project_id)
        vtype = self.s.types.find(body.volume_type_id)
        if not self.s.types.usable(vtype, project, admin=False):
            raise InvalidInput(f"volume type {vtype.name} is private and not shared with "
                               f"project {project}: share it first", {"volume_type": vtype.name})
        self.s.types.project_defaults[project] = vtype.id
        await self.s.store.save_project_default(project, vtype.id)
        return TypeDefault(project, vtype.id)

    def on_default_show(self, req: Request) -> TypeDefault:
        require_admin(req.ctx, "see a project's default volume type")
        project = check_project(req.body.project_id)
        type_id = self.s.types.project_defaults.get(project)
        if type_id is None:
            raise NotFound(f"Default type for project {project} not found.",
                           {"project_id": project})
        return TypeDefault(project, type_id)

    def on_default_list(self, req: Request) -> TypeDefaultList:
        """A page, by project id (one reply of every project's could exceed a frame)."""
        body: TypeDefaultListRequest = req.body
        require_admin(req.ctx, "list projects' default volume types")
        found, next_marker = page_after(
            (TypeDefault(p, t) for p, t in self.s.types.project_defaults.items()),
            lambda d: d.project_id, body.marker, page_size(body.limit))
        return TypeDefaultList(tuple(found), next_marker)

    async def on_default_unset(self, req: Request) -> Empty:
        require_admin(req.ctx, "unset a project's default volume type")
        project = check_project(req.body.project_id)
        if self.s.types.project_defaults.pop(project, None) is not None:
            await self.s.store.save_project_default(project, None)
        return Empty()

    def _private(self, name_or_id: str) -> VolumeType:
        vtype = self.s.types.find(name_or_id)
        if vtype.is_public:
            raise InvalidInput(f"Invalid volume type: type access modification is not "
                               f"applicable to public volume type {vtype.name}.",
                               {"volume_type": vtype.name})
        return vtype


def check_project(project: str) -> str:
    if not project or len(project) > 255:
        raise InvalidInput("project must be 1-255 characters", {"field": "project_id"})
    return project


def check_specs(specs: dict[str, Any]) -> dict[str, str]:
    for key, value in specs.items():
        if not key or len(key) > 255 or type(value) is not str or len(value) > 255:
            raise InvalidInput(
                f"extra spec {key[:80]!r}: keys and values must be strings of 1-255 characters",
                {"field": "extra_specs", "key": key[:255]},
            )
    return dict(specs)


def merged_specs(old: Mapping[str, str], given: Mapping[str, str], deleting: Iterable[str],
                 missing: Callable[[str], NotFound]) -> dict[str, str]:
    """Specs as an update leaves them: ``given`` (checked already) merged into ``old``,
    then each key of ``deleting`` dropped, which must be there (else ``missing(key)``)."""
    specs = {**old, **given}
    for key in deleting:
        if key not in specs:
            raise missing(key)
        del specs[key]
    return specs


def updated_type(old: VolumeType, body: TypeUpdate) -> VolumeType:
    """``old`` as ``body`` changes it, all checked (the name's uniqueness aside); nothing
    is changed here."""
    specs = merged_specs(old.extra_specs, check_specs(body.extra_specs), body.delete_specs,
                         lambda key: NotFound(f"Volume Type {old.id} has no extra specs with "
                                              f"key {key}.",
                                              {"volume_type": old.name, "key": key}))
    changed: dict[str, Any] = {"extra_specs": specs}
    if body.name is not None:
        changed["name"] = body.name.strip()
    if body.description is not None:
        changed["description"] = check_text("description", body.description)
    if body.is_public is not None:
        changed["is_public"] = body.is_public
    return replace(old, **changed)

"""Group types (Cinder's 3.11 ``group_types`` and ``group_types/{id}/group_specs``).

An admin makes, changes and deletes them; a project sees the public ones, without
their group specs (Cinder's ``group:access_group_types_specs``, an admin's). A name is
unique (a second one is a conflict, Cinder's 409); a type some group has cannot be
deleted ("Target group type is still in use."). There is no default group type
(Cinder's ``default_group_type`` option names none here): ``group_types/default`` is
not found. The store is ``group_store.GroupTypeStore``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Protocol

from cinderblock.actors.gateway.group_store import GroupTypeStore
from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.volume_request import check_text
from cinderblock.actors.gateway.volume_types import check_specs, merged_specs
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.groups import (
    GroupType,
    GroupTypeCreate,
    GroupTypeList,
    GroupTypeRef,
    GroupTypeUpdate,
)
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.errors import InvalidInput, NotFound


def type_as_seen(gtype: GroupType, admin: bool) -> GroupType:
    """Whole for an admin; without its group specs for a project."""
    return gtype if admin else replace(gtype, group_specs={})


class GroupTypeServices(Protocol):
    @property
    def group_types(self) -> GroupTypeStore: ...

    def group_type_users(self, type_id: str) -> int: ...


class GroupTypes:
    """The ``group_type.*`` ops."""

    def __init__(self, services: GroupTypeServices) -> None:
        self.s = services

    @property
    def store(self) -> GroupTypeStore:
        return self.s.group_types

    def handlers(self) -> dict[str, Handler]:
        return {
            "group_type.create": self.on_create,
            "group_type.list": self.on_list,
            "group_type.show": self.on_show,
            "group_type.update": self.on_update,
            "group_type.delete": self.on_delete,
        }

    def find(self, name_or_id: str, admin: bool) -> GroupType:
        """A group type the caller may see, by id or name; ``NotFound`` otherwise."""
        found = self.store.by_id.get(name_or_id) or self.store.named(name_or_id)
        if found is None or not (found.is_public or admin):
            raise NotFound(f"Group type with id {name_or_id} could not be found.",
                           {"group_type": name_or_id})
        return found

    def on_list(self, req: Request) -> GroupTypeList:
        admin = req.ctx.is_admin
        seen = [type_as_seen(t, admin) for t in self.store.by_id.values()
                if t.is_public or admin]
        return GroupTypeList(tuple(sorted(seen, key=lambda t: (t.name, t.id))))

    def on_show(self, req: Request) -> GroupType:
        body: GroupTypeRef = req.body
        wanted = body.type_id
        if wanted == "default":
            raise NotFound("Default group type can not be found.", {"group_type": wanted})
        return type_as_seen(self.find(wanted, req.ctx.is_admin), req.ctx.is_admin)

    async def on_create(self, req: Request) -> GroupType:
        body: GroupTypeCreate = req.body
        require_admin(req.ctx, "create a group type")
        gtype = GroupType(str(uuid.uuid4()), self._free_name(body.name),
                          check_text("description", body.description), body.is_public,
                          check_group_specs(body.group_specs))
        await self.store.queue_save(gtype)
        return gtype

    async def on_update(self, req: Request) -> GroupType:
        body: GroupTypeUpdate = req.body
        require_admin(req.ctx, "change a group type")
        old = self.find(body.type_id, admin=True)
        specs = merged_specs(old.group_specs, check_group_specs(body.group_specs),
                             body.delete_specs,
                             lambda key: NotFound(f"Group Type {old.id} has no specs with key "
                                                  f"{key}.", {"group_type": old.id, "key": key}))
        changed: dict[str, Any] = {"group_specs": specs}
        if body.name is not None and body.name.strip() != old.name:
            changed["name"] = self._free_name(body.name)
        if body.description is not None:
            changed["description"] = check_text("description", body.description)
        if body.is_public is not None:
            changed["is_public"] = body.is_public
        new = replace(old, **changed)
        if new != old:
            await self.store.queue_save(new)
        return new

    async def on_delete(self, req: Request) -> Empty:
        require_admin(req.ctx, "delete a group type")
        body: GroupTypeRef = req.body
        gtype = self.find(body.type_id, admin=True)
        if self.s.group_type_users(gtype.id):
            raise InvalidInput("Target group type is still in use.", {"group_type": gtype.id})
        await self.store.queue_remove(gtype)
        return Empty()

    def _free_name(self, asked: str) -> str:
        """``asked`` stripped, if it can name a new group type."""
        name = check_text("name", asked) or ""
        if not name:
            raise InvalidInput("Group type name can not be empty.", {"field": "name"})
        if self.store.named(name) is not None:
            raise InvalidInput(f"Group Type {name} already exists.", {"field": "name"})
        return name


def check_group_specs(specs: dict[str, Any]) -> dict[str, str]:
    """Cinder's: keys and values strings of 1 to 255 characters."""
    try:
        return check_specs(specs)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("extra spec", "group spec"),
                           {**exc.details, "field": "group_specs"}) from None

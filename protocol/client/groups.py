"""The client library's calls for generic volume groups, mixed into ``Client`` and
``SyncClient``:

    gold = await admin.create_group_type("gold", group_specs={
        "consistent_group_snapshot_enabled": "<is> True"})
    await admin.update_group_type(gold.id, description="crash-consistent snapshots")
    await admin.delete_group_type(gold.id)          # a type no group has
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from cinderblock.protocol.messages.groups import (
    GroupType,
    GroupTypeCreate,
    GroupTypeList,
    GroupTypeRef,
    GroupTypeUpdate,
)
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class GroupMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    # ---- group types (an admin's to change) ------------------------------------------
    async def create_group_type(self, name: str, *, description: str | None = None,
                                is_public: bool = True,
                                group_specs: dict[str, str] | None = None) -> GroupType:
        """Admin: a new group type (its name unique)."""
        body = GroupTypeCreate(name, description, is_public, group_specs or {})
        return parse(GroupType, await self.call("group_type.create", body), strict=False)

    async def list_group_types(self) -> list[GroupType]:
        """The group types the caller may use (an admin: every one, with its specs)."""
        raw = await self.call("group_type.list", GroupTypeRef(""))
        return list(parse(GroupTypeList, raw, strict=False).group_types)

    async def show_group_type(self, name_or_id: str) -> GroupType:
        raw = await self.call("group_type.show", GroupTypeRef(name_or_id))
        return parse(GroupType, raw, strict=False)

    async def update_group_type(self, name_or_id: str, *, name: str | None = None,
                                description: str | None = None, is_public: bool | None = None,
                                group_specs: dict[str, str] | None = None,
                                delete_specs: Iterable[str] = ()) -> GroupType:
        """Admin: rename, describe, publish or hide; merge ``group_specs`` in and drop
        ``delete_specs`` (each must be there)."""
        body = GroupTypeUpdate(name_or_id, name, description, is_public, group_specs or {},
                               tuple(delete_specs))
        return parse(GroupType, await self.call("group_type.update", body), strict=False)

    async def delete_group_type(self, name_or_id: str) -> None:
        """Admin: delete a group type no group has."""
        await self.call("group_type.delete", GroupTypeRef(name_or_id))


class SyncGroupMethods:
    def _run(self, make: Callable[[GroupMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_group_type(self, name: str, **kwargs: Any) -> GroupType:
        return self._run(lambda c: c.create_group_type(name, **kwargs))

    def list_group_types(self) -> list[GroupType]:
        return self._run(lambda c: c.list_group_types())

    def show_group_type(self, name_or_id: str) -> GroupType:
        return self._run(lambda c: c.show_group_type(name_or_id))

    def update_group_type(self, name_or_id: str, **kwargs: Any) -> GroupType:
        return self._run(lambda c: c.update_group_type(name_or_id, **kwargs))

    def delete_group_type(self, name_or_id: str) -> None:
        self._run(lambda c: c.delete_group_type(name_or_id))

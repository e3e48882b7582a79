"""The client library's calls for generic volume groups, mixed into ``Client`` and
``SyncClient``:

    gold = await admin.create_group_type("gold", group_specs={
        "consistent_group_snapshot_enabled": "<is> True"})
    group = await client.create_group("gold", ["fast"], name="db")
    vol = await client.create_volume(10, volume_type="fast", group_id=group.id, wait=True)
    await client.update_group(group.id, remove_volumes=[vol.id])
    await client.delete_group(group.id, delete_volumes=True)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from cinderblock.protocol.messages.groups import (
    Group,
    GroupCreate,
    GroupCreateFromSource,
    GroupDelete,
    GroupList,
    GroupListRequest,
    GroupRef,
    GroupResetStatus,
    GroupSnapshot,
    GroupSnapshotCreate,
    GroupSnapshotList,
    GroupSnapshotListRequest,
    GroupSnapshotRef,
    GroupSnapshotResetStatus,
    GroupType,
    GroupTypeCreate,
    GroupTypeList,
    GroupTypeRef,
    GroupTypeUpdate,
    GroupUpdate,
)
from cinderblock.protocol.wire.errors import Timeout
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")
GROUP_SNAPSHOT_POLL_S = 0.1  # how often ``wait`` looks again


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

    # ---- groups ------------------------------------------------------------------------
    async def create_group(self, group_type: str, volume_types: Iterable[str], *,
                           name: str | None = None, description: str | None = None,
                           availability_zone: str | None = None,
                           request_id: str | None = None) -> Group:
        """A group of ``group_type`` for volumes of ``volume_types`` (names or ids),
        placed on a backend that satisfies every one; ``available`` at once. Sent again
        with the same ``request_id`` (after a timeout or a lost connection), it answers
        the group the first made (within a day) rather than making another."""
        body = GroupCreate(group_type, tuple(volume_types), name, description,
                           availability_zone)
        return parse(Group, await self.call("group.create", body, request_id), strict=False)

    async def create_group_from_src(self, *, group_snapshot_id: str | None = None,
                                    source_group_id: str | None = None,
                                    name: str | None = None,
                                    description: str | None = None,
                                    request_id: str | None = None) -> Group:
        """A group like the source's, with a volume made from each snapshot of
        ``group_snapshot_id`` or cloned from each volume of ``source_group_id`` (one of
        the two); the volumes are ``creating`` when this answers. Sent again with the
        same ``request_id``, it answers the group the first made, as it is."""
        body = GroupCreateFromSource(name, description, group_snapshot_id, source_group_id)
        raw = await self.call("group.create_from_src", body, request_id)
        return parse(Group, raw, strict=False)

    async def list_groups(self, all_projects: bool = False,
                          project_id: str | None = None) -> list[Group]:
        """This project's groups, newest first (an admin's ``all_projects``: every
        project's, or ``project_id``'s)."""
        raw = await self.call("group.list", GroupListRequest(all_projects, project_id))
        return list(parse(GroupList, raw, strict=False).groups)

    async def show_group(self, group_id: str) -> Group:
        return parse(Group, await self.call("group.show", GroupRef(group_id)), strict=False)

    async def update_group(self, group_id: str, *, name: str | None = None,
                           description: str | None = None, add_volumes: Iterable[str] = (),
                           remove_volumes: Iterable[str] = ()) -> Group:
        """Rename or describe the group; add volumes to it or remove them."""
        body = GroupUpdate(group_id, name, description, tuple(add_volumes),
                           tuple(remove_volumes))
        return parse(Group, await self.call("group.update", body), strict=False)

    async def delete_group(self, group_id: str, delete_volumes: bool = False) -> None:
        """Delete an empty group, or (``delete_volumes``) the group and its volumes: it
        is ``deleting`` until the last of them is gone."""
        await self.call("group.delete", GroupDelete(group_id, delete_volumes))

    async def reset_group_status(self, group_id: str, status: str) -> Group:
        """Admin: the group's status, nothing else (``available`` or ``error``)."""
        raw = await self.call("group.reset_status", GroupResetStatus(group_id, status))
        return parse(Group, raw, strict=False)

    # ---- group snapshots --------------------------------------------------------------
    async def create_group_snapshot(self, group_id: str, *, name: str | None = None,
                                    description: str | None = None, wait: bool = False,
                                    timeout: float | None = None,
                                    request_id: str | None = None) -> GroupSnapshot:
        """A snapshot of each of the group's volumes, taken at one instant (their node
        holds their writes meanwhile); ``creating``, or with ``wait`` until it is not
        (``available``, or ``error`` with each snapshot's reason). Sent again with the
        same ``request_id``, it answers the group snapshot the first made (within a
        day) rather than taking another."""
        body = GroupSnapshotCreate(group_id, name, description)
        made = parse(GroupSnapshot, await self.call("group_snapshot.create", body,
                                                    request_id), strict=False)
        return await self._group_snapshot_settled(made, wait, timeout)

    async def _group_snapshot_settled(self, snap: GroupSnapshot, wait: bool,
                                      timeout: float | None) -> GroupSnapshot:
        deadline = time.monotonic() + (timeout or 60.0)
        while wait and snap.status in ("creating", "deleting"):
            if time.monotonic() > deadline:
                raise Timeout(f"group snapshot {snap.id} still {snap.status} after "
                              f"{timeout or 60.0:g} s", {"group_snapshot_id": snap.id})
            await asyncio.sleep(GROUP_SNAPSHOT_POLL_S)
            snap = await self.show_group_snapshot(snap.id)
        return snap

    async def list_group_snapshots(self, all_projects: bool = False,
                                   project_id: str | None = None,
                                   group_id: str | None = None) -> list[GroupSnapshot]:
        """This project's group snapshots (of ``group_id`` only if given), newest first."""
        body = GroupSnapshotListRequest(all_projects, project_id, group_id)
        raw = await self.call("group_snapshot.list", body)
        return list(parse(GroupSnapshotList, raw, strict=False).group_snapshots)

    async def show_group_snapshot(self, group_snapshot_id: str) -> GroupSnapshot:
        raw = await self.call("group_snapshot.show", GroupSnapshotRef(group_snapshot_id))
        return parse(GroupSnapshot, raw, strict=False)

    async def delete_group_snapshot(self, group_snapshot_id: str) -> None:
        """Delete the group snapshot and its snapshots (``deleting`` until they are gone)."""
        await self.call("group_snapshot.delete", GroupSnapshotRef(group_snapshot_id))

    async def reset_group_snapshot_status(self, group_snapshot_id: str, status: str
                                          ) -> GroupSnapshot:
        """Admin: each of its snapshots reset to ``status`` (``available`` or ``error``),
        which is then its status; a delete it was in is over."""
        raw = await self.call("group_snapshot.reset_status",
                              GroupSnapshotResetStatus(group_snapshot_id, status))
        return parse(GroupSnapshot, raw, strict=False)


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

    def create_group(self, group_type: str, volume_types: Iterable[str], **kwargs: Any
                     ) -> Group:
        return self._run(lambda c: c.create_group(group_type, volume_types, **kwargs))

    def create_group_from_src(self, **kwargs: Any) -> Group:
        return self._run(lambda c: c.create_group_from_src(**kwargs))

    def list_groups(self, all_projects: bool = False, project_id: str | None = None
                    ) -> list[Group]:
        return self._run(lambda c: c.list_groups(all_projects, project_id))

    def show_group(self, group_id: str) -> Group:
        return self._run(lambda c: c.show_group(group_id))

    def update_group(self, group_id: str, **kwargs: Any) -> Group:
        return self._run(lambda c: c.update_group(group_id, **kwargs))

    def delete_group(self, group_id: str, delete_volumes: bool = False) -> None:
        self._run(lambda c: c.delete_group(group_id, delete_volumes))

    def reset_group_status(self, group_id: str, status: str) -> Group:
        return self._run(lambda c: c.reset_group_status(group_id, status))

    def create_group_snapshot(self, group_id: str, **kwargs: Any) -> GroupSnapshot:
        return self._run(lambda c: c.create_group_snapshot(group_id, **kwargs))

    def list_group_snapshots(self, **kwargs: Any) -> list[GroupSnapshot]:
        return self._run(lambda c: c.list_group_snapshots(**kwargs))

    def show_group_snapshot(self, group_snapshot_id: str) -> GroupSnapshot:
        return self._run(lambda c: c.show_group_snapshot(group_snapshot_id))

    def delete_group_snapshot(self, group_snapshot_id: str) -> None:
        self._run(lambda c: c.delete_group_snapshot(group_snapshot_id))

    def reset_group_snapshot_status(self, group_snapshot_id: str, status: str
                                    ) -> GroupSnapshot:
        return self._run(lambda c: c.reset_group_snapshot_status(group_snapshot_id, status))

"""The client library's calls for the rest of a volume's life, mixed into
``Client`` and ``SyncClient``:

    snap = await c.create_snapshot(vol.id, name="before-upgrade", wait=True)
    copy = await c.create_volume(None, snapshot_id=snap.id, wait=True)   # size: the snapshot's
    twin = await c.create_volume(None, source_volid=vol.id, wait=True)
    vol = await c.extend_volume(vol.id, 20, wait=True)
    await c.delete_snapshot(snap.id, wait=True)
    await c.delete_volume(vol.id, wait=True)                          # status "deleted"

``wait=True`` follows the status changes the gateway pushes: a delete waits
for ``deleted``, an extend for ``available`` at the new size, a snapshot for
``available``. An error status raises ``VolumeError`` / ``SnapshotError``; so
does an extend the backend had no room for (the volume stays ``available`` at
its old size, with the reason).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Any, TypeVar

from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.client.status_waits import StatusWaits, VolumeError
from cinderblock.protocol.messages.lifecycle import (
    Snapshot,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotList,
    SnapshotListRequest,
    SnapshotModify,
    SnapshotRef,
    SnapshotResetState,
    SnapshotWatch,
    VolumeDelete,
    VolumeExtend,
    VolumeRetype,
    VolumeRevert,
)
from cinderblock.protocol.messages.limits import MAX_SIZE_GB, check_range
from cinderblock.protocol.messages.migration import VolumeMigrate
from cinderblock.protocol.messages.volumes import Volume, VolumeRef
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus, statuses
from cinderblock.protocol.wire.errors import CinderblockError, InternalError, Timeout
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")
MIGRATION_POLL_S = 0.1  # a migration has no watchers: its wait polls


class MigrationError(CinderblockError):
    """A migration ended without moving the volume (it stays where it was)."""

    code = "migration_error"

    def __init__(self, volume: Volume) -> None:
        super().__init__(f"volume {volume.id} was not migrated (migration_status "
                         f"{volume.migration_status}): {volume.reason or 'no reason given'}",
                         {"volume_id": volume.id, "migration_status": volume.migration_status})
        self.volume = volume


DELETED: frozenset[StrEnum] = frozenset({VolumeStatus.DELETED})
SNAPSHOT_DELETED: frozenset[StrEnum] = frozenset({SnapshotStatus.DELETED})
AVAILABLE: frozenset[StrEnum] = frozenset({VolumeStatus.AVAILABLE})
UNCHANGED_TEXT: Any = object()  # modify_snapshot: leave this field as it is
IN_USE_OR_AVAILABLE: frozenset[StrEnum] = frozenset({VolumeStatus.AVAILABLE,
                                                     VolumeStatus.IN_USE})
SNAPSHOT_AVAILABLE: frozenset[StrEnum] = frozenset({SnapshotStatus.AVAILABLE})


class SnapshotError(CinderblockError):
    """A snapshot reached an error status while being waited for."""

    code = "snapshot_error"

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(
            f"snapshot {snapshot.id} went to {snapshot.status}: "
            f"{snapshot.reason or 'no reason given'}",
            {"snapshot_id": snapshot.id, "status": snapshot.status, "reason": snapshot.reason},
        )
        self.snapshot = snapshot


class LifecycleMethods:
    timeout: float
    volume_waits: StatusWaits[Volume]
    snapshot_waits: StatusWaits[Snapshot]

    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    # ---- volumes -------------------------------------------------------
    async def delete_volume(
        self, volume_id: str, *, request_id: str | None = None, wait: bool = False,
        timeout: float | None = None,
    ) -> Volume:
        """Delete a volume (``deleting``; with ``wait``, until it is gone: ``deleted``)."""
        raw = await self.call("volume.delete", VolumeDelete(volume_id, wait), request_id, timeout)
        volume = parse(Volume, raw, strict=False)
        if not wait:
            return volume
        return await self.volume_waits.wait(volume, DELETED, timeout or self.timeout)

    async def extend_volume(
        self, volume_id: str, new_size: int, *, request_id: str | None = None,
        wait: bool = False, timeout: float | None = None, in_use: bool = False,
    ) -> Volume:
        """Grow a volume to ``new_size`` GiB (``extending``, then ``available``); with
        ``in_use`` an attached volume too (Cinder's 3.42), which stays ``in-use``."""
        check_range("new_size", new_size, 1, MAX_SIZE_GB)
        body = VolumeExtend(volume_id, new_size, wait, in_use)
        volume = parse(Volume, await self.call("volume.extend", body, request_id, timeout),
                       strict=False)
        if not wait:
            return volume
        settled = IN_USE_OR_AVAILABLE if in_use else AVAILABLE
        volume = await self.volume_waits.wait(volume, settled, timeout or self.timeout)
        if volume.size < new_size:
            raise VolumeError(volume)
        return volume

    async def retype_volume(self, volume_id: str, new_type: str,
                            migration_policy: str = "never", *, wait: bool = False,
                            timeout: float | None = None) -> Volume:
        """Give a volume another type (Cinder's ``os-retype``). If its backend satisfies
        the new type the answer is the volume with it. If not, under ``on-demand`` the
        volume moves to a backend that does (a migration; ``never`` refuses): the answer
        is the volume ``maintenance``, still of its old type; with ``wait``, the volume
        once the migration has ended, of its new type on its new backend, or
        ``MigrationError`` saying why it stayed as it was."""
        body = VolumeRetype(volume_id, new_type, migration_policy)
        volume = parse(Volume, await self.call("volume.retype", body), strict=False)
        if not wait or volume.status is not VolumeStatus.MAINTENANCE:
            return volume
        return await self._migrated(volume, timeout)

    async def migrate_volume(self, volume_id: str, host: str, *, force_host_copy: bool = False,
                             lock_volume: bool = False, wait: bool = False,
                             timeout: float | None = None) -> Volume:
        """An admin moves an available volume's data to backend ``host``
        (``node@backend``; Cinder's ``os-migrate_volume``). The answer comes once the
        copy has started (the volume ``maintenance``); with ``wait``, once it has ended:
        the volume on its new backend, or ``VolumeError`` saying why it stayed."""
        body = VolumeMigrate(volume_id, host, force_host_copy, lock_volume)
        await self.call("volume.migrate", body)
        volume = await self._volume(volume_id)
        if not wait:
            return volume
        return await self._migrated(volume, timeout)

    async def _migrated(self, volume: Volume, timeout: float | None) -> Volume:
        """``volume`` once its migration has ended: moved, or ``MigrationError``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while volume.status is VolumeStatus.MAINTENANCE \
                or volume.migration_status in ("migrating", "completing"):
            if time.monotonic() > deadline:
                raise Timeout(f"volume {volume.id} still migrating after "
                              f"{timeout or self.timeout:g} s", {"volume_id": volume.id})
            await asyncio.sleep(MIGRATION_POLL_S)
            volume = await self._volume(volume.id)
        if volume.migration_status != "success":
            raise MigrationError(volume)
        return volume

    async def _volume(self, volume_id: str) -> Volume:
        return parse(Volume, await self.call("volume.show", VolumeRef(volume_id)), strict=False)

    async def revert_volume(
        self, volume_id: str, snapshot_id: str, *, wait: bool = False,
        timeout: float | None = None,
    ) -> Volume:
        """Revert a volume to its latest snapshot, in place (Cinder's 3.40): ``reverting``,
        then ``available`` holding the snapshot's bytes (``error`` if the node failed)."""
        body = VolumeRevert(volume_id, snapshot_id, wait)
        volume = parse(Volume, await self.call("volume.revert", body, None, timeout),
                       strict=False)
        if not wait:
            return volume
        return await self.volume_waits.wait(volume, AVAILABLE, timeout or self.timeout)

    # ---- snapshots -----------------------------------------------------
    def _on_snapshot_status(self, snap: Snapshot) -> None:
        self.snapshot_waits.seen(snap)

    async def create_snapshot(
        self, volume_id: str, *, name: str | None = None, description: str | None = None,
        force: bool = False, metadata: dict[str, str] | None = None,
        request_id: str | None = None, wait: bool = False, timeout: float | None = None,
    ) -> Snapshot:
        body = SnapshotCreate(volume_id, name, description, force, metadata or {}, wait)
        snap = parse(Snapshot, await self.call("snapshot.create", body, request_id, timeout),
                     strict=False)
        if not wait:
            return snap
        return await self.snapshot_waits.wait(snap, SNAPSHOT_AVAILABLE,
                                              timeout or self.timeout)

    async def modify_snapshot(
        self, snapshot_id: str, *, name: Any = UNCHANGED_TEXT, description: Any = UNCHANGED_TEXT,
        metadata: dict[str, Any] | None = None, replace_metadata: bool = False,
        delete_metadata: Iterable[str] = (),
    ) -> Snapshot:
        """Rename or describe a snapshot, merge (or with ``replace_metadata`` replace)
        metadata, drop metadata keys; a None name clears it."""
        fields = tuple(f for f, v in (("name", name), ("description", description))
                       if v is not UNCHANGED_TEXT)
        body = SnapshotModify(snapshot_id, fields,
                              None if name is UNCHANGED_TEXT else name,
                              None if description is UNCHANGED_TEXT else description, metadata,
                              replace_metadata, tuple(delete_metadata))
        return parse(Snapshot, await self.call("snapshot.modify", body), strict=False)

    async def reset_snapshot_state(self, snapshot_id: str, status: str) -> Snapshot:
        """Admin: move a stuck snapshot to ``error`` (or ``available`` if it has a host)."""
        raw = await self.call("snapshot.reset_state", SnapshotResetState(snapshot_id, status))
        return parse(Snapshot, raw, strict=False)

    async def show_snapshot(self, snapshot_id: str) -> Snapshot:
        raw = await self.call("snapshot.show", SnapshotRef(snapshot_id))
        return parse(Snapshot, raw, strict=False)

    async def list_snapshots(
        self, all_projects: bool = False, volume_id: str | None = None,
        status: str | None = None, limit: int | None = None, marker: str | None = None,
        name: str | None = None, metadata: dict[str, str] | None = None,
        project_id: str | None = None, sort: str | None = None,
        availability_zone: str | None = None,
    ) -> list[Snapshot]:
        """Newest first (or by ``sort``, as ``list_volumes``): all of them, page by page,
        or the first ``limit`` after ``marker``. An admin's ``all_projects`` with
        ``project_id``: that project's only. ``availability_zone``: only snapshots of
        volumes in it."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[Snapshot, ...], str | None]:
            body = SnapshotListRequest(all_projects, volume_id, status, left, after, name,
                                       metadata, project_id, sort,
                                       availability_zone=availability_zone)
            reply = parse(SnapshotList, await self.call("snapshot.list", body), strict=False)
            return reply.snapshots, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def count_snapshots(
        self, all_projects: bool = False, volume_id: str | None = None,
        status: str | None = None, name: str | None = None,
        metadata: dict[str, str] | None = None, project_id: str | None = None,
        availability_zone: str | None = None,
    ) -> int:
        """How many snapshots ``list_snapshots`` with these filters would list, counted
        by the gateway in one call (Cinder's ``with_count``)."""
        body = SnapshotListRequest(all_projects, volume_id, status, 0, None, name, metadata,
                                   project_id, with_count=True,
                                   availability_zone=availability_zone)
        reply = parse(SnapshotList, await self.call("snapshot.list", body), strict=False)
        if reply.count is None:
            raise InternalError("the gateway answered a count without one")
        return reply.count

    async def delete_snapshot(
        self, snapshot_id: str, *, request_id: str | None = None, wait: bool = False,
        timeout: float | None = None,
    ) -> Snapshot:
        body = SnapshotDelete(snapshot_id, wait)
        snap = parse(Snapshot, await self.call("snapshot.delete", body, request_id, timeout),
                     strict=False)
        if not wait:
            return snap
        return await self.snapshot_waits.wait(snap, SNAPSHOT_DELETED, timeout or self.timeout)

    async def wait_for_snapshot_status(
        self, snapshot_id: str, status: str | Iterable[str] = SnapshotStatus.AVAILABLE,
        timeout: float | None = None,
    ) -> Snapshot:
        wanted: frozenset[StrEnum] = statuses(SnapshotStatus, status)
        raw = await self.call("snapshot.watch", SnapshotWatch((snapshot_id,)))
        (current,) = parse(SnapshotList, raw, strict=False).snapshots
        return await self.snapshot_waits.wait(current, wanted, timeout or self.timeout)


class SyncLifecycleMethods:
    def _run(self, make: Callable[[LifecycleMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def delete_volume(self, volume_id: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.delete_volume(volume_id, **kwargs))

    def extend_volume(self, volume_id: str, new_size: int, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.extend_volume(volume_id, new_size, **kwargs))

    def retype_volume(self, volume_id: str, new_type: str, migration_policy: str = "never",
                      **kwargs: Any) -> Volume:
        return self._run(lambda c: c.retype_volume(volume_id, new_type, migration_policy,
                                                   **kwargs))

    def migrate_volume(self, volume_id: str, host: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.migrate_volume(volume_id, host, **kwargs))

    def revert_volume(self, volume_id: str, snapshot_id: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.revert_volume(volume_id, snapshot_id, **kwargs))

    def create_snapshot(self, volume_id: str, **kwargs: Any) -> Snapshot:
        return self._run(lambda c: c.create_snapshot(volume_id, **kwargs))

    def modify_snapshot(self, snapshot_id: str, **kwargs: Any) -> Snapshot:
        return self._run(lambda c: c.modify_snapshot(snapshot_id, **kwargs))

    def reset_snapshot_state(self, snapshot_id: str, status: str) -> Snapshot:
        return self._run(lambda c: c.reset_snapshot_state(snapshot_id, status))

    def show_snapshot(self, snapshot_id: str) -> Snapshot:
        return self._run(lambda c: c.show_snapshot(snapshot_id))

    def count_snapshots(self, **kwargs: Any) -> int:
        return self._run(lambda c: c.count_snapshots(**kwargs))

    def list_snapshots(self, **kwargs: Any) -> list[Snapshot]:
        return self._run(lambda c: c.list_snapshots(**kwargs))

    def delete_snapshot(self, snapshot_id: str, **kwargs: Any) -> Snapshot:
        return self._run(lambda c: c.delete_snapshot(snapshot_id, **kwargs))

    def wait_for_snapshot_status(self, snapshot_id: str,
                                 status: str | Iterable[str] = SnapshotStatus.AVAILABLE,
                                 timeout: float | None = None) -> Snapshot:
        return self._run(lambda c: c.wait_for_snapshot_status(snapshot_id, status, timeout))

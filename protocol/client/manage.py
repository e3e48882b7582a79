"""The client library's calls for volume and snapshot manage and unmanage (an
admin's), mixed into ``Client`` and ``SyncClient``:

    for m in await admin.list_manageable("node-1@file"):   # what the backend holds
        print(m.reference, m.size, m.safe_to_manage, m.reason_not_safe)
    vol = await admin.manage_volume("node-1@file", "db-disk.raw", name="db", wait=True)
    snap = await admin.manage_snapshot(vol.id, "db-before.raw", wait=True)
    await admin.unmanage_snapshot(snap.id, wait=True)
    await admin.unmanage_volume(vol.id, wait=True)   # gone here; kept there, renamed

A managed volume is charged to its project as a create is (a managed snapshot as a
snapshot of its volume); an unmanaged one gives its quota back. On the file backend an
unmanaged volume's file is kept as ``unmanaged-volume-<id>`` (a snapshot's as
``unmanaged-snapshot-<id>``), manageable again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cinderblock.protocol.client.lifecycle import (
    AVAILABLE,
    DELETED,
    SNAPSHOT_AVAILABLE,
    SNAPSHOT_DELETED,
)
from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.client.status_waits import StatusWaits
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.manage import (
    ManageableList,
    ManageableRequest,
    ManageableVolume,
    SnapshotManage,
    SnapshotUnmanage,
    VolumeManage,
    VolumeUnmanage,
)
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class ManageMethods:
    timeout: float
    volume_waits: StatusWaits[Volume]
    snapshot_waits: StatusWaits[Snapshot]

    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def manage_volume(
        self, host: str, source_name: str, *, name: str | None = None,
        description: str | None = None, volume_type: str | None = None,
        availability_zone: str | None = None, metadata: dict[str, str] | None = None,
        bootable: bool = False, request_id: str | None = None, wait: bool = False,
        timeout: float | None = None,
    ) -> Volume:
        """Admin: what `host`'s backend holds as `source_name` becomes a volume of the
        admin's project (``creating``; with ``wait``, until ``available``)."""
        body = VolumeManage(host, source_name, name, description, volume_type,
                            availability_zone, metadata or {}, bootable, wait)
        volume = await self.submit_manage(body, request_id, timeout)
        if not wait:
            return volume
        return await self.volume_waits.wait(volume, AVAILABLE, timeout or self.timeout)

    async def submit_manage(self, body: VolumeManage, request_id: str | None = None,
                            timeout: float | None = None) -> Volume:
        """Send a manage exactly as given (a front relays its caller's fields)."""
        raw = await self.call("volume.manage", body, request_id, timeout)
        return parse(Volume, raw, strict=False)

    async def list_manageable(self, host: str, *, limit: int | None = None,
                              marker: str | None = None, snapshots: bool = False
                              ) -> list[ManageableVolume]:
        """Admin: what `host`'s backend holds, by name: each safe to manage (as a
        volume; with ``snapshots``, as a snapshot) or not."""
        op = "snapshot.manageable" if snapshots else "volume.manageable"

        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[ManageableVolume, ...], str | None]:
            reply = parse(ManageableList, await self.call(
                op, ManageableRequest(host, after, left)), strict=False)
            return reply.volumes, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def unmanage_volume(self, volume_id: str, *, request_id: str | None = None,
                              wait: bool = False, timeout: float | None = None) -> Volume:
        """Admin: the volume leaves cinderblock (``unmanaging``; with ``wait``, until
        ``deleted``); its node keeps the data."""
        raw = await self.call("volume.unmanage", VolumeUnmanage(volume_id, wait), request_id,
                              timeout)
        volume = parse(Volume, raw, strict=False)
        if not wait:
            return volume
        return await self.volume_waits.wait(volume, DELETED, timeout or self.timeout)

    async def manage_snapshot(
        self, volume_id: str, source_name: str, *, name: str | None = None,
        description: str | None = None, metadata: dict[str, str] | None = None,
        request_id: str | None = None, wait: bool = False, timeout: float | None = None,
    ) -> Snapshot:
        """Admin: what the volume's node holds as `source_name` becomes a snapshot of
        the volume (``creating``; with ``wait``, until ``available``)."""
        body = SnapshotManage(volume_id, source_name, name, description, metadata or {}, wait)
        snapshot = await self.submit_snapshot_manage(body, request_id, timeout)
        if not wait:
            return snapshot
        return await self.snapshot_waits.wait(snapshot, SNAPSHOT_AVAILABLE,
                                              timeout or self.timeout)

    async def submit_snapshot_manage(self, body: SnapshotManage,
                                     request_id: str | None = None,
                                     timeout: float | None = None) -> Snapshot:
        """Send a snapshot manage exactly as given (a front relays its caller's fields)."""
        raw = await self.call("snapshot.manage", body, request_id, timeout)
        return parse(Snapshot, raw, strict=False)

    async def unmanage_snapshot(self, snapshot_id: str, *, request_id: str | None = None,
                                wait: bool = False, timeout: float | None = None
                                ) -> Snapshot:
        """Admin: the snapshot leaves cinderblock (``unmanaging``; with ``wait``, until
        ``deleted``); its node keeps the data."""
        raw = await self.call("snapshot.unmanage", SnapshotUnmanage(snapshot_id, wait),
                              request_id, timeout)
        snapshot = parse(Snapshot, raw, strict=False)
        if not wait:
            return snapshot
        return await self.snapshot_waits.wait(snapshot, SNAPSHOT_DELETED,
                                              timeout or self.timeout)


class SyncManageMethods:
    def _run(self, make: Callable[[ManageMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def manage_volume(self, host: str, source_name: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.manage_volume(host, source_name, **kwargs))

    def list_manageable(self, host: str, **kwargs: Any) -> list[ManageableVolume]:
        return self._run(lambda c: c.list_manageable(host, **kwargs))

    def unmanage_volume(self, volume_id: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.unmanage_volume(volume_id, **kwargs))

    def manage_snapshot(self, volume_id: str, source_name: str, **kwargs: Any) -> Snapshot:
        return self._run(lambda c: c.manage_snapshot(volume_id, source_name, **kwargs))

    def unmanage_snapshot(self, snapshot_id: str, **kwargs: Any) -> Snapshot:
        return self._run(lambda c: c.unmanage_snapshot(snapshot_id, **kwargs))

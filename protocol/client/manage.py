"""The client library's calls for volume manage and unmanage (an admin's), mixed into
``Client`` and ``SyncClient``:

    for m in await admin.list_manageable("node-1@file"):   # what the backend holds
        print(m.reference, m.size, m.safe_to_manage, m.reason_not_safe)
    vol = await admin.manage_volume("node-1@file", "db-disk.raw", name="db", wait=True)
    await admin.unmanage_volume(vol.id, wait=True)   # gone here; kept there, renamed

A managed volume is charged to the admin's project as a create is; an unmanaged one
gives its quota back. On the file backend an unmanaged volume's file is kept as
``unmanaged-volume-<id>``, manageable again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cinderblock.protocol.client.lifecycle import AVAILABLE, DELETED
from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.client.status_waits import StatusWaits
from cinderblock.protocol.messages.manage import (
    ManageableList,
    ManageableRequest,
    ManageableVolume,
    VolumeManage,
    VolumeUnmanage,
)
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class ManageMethods:
    timeout: float
    volume_waits: StatusWaits[Volume]

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
                              marker: str | None = None) -> list[ManageableVolume]:
        """Admin: what `host`'s backend holds, by name: each safe to manage or not."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[ManageableVolume, ...], str | None]:
            reply = parse(ManageableList, await self.call(
                "volume.manageable", ManageableRequest(host, after, left)), strict=False)
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


class SyncManageMethods:
    def _run(self, make: Callable[[ManageMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def manage_volume(self, host: str, source_name: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.manage_volume(host, source_name, **kwargs))

    def list_manageable(self, host: str, **kwargs: Any) -> list[ManageableVolume]:
        return self._run(lambda c: c.list_manageable(host, **kwargs))

    def unmanage_volume(self, volume_id: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.unmanage_volume(volume_id, **kwargs))

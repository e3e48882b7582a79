"""A driver that stores nothing: sizes live in memory, no I/O of its own.

It exists to measure the control plane alone.  It keeps the same bookkeeping
and the same errors as `FileDriver` (see `base`), so a node behaves the same
with either; only `volume_path` differs (there is no file to export), and a backup
copies no bytes (`backup_view` gives None). A restore still reads the whole backup,
into /dev/null, so a damaged one fails here as it would on a file backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from cinderblock.storage_node.backends.base import (
    Capacity,
    DriverError,
    Inventory,
    InventoryDriver,
    Manageable,
    WriteHold,
    check_not_shrinking,
    validate_id,
    validate_size,
)


class NullDriver(InventoryDriver):
    """In-memory volumes and snapshots on a pretend pool of `capacity_gb` GiB."""

    backend_name = "null"

    def __init__(self, capacity_gb: float = 100000.0) -> None:
        """Start empty."""
        self._capacity_gb = capacity_gb
        self._inventory = Inventory()

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        """Record a volume of `size_gb` GiB."""
        self._inventory.require_new_volume(volume_id)
        self._inventory.volume_sizes[volume_id] = validate_size(size_gb)

    async def delete_volume(self, volume_id: str) -> None:
        """Forget a volume; a missing one is fine."""
        self._inventory.volume_sizes.pop(validate_id(volume_id, "volume"), None)

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Record a bigger size (never smaller)."""
        current = self._inventory.volume_size(volume_id)
        check_not_shrinking(new_size_gb, current, f"extending volume {volume_id}")
        self._inventory.volume_sizes[volume_id] = new_size_gb

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """Record a snapshot the size of its volume."""
        self._inventory.require_new_snapshot(snapshot_id)
        size_gb = self._inventory.volume_size(volume_id)
        self._inventory.snapshot_sizes[snapshot_id] = size_gb

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Forget a snapshot; a missing one is fine."""
        self._inventory.snapshot_sizes.pop(validate_id(snapshot_id, "snapshot"), None)

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Check both exist and the volume is at least the snapshot's size."""
        size_gb = self._inventory.volume_size(volume_id)
        check_not_shrinking(size_gb, self._inventory.snapshot_size(snapshot_id),
                            f"reverting volume {volume_id}")

    def manageable_volumes(self, name: str | None = None) -> list[Manageable]:
        """Nothing: there is no data here to adopt."""
        return []

    async def manage_existing(self, volume_id: str, name: str, size_gb: int) -> None:
        """Refused: there is no data here to adopt."""
        raise DriverError(f"the null backend holds nothing to manage (asked for {name!r})")

    async def unmanage_volume(self, volume_id: str, name: str | None = None) -> str | None:
        """Forget a volume (there are no bytes to keep); a missing one is fine."""
        self._inventory.volume_sizes.pop(validate_id(volume_id, "volume"), None)
        return None

    def manageable_snapshots(self, name: str | None = None) -> list[Manageable]:
        """Nothing: there is no data here to adopt."""
        return []

    async def manage_existing_snapshot(self, snapshot_id: str, volume_id: str, name: str,
                                       size_gb: int) -> None:
        """Refused: there is no data here to adopt."""
        raise DriverError(f"the null backend holds nothing to manage (asked for {name!r})")

    async def unmanage_snapshot(self, snapshot_id: str, name: str | None = None) -> str | None:
        """Forget a snapshot (there are no bytes to keep); a missing one is fine."""
        self._inventory.snapshot_sizes.pop(validate_id(snapshot_id, "snapshot"), None)
        return None

    async def create_volume_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_gb: int
    ) -> None:
        """Record a volume at least as big as the snapshot."""
        self._inventory.require_new_volume(volume_id)
        source_gb = self._inventory.snapshot_size(snapshot_id)
        check_not_shrinking(size_gb, source_gb, f"volume {volume_id} from snapshot")
        self._inventory.volume_sizes[volume_id] = size_gb

    async def create_cloned_volume(
        self, volume_id: str, source_volume_id: str, size_gb: int
    ) -> None:
        """Record a volume at least as big as its source."""
        self._inventory.require_new_volume(volume_id)
        source_gb = self._inventory.volume_size(source_volume_id)
        check_not_shrinking(size_gb, source_gb, f"cloning volume {source_volume_id}")
        self._inventory.volume_sizes[volume_id] = size_gb

    @contextlib.asynccontextmanager
    async def backup_view(self, volume_id: str, snapshot_id: str | None = None,
                          hold: WriteHold | None = None) -> AsyncIterator[Path | None]:
        """None (there are no bytes to copy); `DriverError` if the volume or the snapshot
        is not here."""
        self._inventory.volume_size(volume_id)
        if snapshot_id is not None:
            self._inventory.snapshot_size(snapshot_id)
        yield None

    async def restore_volume(self, volume_id: str, fill: Callable[[int], None]) -> None:
        """`fill` writes into /dev/null (in a worker thread): nothing is kept, but what it
        reads is read and checked."""
        self._inventory.volume_size(volume_id)
        try:
            await asyncio.to_thread(_into_the_sink, fill)
        except OSError as exc:
            raise DriverError(f"restoring volume {volume_id} failed: {exc}") from exc

    async def receive_volume(self, volume_id: str, size_gb: int,
                             fill: Callable[[int], None]) -> None:
        """Record a volume once `fill` has written into /dev/null (in a worker thread):
        nothing is kept, but what it reads is read."""
        self._inventory.require_new_volume(volume_id)
        validate_size(size_gb)
        try:
            await asyncio.to_thread(_into_the_sink, fill)
        except OSError as exc:
            raise DriverError(f"receiving volume {volume_id} failed: {exc}") from exc
        self._inventory.volume_sizes[volume_id] = size_gb

    def volume_path(self, volume_id: str) -> Path | None:
        """Always None (nothing to export); `DriverError` if there is no such volume."""
        self._inventory.volume_size(volume_id)
        return None

    def capacity(self) -> Capacity:
        """The pretend pool, with free space shrinking as volumes are provisioned."""
        provisioned = float(self._inventory.provisioned_gb())
        return self._capacity(self._capacity_gb, max(self._capacity_gb - provisioned, 0.0))

    def capabilities(self) -> dict[str, object]:
        return self._capabilities("none")


def _into_the_sink(fill: Callable[[int], None]) -> None:
    fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        fill(fd)
    finally:
        os.close(fd)

"""A driver wrapper that fails chosen operations on purpose, for tests.

``FaultyDriver(inner, frozenset({"create_volume"}))`` behaves exactly like
`inner` except that `create_volume` raises
``DriverError("injected fault: create_volume")`` before touching `inner`.
``"stall:delete_volume"`` makes `delete_volume` never return instead (a hung
backend, or a node killed mid-operation), and ``"delay:create_volume"`` makes it
wait ``DELAY_S`` first (a slow backend). Fault names are checked at
construction, so a typo fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from cinderblock.storage_node.backends.base import (
    Capacity,
    Driver,
    DriverError,
    Kind,
    Manageable,
    WriteHold,
)

STALL = "stall:"
DELAY = "delay:"
DELAY_S = 2.0
FAULTABLE_OPERATIONS = frozenset(
    {
        "create_volume",
        "delete_volume",
        "extend_volume",
        "create_snapshot",
        "delete_snapshot",
        "revert_to_snapshot",
        "create_volume_from_snapshot",
        "create_cloned_volume",
        "manage_existing",
        "unmanage_volume",
        "manage_existing_snapshot",
        "unmanage_snapshot",
        "backup_source",
        "restore_volume",
        "receive_volume",
        "capacity",
    }
)


class FaultyDriver:
    """Wraps `inner`; each operation named in `faults` raises `DriverError`."""

    def __init__(self, inner: Driver, faults: frozenset[str]) -> None:
        """Raise ValueError if a fault names no operation that can fail."""
        waits = {prefix: frozenset(f.removeprefix(prefix) for f in faults if f.startswith(prefix))
                 for prefix in (STALL, DELAY)}
        unknown = {f for f in faults if ":" not in f} - FAULTABLE_OPERATIONS
        unknown |= {f for f in faults if ":" in f and not f.startswith((STALL, DELAY))}
        for prefix, ops in waits.items():
            unknown |= {prefix + op for op in (ops - FAULTABLE_OPERATIONS) | (ops & {"capacity"})}
        if unknown:
            raise ValueError(
                f"unknown driver faults {sorted(unknown)}; choose from "
                f"{sorted(FAULTABLE_OPERATIONS)}, or stall:/delay:<operation> (not capacity)"
            )
        self.inner = inner
        self.faults = frozenset(faults)
        self.stalls, self.delays = waits[STALL], waits[DELAY]
        self.backend_name = inner.backend_name

    def _check(self, operation: str) -> None:
        if operation in self.faults:
            raise DriverError(f"injected fault: {operation}")

    async def _enter(self, operation: str) -> None:
        """Fail or hang if injected."""
        self._check(operation)
        if operation in self.stalls:
            await asyncio.Event().wait()  # never set: the operation hangs
        if operation in self.delays:
            await asyncio.sleep(DELAY_S)

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("create_volume")
        await self.inner.create_volume(volume_id, size_gb)

    async def delete_volume(self, volume_id: str) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("delete_volume")
        await self.inner.delete_volume(volume_id)

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("extend_volume")
        await self.inner.extend_volume(volume_id, new_size_gb)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("create_snapshot")
        await self.inner.create_snapshot(snapshot_id, volume_id)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("delete_snapshot")
        await self.inner.delete_snapshot(snapshot_id)

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("revert_to_snapshot")
        await self.inner.revert_to_snapshot(volume_id, snapshot_id)

    async def create_volume_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_gb: int
    ) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("create_volume_from_snapshot")
        await self.inner.create_volume_from_snapshot(volume_id, snapshot_id, size_gb)

    async def create_cloned_volume(
        self, volume_id: str, source_volume_id: str, size_gb: int
    ) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("create_cloned_volume")
        await self.inner.create_cloned_volume(volume_id, source_volume_id, size_gb)

    def manageable_volumes(self, name: str | None = None) -> list[Manageable]:
        """Delegate."""
        return self.inner.manageable_volumes(name)

    async def manage_existing(self, volume_id: str, name: str, size_gb: int) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("manage_existing")
        await self.inner.manage_existing(volume_id, name, size_gb)

    async def unmanage_volume(self, volume_id: str, name: str | None = None) -> str | None:
        """Fail or hang if injected, else delegate."""
        await self._enter("unmanage_volume")
        return await self.inner.unmanage_volume(volume_id, name)

    def manageable_snapshots(self, name: str | None = None) -> list[Manageable]:
        """Delegate."""
        return self.inner.manageable_snapshots(name)

    async def manage_existing_snapshot(self, snapshot_id: str, volume_id: str, name: str,
                                       size_gb: int) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("manage_existing_snapshot")
        await self.inner.manage_existing_snapshot(snapshot_id, volume_id, name, size_gb)

    async def unmanage_snapshot(self, snapshot_id: str, name: str | None = None) -> str | None:
        """Fail or hang if injected, else delegate."""
        await self._enter("unmanage_snapshot")
        return await self.inner.unmanage_snapshot(snapshot_id, name)

    @contextlib.asynccontextmanager
    async def backup_view(self, volume_id: str, snapshot_id: str | None = None,
                          hold: WriteHold | None = None) -> AsyncIterator[Path | None]:
        """Fail or hang if injected, else delegate."""
        await self._enter("backup_source")
        async with self.inner.backup_view(volume_id, snapshot_id, hold) as view:
            yield view

    async def restore_volume(self, volume_id: str, fill: Callable[[int], None]) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("restore_volume")
        await self.inner.restore_volume(volume_id, fill)

    async def receive_volume(self, volume_id: str, size_gb: int,
                             fill: Callable[[int], None]) -> None:
        """Fail or hang if injected, else delegate."""
        await self._enter("receive_volume")
        await self.inner.receive_volume(volume_id, size_gb, fill)

    def volume_path(self, volume_id: str) -> Path | None:
        """Delegate."""
        return self.inner.volume_path(volume_id)

    def capacity(self) -> Capacity:
        """Fail if injected, else delegate."""
        self._check("capacity")
        return self.inner.capacity()

    def volumes(self) -> dict[str, int]:
        """Delegate."""
        return self.inner.volumes()

    def snapshots(self) -> dict[str, int]:
        """Delegate."""
        return self.inner.snapshots()

    def volume_count(self) -> int:
        """Delegate."""
        return self.inner.volume_count()

    def holds(self, kind: Kind, object_id: str) -> bool:
        """Delegate."""
        return self.inner.holds(kind, object_id)

    def size_of(self, volume_id: str) -> int | None:
        """Delegate."""
        return self.inner.size_of(volume_id)

    def capabilities(self) -> dict[str, object]:
        """Delegate, adding the injected faults so they show in stats."""
        return {**self.inner.capabilities(), "injected_faults": sorted(self.faults)}

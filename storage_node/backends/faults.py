"""A driver wrapper that fails chosen operations on purpose, for tests.

``FaultyDriver(inner, frozenset({"create_volume"}))`` behaves exactly like
`inner` except that `create_volume` raises
``DriverError("injected fault: create_volume")`` before touching `inner`.
Fault names are checked at construction, so a typo fails loudly.
"""

from __future__ import annotations

from pathlib import Path

from storage_node.backends.base import Capacity, Driver, DriverError

FAULTABLE_OPERATIONS = frozenset(
    {
        "create_volume",
        "delete_volume",
        "extend_volume",
        "create_snapshot",
        "delete_snapshot",
        "create_volume_from_snapshot",
        "create_cloned_volume",
        "capacity",
    }
)


class FaultyDriver:
    """Wraps `inner`; each operation named in `faults` raises `DriverError`."""

    def __init__(self, inner: Driver, faults: frozenset[str]) -> None:
        """Raise ValueError if a fault names no operation that can fail."""
        unknown = set(faults) - FAULTABLE_OPERATIONS
        if unknown:
            raise ValueError(
                f"unknown driver faults {sorted(unknown)}; "
                f"choose from {sorted(FAULTABLE_OPERATIONS)}"
            )
        self.inner = inner
        self.faults = frozenset(faults)
        self.backend_name = inner.backend_name

    def _check(self, operation: str) -> None:
        if operation in self.faults:
            raise DriverError(f"injected fault: {operation}")

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        """Fail if injected, else delegate."""
        self._check("create_volume")
        await self.inner.create_volume(volume_id, size_gb)

    async def delete_volume(self, volume_id: str) -> None:
        """Fail if injected, else delegate."""
        self._check("delete_volume")
        await self.inner.delete_volume(volume_id)

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Fail if injected, else delegate."""
        self._check("extend_volume")
        await self.inner.extend_volume(volume_id, new_size_gb)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """Fail if injected, else delegate."""
        self._check("create_snapshot")
        await self.inner.create_snapshot(snapshot_id, volume_id)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Fail if injected, else delegate."""
        self._check("delete_snapshot")
        await self.inner.delete_snapshot(snapshot_id)

    async def create_volume_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_gb: int
    ) -> None:
        """Fail if injected, else delegate."""
        self._check("create_volume_from_snapshot")
        await self.inner.create_volume_from_snapshot(volume_id, snapshot_id, size_gb)

    async def create_cloned_volume(
        self, volume_id: str, source_volume_id: str, size_gb: int
    ) -> None:
        """Fail if injected, else delegate."""
        self._check("create_cloned_volume")
        await self.inner.create_cloned_volume(volume_id, source_volume_id, size_gb)

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

    def capabilities(self) -> dict[str, object]:
        """Delegate, adding the injected faults so they show in stats."""
        return {**self.inner.capabilities(), "injected_faults": sorted(self.faults)}

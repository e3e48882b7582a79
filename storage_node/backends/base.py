"""The volume-driver contract every storage-node backend fulfils.

A driver owns the bytes of volumes and snapshots on one node; it knows nothing
about the control plane, sockets or volume status.  The storage-node actor calls
the async operations and reads the cheap synchronous views (`capacity`,
`volume_count`, `holds`, `capabilities`) when it reports stats or is probed: they
cost the same however many volumes the node holds (`Sizes` keeps its total as it
changes; at 500,000 volumes, summing took 11 ms a report and copying the map 26 ms).
`volumes` and `snapshots` are copies, for the start and for tests.

Semantics shared by all drivers (and checked by `Inventory`):

* ids match ``[A-Za-z0-9-]{1,64}``; anything else is a `DriverError`, so an id
  can never name a path outside the driver's directory;
* creating something that already exists, or from something missing, is a
  `DriverError`;
* `delete_volume` / `delete_snapshot` of a missing object succeed (idempotent);
* sizes never shrink: `extend_volume` to a smaller size, or a new volume smaller
  than its source, is a `DriverError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

# what holds a guest's writes to a volume while the context lasts (``nbd/write_gate.py``)
WriteHold = Callable[[], AbstractAsyncContextManager[None]]

GIB = 2**30
_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,64}")


class DriverError(Exception):
    """A driver operation failed; the message says what and why."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """A snapshot of a backend's space, in GiB, shaped like Cinder's pool stats."""

    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    thin_provisioning_support: bool
    thick_provisioning_support: bool


Kind = Literal["volume", "snapshot"]


@dataclass(frozen=True, slots=True)
class Manageable:
    """Something the backend holds that could become a volume or a snapshot (Cinder's
    manageable volume or snapshot): `name` is what `manage_existing` (or
    `manage_existing_snapshot`) takes; `size_gb` rounded up, at least 1."""

    name: str
    size_gb: int
    reason_not_safe: str | None = None  # None: safe to manage
    object_id: str | None = None  # the volume (or snapshot) it already is, when it is one


class Driver(Protocol):
    """What the storage node needs from a backend."""

    backend_name: str

    async def create_volume(self, volume_id: str, size_gb: int) -> None: ...

    async def delete_volume(self, volume_id: str) -> None: ...

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None: ...

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None: ...

    async def delete_snapshot(self, snapshot_id: str) -> None: ...

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """The volume's bytes become the snapshot's, its size stays (at least the
        snapshot's); all or nothing, and again is the same."""

    async def create_volume_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_gb: int
    ) -> None: ...

    async def create_cloned_volume(
        self, volume_id: str, source_volume_id: str, size_gb: int
    ) -> None: ...

    def manageable_volumes(self, name: str | None = None) -> list[Manageable]:
        """What could be managed, sorted by name (`name`: that one, if there)."""

    async def manage_existing(self, volume_id: str, name: str, size_gb: int) -> None:
        """What the backend holds as `name` becomes volume `volume_id` of `size_gb`
        GiB (it may not have grown past that since it was listed); its bytes stay."""

    async def unmanage_volume(self, volume_id: str, name: str | None = None) -> str | None:
        """The volume stops being one; its bytes stay on the backend under `name` (or a
        name of the driver's), which is returned (None: nothing was kept). A missing
        volume is fine."""

    def manageable_snapshots(self, name: str | None = None) -> list[Manageable]:
        """What could be managed as a snapshot, sorted by name (`name`: that one)."""

    async def manage_existing_snapshot(self, snapshot_id: str, volume_id: str, name: str,
                                       size_gb: int) -> None:
        """What the backend holds as `name` becomes snapshot `snapshot_id` of volume
        `volume_id` (held here), `size_gb` GiB (no more than the volume's); its bytes
        stay."""

    async def unmanage_snapshot(self, snapshot_id: str, name: str | None = None) -> str | None:
        """As `unmanage_volume`, for a snapshot."""

    def backup_view(self, volume_id: str, snapshot_id: str | None = None,
                    hold: WriteHold | None = None) -> AbstractAsyncContextManager[Path | None]:
        """A file whose bytes a backup of the volume copies, for as long as the context
        lasts: its snapshot `snapshot_id`'s when named, else the volume's as of one
        instant (a guest may be writing it: where the backend cannot clone it
        atomically, a copy made while `hold()` holds the guest's writes; no `hold`:
        nothing writes it, and the volume's own bytes are read); None for a backend that
        holds no bytes. `DriverError` if the volume (or the snapshot) is not here."""
        ...

    async def restore_volume(self, volume_id: str, fill: Callable[[int], None]) -> None:
        """The volume's data replaced whole by what `fill(fd)` writes into a new,
        all-zero file of the volume's size (`fill` blocks: it runs in a worker thread);
        all or nothing: if `fill` raises, the volume keeps its old bytes. The size stays
        the volume's. A backend with no bytes gives `fill` a sink (it still reads)."""

    async def receive_volume(self, volume_id: str, size_gb: int,
                             fill: Callable[[int], None]) -> None:
        """A new volume of `size_gb` GiB holding what `fill(fd)` writes into an all-zero
        file of that size (`fill` blocks: it runs in a worker thread): a migration's copy
        from another backend. The volume is here only once written whole; if `fill`
        raises (or the node dies) nothing of it stays. A backend with no bytes gives
        `fill` a sink."""

    def volume_path(self, volume_id: str) -> Path | None: ...

    def capacity(self) -> Capacity: ...

    def volumes(self) -> dict[str, int]: ...

    def snapshots(self) -> dict[str, int]: ...

    def volume_count(self) -> int: ...

    def holds(self, kind: Kind, object_id: str) -> bool: ...

    def size_of(self, volume_id: str) -> int | None: ...  # GiB; None: not here

    def capabilities(self) -> dict[str, object]: ...


def is_valid_id(object_id: str) -> bool:
    """True if `object_id` is a safe id: ``[A-Za-z0-9-]{1,64}``."""
    return isinstance(object_id, str) and _ID_PATTERN.fullmatch(object_id) is not None


def validate_id(object_id: str, kind: str = "volume") -> str:
    """Return `object_id` if it is a safe id, else raise `DriverError`."""
    if not is_valid_id(object_id):
        raise DriverError(f"invalid {kind} id {object_id!r}: must match [A-Za-z0-9-]{{1,64}}")
    return object_id


def validate_size(size_gb: int) -> int:
    """Return `size_gb` if it is a positive whole number of GiB, else raise."""
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb < 1:
        raise DriverError(f"invalid size {size_gb!r}: must be a positive integer of GiB")
    return size_gb


class Sizes(MutableMapping[str, int]):
    """Id -> GiB, and their sum kept as entries come, change and go."""

    __slots__ = ("_sizes", "total")

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self.total = 0

    def __getitem__(self, object_id: str) -> int:
        return self._sizes[object_id]

    def __setitem__(self, object_id: str, size_gb: int) -> None:
        self.total += size_gb - self._sizes.get(object_id, 0)
        self._sizes[object_id] = size_gb

    def __delitem__(self, object_id: str) -> None:
        self.total -= self._sizes.pop(object_id)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._sizes

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    def copy(self) -> dict[str, int]:
        return dict(self._sizes)


@dataclass(slots=True)
class Inventory:
    """The volumes and snapshots a driver holds (id -> GiB), with the shared checks."""

    volume_sizes: Sizes = field(default_factory=Sizes)
    snapshot_sizes: Sizes = field(default_factory=Sizes)

    def volume_size(self, volume_id: str) -> int:
        """Size of an existing volume; `DriverError` if it does not exist."""
        validate_id(volume_id, "volume")
        if volume_id not in self.volume_sizes:
            raise DriverError(f"volume {volume_id} does not exist")
        return self.volume_sizes[volume_id]

    def snapshot_size(self, snapshot_id: str) -> int:
        """Size of an existing snapshot; `DriverError` if it does not exist."""
        validate_id(snapshot_id, "snapshot")
        if snapshot_id not in self.snapshot_sizes:
            raise DriverError(f"snapshot {snapshot_id} does not exist")
        return self.snapshot_sizes[snapshot_id]

    def require_new_volume(self, volume_id: str) -> None:
        """Raise unless `volume_id` is valid and not yet used."""
        validate_id(volume_id, "volume")
        if volume_id in self.volume_sizes:
            raise DriverError(f"volume {volume_id} already exists")

    def require_new_snapshot(self, snapshot_id: str) -> None:
        """Raise unless `snapshot_id` is valid and not yet used."""
        validate_id(snapshot_id, "snapshot")
        if snapshot_id in self.snapshot_sizes:
            raise DriverError(f"snapshot {snapshot_id} already exists")

    def allocated_gb(self) -> int:
        """Sum of volume sizes."""
        return self.volume_sizes.total

    def provisioned_gb(self) -> int:
        """Sum of volume and snapshot sizes."""
        return self.volume_sizes.total + self.snapshot_sizes.total


class InventoryDriver:
    """The answers every driver that keeps an ``Inventory`` gives the same way."""

    backend_name: str
    _inventory: Inventory

    def volumes(self) -> dict[str, int]:
        """Volume id -> size in GiB (a copy)."""
        return self._inventory.volume_sizes.copy()

    def snapshots(self) -> dict[str, int]:
        """Snapshot id -> size in GiB (a copy)."""
        return self._inventory.snapshot_sizes.copy()

    def volume_count(self) -> int:
        return len(self._inventory.volume_sizes)

    def size_of(self, volume_id: str) -> int | None:
        """The volume's size in GiB, None if it is not here."""
        return self._inventory.volume_sizes.get(volume_id)

    def holds(self, kind: Kind, object_id: str) -> bool:
        """Whether a volume (or snapshot) of this id is here."""
        sizes = self._inventory.volume_sizes if kind == "volume" else \
            self._inventory.snapshot_sizes
        return object_id in sizes

    def _capacity(self, total_gb: float, free_gb: float) -> Capacity:
        """Thin provisioned: allocated = volumes, provisioned = volumes + snapshots."""
        return Capacity(
            total_capacity_gb=total_gb,
            free_capacity_gb=free_gb,
            allocated_capacity_gb=float(self._inventory.allocated_gb()),
            provisioned_capacity_gb=float(self._inventory.provisioned_gb()),
            thin_provisioning_support=True,
            thick_provisioning_support=False,
        )

    def _capabilities(self, clone_method: str) -> dict[str, object]:
        """What the scheduler may rely on."""
        return {
            "volume_backend_name": self.backend_name,
            "storage_protocol": "nbd",
            "clone_method": clone_method,
            "multiattach": True,
            "thin_provisioning_support": True,
            "thick_provisioning_support": False,
        }


def check_not_shrinking(new_size_gb: int, current_gb: int, what: str) -> int:
    """Return `new_size_gb` if valid and at least `current_gb`, else raise."""
    validate_size(new_size_gb)
    if new_size_gb < current_gb:
        raise DriverError(f"{what}: cannot shrink from {current_gb} GiB to {new_size_gb} GiB")
    return new_size_gb

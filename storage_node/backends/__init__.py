"""cinderblock: storage_node/backends — the volume drivers of a storage node.

`make_driver` builds the one a node is configured with: ``"file"`` (sparse raw
files, reflink or sparse copy) or ``"null"`` (no I/O, for measuring the
control plane), optionally wrapped in a `FaultyDriver` for tests.
"""

from __future__ import annotations

from pathlib import Path

from cinderblock.storage_node.backends.base import Capacity, Driver, DriverError
from cinderblock.storage_node.backends.faults import FAULTABLE_OPERATIONS, FaultyDriver
from cinderblock.storage_node.backends.file import CloneMethod, FileDriver
from cinderblock.storage_node.backends.null import NullDriver

__all__ = [
    "FAULTABLE_OPERATIONS",
    "Capacity",
    "CloneMethod",
    "Driver",
    "DriverError",
    "FaultyDriver",
    "FileDriver",
    "NullDriver",
    "make_driver",
]

DRIVER_KINDS = ("file", "null")


def make_driver(
    kind: str, directory: Path, capacity_gb: float | None, faults: frozenset[str]
) -> Driver:
    """Build a driver of `kind`; `directory` is ignored by "null"."""
    driver: Driver
    if kind == "file":
        driver = FileDriver(directory, capacity_gb)
    elif kind == "null":
        driver = NullDriver() if capacity_gb is None else NullDriver(capacity_gb)
    else:
        raise ValueError(f"unknown driver kind {kind!r}; expected one of {DRIVER_KINDS}")
    return FaultyDriver(driver, faults) if faults else driver

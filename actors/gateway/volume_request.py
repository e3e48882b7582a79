"""ExtractVolumeRequestTask's checks, as Cinder's API v3 makes them: pure code.

``validate_create`` turns a ``VolumeCreate`` body into a ``VolumeSpec`` or
raises ``InvalidInput`` / ``NotFound`` naming the field and the value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, NotFound

MAX_NAME = 255
MAX_METADATA_ITEMS = 128
METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. /]{1,255}$")
MAX_SIZE_GB = 1 << 30  # far beyond any backend; keeps sizes in SQLite's int range


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    size: int
    name: str | None
    description: str | None
    volume_type: VolumeType
    availability_zone: str
    metadata: dict[str, str]


class TypeCatalog:
    """Volume types by id and by name (the gateway owns the only instance)."""

    def __init__(self) -> None:
        self.by_id: dict[str, VolumeType] = {}
        self.by_name: dict[str, VolumeType] = {}

    def add(self, vtype: VolumeType) -> None:
        self.by_id[vtype.id] = vtype
        self.by_name[vtype.name] = vtype

    def find(self, name_or_id: str) -> VolumeType:
        found = self.by_id.get(name_or_id) or self.by_name.get(name_or_id)
        if found is None:
            raise NotFound(
                f"volume type {name_or_id!r} could not be found", {"volume_type": name_or_id}
            )
        return found


def check_size(size: Any) -> int:
    if type(size) is not int:
        raise InvalidInput(
            f"size must be an integer number of GiB, got {type(size).__name__} {size!r}",
            {"field": "size"},
        )
    if size < 1:
        raise InvalidInput(f"size must be at least 1 GiB, got {size}", {"field": "size"})
    if size > MAX_SIZE_GB:
        raise InvalidInput(f"size {size} GiB is larger than {MAX_SIZE_GB}", {"field": "size"})
    return size


def check_text(field: str, value: str | None) -> str | None:
    if value is not None and len(value) > MAX_NAME:
        raise InvalidInput(
            f"{field} must be at most {MAX_NAME} characters, got {len(value)}", {"field": field}
        )
    return value


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ITEMS:
        raise InvalidInput(
            f"metadata may have at most {MAX_METADATA_ITEMS} items, got {len(metadata)}",
            {"field": "metadata"},
        )
    for key, value in metadata.items():
        if not METADATA_KEY.fullmatch(key):  # match() would let "key\n" through
            raise InvalidInput(
                f"metadata key {key[:80]!r} must be 1-255 characters of letters, digits, "
                "and - _ : . / or space",
                {"field": "metadata", "key": key[:255]},
            )
        if type(value) is not str or len(value) > MAX_NAME:
            raise InvalidInput(
                f"metadata value for {key!r} must be a string of at most {MAX_NAME} characters",
                {"field": "metadata", "key": key},
            )
    return dict(metadata)


def check_zone(zone: str | None, zones: Collection[str], default: str) -> str:
    if zone is None:
        return default
    if zone not in zones:
        raise InvalidInput(
            f"availability zone {zone!r} is invalid; known zones: {sorted(zones)}",
            {"field": "availability_zone"},
        )
    return zone


def validate_create(
    req: VolumeCreate, types: TypeCatalog, zones: Collection[str], default_zone: str,
    default_type: str,
) -> VolumeSpec:
    return VolumeSpec(
        size=check_size(req.size),
        name=check_text("name", req.name),
        description=check_text("description", req.description),
        volume_type=types.find(req.volume_type or default_type),
        availability_zone=check_zone(req.availability_zone, zones, default_zone),
        metadata=check_metadata(req.metadata),
    )

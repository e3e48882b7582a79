"""Generic volume groups on the wire (client <-> gateway): Cinder's group types (3.11).

A group type is an admin's named set of ``group_specs`` (Cinder's, such as
``consistent_group_snapshot_enabled``) that a group is made with; what the gateway
checks is in ``actors.gateway.group_types``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class GroupType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)  # an admin's to see


@message
@dataclass(frozen=True, slots=True)
class GroupTypeCreate:
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class GroupTypeUpdate:
    """An admin's change to a group type (Cinder's group type update and group specs
    calls): ``name``, ``description`` and ``is_public`` change when given (not None; an
    empty description clears it); ``group_specs`` are merged into the type's and
    ``delete_specs`` names keys to drop."""

    type_id: str
    name: str | None = None
    description: str | None = None
    is_public: bool | None = None
    group_specs: dict[str, Any] = field(default_factory=dict)
    delete_specs: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class GroupTypeRef:
    """A group type by id or name (``default``: the cluster's default group type)."""

    type_id: str


@message
@dataclass(frozen=True, slots=True)
class GroupTypeList:
    group_types: tuple[GroupType, ...] = ()

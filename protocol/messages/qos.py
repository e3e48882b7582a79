"""QoS specs on the wire (admin client <-> gateway): Cinder's ``qos-specs`` API.

A QoS spec is a named set of key/value limits (``total_iops_sec``, ``read_bytes_sec``...)
with a consumer: ``front-end`` (the attaching host applies them: they travel in an
attachment's connection info), ``back-end`` (the storage backend applies them) or
``both``. An admin associates one with volume types (a type has at most one); a volume
has the QoS of its type. What the gateway checks is in ``actors.gateway.qos_specs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class QosSpecs:
    id: str
    name: str
    consumer: str  # front-end | back-end | both
    specs: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class QosCreate:
    """``consumer`` None is Cinder's default, ``back-end``; ``specs`` are checked by the
    gateway (strings of 1-255 characters, the per-GB keys whole numbers)."""

    name: str
    consumer: str | None = None
    specs: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class QosRef:
    """QoS specs by id or name (``qos.show``, ``qos.associations``, ``qos.disassociate_all``)."""

    qos_id: str


@message
@dataclass(frozen=True, slots=True)
class QosUpdate:
    """Merge ``specs`` into the QoS specs (Cinder's ``PUT qos-specs/{id}``); a
    ``consumer`` given changes it. ``delete_keys`` drops keys (each must be there)."""

    qos_id: str
    consumer: str | None = None
    specs: dict[str, Any] = field(default_factory=dict)
    delete_keys: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class QosDelete:
    """``force``: delete it even while volume types are associated with it (they lose it)."""

    qos_id: str
    force: bool = False


@message
@dataclass(frozen=True, slots=True)
class QosAssociation:
    """Associate QoS specs with a volume type (``qos.associate``), or no longer
    (``qos.disassociate``); the type by id or name."""

    qos_id: str
    type_id: str


@message
@dataclass(frozen=True, slots=True)
class QosListRequest:
    """A page of QoS specs, newest first: at most ``limit`` (and 1,000, and about 512 KB)
    after ``marker`` (an id of an earlier page)."""

    limit: int | None = None
    marker: str | None = None


@message
@dataclass(frozen=True, slots=True)
class QosList:
    specs: tuple[QosSpecs, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class QosAssociations:
    """The volume types associated with QoS specs."""

    qos_id: str
    types: tuple[VolumeType, ...] = ()

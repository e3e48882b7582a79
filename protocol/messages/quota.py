"""Quota on the wire: limits, usage, reservations (gateway <-> quota actor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.schema import message

# ---- quota -----------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class QuotaShow:
    project: str | None = None
    defaults: bool = False  # the default limits (Cinder's os-quota-sets/{p}/defaults)


@message
@dataclass(frozen=True, slots=True)
class QuotaSet:
    project: str
    limits: dict[str, int] = field(default_factory=dict)
    in_use: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class QuotaUpdate:
    project: str
    limits: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class QuotaReserve:
    project: str
    deltas: dict[str, int]
    reservation_id: str | None = None
    volume_size: int | None = None  # checked against per_volume_gigabytes (default: the
    # gigabytes delta, a create's size; an extend gives the new size, a snapshot 0)


@message
@dataclass(frozen=True, slots=True)
class ReservationRef:
    reservation_id: str


@message
@dataclass(frozen=True, slots=True)
class Reservation:
    """The quota actor's answer to ``quota.reserve``."""

    reservation_id: str
    expires_at: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class QuotaRelease:
    project: str
    deltas: dict[str, int]

"""Every message body on the wire, as a frozen typed dataclass.

Requests are parsed strictly at the receiving actor (unknown fields are
refused); replies leniently at the client. ``OPS`` maps each op to the body
type its receiver parses, so dispatch never looks inside an untyped map.
Range checks that need the actor's own state (does this volume type exist?)
belong to the actor; this module checks shapes and types only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.schema import message


@message
@dataclass(frozen=True, slots=True)
class Empty:
    pass


# ---- volumes ---------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeCreate:
    size: int | None = None
    name: str | None = None
    description: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    watch: bool = False  # push this volume's status changes to the caller
    snapshot_id: str | None = None  # create from this snapshot (on its node)
    source_volid: str | None = None  # create as a clone of this volume (on its node)


@message
@dataclass(frozen=True, slots=True)
class Volume:
    id: str
    project_id: str
    size: int
    status: str
    name: str | None = None
    description: str | None = None
    volume_type: str | None = None
    volume_type_id: str | None = None
    availability_zone: str | None = None
    host: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    reason: str | None = None  # why it is in error, when it is
    user_id: str | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None


@message
@dataclass(frozen=True, slots=True)
class VolumeRef:
    volume_id: str


@message
@dataclass(frozen=True, slots=True)
class VolumeListRequest:
    all_projects: bool = False
    status: str | None = None
    limit: int | None = None  # at most 1000 a page, as Cinder's osapi_max_limit
    marker: str | None = None  # the last volume id of the previous page


@message
@dataclass(frozen=True, slots=True)
class VolumeList:
    volumes: tuple[Volume, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class VolumeWatch:
    volume_ids: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class VolumeResetState:
    """An admin's os-reset_status: move a stuck volume to ``error`` or ``available``."""

    volume_id: str
    status: str


@message
@dataclass(frozen=True, slots=True)
class VolumeUpdate:
    """A status change reported to the gateway by the scheduler or a node."""

    volume_id: str
    status: str
    host: str | None = None
    reason: str | None = None


# ---- volume types and zones ------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeType:
    id: str
    name: str
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    is_public: bool = True


@message
@dataclass(frozen=True, slots=True)
class TypeCreate:
    name: str
    description: str | None = None
    extra_specs: dict[str, Any] = field(default_factory=dict)
    is_public: bool = True


@message
@dataclass(frozen=True, slots=True)
class TypeList:
    types: tuple[VolumeType, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class AvailabilityZone:
    name: str
    available: bool = True


@message
@dataclass(frozen=True, slots=True)
class ZoneList:
    zones: tuple[AvailabilityZone, ...] = ()


# ---- quota -----------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class QuotaShow:
    project: str | None = None


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
class QuotaRelease:
    project: str
    deltas: dict[str, int]


# ---- scheduling and nodes --------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    """What the scheduler needs to place one volume (Cinder's request_spec)."""

    volume_id: str
    project_id: str
    size: int
    availability_zone: str | None = None
    volume_type_id: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    tried_backends: tuple[str, ...] = ()
    last_error: str | None = None
    snapshot_id: str | None = None  # the node copies this snapshot ...
    source_volid: str | None = None  # ... or this volume (never rescheduled)


@message
@dataclass(frozen=True, slots=True)
class NodeCreateVolume:
    """The scheduler's cast to the chosen node."""

    request: ScheduleRequest
    backend: str
    sched_epoch: str
    sched_seq: int


@message
@dataclass(frozen=True, slots=True)
class BackendStatsMsg:
    """A node's capacity report, published on a heartbeat and after changes."""

    backend: str
    host: str
    availability_zone: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    reserved_percentage: float = 0.0
    thin_provisioning_support: bool = True
    thick_provisioning_support: bool = False
    max_over_subscription_ratio: float = 20.0
    capabilities: dict[str, Any] = field(default_factory=dict)
    sched_epoch: str = ""
    sched_seq: int = 0
    timestamp: float = 0.0
    volumes: int = 0


@message
@dataclass(frozen=True, slots=True)
class Backend:
    """One backend as `backend list` shows it."""

    backend: str
    host: str
    availability_zone: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    reserved_percentage: float = 0.0
    thin_provisioning_support: bool = True
    max_over_subscription_ratio: float = 20.0
    capabilities: dict[str, Any] = field(default_factory=dict)
    age_s: float = 0.0
    up: bool = True
    volumes: int = 0


@message
@dataclass(frozen=True, slots=True)
class BackendList:
    backends: tuple[Backend, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class Events:
    """A batch of events published together (one message per flush)."""

    events: tuple[dict[str, Any], ...] = ()


# op -> the body type its receiver parses
OPS: dict[str, type] = {
    "volume.create": VolumeCreate,
    "volume.show": VolumeRef,
    "volume.list": VolumeListRequest,
    "volume.watch": VolumeWatch,
    "volume.update": VolumeUpdate,
    "volume.reset_state": VolumeResetState,
    "type.create": TypeCreate,
    "type.list": Empty,
    "az.list": Empty,
    "quota.show": QuotaShow,
    "quota.set": QuotaUpdate,
    "quota.reserve": QuotaReserve,
    "quota.commit": ReservationRef,
    "quota.rollback": ReservationRef,
    "quota.release": QuotaRelease,
    "backend.list": Empty,
    "schedule.create": ScheduleRequest,
    "node.create_volume": NodeCreateVolume,
    "ping": Empty,
}

from protocol import (  # noqa: E402  (each module registers its ops)
    messages_attach,  # noqa: F401  (registers its ops)
    messages_flows,  # noqa: F401  (registers its ops)
    messages_lifecycle,  # noqa: F401  (registers its ops)
    messages_quota_sync,  # noqa: F401  (registers its ops)
    messages_reconcile,  # noqa: F401  (registers its ops)
)

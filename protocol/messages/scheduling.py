"""Scheduling on the wire: placement requests, node casts, backend stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.schema import message

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
    manage_ref: str | None = None  # ... or adopts what its backend holds under this name
    backup_id: str | None = None  # ... or writes this backup's data into the new volume
    # Cinder's affinity hints, as the backends of the volumes they name: not one of
    # these (different_host); one of these unless None (same_host)
    avoid_backends: tuple[str, ...] = ()
    only_backends: tuple[str, ...] | None = None
    # a create sent again after its scheduler died: the nodes were fenced for it
    # (``NodeFenceCreates``) and take only a cast that carries this
    fence: str = ""


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
    oldest_seq: int = 0  # the lowest sched_seq of sched_epoch still being created here (0: none)
    incarnation: str = ""  # this node process (another one: it was restarted)


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
    disabled: bool = False  # by an operator: no new volume is placed on it
    disabled_reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class BackendEnable:
    """An admin takes a backend out of placement, or puts it back (Cinder's service
    disable/enable of a ``cinder-volume``); the answer is the state as it now is."""

    backend: str
    enabled: bool
    reason: str | None = None  # why it is disabled (at most 255 characters)


BACKENDS_PAGE_MAX = 1000  # backends in one answer of backend.list
BACKENDS_PAGE_BYTES = 512 * 1024  # ... and about this many bytes of them, packed


@message
@dataclass(frozen=True, slots=True)
class BackendListRequest:
    """A page of the backends, by name, those after ``marker`` (a backend's name; one
    gone since is a place in the order all the same)."""

    marker: str | None = None
    limit: int = BACKENDS_PAGE_MAX


@message
@dataclass(frozen=True, slots=True)
class BackendList:
    """A page of the backends (at most ``limit`` and about ``BACKENDS_PAGE_BYTES``:
    one reply stays far below a frame however many there are and whatever they
    carry); ``next_marker`` names the last when more follow."""

    backends: tuple[Backend, ...] = ()
    next_marker: str | None = None

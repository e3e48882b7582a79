"""Volumes, volume types and availability zones on the wire (client <-> gateway)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class Empty:
    pass


# ---- volumes ---------------------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeCreate:
    """Cinder's create body. ``size`` (a number or a string of digits), ``metadata``
    (a map or null) and ``multiattach`` (a boolean or a boolean word) are checked by the
    gateway as Cinder's schema does (``actors.gateway.volume_request``)."""

    size: Any = None
    name: str | None = None
    description: str | None = None
    volume_type: str | None = None
    availability_zone: str | None = None
    metadata: Any = field(default_factory=dict)
    watch: bool = False  # push this volume's status changes to the caller
    snapshot_id: str | None = None  # create from this snapshot (on its node)
    source_volid: str | None = None  # create as a clone of this volume (on its node)
    display_name: str | None = None  # Cinder's older names for name and description
    display_description: str | None = None
    multiattach: Any = None  # only false is accepted (a multiattach type is the way)
    image_ref: str | None = None  # imageRef / image_id: no images here (404)
    backup_id: str | None = None  # no backups here (404)
    group_id: str | None = None  # no groups here (404)
    consistencygroup_id: str | None = None
    # Cinder's affinity hints (OS-SCH-HNT:scheduler_hints): a volume id or a list of
    # them; the new volume goes on a backend that holds none of different_host's, and
    # on one that holds one of same_host's (the caller's own volumes)
    same_host: Any = None
    different_host: Any = None


@message
@dataclass(frozen=True, slots=True)
class Volume:
    id: str
    project_id: str
    size: int
    status: VolumeStatus
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
    bootable: bool = False
    readonly: bool = False
    multiattach: bool = False  # its type allows more than one attachment
    image_metadata: dict[str, str] = field(default_factory=dict)  # Cinder's volume_image_metadata
    migration_status: str | None = None  # Cinder's: its latest migration's, shown to admins
    group_id: str | None = None  # the generic volume group it is in (Cinder's 3.13)


@message
@dataclass(frozen=True, slots=True)
class VolumeRef:
    volume_id: str


@message
@dataclass(frozen=True, slots=True)
class VolumeSummaryRequest:
    """How many volumes, how many GiB, and which metadata (Cinder's 3.12/3.36 summary):
    the caller's project's, or with ``all_projects`` (an admin's) every project's or
    ``project_id``'s."""

    all_projects: bool = False
    project_id: str | None = None


@message
@dataclass(frozen=True, slots=True)
class VolumeSummary:
    total_count: int = 0
    total_size: int = 0  # GiB
    metadata: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> its values


# Cinder's comparisons of a listing's time filter (``created_at=gt:...,lte:...``, 3.60)
TIME_COMPARISONS = ("gt", "gte", "eq", "neq", "lt", "lte")


def time_comparisons(raw: str, name: str) -> dict[str, float]:
    """Cinder's time filter (``gt:2026-12-01T00:00:00,lte:...``, 3.60) as
    ``VolumeListRequest`` takes it: each comparison (gt, gte, eq, neq, lt, lte) with its
    ISO 8601 time (UTC unless it says otherwise), in seconds since the epoch; a
    comparison given twice, the last. Anything else is ``InvalidInput`` naming it."""
    found: dict[str, float] = {}
    for unit in raw.split(","):
        comparison, colon, when = unit.partition(":")
        if not colon:
            raise InvalidInput(f"Invalid {name} value: {unit!r} is not COMPARISON:TIME")
        if comparison not in TIME_COMPARISONS:
            raise InvalidInput(f"Invalid {comparison} operator: {name} compares by "
                               f"{', '.join(TIME_COMPARISONS)}")
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            raise InvalidInput(f"Invalid {when} value: {name} takes an ISO 8601 time"
                               ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        found[comparison] = moment.timestamp()
    return found


@message
@dataclass(frozen=True, slots=True)
class VolumeListRequest:
    all_projects: bool = False
    status: str | None = None
    limit: int | None = None  # at most 1000 a page, as Cinder's osapi_max_limit
    marker: str | None = None  # the last volume id of the previous page
    name: str | None = None  # only volumes of this name
    metadata: dict[str, str] | None = None  # only volumes with these metadata items
    oldest_first: bool = False  # the other way: the volumes after the marker are newer
    project_id: str | None = None  # with all_projects (an admin's): this project's only
    sort: str | None = None  # "size:asc", "name:desc" ...: another order than by creation
    bootable: bool | None = None  # only the bootable volumes (True) or the others (False)
    availability_zone: str | None = None  # only the volumes of this zone
    size: int | None = None  # only the volumes of this size, in GiB
    with_count: bool = False  # and how many the listing lists in all (Cinder's 3.45)
    # Cinder's time comparisons (3.60): {"gt": t, "lte": t, ...}, t in seconds since the
    # epoch, each of TIME_COMPARISONS
    created_at: dict[str, float] | None = None
    updated_at: dict[str, float] | None = None
    migration_status: str | None = None  # only volumes whose latest migration's is this
    group_id: str | None = None  # only this group's volumes


@message
@dataclass(frozen=True, slots=True)
class VolumeList:
    volumes: tuple[Volume, ...] = ()
    next_marker: str | None = None  # set when another page follows
    count: int | None = None  # with_count: how many the listing lists in all


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
    status: VolumeStatus
    host: str | None = None
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class VolumeModify:
    """A user's change to a volume's name, description, metadata or flags (Cinder's
    volume update, metadata calls, os-set_bootable and os-update_readonly_flag).

    ``name`` and ``description`` change only when listed in ``fields`` (so that null
    can clear them); ``metadata`` is merged into the volume's, or replaces it all with
    ``replace_metadata``; ``delete_metadata`` names keys to drop. ``bootable`` and
    ``readonly`` take a boolean or a boolean word, as Cinder's actions do.
    ``image_metadata`` and ``delete_image_metadata``: the same for the volume's image
    metadata (Cinder's ``os-set_image_metadata`` and ``os-unset_image_metadata``)."""

    volume_id: str
    fields: tuple[str, ...] = ()
    name: str | None = None
    description: str | None = None
    metadata: Any = None
    replace_metadata: bool = False
    delete_metadata: tuple[str, ...] = ()
    bootable: Any = None
    readonly: Any = None
    image_metadata: Any = None  # merged into the volume's image metadata
    delete_image_metadata: tuple[str, ...] = ()  # its keys to drop


# ---- volume types and zones ------------------------------------------------


@message
@dataclass(frozen=True, slots=True)
class VolumeType:
    id: str
    name: str
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    is_public: bool = True
    qos_specs_id: str | None = None  # the QoS specs associated with it (protocol.messages.qos)


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
class TypeRef:
    """A volume type by id or name (``type.delete``, ``type.access_list``)."""

    type_id: str


@message
@dataclass(frozen=True, slots=True)
class TypeUpdate:
    """An admin's change to a volume type (Cinder's type update and extra specs calls):
    ``name``, ``description`` and ``is_public`` change when given (not None; an empty
    description clears it); ``extra_specs`` are merged into the type's and
    ``delete_specs`` names keys to drop. As Cinder's, the extra specs of a type that
    any volume has are not changed; the default type keeps its name."""

    type_id: str
    name: str | None = None
    description: str | None = None
    is_public: bool | None = None
    extra_specs: dict[str, Any] = field(default_factory=dict)
    delete_specs: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class TypeAccess:
    """An admin grants (``type.access_add``) or takes back (``type.access_remove``) a
    project's use of a private volume type."""

    type_id: str
    project: str


@message
@dataclass(frozen=True, slots=True)
class TypeAccessList:
    type_id: str
    projects: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class TypeDefault:
    """A project's own default volume type (Cinder's default-types, 3.62): the type a
    create of that project without a type gets, instead of the configured default.
    ``type.default_set`` takes the type by name or id and answers its id."""

    project_id: str
    volume_type_id: str


@message
@dataclass(frozen=True, slots=True)
class TypeDefaultRef:
    project_id: str


@message
@dataclass(frozen=True, slots=True)
class TypeDefaultListRequest:
    """A page of projects' default types, by project id: at most ``limit`` (and 1,000)
    after the project ``marker``."""

    limit: int | None = None
    marker: str | None = None


@message
@dataclass(frozen=True, slots=True)
class TypeDefaultList:
    defaults: tuple[TypeDefault, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class AvailabilityZone:
    name: str
    available: bool = True


@message
@dataclass(frozen=True, slots=True)
class ZoneList:
    zones: tuple[AvailabilityZone, ...] = ()

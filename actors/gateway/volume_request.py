"""ExtractVolumeRequestTask's checks, as Cinder's API v3 makes them: pure code.

Two steps, in Cinder's order, for every front (the client library and the REST front
send the same ``VolumeCreate``):

1. ``normalize_create`` is Cinder's request schema (``cinder/api/schemas/volumes.py``)
   and the API controller's own checks (``cinder/api/v3/volumes.py``): names and
   descriptions stripped of surrounding white space (``display_name`` /
   ``display_description`` when ``name`` / ``description`` are absent), a size given as
   a string of digits taken as a number, ``metadata: null`` as no metadata,
   ``multiattach: true`` refused (a multiattach volume type is the way), a malformed
   ``snapshot_id`` / ``source_volid`` / ``backup_id`` / ``consistencygroup_id`` refused
   (``invalid_input``), and an image, backup or group named that this cluster does not
   have (it has none) ``not_found``; the affinity hints ``same_host`` and
   ``different_host`` each a volume id or a list of distinct ones.
2. ``validate_create``, after the source is resolved, is Cinder's create flow
   (``cinder/volume/flows/api/create_volume.py``): the size is a whole number above 0,
   within the type's ``provisioning:min_vol_size`` / ``provisioning:max_vol_size``; the
   zone is known and among the type's ``RESKEY:availability_zones``.

Sizes up to Cinder's database maximum (2^31 - 1) pass here: quota is what refuses
them (``over_quota``), as in Cinder. Either step raises ``InvalidInput`` / ``NotFound``
naming the field and the value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cinderblock.protocol.messages.limits import MAX_SIZE_GB
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, NotFound

MAX_NAME = 255
MAX_HINTED = 100  # volumes one affinity hint may name
METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. /]{1,255}$")
MAX_IMAGE_VALUE = 65_535  # an image metadata value: Cinder's column is a MySQL TEXT
MAX_IMAGE_METADATA = 128 << 10  # a volume's image metadata, keys and values, in bytes
SIZE_DIGITS = re.compile(r"^[0-9]+$")
MIN_SIZE_KEY = "provisioning:min_vol_size"
MAX_SIZE_KEY = "provisioning:max_vol_size"
TYPE_ZONES_KEY = "RESKEY:availability_zones"
TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})


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
        self.access: dict[str, set[str]] = {}  # private type id -> projects that may use it
        self.project_defaults: dict[str, str] = {}  # project -> its own default type's id

    def add(self, vtype: VolumeType) -> None:
        self.by_id[vtype.id] = vtype
        self.by_name[vtype.name] = vtype

    def remove(self, vtype: VolumeType) -> None:
        self.by_id.pop(vtype.id, None)
        self.by_name.pop(vtype.name, None)
        self.access.pop(vtype.id, None)

    def default_for(self, project: str, configured: str) -> str:
        """The type (an id, or the configured default's name) a create of ``project``
        without a type gets: the project's own default, if an admin set one."""
        return self.project_defaults.get(project, configured)

    def usable(self, vtype: VolumeType, project: str, admin: bool) -> bool:
        """Public types are everyone's; a private one is its projects' (and admins')."""
        return vtype.is_public or admin or project in self.access.get(vtype.id, ())

    def find_for(self, name_or_id: str, project: str, admin: bool) -> VolumeType:
        """``find``, but a private type the project may not use is not found either."""
        found = self.find(name_or_id)
        if not self.usable(found, project, admin):
            raise NotFound(f"Volume type with name {name_or_id} could not be found.",
                           {"volume_type": name_or_id})
        return found

    def find(self, name_or_id: str) -> VolumeType:
        found = self.by_id.get(name_or_id) or self.by_name.get(name_or_id)
        if found is None:
            raise NotFound(
                f"Volume type with name {name_or_id} could not be found.",
                {"volume_type": name_or_id},
            )
        return found


def field_error(field: str, value: Any, why: str) -> InvalidInput:
    """Cinder's wording for a value its request schema refuses."""
    shown = repr(value) if not isinstance(value, str) else value
    return InvalidInput(
        f"Invalid input for field/attribute {field}. Value: {str(shown)[:300]}. {why}",
        {"field": field},
    )


# ---- step 1: the request schema --------------------------------------------------------------
def normalize_create(req: VolumeCreate) -> VolumeCreate:
    """The request as Cinder's API hands it to the create flow, or why not."""
    name = req.name if req.name is not None else req.display_name
    description = req.description if req.description is not None else req.display_description
    if multiattach_asked(req.multiattach):
        raise InvalidInput(
            "multiattach parameter has been removed. The default behavior is to use "
            "multiattach enabled volume types. Contact your administrator to create a "
            "multiattach enabled volume type and use it to create multiattach volumes.",
            {"field": "multiattach"},
        )
    for field in ("snapshot_id", "source_volid", "consistencygroup_id", "backup_id"):
        check_uuid(field, getattr(req, field))
    if req.volume_type is not None and len(req.volume_type) > MAX_NAME:
        raise field_error("volume_type", req.volume_type,
                          f"is too long (more than {MAX_NAME} characters)")
    if req.availability_zone is not None and not 1 <= len(req.availability_zone) <= MAX_NAME:
        raise field_error("availability_zone", req.availability_zone,
                          f"must be 1-{MAX_NAME} characters")
    check_absent_sources(req)
    return replace(
        req, size=schema_size(req.size), name=check_text("name", name),
        description=check_text("description", description), display_name=None,
        display_description=None, metadata=check_metadata(req.metadata),
        volume_type=req.volume_type or None, multiattach=None,
        same_host=check_hinted("same_host", req.same_host),
        different_host=check_hinted("different_host", req.different_host),
    )


def check_hinted(hint: str, value: Any) -> tuple[str, ...] | None:
    """An affinity hint's volumes, as Cinder's schema takes them: one volume id, or a
    list of distinct ones (here at most ``MAX_HINTED``); None without the hint."""
    if value is None:
        return None
    named = [value] if isinstance(value, str) else value
    if not isinstance(named, list | tuple) or not all(isinstance(v, str) for v in named):
        raise field_error(hint, value, "is not a volume id or a list of volume ids")
    if len(named) > MAX_HINTED:
        raise field_error(hint, f"{len(named)} volumes", f"names at most {MAX_HINTED}")
    if len(set(named)) != len(named):
        raise field_error(hint, value, "has non-unique elements")
    for volume_id in named:
        check_uuid(hint, volume_id)
    return tuple(named)


def hinted_backends(same_host: Collection[str] | None, different_host: Collection[str] | None,
                    backend_of: Callable[[str], str | None]
                    ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """Cinder's affinity filters as the backends they leave: (the backends to avoid,
    those to choose among, None for any). ``backend_of`` is a volume's backend if it is
    one of the caller's own volumes and placed (Cinder's filters see only those):
    different_host avoids the backends of those it names; same_host takes any backend
    holding one of them, and none if it names none that is (an empty list, as no hint)."""
    if not same_host and not different_host:  # a create's usual case: no lookup at all
        return (), None
    avoid = {b for v in different_host or () if (b := backend_of(v)) is not None}
    only = None if not same_host else {
        b for v in same_host if (b := backend_of(v)) is not None}
    return tuple(sorted(avoid)), None if only is None else tuple(sorted(only))


def check_source_hinted(source_backend: str, avoid: Collection[str],
                        only: Collection[str] | None) -> None:
    """A copy of a snapshot or a volume is made on its source's backend: refused if the
    affinity hints leave that backend out (Cinder's scheduler would find no backend)."""
    if source_backend in avoid or (only is not None and source_backend not in only):
        raise InvalidInput(f"A volume made from a snapshot or a volume is made on its "
                           f"source's backend, {source_backend}, which the scheduler hints "
                           "(same_host, different_host) leave out", {"field": "scheduler_hints"})


def multiattach_asked(value: Any) -> bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise field_error("multiattach", value, "is not a valid boolean value")


def check_uuid(field: str, value: str | None) -> None:
    if value is None:
        return
    try:
        uuid.UUID(value)
    except ValueError:
        raise field_error(field, value, f"'{value[:80]}' is not a 'uuid'") from None


def check_absent_sources(req: VolumeCreate) -> None:
    """Images and groups: this cluster keeps none, so any named is not found (a backup
    named is the create flow's: ``backups.backup_source_of_create``)."""
    image = req.image_ref
    if image is not None:
        if len(image) > MAX_NAME:
            raise field_error("imageRef", image, f"is too long (more than {MAX_NAME})")
        if not image:
            raise InvalidInput("Invalid imageRef provided.", {"field": "imageRef"})
        raise NotFound(f"Image {image} could not be found.", {"imageRef": image})
    sources = [f for f in ("snapshot_id", "source_volid", "backup_id") if getattr(req, f)]
    if len(sources) > 1:
        raise InvalidInput(f"give one source of {' and '.join(sources)}, not both",
                           {"field": sources[-1]})
    for field in ("group_id", "consistencygroup_id"):
        group = getattr(req, field)
        if group is not None and len(group) > MAX_NAME:
            raise field_error(field, group, f"is too long (more than {MAX_NAME})")
    if req.consistencygroup_id is not None:  # Cinder's consistency groups: none here
        raise NotFound(f"Group {req.consistencygroup_id} could not be found.",
                       {"consistencygroup_id": req.consistencygroup_id})


def schema_size(size: Any) -> int | None:
    """``size`` as Cinder's schema takes it: null, a whole number or a string of digits."""
    if size is None:
        return None
    if isinstance(size, str):
        if not SIZE_DIGITS.match(size):
            raise field_error("size", size, f"'{size[:80]}' does not match '^[0-9]+$'")
        return int(size)
    if type(size) is not int:
        raise field_error("size", size, f"{size!r} is not of type 'integer', 'string', 'null'")
    if size < 1:
        raise field_error("size", size, f"{size} is less than the minimum of 1")
    if size > MAX_SIZE_GB:
        raise field_error("size", size, f"{size} is greater than the maximum of {MAX_SIZE_GB}")
    return size


# ---- shared checks ---------------------------------------------------------------------------
def check_size(size: Any) -> int:
    """A whole number of GiB above 0, as the create flow's ``validate_int`` wants."""
    if type(size) is not int or size < 1:
        raise InvalidInput(
            f"Volume size '{size}' must be an integer and greater than 0", {"field": "size"}
        )
    if size > MAX_SIZE_GB:
        raise field_error("size", size, f"{size} is greater than the maximum of {MAX_SIZE_GB}")
    return size


def check_text(field: str, value: Any) -> str | None:
    """A name or description: surrounding white space dropped, then at most 255."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise field_error(field, value, f"{value!r} is not of type 'string', 'null'")
    text: str = value.strip()
    if len(text) > MAX_NAME:
        raise InvalidInput(
            f"{field} has {len(text)} characters, more than {MAX_NAME}", {"field": field}
        )
    return text


def check_metadata(metadata: Any) -> dict[str, str]:
    """Cinder's metadata schema: keys of ``[a-zA-Z0-9-_:. /]{1,255}``, string values of
    at most 255; ``null`` is none. Cinder sets no cap on the number of items."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise field_error("metadata", metadata, "is not of type 'object', 'null'")
    for key, value in metadata.items():
        check_metadata_key(key, "metadata")
        if type(value) is not str or len(value) > MAX_NAME:
            raise InvalidInput(
                f"metadata value for {key!r} must be a string of at most {MAX_NAME} characters",
                {"field": "metadata", "key": key},
            )
    return dict(metadata)


def check_metadata_key(key: Any, what: str) -> None:
    """A metadata (or image metadata) key as Cinder's schema has it."""
    if not isinstance(key, str) or not METADATA_KEY.fullmatch(key):
        raise InvalidInput(f"{what} key {str(key)[:80]!r} must be 1-255 characters of "
                           "letters, digits, and - _ : . / or space",
                           {"field": "metadata", "key": str(key)[:255]})


def check_image_metadata(metadata: Any) -> dict[str, str]:
    """Cinder's image metadata schema (``os-set_image_metadata``): keys as metadata's,
    string values of at most ``MAX_IMAGE_VALUE`` (a MySQL TEXT's); and here at most
    ``MAX_IMAGE_METADATA`` bytes of keys and values in all, since the gateway holds a
    volume's in memory while it is in use."""
    if not isinstance(metadata, Mapping):
        raise field_error("metadata", metadata, "is not of type 'object'")
    total = 0
    for key, value in metadata.items():
        check_metadata_key(key, "image metadata")
        if type(value) is not str or len(value) > MAX_IMAGE_VALUE:
            raise InvalidInput(f"image metadata value for {key!r} must be a string of at most "
                               f"{MAX_IMAGE_VALUE} characters", {"field": "metadata", "key": key})
        total += len(key.encode()) + len(value.encode())
    if total > MAX_IMAGE_METADATA:
        raise InvalidInput(f"image metadata of {total} bytes: a volume holds at most "
                           f"{MAX_IMAGE_METADATA} bytes of keys and values",
                           {"field": "metadata", "bytes": total})
    return dict(metadata)


def check_zone(zone: str | None, zones: Collection[str], default: str,
               vtype: VolumeType | None = None) -> str:
    """The zone, among the cluster's and the type's ``RESKEY:availability_zones``."""
    safe = type_zones(vtype, zones)
    if zone is None:
        if default in safe:
            return default
        return sorted(safe)[0]
    if zone not in safe:
        raise InvalidInput(f"Availability zone '{zone}' is invalid.",
                           {"field": "availability_zone", "zones": sorted(safe)})
    return zone


def type_zones(vtype: VolumeType | None, zones: Collection[str]) -> set[str]:
    raw = (vtype.extra_specs.get(TYPE_ZONES_KEY) if vtype is not None else None)
    if not raw:
        return set(zones)
    wanted = {z.strip() for z in raw.split(",") if z.strip()}
    safe = wanted & set(zones)
    if not safe:
        raise InvalidInput(
            f"The type of availability zone(s) {sorted(wanted)} is invalid: none is known.",
            {"field": "volume_type", "zones": sorted(wanted)},
        )
    return safe


def check_type_size(size: int, vtype: VolumeType) -> None:
    """The type's ``provisioning:min_vol_size`` and ``provisioning:max_vol_size``."""
    specs = vtype.extra_specs
    low, high = _spec_int(specs, MIN_SIZE_KEY), _spec_int(specs, MAX_SIZE_KEY)
    if low is not None and size < low:
        raise InvalidInput(
            f"Specified volume size of '{size}' is less than the minimum required size of "
            f"'{low}' for volume type '{vtype.name}'.", {"field": "size"})
    if high is not None and size > high:
        raise InvalidInput(
            f"Specified volume size of '{size}' is greater than the maximum allowable size "
            f"of '{high}' for volume type '{vtype.name}'.", {"field": "size"})


def _spec_int(specs: Mapping[str, str], key: str) -> int | None:
    raw = specs.get(key)
    return int(raw) if raw and raw.strip().isdigit() else None


# ---- step 2: the create flow -----------------------------------------------------------------
def validate_create(
    req: VolumeCreate, types: TypeCatalog, zones: Collection[str], default_zone: str,
    default_type: str,
) -> VolumeSpec:
    """``req`` as ``normalize_create`` left it, its source resolved."""
    vtype = types.find(req.volume_type or default_type)
    size = check_size(req.size)
    check_type_size(size, vtype)
    return VolumeSpec(
        size=size,
        name=check_text("name", req.name),
        description=check_text("description", req.description),
        volume_type=vtype,
        availability_zone=check_zone(req.availability_zone, zones, default_zone, vtype),
        metadata=check_metadata(req.metadata),
    )

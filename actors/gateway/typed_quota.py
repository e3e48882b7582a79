"""A volume type's own quota (Cinder's ``VolumeTypeResource``), named at the edge.

The quota actor keeps ``volumes_<type id>``, ``gigabytes_<type id>`` and
``snapshots_<type id>`` (``messages.quota.with_type`` adds them to a change's deltas),
so a type's rename changes nothing kept. Users see and set them by the type's name, as
Cinder's API shows them (``volumes_lvmdriver-1``): this module turns one into the other.
Plain code, no I/O.

* ``named_quota``: a quota set as shown. Each type the project may use (``shown``) has
  its three resources, -1 and none in use unless the quota actor has more; a type the
  project may not use is shown only if it has a limit or usage there; a deleted type's
  rows are not shown (none can be in use: a type in use is not deleted).
* ``typed_limits``: limits as set, by name or id, turned to ids; a type that does not
  exist is Cinder's "Bad key".
* ``named_over_quota``: a refused reservation's message and details, by name (the
  gateway's every quota call passes through it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.protocol.messages.quota import (
    TYPED_USAGES,
    QuotaSet,
    split_typed,
    typed_resource,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, OverQuota

UNLIMITED = -1


def _type_names(types: TypeCatalog) -> dict[str, str]:
    """Each type's name by its id."""
    return {t.id: t.name for t in types.by_id.values()}


def by_name(resources: Mapping[str, int], types: TypeCatalog) -> dict[str, int]:
    """``resources`` with each volume type's named by the type's name; one of a type
    that no longer exists is left out."""
    return _by_name(resources, _type_names(types))


def _by_name(resources: Mapping[str, int], names: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for resource, value in resources.items():
        typed = split_typed(resource)
        if typed is None:
            out[resource] = value
        elif (name := names.get(typed[1])) is not None:
            out[typed_resource(typed[0], name)] = value
    return out


def named_quota(q: QuotaSet, types: TypeCatalog, shown: Iterable[VolumeType]) -> QuotaSet:
    """``q`` (typed resources by id) as users see it: by name, each of ``shown`` with its
    three resources."""
    names = _type_names(types)
    limits, in_use, reserved = (_by_name(d, names) for d in (q.limits, q.in_use, q.reserved))
    for vtype in shown:
        for base in TYPED_USAGES:
            resource = typed_resource(base, vtype.name)
            limits.setdefault(resource, UNLIMITED)
            if q.in_use or q.reserved:  # a defaults' set has no usage
                in_use.setdefault(resource, 0)
                reserved.setdefault(resource, 0)
    return QuotaSet(q.project, limits, in_use, reserved)


def shown_types(types: TypeCatalog, project: str, admin: bool) -> list[VolumeType]:
    """The types whose quota a set shows: those ``project`` may use (every one, for an
    admin's view of the default class)."""
    return sorted((t for t in types.by_id.values() if types.usable(t, project, admin)),
                  key=lambda t: t.name)


def typed_limits(limits: Mapping[str, Any], types: TypeCatalog) -> dict[str, Any]:
    """``limits`` as the quota actor takes them: a type's own by its id, whether given
    by name or id; InvalidInput naming a key of a type that does not exist."""
    out: dict[str, Any] = {}
    for resource, value in limits.items():
        typed = split_typed(resource) if isinstance(resource, str) else None
        if typed is None:
            out[resource] = value
            continue
        base, ref = typed
        vtype = types.by_name.get(ref) or types.by_id.get(ref)
        if vtype is None:
            raise InvalidInput(f"Bad key(s) in quota set: {resource} (no volume type "
                               f"{ref!r})", {"field": resource})
        out[typed_resource(base, vtype.id)] = value
    return out


def named_over_quota(exc: OverQuota, types: TypeCatalog) -> OverQuota:
    """A refused reservation (the quota actor's words and details) with each volume
    type's resource named by the type's name."""
    names = _type_names(types)

    def named(resource: Any) -> Any:
        typed = split_typed(resource) if isinstance(resource, str) else None
        if typed is None or typed[1] not in names:
            return resource
        return typed_resource(typed[0], names[typed[1]])

    details = dict(exc.details)
    overs = details.get("overs")
    listed = [o for o in overs if isinstance(o, dict)] if isinstance(overs, list) else []
    renamed = {r: new for o in (details, *listed)
               if isinstance(r := o.get("resource"), str) and (new := named(r)) != r}
    if not renamed:
        return exc
    message = exc.message
    for old, new in renamed.items():
        message = message.replace(old, new)
    if "resource" in details:
        details["resource"] = named(details["resource"])
    if isinstance(overs, list):
        details["overs"] = [{**o, "resource": named(o.get("resource"))}
                            if isinstance(o, dict) else o for o in overs]
    return OverQuota(message, details)

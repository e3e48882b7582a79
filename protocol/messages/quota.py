"""Quota on the wire: limits, usage, reservations (gateway <-> quota actor)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import message

# ---- quota -----------------------------------------------------------------

# A volume type's own quota of each of these (Cinder's ``VolumeTypeResource``): the
# resource ``volumes_<type>``. The quota actor and the gateway name the type by its
# id (a rename changes nothing kept); the gateway shows and takes it by its name, as
# Cinder's API does.
TYPED_USAGES = ("volumes", "gigabytes", "snapshots")
MAX_TYPE_REF = 255  # the longest type id or name a typed resource may carry


def typed_resource(resource: str, type_ref: str) -> str:
    """``volumes_<type_ref>``: the type's own share of ``resource``."""
    return f"{resource}_{type_ref}"


def split_typed(resource: str) -> tuple[str, str] | None:
    """``("volumes", ref)`` for ``volumes_<ref>`` (and gigabytes, snapshots); None for
    any other name (``per_volume_gigabytes`` among them)."""
    base, sep, ref = resource.partition("_")
    if sep and ref and base in TYPED_USAGES and len(ref) <= MAX_TYPE_REF:
        return base, ref
    return None


def with_type(deltas: Mapping[str, int], type_id: str | None) -> dict[str, int]:
    """``deltas`` and, for a volume of type ``type_id``, each again as that type's own
    (Cinder's ``add_volume_type_opts``): ``{"volumes": 1}`` -> ``{"volumes": 1,
    "volumes_<type_id>": 1}``."""
    out = dict(deltas)
    if type_id:
        for resource, amount in deltas.items():
            if resource in TYPED_USAGES:
                out[f"{resource}_{type_id}"] = amount
    return out


def volume_amounts(size: int, type_id: str | None) -> dict[str, int]:
    """What a volume of ``size`` GiB and that type counts against its project."""
    return with_type({"volumes": 1, "gigabytes": size}, type_id)


def snapshot_amounts(size: int, type_id: str | None) -> dict[str, int]:
    """What a snapshot of ``size`` GiB (its volume's) and that type counts."""
    return with_type({"snapshots": 1, "gigabytes": size}, type_id)


def backup_amounts(size: int) -> dict[str, int]:
    """What a backup of ``size`` GiB takes (Cinder's ``backups`` and
    ``backup_gigabytes``: no volume type has a share of them)."""
    return {"backups": 1, "backup_gigabytes": size}


def add_amounts(amounts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sum of several ``amounts``, by resource."""
    total: dict[str, int] = {}
    for each in amounts:
        for resource, amount in each.items():
            total[resource] = total.get(resource, 0) + amount
    return total



@message
@dataclass(frozen=True, slots=True)
class QuotaShow:
    project: str | None = None
    defaults: bool = False  # the default limits (Cinder's os-quota-sets/{p}/defaults)


@message
@dataclass(frozen=True, slots=True)
class QuotaDelete:
    """An admin puts a project back on the default limits (Cinder's quota delete)."""

    project: str | None = None


@message
@dataclass(frozen=True, slots=True)
class QuotaSet:
    project: str
    limits: dict[str, int] = field(default_factory=dict)
    in_use: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)


QUOTAS_MAX = 500  # projects one quota.show_many may name (a reply of ~100 KB)


@message
@dataclass(frozen=True, slots=True)
class QuotaShowMany:
    """The limits and usage of each of ``projects`` (at most ``QUOTAS_MAX``) in one call:
    what a metrics exporter reads of every project it has seen, every few seconds."""

    projects: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class QuotaSets:
    quotas: tuple[QuotaSet, ...] = ()


def check_projects(projects: tuple[str, ...]) -> None:
    """``quota.show_many``'s projects: 1 to ``QUOTAS_MAX`` names, each 1-255 characters."""
    if not 0 < len(projects) <= QUOTAS_MAX:
        raise InvalidInput(f"quota.show_many takes 1 to {QUOTAS_MAX} projects, "
                           f"not {len(projects)}", {"field": "projects"})
    for project in projects:
        if not 0 < len(project) <= 255:
            raise InvalidInput("a project is 1-255 characters", {"field": "projects"})


@message
@dataclass(frozen=True, slots=True)
class QuotaUpdate:
    project: str
    limits: dict[str, Any] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class QuotaDefaultsUpdate:
    """An admin sets limits of the default quota class (Cinder's quota-class update of
    ``default``): every project without its own limit has these."""

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
class Reservation:
    """The quota actor's answer to ``quota.reserve``."""

    reservation_id: str
    expires_at: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class QuotaOp:
    """One quota change the gateway's journal owes: ``commit`` or ``rollback`` of
    ``reservation_id``, or ``release`` of ``deltas`` of ``project``; ``op_id``
    makes it apply at most once."""

    kind: str
    op_id: str
    reservation_id: str = ""
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class QuotaApply:
    """``quota.apply``: ordered ops, applied in order, each at most once.
    ``earlier_answered``: the gateway (its ``incarnation``, ``incarnation_of``) has had
    the answer to every op it or an earlier incarnation sent before these (their
    journal rows are gone: none can be sent again), so the quota actor may forget the
    ids it finished before them (``QuotaBook.forget_finished``)."""

    ops: tuple[QuotaOp, ...] = ()
    earlier_answered: bool = False
    incarnation: str = ""


@message
@dataclass(frozen=True, slots=True)
class QuotaApplied:
    """One outcome per op: ``done``, ``repeat`` or ``refused: <why>``."""

    outcomes: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class QuotaAbandon:
    """``quota.rollback_abandoned``: roll back the pending reservations of the
    gateway's incarnations before ``incarnation`` not in ``referenced`` (and, for an
    incarnation of ``incarnation_of``'s form, refuse later reserves of older ones)."""

    incarnation: str
    referenced: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class QuotaAbandoned:
    rolled_back: tuple[str, ...] = ()


ORDERED_INCARNATION = 16  # the length of an incarnation that begins with its start


def incarnation_of(started_at: float, salt: str) -> str:
    """A gateway incarnation (the first part of its reservation ids) that sorts by its
    start: the start in milliseconds, 12 hex digits, then 4 hex digits of ``salt``."""
    return f"{int(started_at * 1000):012x}{salt[:4]:0>4}"


class ReservationIds:
    """The reservation ids one gateway incarnation makes, ``<incarnation>.<32 hex>``,
    in the order it makes them: a count (16 hex digits), then 16 random ones (64 bits:
    two incarnations that began in the same millisecond with the same salt still make
    different ids). Made in order, each id lands at the end of quota.db's tables keyed
    by it (``reservations``, and ``finished_ops``, which keeps a week of them), where a
    random one dirtied a page of its own wherever it fell (``bench.quota_rows``)."""

    def __init__(self, incarnation: str) -> None:
        self.incarnation = incarnation
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self.incarnation}.{next(self._count):016x}{os.urandom(8).hex()}"

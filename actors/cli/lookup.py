"""A volume, snapshot, backup or volume type named on the command line by its id or by a unique
name.

As python-openstackclient's ``find_resource``: the reference is tried as an id
first; if no record has that id, the caller's records with that name are asked of the
gateway (its name filter). No match is ``not_found``; more than one is refused
(``ambiguous``) with every candidate's id listed, so the user can pick one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.wire.errors import CinderblockError, NotFound

if TYPE_CHECKING:
    from cinderblock.protocol.client.client import SyncClient

T = TypeVar("T", Volume, Snapshot, Backup)


class AmbiguousName(CinderblockError):
    """More than one record has the name given; ``details["candidates"]`` lists their ids."""

    code = "ambiguous"


def find_volume(c: SyncClient, ref: str) -> Volume:
    return _find("volume", ref, c.show_volume, lambda: c.list_volumes(name=ref))


def find_snapshot(c: SyncClient, ref: str) -> Snapshot:
    return _find("snapshot", ref, c.show_snapshot, lambda: c.list_snapshots(name=ref))


def find_backup(c: SyncClient, ref: str) -> Backup:
    return _find("backup", ref, c.show_backup, lambda: c.list_backups(name=ref))


def find_type(c: SyncClient, ref: str) -> VolumeType:
    """A volume type by id or name, among those the caller may see (types have unique
    names, and no op shows one type: the listing is all of them)."""
    for vtype in c.list_types():
        if ref in (vtype.id, vtype.name):
            return vtype
    raise NotFound(f"Volume type {ref} could not be found.", {"volume_type": ref})


def volume_id(c: SyncClient, ref: str | None) -> str | None:
    return None if ref is None else find_volume(c, ref).id


def _find(what: str, ref: str, by_id: Callable[[str], T], every: Callable[[], Sequence[T]],
          ) -> T:
    try:
        return by_id(ref)
    except NotFound:
        pass
    named = [r for r in every() if r.name == ref]
    if not named:
        raise NotFound(f"no {what} with the name or id {ref!r}", {what: ref})
    if len(named) > 1:
        ids = [r.id for r in named]
        raise AmbiguousName(
            f"more than one {what} is named {ref!r}; give an id: {', '.join(ids)}",
            {what: ref, "candidates": ids})
    return named[0]


def describe(exc: Exception) -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) of an error the CLI reports."""
    if isinstance(exc, CinderblockError):
        return exc.code, exc.message, dict(exc.details or {})
    return "usage", str(exc), {}

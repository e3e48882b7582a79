"""``volume.modify`` and ``snapshot.modify``: a user's changes that need no node.

Cinder's volume update (name, description, metadata), the volume metadata calls
(merge, replace, delete a key), ``os-set_bootable``, ``os-update_readonly_flag`` and
the image metadata actions (``os-set_image_metadata``, ``os-unset_image_metadata``);
Cinder's snapshot update and snapshot metadata calls (the same merge, replace, delete).
The text rules are the create's (``volume_request``): names stripped, metadata keys
and values as Cinder's schema. Every check runs before the first change, so a
refused request changes nothing; the record is saved before the answer.
"""

from __future__ import annotations

from typing import Any, Protocol

from cinderblock.actors.gateway.volume_request import (
    FALSE_WORDS,
    TRUE_WORDS,
    check_image_metadata,
    check_metadata,
    check_text,
    field_error,
)
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.lifecycle import Snapshot, SnapshotModify
from cinderblock.protocol.messages.volumes import Volume, VolumeModify
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound

EDITABLE_TEXT = ("name", "description")
BUSY = frozenset({VolumeStatus.DELETING, VolumeStatus.UNMANAGING})


class EditServices(Protocol):
    store: GatewayStore

    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...


class VolumeEditor:
    def __init__(self, services: EditServices) -> None:
        self.s = services

    def handlers(self) -> dict[str, Handler]:
        return {"volume.modify": self.on_modify, "snapshot.modify": self.on_snapshot_modify}

    async def on_modify(self, req: Request) -> Volume:
        body: VolumeModify = req.body
        rec = self._visible(body.volume_id, req.ctx)
        if rec.status in BUSY:
            raise InvalidState(f"Invalid volume: volume {rec.id} is {rec.status.value}",
                               {"status": rec.status.value})
        change = planned_change(body, rec)
        for name, value in change.items():
            setattr(rec, name, value)
        await self.s.store.save_details(rec)
        self.s.publish(rec, push=False)
        return rec.view()

    async def on_snapshot_modify(self, req: Request) -> Snapshot:
        body: SnapshotModify = req.body
        rec = self.s.store.snapshots.get(body.snapshot_id)
        if rec is None or (rec.project_id != req.ctx.project_id and not req.ctx.is_admin):
            raise NotFound(f"Snapshot {body.snapshot_id} could not be found.",
                           {"snapshot_id": body.snapshot_id})
        unknown = set(body.fields) - set(EDITABLE_TEXT)
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)}; only name and description",
                               {"field": "fields"})
        texts = {f: check_text(f, getattr(body, f)) for f in body.fields}
        metadata = changed_metadata(rec.metadata, body.metadata, body.replace_metadata,
                                    body.delete_metadata)
        for field, value in texts.items():
            setattr(rec, field, value)
        rec.metadata = metadata
        await self.s.store.snapshots.save_details(rec)
        return rec.view()

    def _visible(self, volume_id: str, ctx: Context) -> VolumeRecord:
        rec = self.s.store.volumes.get(volume_id)
        if rec is None or (rec.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"Volume {volume_id} could not be found.", {"volume_id": volume_id})
        return rec


def planned_change(body: VolumeModify, rec: VolumeRecord) -> dict[str, Any]:
    """The new values of what ``body`` changes, all checked; nothing is changed here."""
    change: dict[str, Any] = {}
    unknown = set(body.fields) - set(EDITABLE_TEXT)
    if unknown:
        raise InvalidInput(f"cannot change {sorted(unknown)}; only name and description",
                           {"field": "fields"})
    for field in body.fields:
        change[field] = check_text(field, getattr(body, field))
    metadata = changed_metadata(rec.metadata, body.metadata, body.replace_metadata,
                                body.delete_metadata)
    if metadata != rec.metadata:
        change["metadata"] = metadata
    for flag in ("bootable", "readonly"):
        value = getattr(body, flag)
        if value is not None:
            change[flag] = boolean(flag, value)
    image = changed_image_metadata(rec, body.image_metadata, body.delete_image_metadata)
    if image != rec.image_metadata:
        change["image_metadata"] = image
    return change


def changed_image_metadata(rec: VolumeRecord, metadata: Any, delete: tuple[str, ...]
                           ) -> dict[str, str]:
    """The volume's image metadata with ``metadata`` merged in and the ``delete`` keys
    dropped (Cinder's ``os-set_image_metadata`` and ``os-unset_image_metadata``), the
    whole checked; a new dict."""
    changed = dict(rec.image_metadata)
    if metadata is not None:
        changed.update(check_image_metadata(metadata))
    for key in delete:
        if key not in changed:
            raise NotFound(f"Glance metadata for volume/snapshot {rec.id} cannot be found "
                           f"(no key {key!r}).", {"volume_id": rec.id, "key": key})
        del changed[key]
    return check_image_metadata(changed) if metadata is not None else changed


def changed_metadata(current: dict[str, str], metadata: Any, replace: bool,
                     delete: tuple[str, ...]) -> dict[str, str]:
    """``current`` with ``metadata`` merged in (or, with ``replace``, instead of it) and
    the ``delete`` keys dropped, all checked; a new dict, ``current`` is not changed."""
    changed = dict({} if replace else current)
    if metadata is not None or replace:
        changed.update(check_metadata(metadata))
    for key in delete:
        if key not in changed:
            raise NotFound(f"Metadata item was not found for key {key!r}.", {"key": key})
        del changed[key]
    return changed


def boolean(field: str, value: Any) -> bool:
    """A boolean, or one of Cinder's boolean words ("true", "no", "1"...)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise field_error(field, value, f"'{value}' is not a valid boolean value")

"""QoS specs: create, list, change, delete, and associate them with volume types.

As Cinder's ``qos-specs`` API, for admins (``cinder/volume/qos_specs.py``):

* a QoS spec has a unique name, a consumer (``front-end``, ``back-end`` — the
  default — or ``both``) and specs: keys and values, strings of 1-255 and 0-255
  characters. The six limits libvirt and Cinder name (``total_iops_sec``,
  ``read_bytes_sec``...: ``TUNE_OPTIONS``), their per-GB forms (``..._per_gb``) and the
  bounds of those (``..._per_gb_min``, ``..._max``) must be whole numbers here: they are
  counted with when a volume is attached, where a word would fail every attach (Cinder
  keeps any string);
* a volume type has at most one QoS spec: associating a type that has another is
  ``invalid_input``; associating it again with its own, or disassociating a type that
  does not have it, changes nothing;
* a QoS spec that types are associated with is deleted only with ``force``, which
  disassociates them in the same transaction.

What the specs do, per GB worked out for the volume's size as Cinder's
``_parse_connection_options`` does (at least ``_per_gb_min``, at most ``_max``):

* front end (``front-end`` or ``both``; ``front_end_specs``): a volume's attachments carry
  them as Cinder's ``connection_info['data']['qos_specs']`` (None without), for the
  attaching host to apply (Nova gives them to libvirt);
* back end (``back-end`` or ``both``; ``back_end_limits``): ``node.export`` names the six
  limits among them, and the node's NBD server holds the export's reads and writes to
  them (``storage_node/nbd/throttle.py``), as a Cinder driver with QoS support does. Both
  are taken when the volume is exported: a change reaches attachments made after it.

An in-use volume's retype may not change the front-end QoS (``qos_allows_retype``).

A change is made in memory and then written; a failed write brings memory back to the
file (``QosStore.reread`` and the types' own).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from cinderblock.actors.gateway.guards import require_admin
from cinderblock.actors.gateway.paging import FIXED_BYTES, cut_page, page_size
from cinderblock.actors.gateway.qos_store import QosStore
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_text
from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.gateway.volume_types import merged_specs
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.qos import (
    QosAssociation,
    QosAssociations,
    QosCreate,
    QosDelete,
    QosList,
    QosListRequest,
    QosSpecs,
    QosUpdate,
)
from cinderblock.protocol.messages.volumes import Empty, VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput, NotFound

CONSUMERS = ("front-end", "back-end", "both")  # Cinder's CONTROL_LOCATION
DEFAULT_CONSUMER = "back-end"
FRONT_END = frozenset({"front-end", "both"})
BACK_END = frozenset({"back-end", "both"})
# The limits Cinder works out per GB of a volume (``_parse_connection_options``).
TUNE_OPTIONS = ("read_iops_sec", "read_bytes_sec", "write_iops_sec", "write_bytes_sec",
                "total_iops_sec", "total_bytes_sec")
WHOLE_NUMBER_KEYS = frozenset(f"{option}{suffix}" for option in TUNE_OPTIONS
                              for suffix in ("", "_per_gb", "_per_gb_min", "_max"))
MAX_TEXT = 255


# ---- the rules (plain code) ---------------------------------------------------------


def check_consumer(consumer: object) -> str:
    if consumer not in CONSUMERS:
        raise InvalidInput(f"Invalid input received: consumer {str(consumer)[:80]!r} is not "
                           f"one of {', '.join(CONSUMERS)}", {"field": "consumer"})
    return str(consumer)


def check_qos_specs(specs: Mapping[str, Any]) -> dict[str, str]:
    """``specs`` as they may be kept: Cinder's ``validate_dictionary_string_length``,
    and whole numbers where a volume's attach will count with them."""
    for key, value in specs.items():
        if not 1 <= len(key) <= MAX_TEXT:
            raise InvalidInput(f"Invalid input received: key {key[:80]!r} must be 1-255 "
                               "characters", {"field": "specs", "key": key[:MAX_TEXT]})
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise InvalidInput(f"Invalid input received: the value of {key[:80]!r} must be a "
                               "string of at most 255 characters",
                               {"field": "specs", "key": key})
        if key in WHOLE_NUMBER_KEYS and not (value.isascii() and value.isdigit()):
            raise InvalidInput(f"Invalid input received: {key} must be a whole number, not "
                               f"{value[:80]!r}", {"field": "specs", "key": key})
    return dict(specs)


def front_end_specs(qos: QosSpecs | None, size_gb: int) -> dict[str, Any] | None:
    """What an attachment of a volume of ``size_gb`` GiB whose type has ``qos`` carries
    as ``qos_specs``: Cinder's ``_parse_connection_options``, per-GB limits worked out
    (at least ``_per_gb_min``, at most ``_max``)."""
    if qos is None or qos.consumer not in FRONT_END:
        return None
    return _worked_out(qos.specs, size_gb)


def back_end_limits(qos: QosSpecs | None, size_gb: int) -> dict[str, int]:
    """The limits the node holds an export of such a volume to (``node.export``): the
    back-end (or ``both``) specs among ``TUNE_OPTIONS``, per-GB ones worked out."""
    if qos is None or qos.consumer not in BACK_END:
        return {}
    specs = _worked_out(qos.specs, size_gb)
    return {key: int(specs[key]) for key in TUNE_OPTIONS if key in specs}


def _worked_out(kept: Mapping[str, str], size_gb: int) -> dict[str, Any]:
    specs: dict[str, Any] = dict(kept)
    for option in TUNE_OPTIONS:
        per_gb = specs.pop(f"{option}_per_gb", None)
        if per_gb is None:
            continue
        value = max(int(specs.pop(f"{option}_per_gb_min", 0)), int(per_gb) * size_gb)
        specs[option] = min(value, int(specs.pop(f"{option}_max", value)))
    return specs


def qos_allows_retype(status: VolumeStatus, old: QosSpecs | None, new: QosSpecs | None) -> bool:
    """Cinder's ``volume_qos_allows_retype``: an in-use volume keeps its front-end QoS
    (nothing would tell the attached host of a change): the same QoS spec, or none that a
    front end consumes on either side."""
    if status is not VolumeStatus.IN_USE:
        return True
    if old is not None and new is not None and old.id == new.id:
        return True
    return all(q is None or q.consumer not in FRONT_END for q in (old, new))


def qos_bytes(qos: QosSpecs) -> int:
    """About how many bytes the spec takes in a reply (an upper bound for its texts)."""
    return FIXED_BYTES + len(qos.name.encode()) + sum(
        len(k.encode()) + len(v.encode()) + 4 for k, v in qos.specs.items())


# ---- the API -------------------------------------------------------------------------


class TypeChanges(Protocol):
    def install_changed(self, old: VolumeType, new: VolumeType) -> None: ...


class QosServices(Protocol):
    store: GatewayStore
    types: TypeCatalog

    @property
    def volume_types(self) -> TypeChanges: ...


class QosSpecsApi:
    def __init__(self, services: QosServices) -> None:
        self.s = services

    @property
    def qos(self) -> QosStore:
        return self.s.store.qos

    def handlers(self) -> dict[str, Handler]:
        return {
            "qos.create": self.on_create,
            "qos.list": self.on_list,
            "qos.show": self.on_show,
            "qos.update": self.on_update,
            "qos.delete": self.on_delete,
            "qos.associations": self.on_associations,
            "qos.associate": self.on_associate,
            "qos.disassociate": self.on_disassociate,
            "qos.disassociate_all": self.on_disassociate_all,
        }

    def on_list(self, req: Request) -> QosList:
        """A page, newest first (as volumes': ``limit``, ``marker``, at most 1,000 and
        about 512 KB: a spec's keys are not bounded in number, so neither is one reply
        holding them all)."""
        body: QosListRequest = req.body
        require_admin(req.ctx, "list QoS specs")
        size = page_size(body.limit)
        listed = sorted(self.qos.by_id.values(), key=lambda q: (q.created_at, q.id),
                        reverse=True)
        if body.marker is not None:
            ids = [q.id for q in listed]
            if body.marker not in ids:
                raise InvalidInput(f"marker [{body.marker}] not found", {"marker": body.marker})
            listed = listed[ids.index(body.marker) + 1:]
        found, next_marker = cut_page(listed[:size + 1], size, qos_bytes)
        return QosList(tuple(found), next_marker)

    def on_show(self, req: Request) -> QosSpecs:
        require_admin(req.ctx, "see QoS specs")
        return self.qos.find(req.body.qos_id)

    async def on_create(self, req: Request) -> QosSpecs:
        body: QosCreate = req.body
        require_admin(req.ctx, "create QoS specs")
        name = check_text("name", body.name) or ""
        if not name:
            raise InvalidInput("QoS specs name must be 1-255 characters", {"field": "name"})
        if name in self.qos.by_name:
            raise InvalidInput(f"QoS Specs {name} already exists.", {"qos_specs": name})
        consumer = DEFAULT_CONSUMER if body.consumer is None else check_consumer(body.consumer)
        qos = QosSpecs(str(uuid.uuid4()), name, consumer, check_qos_specs(body.specs),
                       time.time())
        await self.qos.queue_add(qos)
        return qos

    async def on_update(self, req: Request) -> QosSpecs:
        body: QosUpdate = req.body
        require_admin(req.ctx, "change QoS specs")
        old = self.qos.find(body.qos_id)
        specs = merged_specs(old.specs, check_qos_specs(body.specs), body.delete_keys,
                             lambda key: NotFound(f"QoS spec {key} is not found in QoS specs "
                                                  f"{old.id}.", {"qos_specs": old.id,
                                                                 "key": key}))
        consumer = old.consumer if body.consumer is None else check_consumer(body.consumer)
        new = QosSpecs(old.id, old.name, consumer, specs, old.created_at)
        if new != old:
            await self.qos.queue_save(new)
        return new

    async def on_delete(self, req: Request) -> Empty:
        body: QosDelete = req.body
        require_admin(req.ctx, "delete QoS specs")
        qos = self.qos.find(body.qos_id)
        if self._types_of(qos) and not body.force:
            raise InvalidInput("Qos specs still in use.", {"qos_specs": qos.id})
        pending = [*self._disassociate(qos, self._types_of(qos)), self.qos.queue_remove(qos)]
        for written in pending:
            await written
        return Empty()

    def on_associations(self, req: Request) -> QosAssociations:
        require_admin(req.ctx, "see what QoS specs are associated with")
        qos = self.qos.find(req.body.qos_id)
        return QosAssociations(qos.id, tuple(sorted(self._types_of(qos), key=lambda t: t.name)))

    async def on_associate(self, req: Request) -> Empty:
        body: QosAssociation = req.body
        require_admin(req.ctx, "associate QoS specs with a volume type")
        qos = self.qos.find(body.qos_id)
        vtype = self.s.types.find(body.type_id)
        if vtype.qos_specs_id == qos.id:
            return Empty()
        if vtype.qos_specs_id is not None:
            raise InvalidInput(f"Type {vtype.id} is already associated with another qos specs: "
                               f"{vtype.qos_specs_id}", {"volume_type": vtype.name})
        await self._queue_set_qos(vtype, qos.id)
        return Empty()

    async def on_disassociate(self, req: Request) -> Empty:
        body: QosAssociation = req.body
        require_admin(req.ctx, "disassociate QoS specs from a volume type")
        qos = self.qos.find(body.qos_id)
        vtype = self.s.types.find(body.type_id)
        for written in self._disassociate(qos, [vtype]):
            await written
        return Empty()

    async def on_disassociate_all(self, req: Request) -> Empty:
        require_admin(req.ctx, "disassociate QoS specs from every volume type")
        qos = self.qos.find(req.body.qos_id)
        for written in self._disassociate(qos, self._types_of(qos)):
            await written
        return Empty()

    def _types_of(self, qos: QosSpecs) -> list[VolumeType]:
        return [t for t in self.s.types.by_id.values() if t.qos_specs_id == qos.id]

    def _queue_set_qos(self, vtype: VolumeType, qos_id: str | None) -> asyncio.Future[None]:
        new = replace(vtype, qos_specs_id=qos_id)
        self.s.volume_types.install_changed(vtype, new)
        return self.s.store.queue_type_qos(new)

    def _disassociate(self, qos: QosSpecs,
                      types: list[VolumeType]) -> list[asyncio.Future[None]]:
        """Queue (in one transaction) the types in ``types`` that have ``qos`` without it."""
        return [self._queue_set_qos(t, None) for t in types if t.qos_specs_id == qos.id]

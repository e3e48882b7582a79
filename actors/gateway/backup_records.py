"""Cinder's backup records: ``export_record`` describes a backup so that another
cluster (or this one, after its gateway.db was lost) can ``import_record`` it, as long
as its nodes read the backup repository that holds it (a shared ``backup_path``).

    backup_import_api   ExtractImportTask → QuotaReserveTask → CheckBackupTask
                          → ImportEntryTask

The record (``backup_url``) is base64 of JSON: the backup's row as this gateway keeps it
(id, volume, size, node, names, metadata, times, parent) and what it kept of its volume
(``VolumeMeta``). Importing one is an admin's, as Cinder's: the record is parsed and
every field checked (``parse_record``: a clear error names what is wrong), the backup's
id must be new here, quota (``backups``, ``backup_gigabytes``) is reserved for the
admin's project, and the node the record names is asked whether its repository holds
that backup whole, of that volume and size (``node.check_backup``, a call). Only then is
the row written, ``available``, with its quota's commit: one transaction. A refused
import writes nothing and gives its reservation back. Unlike Cinder's (``creating``
until the backup service has looked), the answer waits for the node's, so there is no
imported backup in a transitional status for anyone to mend.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.backup_store import BackupRecord, VolumeMeta
from cinderblock.actors.gateway.lifecycle_flows import QuotaReserveTask
from cinderblock.actors.gateway.volume_request import (
    MAX_NAME,
    check_image_metadata,
    check_metadata,
    check_text,
    check_uuid,
)
from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.runtime.config import host_of
from cinderblock.protocol.messages.backups import (
    CheckedBackup,
    ExportedBackup,
    NodeCheckBackup,
)
from cinderblock.protocol.messages.limits import MAX_SIZE_GB
from cinderblock.protocol.messages.quota import backup_amounts
from cinderblock.protocol.states import BackupStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from cinderblock.protocol.wire.schema import parse

B = BackupStatus
BACKUP_SERVICE = "cinderblock.storage_node.backup_repository"  # what export names
MAX_URL = 256 << 10  # a record's text: a backup's row and its volume's details


# ---- the record (plain code) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportedBackup:
    """What a record says of its backup, every field checked."""

    id: str
    volume_id: str
    size: int
    host: str  # the backend of the node that made it ("node-1@file")
    snapshot_id: str | None = None
    name: str | None = None
    description: str | None = None
    container: str | None = None
    availability_zone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    data_timestamp: float = 0.0
    parent_id: str | None = None
    volume_meta: VolumeMeta = field(default_factory=VolumeMeta)


def export_record(rec: BackupRecord, meta: VolumeMeta | None) -> ExportedBackup:
    """The record of an available backup, as ``import_record`` reads it."""
    doc = {
        "id": rec.id, "volume_id": rec.volume_id, "size": rec.size, "host": rec.host,
        "snapshot_id": rec.snapshot_id, "name": rec.name, "description": rec.description,
        "container": rec.container, "availability_zone": rec.availability_zone,
        "metadata": rec.metadata, "created_at": rec.created_at,
        "data_timestamp": rec.data_timestamp, "parent_id": rec.parent_id,
        "volume_meta": None if meta is None else json.loads(meta.to_json()),
    }
    url = base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()
    return ExportedBackup(BACKUP_SERVICE, url)


def parse_record(record: ExportedBackup) -> ImportedBackup:
    """The backup a record describes; ``InvalidInput`` says what is wrong with it."""
    if record.backup_service != BACKUP_SERVICE:
        raise InvalidInput(f"backup_service {record.backup_service[:100]!r} is not this "
                           f"cluster's ({BACKUP_SERVICE}): its backups cannot be read here",
                           {"field": "backup_service"})
    if len(record.backup_url) > MAX_URL:
        raise InvalidInput(f"backup_url is longer than {MAX_URL} characters",
                           {"field": "backup_url"})
    try:
        doc = json.loads(base64.b64decode(record.backup_url, validate=True))
    except (binascii.Error, ValueError, RecursionError):  # (JSON nested past the stack)
        raise InvalidInput("backup_url is not base64 of a JSON document (as export_record "
                           "gives it)", {"field": "backup_url"}) from None
    if not isinstance(doc, dict):
        raise _bad("the record is not a JSON object")
    if "id" not in doc:
        raise _bad("Provided backup record is missing an id")
    if "size" not in doc:
        raise _bad("Provided backup record is missing size attribute")
    size = doc["size"]
    if type(size) is not int or not 1 <= size <= MAX_SIZE_GB:
        raise _bad(f"size {str(size)[:40]} is not a whole number of GiB from 1 to "
                   f"{MAX_SIZE_GB}")
    for key in ("id", "volume_id", "snapshot_id", "parent_id"):
        if key in ("id", "volume_id") or doc.get(key) is not None:
            _uuid(doc, key)
    return ImportedBackup(
        id=doc["id"], volume_id=doc["volume_id"], size=size, host=_host(doc),
        snapshot_id=doc.get("snapshot_id"), name=_text(doc, "name"),
        description=_text(doc, "description"), container=_short(doc, "container"),
        availability_zone=_short(doc, "availability_zone"),
        metadata=_checked(check_metadata, doc.get("metadata"), "metadata"),
        created_at=_time(doc, "created_at"), data_timestamp=_time(doc, "data_timestamp"),
        parent_id=doc.get("parent_id"), volume_meta=_volume_meta(doc.get("volume_meta")),
    )


def _bad(why: str, key: str = "backup_url") -> InvalidInput:
    return InvalidInput(why, {"field": key})


def _uuid(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise _bad(f"the record's {key} is not a string", key)
    _checked(lambda v: check_uuid(key, v), value, key)
    return value


def _host(doc: dict[str, Any]) -> str:
    host = doc.get("host")
    if not isinstance(host, str) or "@" not in host or len(host) > MAX_NAME:
        raise _bad("the record's host is not a storage node's backend (host@backend)", "host")
    return host


def _text(doc: dict[str, Any], key: str) -> str | None:
    text: str | None = _checked(lambda v: check_text(key, v), doc.get(key), key)
    return text


def _short(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME):
        raise _bad(f"the record's {key} is not a text of at most {MAX_NAME}", key)
    return value


def _time(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key)
    if value is None:
        return time.time()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad(f"the record's {key} is not a time (seconds since 1970)", key)
    return float(value)


def _volume_meta(value: Any) -> VolumeMeta:
    if value is None:
        return VolumeMeta()
    if not isinstance(value, dict):
        raise _bad("the record's volume_meta is not a JSON object", "volume_meta")
    return VolumeMeta(
        _text(value, "name"), _text(value, "description"),
        _checked(check_metadata, value.get("metadata"), "volume_meta"),
        _checked(check_image_metadata, _or_none(value.get("image_metadata")), "volume_meta"))


def _or_none(value: Any) -> Any:
    """Image metadata: none given is none (check_image_metadata refuses null)."""
    return {} if value is None else value


def _checked(check: Any, value: Any, key: str) -> Any:
    """``check(value)``, its refusal naming the record's field."""
    try:
        return check(value)
    except InvalidInput as exc:
        raise _bad(f"the record's {key}: {exc.message}", key) from None


# ---- backup_import_api ------------------------------------------------------------------
class ImportServices(Protocol):
    store: GatewayStore

    @property
    def node_backends(self) -> frozenset[str]: ...

    async def quota_call(self, op: str, body: object, ctx: Context) -> dict[str, object]: ...
    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]: ...
    def publish_backup(self, rec: BackupRecord) -> None: ...


@dataclass(slots=True)
class ImportContext:
    record: ExportedBackup
    ctx: Context
    backup: ImportedBackup | None = None
    project: str = ""
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0  # a backup is not held to per_volume_gigabytes
    reservation_id: str | None = None
    committed: bool = False
    object_count: int = 0
    made: BackupRecord | None = None


def check_new(store: GatewayStore, backup: ImportedBackup, importing: set[str]) -> None:
    """Cinder's: a backup already known here is not imported again."""
    if backup.id in importing or store.backups.get(backup.id) is not None:
        raise InvalidState("Backup already exists in database.", {"backup_id": backup.id})


class _Task(Task[ImportContext]):
    def __init__(self, services: ImportServices, importing: set[str]) -> None:
        self.s = services
        self.importing = importing  # the ids of imports under way (one at a time each)


class ExtractImportTask(_Task):
    requires = ("record",)
    provides = ("backup", "project", "deltas")

    async def execute(self, c: ImportContext) -> None:
        backup = parse_record(c.record)
        if backup.host not in self.s.node_backends:
            raise InvalidInput(f"the record's backend {backup.host} is not a storage node's "
                               "backend in this cluster", {"field": "host"})
        check_new(self.s.store, backup, self.importing)
        self.importing.add(backup.id)
        c.backup, c.project, c.deltas = backup, c.ctx.project_id, backup_amounts(backup.size)

    async def revert(self, c: ImportContext, failure: BaseException) -> None:
        if c.backup is not None:
            self.importing.discard(c.backup.id)


class CheckBackupTask(_Task):
    """The node's repository holds the backup whole, of the record's volume and size."""

    requires = ("backup", "reservation_id")
    provides = ("object_count",)

    async def execute(self, c: ImportContext) -> None:
        backup = c.backup
        assert backup is not None
        reply = await self.s.node_call(
            host_of(backup.host), "node.check_backup",
            NodeCheckBackup(backup.id, backup.volume_id, backup.size), c.ctx)
        c.object_count = parse(CheckedBackup, reply, strict=False).object_count


class ImportEntryTask(_Task):
    """The row, ``available``, its volume's details and its quota's commit: one
    transaction."""

    requires = ("backup", "object_count")
    provides = ("made", "committed")

    async def execute(self, c: ImportContext) -> None:
        backup, store = c.backup, self.s.store
        assert backup is not None
        parent = None if backup.parent_id is None else store.backups.get(backup.parent_id)
        rec = BackupRecord(
            id=backup.id, project_id=c.project, user_id=c.ctx.user_id,
            volume_id=backup.volume_id, size=backup.size, status=B.AVAILABLE,
            host=backup.host, snapshot_id=backup.snapshot_id, name=backup.name,
            description=backup.description, container=backup.container,
            availability_zone=backup.availability_zone, object_count=c.object_count,
            metadata=dict(backup.metadata), created_at=backup.created_at,
            updated_at=time.time(), data_timestamp=backup.data_timestamp,
            # a parent is kept only if it is here, of the same volume
            parent_id=parent.id if parent is not None
            and parent.volume_id == backup.volume_id else None,
        )
        written = store.backups.queue_add(rec, c.reservation_id, backup.volume_meta)
        await store.backups.settle_add(rec, written)
        c.made, c.committed = rec, True
        self.importing.discard(backup.id)
        self.s.publish_backup(rec)


def backup_import_api(s: ImportServices, importing: set[str]) -> LinearFlow[ImportContext]:
    return LinearFlow("backup_import_api", [
        ExtractImportTask(s, importing), QuotaReserveTask[ImportContext](s),
        CheckBackupTask(s, importing), ImportEntryTask(s, importing)],
        given=("record", "ctx"))


__all__ = ["BACKUP_SERVICE", "backup_import_api", "export_record", "parse_record"]

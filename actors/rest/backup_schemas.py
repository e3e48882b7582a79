"""Cinder's backup request schemas (``cinder/api/schemas/backups.py``, and the backup
``os-reset_status`` of ``schemas/admin_actions.py``), checked before a request reaches
the gateway: a body Cinder's schema refuses is its 400 naming the field, and nothing is
sent. What a schema passes becomes the client library's typed message; the gateway
judges the rest (a volume that cannot be backed up now, an ``incremental`` backup, a
zone other than the volume's). Metadata is checked with the gateway's own
``check_metadata`` (keys of ``[a-zA-Z0-9-_:. /]``, string values of at most 255), so
the wire's ``dict[str, str]`` never carries anything else.

    create    volume_id (a uuid, required); container, name, description (strings of
              at most 255, or null; a description printable); incremental and force
              (Cinder's booleans: JSON's, or its words); snapshot_id (a uuid or null);
              metadata from 3.43; availability_zone from 3.51; nothing else
    update    (3.9) name, description; metadata from 3.43 (an object); nothing else
    restore   volume_id (a uuid or null), name; nothing else (null: {})
    reset     {"status": "available" | "error"} (any case), nothing else
    import    {"backup-record": {"backup_service": a string of at most 255,
              "backup_url": a string of at least 1}} (required, nothing else); what
              the record says is the gateway's to judge (``backup_records``)

Pure code over the decoded JSON body.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

from cinderblock.actors.gateway.backups import RESET_TO
from cinderblock.actors.gateway.volume_request import check_metadata
from cinderblock.actors.rest.errors import HttpFault, bad_request, only
from cinderblock.actors.rest.microversion import Version
from cinderblock.protocol.messages.backups import (
    BackupCreate,
    BackupModify,
    BackupResetState,
    BackupRestore,
    ExportedBackup,
)

MAX_TEXT = 255  # Cinder's name, description, container and zone: at most 255 characters
# Cinder's parameter_types.boolean: a JSON boolean, or one of these words (as written)
TRUE_WORDS = frozenset({"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                        "y", "t"})
FALSE_WORDS = frozenset({"False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No",
                         "no", "n", "f"})
CREATE_FIELDS = frozenset({"volume_id", "container", "description", "incremental", "force",
                           "name", "snapshot_id"})


def create_fields(version: Version) -> frozenset[str]:
    """What a create's ``backup`` may hold at ``version``: metadata from 3.43, the zone
    from 3.51 (before, Cinder's schema refuses them, as every other key)."""
    return (CREATE_FIELDS | ({"metadata"} if version.at_least("3.43") else set())
            | ({"availability_zone"} if version.at_least("3.51") else set()))


def create_request(body: Mapping[str, Any], version: Version) -> BackupCreate:
    """``POST /backups``' body as the gateway's ``BackupCreate``."""
    only(body, {"backup"})
    asked = _object(body, "backup", nullable=False)
    only(asked, create_fields(version), "backup")
    if "volume_id" not in asked:
        raise bad_request("Invalid input for field/attribute backup. Value: "
                          f"{_shown(asked)}. 'volume_id' is a required property")
    volume_id = _uuid(asked, "volume_id", nullable=False)
    assert volume_id is not None
    return BackupCreate(
        volume_id, name=_text(asked, "name"), description=_description(asked),
        force=_boolean(asked, "force"), incremental=_boolean(asked, "incremental"),
        snapshot_id=_uuid(asked, "snapshot_id"), container=_text(asked, "container"),
        metadata=check_metadata(asked.get("metadata")),
        availability_zone=_text(asked, "availability_zone"))


def update_request(backup_id: str, body: Mapping[str, Any], version: Version
                   ) -> BackupModify:
    """``PUT /backups/{id}``'s body (3.9) as the gateway's ``BackupModify``. A name or
    description of null clears it (``cleared``: the message's None means "not
    given")."""
    only(body, {"backup"})
    asked = _object(body, "backup", nullable=True)
    only(asked, {"name", "description"} | ({"metadata"} if version.at_least("3.43")
                                           else set()), "backup")
    metadata = asked.get("metadata")
    if "metadata" in asked and not isinstance(metadata, dict):
        raise bad_request(f"Invalid input for field/attribute metadata. Value: "
                          f"{_shown(metadata)}. {_shown(metadata)} is not of type 'object'")
    name, description = _text(asked, "name"), _description(asked)
    return BackupModify(
        backup_id, name=name, description=description,
        metadata=None if metadata is None else check_metadata(metadata),
        cleared=tuple(k for k in ("name", "description") if k in asked and asked[k] is None))


def restore_request(backup_id: str, body: Mapping[str, Any]) -> BackupRestore:
    """``POST /backups/{id}/restore``'s body as the gateway's ``BackupRestore``: into
    ``volume_id``, or (none) into a new volume named ``name``."""
    only(body, {"restore"})
    asked = _object(body, "restore", nullable=True)
    only(asked, {"volume_id", "name"}, "restore")
    return BackupRestore(backup_id, _uuid(asked, "volume_id"), _text(asked, "name"))


def reset_request(backup_id: str, args: Any) -> BackupResetState:
    """A backup's ``os-reset_status`` arguments as the gateway's ``BackupResetState``:
    ``available`` or ``error``, in any case, as Cinder's ``backup_status`` format."""
    if not isinstance(args, dict):
        raise bad_request(f"Invalid input for field/attribute os-reset_status. Value: "
                          f"{_shown(args)}. {_shown(args)} is not of type 'object'")
    only(args, {"status"}, "os-reset_status")
    status = args.get("status")
    if not isinstance(status, str):
        raise bad_request("Invalid input for field/attribute os-reset_status. Value: "
                          f"{_shown(args)}. 'status' is a required property of type "
                          "'string'")
    if status.lower() not in RESET_TO:
        raise bad_request(f"Invalid input for field/attribute status. Value: {status[:80]}. "
                          f"Backup status: {status[:80]} is invalid, valid statuses are: "
                          f"{list(RESET_TO)}.")
    return BackupResetState(backup_id, status.lower())


def import_request(body: Mapping[str, Any]) -> ExportedBackup:
    """``POST /backups/import_record``'s body as the gateway's ``ExportedBackup``."""
    only(body, {"backup-record"})
    asked = _object(body, "backup-record", nullable=False)
    only(asked, {"backup_service", "backup_url"}, "backup-record")
    for key in ("backup_service", "backup_url"):
        if key not in asked:
            raise bad_request(f"Invalid input for field/attribute backup-record: '{key}' is "
                              "a required property")
        if not isinstance(asked[key], str):
            raise _field(key, asked[key], f"{_shown(asked[key])} is not of type 'string'")
    if len(asked["backup_service"]) > MAX_TEXT:
        raise _field("backup_service", asked["backup_service"],
                     f"is too long (more than {MAX_TEXT} characters)")
    if not asked["backup_url"]:
        raise _field("backup_url", "", "'' is too short")
    return ExportedBackup(asked["backup_service"], asked["backup_url"])


# ---- Cinder's parameter types ------------------------------------------------------------
def _object(body: Mapping[str, Any], key: str, nullable: bool) -> Mapping[str, Any]:
    """The object under ``key`` (required; null is {} where Cinder's schema allows it)."""
    if key not in body:
        raise bad_request(f"Invalid input for field/attribute {key}: '{key}' is a required "
                          "property")
    inner = body[key]
    if inner is None and nullable:
        return {}
    if not isinstance(inner, dict):
        kinds = "'object', 'null'" if nullable else "'object'"
        raise bad_request(f"Invalid input for field/attribute {key}. Value: {_shown(inner)}. "
                          f"{_shown(inner)} is not of type {kinds}")
    return inner


def _text(args: Mapping[str, Any], key: str) -> str | None:
    """A string of at most 255 characters, or null (absent: null)."""
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _field(key, value, f"{_shown(value)} is not of type 'string', 'null'")
    if len(value) > MAX_TEXT:
        raise _field(key, value, f"is too long (more than {MAX_TEXT} characters)")
    return value


def _description(args: Mapping[str, Any]) -> str | None:
    """A text whose every character is printable (Cinder's ``valid_description_regex``:
    no control characters, no line or paragraph separators)."""
    value = _text(args, "description")
    if value is not None and not all(_printable(char) for char in value):
        raise _field("description", value, "does not match Cinder's description pattern "
                     "(printable characters only)")
    return value


def _printable(char: str) -> bool:
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _uuid(args: Mapping[str, Any], key: str, nullable: bool = True) -> str | None:
    value = args.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        kinds = "'string', 'null'" if nullable else "'string'"
        raise _field(key, value, f"{_shown(value)} is not of type {kinds}")
    try:
        uuid.UUID(value)
    except ValueError:
        raise _field(key, value, f"'{value[:80]}' is not a 'uuid'") from None
    return value


def _boolean(args: Mapping[str, Any], key: str) -> bool:
    value = args.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in TRUE_WORDS | FALSE_WORDS:
        return value in TRUE_WORDS
    raise _field(key, value, f"{_shown(value)} is not a boolean: true, false, or one of "
                 f"{sorted(TRUE_WORDS)} or {sorted(FALSE_WORDS)}")


def _field(key: str, value: Any, why: str) -> HttpFault:
    return bad_request(f"Invalid input for field/attribute {key}. Value: {_shown(value)}. "
                       f"{why}")


def _shown(value: Any) -> str:
    """A value as a message shows it: its first 80 characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:80] + "..."

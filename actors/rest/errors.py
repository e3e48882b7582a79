"""Cinder's error bodies: ``{"badRequest": {"code": 400, "message": ...}}``.

Every failure the front answers goes through ``fault``: a gateway error
(``CinderblockError``) keeps its message and gets Cinder's status and body name;
``over_quota`` is Cinder's 413 ``overLimit`` with ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from aiohttp import web

from cinderblock.protocol.messages.quota import split_typed
from cinderblock.protocol.wire.errors import CinderblockError

# Cinder's wsgi.Fault names, by status (anything else is a computeFault).
FAULT_NAMES = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
    405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
    501: "notImplemented", 503: "serviceUnavailable",
}
# The gateway's codes, as Cinder's API answers them.
STATUS_BY_CODE = {
    "invalid_input": 400, "not_found": 404, "over_quota": 413, "invalid_state": 400,
    "forbidden": 403, "timeout": 504, "unavailable": 503, "no_valid_host": 500,
}


class HttpFault(Exception):
    """An answer of the front itself (bad JSON, unknown URL, bad microversion...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> HttpFault:
    return HttpFault(400, message)


def only(found: Iterable[str], allowed: Collection[str], field: str | None = None) -> None:
    """Cinder's schemas' ``additionalProperties: false``: a key not in ``allowed`` is a
    400 naming it (``field``: the object it was found in)."""
    extra = set(found) - set(allowed)
    if extra:
        where = f"Invalid input for field/attribute {field}. " if field else ""
        raise bad_request(f"{where}Additional properties are not allowed "
                          f"({', '.join(sorted(map(repr, extra)))} were unexpected)")


def not_found(message: str) -> HttpFault:
    return HttpFault(404, message)


def fault_body(status: int, message: str) -> dict[str, Any]:
    name = FAULT_NAMES.get(status, "computeFault")
    inner: dict[str, Any] = {"code": status, "message": message}
    if status == 413:
        inner["retryAfter"] = "0"
    return {name: inner}


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    extra = dict(headers or {})
    if status == 413:
        extra.setdefault("Retry-After", "0")
    return web.Response(status=status, text=json.dumps(fault_body(status, message)),
                        content_type="application/json", headers=extra)


def over_limit_message(details: dict[str, Any], fallback: str) -> str:
    """Cinder's words for a refused reservation, from the quota actor's details."""
    resource, limit = details.get("resource"), details.get("limit")
    requested = details.get("requested")
    consumed = int(details.get("in_use") or 0) + int(details.get("reserved") or 0)
    typed = split_typed(resource) if isinstance(resource, str) else None
    kept = typed[0] if typed is not None else resource  # a volume type's: volumes_<type>
    if kept == "gigabytes":
        return ("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds "
                f"allowed {resource} quota. Requested {requested}G, quota is {limit}G and "
                f"{consumed}G has been consumed.")
    if kept in ("volumes", "snapshots"):
        kind = "Volume" if kept == "volumes" else "Snapshot"
        return (f"{kind}LimitExceeded: Maximum number of {kept} allowed ({limit}) "
                f"exceeded for quota '{resource}'.")
    if resource == "backups":
        return f"BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded"
    if resource == "backup_gigabytes":
        return ("VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed "
                f"Backup gigabytes quota. Requested {requested}G, quota is {limit}G and "
                f"{consumed}G has been consumed.")
    if resource == "per_volume_gigabytes":
        return (f"VolumeSizeExceedsLimit: Requested volume size {requested}G is larger than "
                f"maximum allowed limit {limit}G.")
    return fallback


def from_gateway(exc: CinderblockError) -> web.Response:
    status = STATUS_BY_CODE.get(exc.code, 500)
    if exc.code == "over_quota":
        return fault(413, over_limit_message(exc.details, exc.message))
    if exc.code == "invalid_input" and "already exists" in exc.message:
        status = 409  # Cinder's VolumeTypeExists and friends: a conflict
    return fault(status, exc.message)

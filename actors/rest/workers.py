"""Cinder's workers cleanup (``POST /workers/cleanup``, 3.24: ``cinder work-cleanup``),
the front's part, as plain code: the body checked as Cinder's schema checks it, the
services it matches, and their view.

Cinder's scheduler matches the request's filters against its services and sends each
one that is up (any scheduler, or a volume service's cluster peer) a cleanup of the
resources the service's workers left; those with nobody up to clean for them are
``unavailable``. Here the services are the scheduler and each backend's
``cinder-volume`` (as ``os-services`` lists them), and the gateway's reconciler does
the cleaning: a volume service's records are its node's, the scheduler's those no node
is named for yet (a create being placed). A volume service that is down is
``unavailable``: nothing is decided about what a node that does not answer holds, and
no other node can clean for it (a backend is one node's, not a cluster's). Filters left
out match every service, except ``is_up``, which is ``false`` unless given, as
Cinder's is: a plain ``cinder work-cleanup`` asks for the services that are down.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cinderblock.actors.rest.body import boolean_word
from cinderblock.actors.rest.errors import bad_request
from cinderblock.protocol.messages.scheduling import Backend

KEYS = frozenset({"cluster_name", "disabled", "host", "is_up", "binary", "resource_id",
                  "resource_type", "service_id"})
BINARIES = ("cinder-volume", "cinder-scheduler")
RESOURCE_TYPES = ("Volume", "Snapshot")
SCHEDULER_HOST = "scheduler"  # as os-services names it
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._#@:/")


@dataclass(frozen=True, slots=True)
class CleanupRequest:
    """The body's filters (None: not given); ``is_up`` is false unless given."""

    service_id: int | None = None
    cluster_name: str | None = None
    host: str | None = None
    binary: str | None = None
    is_up: bool = False
    disabled: bool | None = None
    resource_id: str | None = None
    resource_type: str | None = None  # "Volume" or "Snapshot"

    @property
    def located(self) -> bool:
        """Whether it says where (Cinder's location keys), so a resource's own service
        is not looked up."""
        return any(v is not None for v in (self.service_id, self.cluster_name, self.host))


@dataclass(frozen=True, slots=True)
class Service:
    binary: str
    host: str  # node-1@file for a cinder-volume, "scheduler" for the scheduler
    up: bool
    disabled: bool

    @property
    def id(self) -> int:
        """A stable number for the service, as Cinder's database id is one: the CRC-32 of
        its binary and host (the same on every front and after every restart)."""
        return zlib.crc32(f"{self.binary} {self.host}".encode()) & 0x7FFFFFFF

    @property
    def node(self) -> str | None:
        """The storage node whose records it cleans; None for the scheduler."""
        return self.host.partition("@")[0] if self.binary == "cinder-volume" else None


def parse_request(body: Any) -> CleanupRequest:
    """The body as Cinder's ``workers`` schema takes it (no other key; each of its type),
    or a 400 that names the field."""
    if body is None:
        return CleanupRequest()
    if not isinstance(body, dict):
        raise bad_request("Invalid input: the body must be a JSON object of filters")
    unknown = sorted(set(body) - KEYS)
    if unknown:
        raise bad_request(f"Additional properties are not allowed ({', '.join(map(repr, unknown))} "
                          f"{'was' if len(unknown) == 1 else 'were'} unexpected)")
    values: dict[str, Any] = {}
    for key in ("cluster_name", "host"):
        if body.get(key) is not None:
            values[key] = _hostname(body[key], key)
    for key in ("is_up", "disabled"):
        if body.get(key) is not None:
            values[key] = boolean_word(body[key], key)
    binary = body.get("binary")
    if binary is not None:
        if binary not in BINARIES:
            raise bad_request(f"Invalid input for field/attribute binary. Value: {binary}. "
                              f"{binary!r} is not one of {list(BINARIES)}")
        values["binary"] = binary
    if body.get("service_id") is not None:
        values["service_id"] = _service_id(body["service_id"])
    resource_type = body.get("resource_type")
    if resource_type is not None:
        if not isinstance(resource_type, str) or resource_type.title() not in RESOURCE_TYPES:
            raise bad_request(f"Resource type {resource_type} not valid, must be Volume or "
                              "Snapshot")
        values["resource_type"] = resource_type.title()
    resource_id = body.get("resource_id")
    if resource_id is not None:
        if not isinstance(resource_id, str) or not _is_uuid(resource_id):
            raise bad_request(f"Invalid input for field/attribute resource_id. Value: "
                              f"{resource_id}. {resource_id!r} is not a 'uuid'")
        values["resource_id"] = resource_id
    return CleanupRequest(**values)


def services_of(backends: Iterable[Backend], scheduler_up: bool) -> list[Service]:
    """The cleanable services: the scheduler and each backend's ``cinder-volume``."""
    return [Service("cinder-scheduler", SCHEDULER_HOST, scheduler_up, False),
            *(Service("cinder-volume", b.backend, b.up, b.disabled) for b in backends)]


def matching(services: Iterable[Service], req: CleanupRequest) -> list[Service]:
    """The services every given filter matches (a host as Cinder matches one: ``node-1``
    matches ``node-1@file``; there are no clusters, so a cluster name matches none)."""
    return [s for s in services
            if (req.service_id is None or s.id == req.service_id)
            and req.cluster_name is None
            and (req.host is None or host_matches(s.host, req.host))
            and (req.binary is None or s.binary == req.binary)
            and s.up == req.is_up
            and (req.disabled is None or s.disabled == req.disabled)]


def host_matches(host: str, wanted: str) -> bool:
    """Cinder's host filter: a pool matches itself only, a backend (``@``) itself and its
    pools, a host itself, its backends and its pools."""
    if host == wanted or host.startswith(wanted + "#"):
        return True
    return "@" not in wanted and "#" not in wanted and host.startswith(wanted + "@")


def view(s: Service) -> dict[str, Any]:
    return {"id": s.id, "host": s.host, "binary": s.binary, "cluster_name": None}


def _hostname(value: Any, field: str) -> str:
    if (not isinstance(value, str) or not 1 <= len(value) <= 255
            or not set(value) <= HOST_CHARS):
        raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                          "A host name is 1 to 255 letters, digits and -._#@:/")
    return value


def _service_id(value: Any) -> int:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 11:
        raise bad_request(f"Invalid input for field/attribute service_id. Value: {value}. "
                          "A service id is a number of at most 11 digits")
    return int(text)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

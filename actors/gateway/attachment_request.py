"""Checks on attachment requests, as Cinder's API makes them: pure code, no I/O.

The connector is what the host that attaches says about itself (os-brick's
``get_connector_properties``). It comes from outside, so it is checked key by
key: only known keys, each of its type, strings of at most 255 characters,
lists of at most 32 of them, ``mode`` one of ``rw`` / ``ro``, ``ip`` an address.
A bad one raises ``InvalidInput`` naming the key; nothing has changed by then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.wire.errors import InvalidInput

MAX_TEXT = 255
MAX_LIST = 32
MODES = ("rw", "ro")


@dataclass(frozen=True, slots=True)
class Connector:
    """A validated connector; ``fields`` is what is stored and shown."""

    host: str
    mode: str | None
    fields: dict[str, Any]


def _bad(key: str, rule: str) -> InvalidInput:
    return InvalidInput(f"connector {key!r} {rule}", {"field": "connector", "key": key[:MAX_TEXT]})


def _text(key: str, value: Any) -> str:
    if type(value) is not str:
        raise _bad(key, f"must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_TEXT:
        raise _bad(key, f"must be 1-{MAX_TEXT} characters, got {len(value)}")
    return value


def _flag(key: str, value: Any) -> bool:
    if type(value) is not bool:
        raise _bad(key, f"must be true or false, got {type(value).__name__}")
    return value


def _texts(key: str, value: Any) -> list[str]:
    if type(value) is not list or len(value) > MAX_LIST:
        raise _bad(key, f"must be a list of at most {MAX_LIST} strings")
    return [_text(f"{key}[{i}]", item) for i, item in enumerate(value)]


def _ip(key: str, value: Any) -> str:
    text = _text(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise _bad(key, f"must be an IP address, got {text[:80]!r}") from None
    return text


def _mode(key: str, value: Any) -> str:
    if value not in MODES:
        raise _bad(key, f"must be one of {', '.join(MODES)}, got {str(value)[:80]!r}")
    return str(value)


_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "host": _text,
    "initiator": _text,
    "ip": _ip,
    "platform": _text,
    "os_type": _text,
    "multipath": _flag,
    "do_local_attach": _flag,
    "mode": _mode,
    "uuid": _text,
    "system uuid": _text,
    "nqn": _text,
    "wwpns": _texts,
    "wwnns": _texts,
    "host_ips": _texts,
    "mountpoint": _text,  # where the instance sees it (cinderclient and Nova send it)
    "enforce_multipath": _flag,  # os-brick's, since 2024.2
}


def check_connector(raw: Any) -> Connector:
    """Validate a connector map; it must at least name its ``host``."""
    if raw is None:
        raise InvalidInput("a connector is required", {"field": "connector"})
    if type(raw) is not dict:
        raise InvalidInput(
            f"connector must be a map, got {type(raw).__name__}", {"field": "connector"}
        )
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if type(key) is not str or key not in _KEYS:
            allowed = ", ".join(sorted(_KEYS))
            raise _bad(str(key)[:80], f"is not a connector key (allowed: {allowed})")
        if value is None and key not in ("host", "mode"):
            continue  # cinderclient's and os-brick's connectors send unset keys as null
        fields[key] = _KEYS[key](key, value)
    if "host" not in fields:
        raise _bad("host", "is required")
    return Connector(fields["host"], fields.get("mode"), fields)


def check_instance(instance_id: str | None) -> str | None:
    if instance_id is not None and (not instance_id or len(instance_id) > MAX_TEXT):
        raise InvalidInput(
            f"instance id must be 1-{MAX_TEXT} characters", {"field": "instance_id"}
        )
    return instance_id


def check_mode(mode: str | None) -> str | None:
    if mode is not None and mode not in MODES:
        raise InvalidInput(
            f"mode must be one of {', '.join(MODES)}, got {mode[:80]!r}", {"field": "mode"}
        )
    return mode


def attach_mode(requested: str | None, connector: Connector) -> str:
    """The export's mode: the one asked for at create, else the connector's, else rw.
    A connector may not contradict a mode the attachment was created with."""
    if requested is not None and connector.mode not in (None, requested):
        raise InvalidInput(
            f"connector mode {connector.mode} contradicts the attachment's mode {requested}",
            {"field": "connector", "key": "mode"},
        )
    return requested or connector.mode or "rw"

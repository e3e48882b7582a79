"""What the REST front's body checks share: the object Cinder's schemas require under a
key, and Cinder's boolean (a JSON boolean, or one of its words, any case). A body these
refuse is a 400 naming the field, and nothing is sent to the gateway."""

from __future__ import annotations

from typing import Any

from cinderblock.actors.gateway.volume_request import FALSE_WORDS, TRUE_WORDS
from cinderblock.actors.rest.errors import bad_request


def entity(body: dict[str, Any], key: str) -> dict[str, Any]:
    """The object under ``key`` (``{"volume": {...}}``'s ``volume``), which must be one."""
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise bad_request(f"Invalid input for field/attribute {key}: "
                          f"'{key}' is a required property and must be an object")
    return inner


def boolean_word(value: Any, field: str) -> bool:
    """A JSON boolean, or a word of Cinder's for one (``true``, ``yes``, ``0`` ...)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                      f"'{value}' is not a valid boolean value")

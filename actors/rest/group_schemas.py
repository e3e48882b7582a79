"""Cinder's generic volume group request schemas and bodies (``cinder/api/schemas/
group_types.py``, ``group_specs.py``, and the views of ``cinder/api/v3/views/
group_types.py``), checked before a request reaches the gateway: a body Cinder's schema
refuses is its 400 naming the field, and nothing is sent.

    group type create  {"group_type": {name (required), description, is_public (a
                       boolean or its word), group_specs (an object or null)}}
    group type update  {"group_type": {name, description, is_public}}, one at least;
                       a name not empty
    group specs        {"group_specs": {...}} (POST), {key: value} (PUT of one key)

Pure code over the decoded JSON body.
"""

from __future__ import annotations

from typing import Any

from cinderblock.actors.gateway.volume_request import FALSE_WORDS, TRUE_WORDS
from cinderblock.actors.rest.errors import bad_request, only
from cinderblock.protocol.messages.groups import GroupType, GroupTypeCreate, GroupTypeUpdate

GROUP_TYPE_VERSION = "3.11"


def _entity(body: dict[str, Any], key: str) -> dict[str, Any]:
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise bad_request(f"Invalid input for field/attribute {key}: "
                          f"'{key}' is a required property and must be an object")
    return inner


def _text(entity: dict[str, Any], field: str) -> str | None:
    value = entity.get(field)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                          f"{value!r} is not of type 'string', 'null'")
    return value


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                      f"'{value}' is not a valid boolean value")


def _specs(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                          f"{value!r} is not of type 'object', 'null'")
    return value


def group_type_create(body: dict[str, Any]) -> GroupTypeCreate:
    only(body, {"group_type"})
    gt = _entity(body, "group_type")
    only(gt, {"name", "description", "is_public", "group_specs"}, "group_type")
    name = _text(gt, "name")
    if name is None:
        raise bad_request("Invalid input for field/attribute name: 'name' is a required "
                          "property")
    return GroupTypeCreate(name, _text(gt, "description"),
                           _boolean(gt.get("is_public", True), "is_public"),
                           _specs(gt.get("group_specs"), "group_specs"))


def group_type_update(type_id: str, body: dict[str, Any]) -> GroupTypeUpdate:
    only(body, {"group_type"})
    gt = _entity(body, "group_type")
    only(gt, {"name", "description", "is_public"}, "group_type")
    name, description = _text(gt, "name"), _text(gt, "description")
    public = gt.get("is_public")
    if name is not None and not name.strip():
        raise bad_request("Group type name can not be empty.")
    if name is None and description is None and public is None:
        raise bad_request("Specify group type name, description or a combination thereof.")
    return GroupTypeUpdate(type_id, name, description,
                           None if public is None else _boolean(public, "is_public"))


def group_specs_set(key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``{"group_specs": {...}}``, or PUT ``.../group_specs/{key}`` with
    ``{key: value}``: the specs to merge."""
    if key is None:
        only(body, {"group_specs"})
        return _entity(body, "group_specs")
    if len(body) != 1:
        raise bad_request("Invalid input: exactly one group spec is expected")
    if key not in body:
        raise bad_request("Request body and URI mismatch")
    return body


def group_type_view(gtype: GroupType, admin: bool) -> dict[str, Any]:
    """Cinder's view: the group specs for admins only."""
    view: dict[str, Any] = {"id": gtype.id, "name": gtype.name,
                            "description": gtype.description, "is_public": gtype.is_public}
    if admin:
        view["group_specs"] = dict(gtype.group_specs)
    return view

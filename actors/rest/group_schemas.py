"""Cinder's generic volume group request schemas and bodies (``cinder/api/schemas/
group_types.py``, ``group_specs.py``, and the views of ``cinder/api/v3/views/
group_types.py``), checked before a request reaches the gateway: a body Cinder's schema
refuses is its 400 naming the field, and nothing is sent.

    group type create  {"group_type": {name (required), description, is_public (a
                       boolean or its word), group_specs (an object or null)}}
    group type update  {"group_type": {name, description, is_public}}, one at least;
                       a name not empty
    group specs        {"group_specs": {...}} (POST), {key: value} (PUT of one key)
    group create       {"group": {group_type, volume_types (a list of one or more
                       distinct names or ids), name, description, availability_zone}}
    group update       {"group": {name, description, add_volumes, remove_volumes
                       (comma-separated ids)}}, one at least
    group action       {"delete": {"delete-volumes": a boolean}} or (3.20)
                       {"reset_status": {"status": ...}}
    group snapshot     {"group_snapshot": {group_id (required), name, description}}
    its action         (3.19) {"reset_status": {"status": ...}}
    create-from-src    (3.14) {"create-from-src": {name, description, and one of
                       group_snapshot_id and source_group_id}}

Pure code over the decoded JSON body.
"""

from __future__ import annotations

from typing import Any

from cinderblock.actors.rest.body import boolean_word, entity
from cinderblock.actors.rest.errors import bad_request, only
from cinderblock.actors.rest.microversion import Version
from cinderblock.actors.rest.views import iso
from cinderblock.protocol.messages.groups import (
    Group,
    GroupCreate,
    GroupCreateFromSource,
    GroupDelete,
    GroupResetStatus,
    GroupSnapshot,
    GroupSnapshotCreate,
    GroupSnapshotResetStatus,
    GroupType,
    GroupTypeCreate,
    GroupTypeUpdate,
    GroupUpdate,
)

GROUP_TYPE_VERSION = "3.11"


def _text(entity: dict[str, Any], field: str) -> str | None:
    value = entity.get(field)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                          f"{value!r} is not of type 'string', 'null'")
    return value


def _specs(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"Invalid input for field/attribute {field}. Value: {value}. "
                          f"{value!r} is not of type 'object', 'null'")
    return value


def group_type_create(body: dict[str, Any]) -> GroupTypeCreate:
    only(body, {"group_type"})
    gt = entity(body, "group_type")
    only(gt, {"name", "description", "is_public", "group_specs"}, "group_type")
    name = _text(gt, "name")
    if name is None:
        raise bad_request("Invalid input for field/attribute name: 'name' is a required "
                          "property")
    return GroupTypeCreate(name, _text(gt, "description"),
                           boolean_word(gt.get("is_public", True), "is_public"),
                           _specs(gt.get("group_specs"), "group_specs"))


def group_type_update(type_id: str, body: dict[str, Any]) -> GroupTypeUpdate:
    only(body, {"group_type"})
    gt = entity(body, "group_type")
    only(gt, {"name", "description", "is_public"}, "group_type")
    name, description = _text(gt, "name"), _text(gt, "description")
    public = gt.get("is_public")
    if name is not None and not name.strip():
        raise bad_request("Group type name can not be empty.")
    if name is None and description is None and public is None:
        raise bad_request("Specify group type name, description or a combination thereof.")
    return GroupTypeUpdate(type_id, name, description,
                           None if public is None else boolean_word(public, "is_public"))


def group_specs_set(key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``{"group_specs": {...}}``, or PUT ``.../group_specs/{key}`` with
    ``{key: value}``: the specs to merge."""
    if key is None:
        only(body, {"group_specs"})
        return entity(body, "group_specs")
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


# ---- groups (3.13) -----------------------------------------------------------------------
GROUP_VERSION = "3.13"


def group_create(body: dict[str, Any]) -> GroupCreate:
    only(body, {"group"})
    g = entity(body, "group")
    only(g, {"name", "description", "group_type", "volume_types", "availability_zone"},
         "group")
    group_type = g.get("group_type")
    if not isinstance(group_type, str) or not group_type:
        raise bad_request("Invalid input for field/attribute group_type: 'group_type' is a "
                          "required property, a string")
    types = g.get("volume_types")
    if not isinstance(types, list) or not types or not all(
            isinstance(t, str) and 0 < len(t) <= 255 for t in types):
        raise bad_request("Invalid input for field/attribute volume_types: 'volume_types' is "
                          "a required property, a list of one or more names or ids")
    if len(set(types)) != len(types):
        raise bad_request("Invalid input for field/attribute volume_types: has non-unique "
                          "elements")
    return GroupCreate(group_type, tuple(types), _text(g, "name"), _text(g, "description"),
                       _text(g, "availability_zone"))


def group_create_from_src(body: dict[str, Any]) -> GroupCreateFromSource:
    """``{"create-from-src": {name, description, group_snapshot_id | source_group_id}}``;
    a null one is absent (openstacksdk's ``create_group_from_source`` sends both)."""
    only(body, {"create-from-src"})
    src = entity(body, "create-from-src")
    only(src, {"name", "description", "group_snapshot_id", "source_group_id"},
         "create-from-src")
    snap, group = _text(src, "group_snapshot_id"), _text(src, "source_group_id")
    if (snap is None) == (group is None):
        raise bad_request("Invalid input for field/attribute create-from-src: give "
                          "group_snapshot_id or source_group_id, one of them")
    return GroupCreateFromSource(_text(src, "name"), _text(src, "description"), snap, group)


def group_update(group_id: str, body: dict[str, Any]) -> GroupUpdate:
    """Cinder's: ``add_volumes`` and ``remove_volumes`` are comma-separated ids."""
    only(body, {"group"})
    g = entity(body, "group")
    only(g, {"name", "description", "add_volumes", "remove_volumes"}, "group")
    if not g:
        raise bad_request("Invalid input for field/attribute group: name, description, "
                          "add_volumes or remove_volumes is required")

    def ids(field_name: str) -> tuple[str, ...]:
        raw = _text(g, field_name) or ""
        return tuple(v.strip() for v in raw.split(",") if v.strip())

    return GroupUpdate(group_id, _text(g, "name"), _text(g, "description"),
                       ids("add_volumes"), ids("remove_volumes"))


def group_action(group_id: str, body: dict[str, Any]) -> GroupDelete | GroupResetStatus:
    """``{"delete": {"delete-volumes": bool}}`` or (3.20) ``{"reset_status": {"status":
    ...}}``: one action."""
    if len(body) != 1 or next(iter(body)) not in ("delete", "reset_status"):
        raise bad_request(f"There is no such action: {', '.join(sorted(body)) or 'none'} "
                          "(a group takes delete and reset_status)")
    if "delete" in body:
        args = entity(body, "delete")
        only(args, {"delete-volumes"}, "delete")
        return GroupDelete(group_id, boolean_word(args.get("delete-volumes", False),
                                              "delete-volumes"))
    return GroupResetStatus(group_id, _reset_status(body))


def group_snapshot_action(group_snapshot_id: str, body: dict[str, Any]
                          ) -> GroupSnapshotResetStatus:
    """``{"reset_status": {"status": ...}}`` (3.19), a group snapshot's one action."""
    if list(body) != ["reset_status"]:
        raise bad_request(f"There is no such action: {', '.join(sorted(body)) or 'none'} "
                          "(a group snapshot takes reset_status)")
    return GroupSnapshotResetStatus(group_snapshot_id, _reset_status(body))


def _reset_status(body: dict[str, Any]) -> str:
    """``{"reset_status": {"status": ...}}``'s status, as a word."""
    args = entity(body, "reset_status")
    only(args, {"status"}, "reset_status")
    status = args.get("status")
    if not isinstance(status, str):
        raise bad_request("Invalid input for field/attribute status: 'status' is a required "
                          "property, a string")
    return status.strip().lower()


def group_view(group: Group, version: Version, admin: bool, list_volume: bool) -> dict[str, Any]:
    """Cinder's detailed view of a group, by microversion."""
    view: dict[str, Any] = {
        "id": group.id, "status": group.status.value,
        "availability_zone": group.availability_zone, "created_at": iso(group.created_at),
        "name": group.name, "description": group.description,
        "group_type": group.group_type, "volume_types": list(group.volume_types)}
    if version.at_least("3.14"):
        view["group_snapshot_id"] = group.group_snapshot_id
        view["source_group_id"] = group.source_group_id
    if version.at_least("3.25") and list_volume:
        view["volumes"] = list(group.volumes)
    if version.at_least("3.38"):
        view["replication_status"] = "disabled"
    if version.at_least("3.58") and admin:
        view["project_id"] = group.project_id
    return view


# ---- group snapshots (3.14) --------------------------------------------------------------
GROUP_SNAPSHOT_VERSION = "3.14"


def group_snapshot_create(body: dict[str, Any]) -> GroupSnapshotCreate:
    only(body, {"group_snapshot"})
    gs = entity(body, "group_snapshot")
    only(gs, {"group_id", "name", "description"}, "group_snapshot")
    group_id = gs.get("group_id")
    if not isinstance(group_id, str) or not group_id:
        raise bad_request("Invalid input for field/attribute group_id: 'group_id' is a "
                          "required property, a group's id")
    return GroupSnapshotCreate(group_id, _text(gs, "name"), _text(gs, "description"))


def group_snapshot_summary(gs: GroupSnapshot) -> dict[str, Any]:
    return {"id": gs.id, "name": gs.name, "group_type_id": gs.group_type_id}


def group_snapshot_view(gs: GroupSnapshot, version: Version, admin: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": gs.id, "group_id": gs.group_id, "group_type_id": gs.group_type_id,
        "status": gs.status, "created_at": iso(gs.created_at), "name": gs.name,
        "description": gs.description}
    if version.at_least("3.58") and admin:
        view["project_id"] = gs.project_id
    return view

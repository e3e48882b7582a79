"""type.update (actors/gateway/volume_types.py): what a change would make of a type, all
checked first; and, on a real store, that a rename reaches the volumes memory holds and
the file, and that a type some volume has keeps its extra specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import (
    INSERT_VOLUME,
    SELECT_TYPES,
    GatewayStore,
    VolumeRecord,
    type_from_row,
)
from cinderblock.actors.gateway.volume_types import VolumeTypes, type_as_seen, updated_type
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeDefault,
    TypeDefaultListRequest,
    TypeDefaultRef,
    TypeRef,
    TypeUpdate,
    VolumeType,
)
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, NotFound
from tests.conftest import open_gateway_store

GOLD = VolumeType("t-gold", "gold", "shiny", {"qos:a": "1", "qos:b": "2"}, True)


def test_specs_are_merged_and_dropped_and_the_rest_changes_only_when_given() -> None:
    new = updated_type(GOLD, TypeUpdate("t-gold", extra_specs={"qos:c": "3"},
                                        delete_specs=("qos:a",)))
    assert new == VolumeType("t-gold", "gold", "shiny", {"qos:b": "2", "qos:c": "3"}, True)
    renamed = updated_type(GOLD, TypeUpdate("t-gold", name="  platinum ", description="",
                                            is_public=False))
    assert (renamed.name, renamed.description, renamed.is_public) == ("platinum", "", False)
    assert renamed.extra_specs == GOLD.extra_specs
    assert GOLD.extra_specs == {"qos:a": "1", "qos:b": "2"}, "the old type is not changed"


def test_a_missing_spec_is_not_found_and_a_bad_one_invalid() -> None:
    with pytest.raises(NotFound, match="no extra specs with key qos:z"):
        updated_type(GOLD, TypeUpdate("t-gold", delete_specs=("qos:z",)))
    with pytest.raises(InvalidInput, match="extra spec"):
        updated_type(GOLD, TypeUpdate("t-gold", extra_specs={"qos:c": 3}))


class Services:
    """What ``VolumeTypes`` needs of the gateway: its store and catalog."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        self.default_type = "__DEFAULT__"
        self.configured_types = frozenset({"__DEFAULT__", "configured"})


async def update(types: VolumeTypes, body: TypeUpdate, admin: bool = True) -> VolumeType:
    roles = ("admin",) if admin else ("member",)
    env = Envelope("req", 1, "type.update", None, Context("p", "u", roles))
    return await types.on_update(Request(env, body, cast(Any, None), b""))


async def test_a_rename_reaches_the_records_memory_holds_and_the_file(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        services = Services(store)
        types = VolumeTypes(services)
        for vtype in (GOLD, VolumeType("t-conf", "configured")):
            services.types.add(vtype)
            await store.add_type(vtype)
        await store.load_volumes(services.types.by_id)
        rec = VolumeRecord("v1", "p", "u", 1, VolumeStatus.AVAILABLE, GOLD, "nova",
                           host="node-1@file")
        store.volumes.keep(rec)
        await store.db.write(INSERT_VOLUME, rec.row())

        renamed = await update(types, TypeUpdate("gold", name="platinum"))
        assert rec.volume_type is renamed and rec.view().volume_type == "platinum"
        assert services.types.find("platinum") is renamed
        with pytest.raises(NotFound):
            services.types.find("gold")
        with pytest.raises(InvalidInput, match="currently in use"):
            await update(types, TypeUpdate("platinum", extra_specs={"qos:c": "3"}))
        with pytest.raises(InvalidInput, match="already exists"):
            await update(types, TypeUpdate("platinum", name="configured"))
        with pytest.raises(InvalidInput, match="keeps its name"):
            await update(types, TypeUpdate("configured", name="other"))
        with pytest.raises(Forbidden):
            await update(types, TypeUpdate("configured", description="mine"), admin=False)
        for refused, why in (("configured", "take it out of the configuration"),
                             ("platinum", "volumes present")):
            with pytest.raises(InvalidInput, match=why):  # a configured type would come back
                await types.on_delete(Request(
                    Envelope("req", 2, "type.delete", None, Context("p", "u", ("admin",))),
                    TypeRef(refused), cast(Any, None), b""))
        spec_change = await update(types, TypeUpdate("configured", extra_specs={"qos:x": "1"}))
        assert spec_change.extra_specs == {"qos:x": "1"}  # no volume has it
        assert services.types.find("platinum").extra_specs == GOLD.extra_specs

    async with open_gateway_store(tmp_path / "gateway.db") as store:
        rows = await store.db.fetchall(SELECT_TYPES)
        stored = {t.name: t for t in map(type_from_row, rows)}
        assert stored["platinum"] == renamed
        assert stored["configured"].extra_specs == {"qos:x": "1"}
        assert "gold" not in stored


async def call(types: VolumeTypes, op: str, body: object, project: str = "p",
               admin: bool = True) -> Any:
    roles = ("admin",) if admin else ("member",)
    env = Envelope("req", 1, op, None, Context(project, "u", roles))
    result = types.handlers()[op](Request(env, body, cast(Any, None), b""))
    return await result if hasattr(result, "__await__") else result


async def test_a_project_s_own_default_type_is_what_its_creates_get_and_outlives_a_restart(
    tmp_path: Path,
) -> None:
    """Cinder's default-types (3.62): an admin gives a project a default type of its own;
    ``type.default`` (what ``GET /types/default`` shows) and a create without a type then
    take it; a private type must be shared first; a project's default cannot be deleted."""
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        services = Services(store)
        types = VolumeTypes(services)
        hidden = VolumeType("t-hidden", "hidden", is_public=False)
        for vtype in (GOLD, VolumeType("t-default", "__DEFAULT__"), hidden):
            services.types.add(vtype)
            await store.add_type(vtype)

        assert (await call(types, "type.default", Empty(), "demo")).name == "__DEFAULT__"
        made = await call(types, "type.default_set", TypeDefault("demo", "gold"))
        assert made == TypeDefault("demo", GOLD.id)
        assert (await call(types, "type.default", Empty(), "demo")) == GOLD
        assert (await call(types, "type.default", Empty(), "other")).name == "__DEFAULT__"
        assert services.types.default_for("demo", "__DEFAULT__") == GOLD.id
        with pytest.raises(Forbidden):
            await call(types, "type.default_set", TypeDefault("demo", "gold"), admin=False)
        with pytest.raises(InvalidInput, match="not shared with project demo"):
            await call(types, "type.default_set", TypeDefault("demo", "hidden"))
        with pytest.raises(NotFound):
            await call(types, "type.default_set", TypeDefault("demo", "nope"))
        with pytest.raises(InvalidInput, match="is a default volume type"):
            await call(types, "type.delete", TypeRef("gold"))
        with pytest.raises(NotFound, match="Default type for project other not found"):
            await call(types, "type.default_show", TypeDefaultRef("other"))
        listed = await call(types, "type.default_list", TypeDefaultListRequest())
        assert listed.defaults == (TypeDefault("demo", GOLD.id),)
        for project in ("a", "b", "c"):
            await call(types, "type.default_set", TypeDefault(project, "gold"))
        first = await call(types, "type.default_list", TypeDefaultListRequest(limit=2))
        assert [d.project_id for d in first.defaults] == ["a", "b"]
        rest = await call(types, "type.default_list", TypeDefaultListRequest(
            limit=2, marker=first.next_marker))
        assert ([d.project_id for d in rest.defaults], rest.next_marker) == (["c", "demo"],
                                                                             None)
        for project in ("a", "b", "c"):
            await call(types, "type.default_unset", TypeDefaultRef(project))

    async with open_gateway_store(tmp_path / "gateway.db") as again:
        services = Services(again)
        types = VolumeTypes(services)
        await types.load()
        assert services.types.project_defaults == {"demo": GOLD.id}
        await call(types, "type.default_unset", TypeDefaultRef("demo"))
        await call(types, "type.default_unset", TypeDefaultRef("demo"))  # none: nothing
        assert await again.project_defaults() == {}


def test_a_project_sees_only_the_extra_specs_cinder_shows_users_and_no_qos_id() -> None:
    vtype = VolumeType("t-1", "fast", None, {"volume_backend_name": "file", "multiattach":
                                             "<is> True", "RESKEY:availability_zones": "nova",
                                             "capabilities:thin": "<is> True"},
                       True, qos_specs_id="q-1")
    seen = type_as_seen(vtype, admin=False)
    assert seen.extra_specs == {"multiattach": "<is> True", "RESKEY:availability_zones": "nova"}
    assert seen.qos_specs_id is None and (seen.id, seen.name) == ("t-1", "fast")
    assert type_as_seen(vtype, admin=True) is vtype

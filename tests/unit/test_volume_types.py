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
from cinderblock.actors.gateway.volume_types import VolumeTypes, updated_type
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.volumes import TypeRef, TypeUpdate, VolumeType
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

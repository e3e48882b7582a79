"""QoS specs (actors/gateway/qos_specs.py): the rules as plain code (what a spec may
hold, what an attachment carries, when an in-use volume may be retyped), and the API
on a real store: associations reach the types in memory and in the file, a delete in
use needs ``force`` and takes the types' associations in the same transaction, and a
failed write brings memory back to the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.qos_specs import (
    QosSpecsApi,
    back_end_limits,
    check_qos_specs,
    front_end_specs,
    qos_allows_retype,
)
from cinderblock.actors.gateway.retype import check_retype_request
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import SELECT_TYPES, GatewayStore, VolumeRecord
from cinderblock.actors.gateway.volume_types import VolumeTypes
from cinderblock.actors.runtime.actor import Request
from cinderblock.actors.runtime.database import WriteFailed
from cinderblock.protocol.messages.qos import (
    QosAssociation,
    QosCreate,
    QosDelete,
    QosListRequest,
    QosRef,
    QosSpecs,
    QosUpdate,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, InvalidState, NotFound
from tests.conftest import open_gateway_store

V = VolumeStatus
FRONT = QosSpecs("q-front", "front", "front-end", {"total_iops_sec": "100"})
FRONT_TOO = QosSpecs("q-front2", "front2", "both", {"total_iops_sec": "200"})
BACK = QosSpecs("q-back", "back", "back-end", {"total_iops_sec": "300"})


# ---- the rules ---------------------------------------------------------------------------


def test_per_gb_limits_are_worked_out_for_the_volume_as_cinders_are() -> None:
    qos = QosSpecs("q", "q", "front-end", {
        "read_iops_sec_per_gb": "10", "read_iops_sec_per_gb_min": "50",   # 10 * 3 < 50
        "write_bytes_sec_per_gb": "100", "write_bytes_sec_max": "250",    # 100 * 3 > 250
        "total_iops_sec_per_gb": "7",                                     # 21
        "total_bytes_sec_max": "9", "size_iops_sec": "4096"})             # kept as they are
    assert front_end_specs(qos, 3) == {
        "read_iops_sec": 50, "write_bytes_sec": 250, "total_iops_sec": 21,
        "total_bytes_sec_max": "9", "size_iops_sec": "4096"}
    assert qos.specs["read_iops_sec_per_gb"] == "10", "the kept specs are not changed"
    assert front_end_specs(BACK, 3) is None, "back-end specs are not the host's"
    assert front_end_specs(None, 3) is None
    assert front_end_specs(FRONT_TOO, 1) == {"total_iops_sec": "200"}


def test_the_node_is_given_the_back_end_limits_worked_out_and_nothing_else() -> None:
    qos = QosSpecs("q", "q", "back-end", {
        "total_bytes_sec_per_gb": "1000", "total_bytes_sec_max": "2500",
        "read_iops_sec": "40", "vendor:x": "y", "size_iops_sec": "4096"})
    assert back_end_limits(qos, 2) == {"read_iops_sec": 40, "total_bytes_sec": 2000}
    assert back_end_limits(qos, 9) == {"read_iops_sec": 40, "total_bytes_sec": 2500}
    assert back_end_limits(FRONT, 2) == {}, "front-end specs are the host's"
    assert back_end_limits(FRONT_TOO, 2) == {"total_iops_sec": 200}  # both
    assert back_end_limits(None, 2) == {}


@pytest.mark.parametrize(("specs", "why"), [
    ({"": "1"}, "1-255 characters"),
    ({"k" * 256: "1"}, "1-255 characters"),
    ({"k": 1}, "must be a string"),
    ({"k": None}, "must be a string"),
    ({"k": "v" * 256}, "at most 255"),
    ({"total_iops_sec_per_gb": "ten"}, "whole number"),
    ({"read_bytes_sec_per_gb_min": "-1"}, "whole number"),
    ({"write_iops_sec_max": "1.5"}, "whole number"),
    ({"total_bytes_sec": "1M"}, "whole number"),
])
def test_specs_cinder_could_not_keep_or_count_with_are_refused(
    specs: dict[str, Any], why: str,
) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_qos_specs(specs)


def test_specs_of_any_other_words_are_kept() -> None:
    specs = {"vendor:mode": "x", "vendor:thing": "", "read_iops_sec_per_gb": "12",
             "total_iops_sec": "0"}
    assert check_qos_specs(specs) == specs


@pytest.mark.parametrize(("status", "old", "new", "allowed"), [
    (V.AVAILABLE, FRONT, None, True),        # nothing is attached
    (V.IN_USE, FRONT, FRONT, True),          # the same specs
    (V.IN_USE, BACK, None, True),            # only the backend's change
    (V.IN_USE, None, BACK, True),
    (V.IN_USE, None, None, True),
    (V.IN_USE, FRONT, None, False),          # the attached host's would change
    (V.IN_USE, None, FRONT_TOO, False),
    (V.IN_USE, FRONT, FRONT_TOO, False),
    (V.IN_USE, BACK, FRONT, False),
])
def test_an_in_use_volume_keeps_its_front_end_qos_through_a_retype(
    status: VolumeStatus, old: QosSpecs | None, new: QosSpecs | None, allowed: bool,
) -> None:
    assert qos_allows_retype(status, old, new) is allowed


def test_the_retype_check_refuses_a_front_end_qos_change_in_cinders_words() -> None:
    old_type = VolumeType("t-old", "old", qos_specs_id=FRONT.id)
    new_type = VolumeType("t-new", "new")
    by_id = {q.id: q for q in (FRONT, BACK)}
    vol = VolumeRecord("v1", "p", "u", 1, V.IN_USE, old_type, "nova", host="node-1@file")
    with pytest.raises(InvalidState, match="front-end qos specs cannot change"):
        check_retype_request(vol, new_type, "never", by_id)
    check_retype_request(vol, VolumeType("t-same", "same", qos_specs_id=FRONT.id), "never",
                         by_id)
    vol.status = V.AVAILABLE
    check_retype_request(vol, new_type, "never", by_id)


# ---- the API on a real store -------------------------------------------------------------


class Services:
    """What ``QosSpecsApi`` needs of the gateway: its store, catalog and types' API."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        self.default_type = "__DEFAULT__"
        self.configured_types = frozenset({"__DEFAULT__"})
        self.volume_types = VolumeTypes(self)


async def call(api: QosSpecsApi, op: str, body: object, admin: bool = True) -> Any:
    roles = ("admin",) if admin else ("member",)
    env = Envelope("req", 1, op, None, Context("p", "u", roles))
    result = api.handlers()[op](Request(env, body, cast(Any, None), b""))
    return await result if hasattr(result, "__await__") else result


async def stored_types(store: GatewayStore) -> dict[str, str | None]:
    return {row[1]: row[5] for row in await store.db.fetchall(SELECT_TYPES)}


async def test_associations_reach_the_types_memory_holds_and_the_file(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        services = Services(store)
        api = QosSpecsApi(services)
        gold, silver = VolumeType("t-gold", "gold"), VolumeType("t-silver", "silver")
        for vtype in (gold, silver):
            services.types.add(vtype)
            await store.add_type(vtype)
        await store.load_volumes(services.types.by_id)
        rec = VolumeRecord("v1", "p", "u", 2, V.AVAILABLE, gold, "nova", host="node-1@file")
        store.volumes.keep(rec)

        fast = await call(api, "qos.create", QosCreate(
            " fast ", "front-end", {"total_iops_sec_per_gb": "5"}))
        slow = await call(api, "qos.create", QosCreate("slow"))
        assert (fast.name, slow.consumer) == ("fast", "back-end")
        with pytest.raises(InvalidInput, match="already exists"):
            await call(api, "qos.create", QosCreate("fast"))
        with pytest.raises(InvalidInput, match="consumer"):
            await call(api, "qos.create", QosCreate("odd", "sideways"))
        with pytest.raises(Forbidden):
            await call(api, "qos.create", QosCreate("mine"), admin=False)
        with pytest.raises(Forbidden):
            await call(api, "qos.list", QosListRequest(), admin=False)

        await call(api, "qos.associate", QosAssociation("fast", "gold"))
        await call(api, "qos.associate", QosAssociation(fast.id, "t-gold"))  # again: nothing
        with pytest.raises(InvalidInput, match="already associated with another"):
            await call(api, "qos.associate", QosAssociation("slow", "gold"))
        with pytest.raises(NotFound, match="QoS Specs nope"):
            await call(api, "qos.associate", QosAssociation("nope", "gold"))
        with pytest.raises(NotFound, match="Volume type"):
            await call(api, "qos.associate", QosAssociation("fast", "nope"))
        await call(api, "qos.associate", QosAssociation("fast", "silver"))
        assert rec.volume_type.qos_specs_id == fast.id, "the volume sees its type's QoS"
        assert services.types.find("silver").qos_specs_id == fast.id
        assert await stored_types(store) == {"gold": fast.id, "silver": fast.id}
        assert [t.name for t in (await call(api, "qos.associations", QosRef("fast"))).types] \
            == ["gold", "silver"]

        await call(api, "qos.disassociate", QosAssociation("slow", "gold"))  # not its: nothing
        await call(api, "qos.disassociate", QosAssociation("fast", "silver"))
        assert await stored_types(store) == {"gold": fast.id, "silver": None}

        changed = await call(api, "qos.update", QosUpdate(
            "fast", "both", {"read_iops_sec": "9"}, ("total_iops_sec_per_gb",)))
        assert (changed.consumer, changed.specs) == ("both", {"read_iops_sec": "9"})
        with pytest.raises(NotFound, match="total_iops_sec_per_gb"):
            await call(api, "qos.update", QosUpdate("fast", delete_keys=("total_iops_sec_per_gb",)))

        with pytest.raises(InvalidInput, match="still in use"):
            await call(api, "qos.delete", QosDelete("fast"))
        await call(api, "qos.delete", QosDelete("fast", force=True))
        assert rec.volume_type.qos_specs_id is None
        assert await stored_types(store) == {"gold": None, "silver": None}
        assert [q.name for q in (await call(api, "qos.list", QosListRequest())).specs] == [
            "slow"]

    async with open_gateway_store(tmp_path / "gateway.db") as again:
        await again.qos.load()
        assert list(again.qos.by_name) == ["slow"]
        assert again.qos.find(slow.id) == slow


async def test_a_failed_write_brings_the_qos_specs_and_the_types_back_to_the_file(
    tmp_path: Path,
) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        services = Services(store)
        api = QosSpecsApi(services)
        store.reread_with(services.volume_types.reread, store.qos.reread)
        gold = VolumeType("t-gold", "gold")
        services.types.add(gold)
        await store.add_type(gold)
        fast = await call(api, "qos.create", QosCreate("fast", "front-end"))
        await call(api, "qos.associate", QosAssociation("fast", "gold"))

        # the delete's batch carries a row that clashes: it fails as a whole
        clash = store.db.write("INSERT INTO qos_specs VALUES (?, ?, ?, ?, ?)",
                               (fast.id, "clash", "back-end", "{}", 0.0))
        with pytest.raises((WriteFailed, sqlite3.IntegrityError)):
            await call(api, "qos.delete", QosDelete("fast", force=True))
        with pytest.raises((WriteFailed, sqlite3.IntegrityError)):
            await clash
        assert store.qos.find("fast") == fast, "the specs are the file's again"
        assert services.types.find("gold").qos_specs_id == fast.id


async def test_qos_specs_are_listed_a_page_at_a_time_newest_first(tmp_path: Path) -> None:
    """A page holds at most ``limit`` (and 1,000) specs and about 512 KB of them: specs
    have no bound on their keys, so all of them in one reply could exceed a frame."""
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        api = QosSpecsApi(Services(store))
        big = {f"vendor:key-{n}": "v" * 255 for n in range(150)}  # about 40 KB each
        made = [await call(api, "qos.create", QosCreate(f"q{n}", specs=big))
                for n in range(30)]
        newest_first = [q.id for q in reversed(made)]

        first = await call(api, "qos.list", QosListRequest(limit=5))
        assert [q.id for q in first.specs] == newest_first[:5]
        assert first.next_marker == newest_first[4]
        rest = await call(api, "qos.list", QosListRequest(marker=first.next_marker))
        assert 5 < len(rest.specs) < 25, "a page stops at about 512 KB"
        assert [q.id for q in rest.specs] == newest_first[5:5 + len(rest.specs)]
        seen, marker = [q.id for q in first.specs + rest.specs], rest.next_marker
        while marker is not None:
            more = await call(api, "qos.list", QosListRequest(marker=marker))
            seen, marker = seen + [q.id for q in more.specs], more.next_marker
        assert seen == newest_first
        last = await call(api, "qos.list", QosListRequest(limit=5, marker=newest_first[-6]))
        assert ([q.id for q in last.specs], last.next_marker) == (newest_first[-5:], None)
        with pytest.raises(InvalidInput, match="marker"):
            await call(api, "qos.list", QosListRequest(marker="nope"))

"""A volume type's own quota named at the gateway's edge (actors/gateway/typed_quota.py):
kept by the type's id, shown and set by its name."""

from __future__ import annotations

import pytest

from cinderblock.actors.gateway.typed_quota import (
    by_name,
    named_over_quota,
    named_quota,
    shown_types,
    typed_limits,
)
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.protocol.messages.quota import QuotaSet, split_typed, with_type
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, OverQuota

PLAIN = VolumeType("id-plain", "__DEFAULT__")
GOLD = VolumeType("id-gold", "gold_fast")  # an underscore in the name
SECRET = VolumeType("id-secret", "secret", is_public=False)


@pytest.fixture
def types() -> TypeCatalog:
    catalog = TypeCatalog()
    for t in (PLAIN, GOLD, SECRET):
        catalog.add(t)
    catalog.access[SECRET.id] = {"friend"}
    return catalog


def test_deltas_get_the_type_s_own_beside_each_usage() -> None:
    assert with_type({"volumes": 1, "gigabytes": 3}, "id-gold") == {
        "volumes": 1, "gigabytes": 3, "volumes_id-gold": 1, "gigabytes_id-gold": 3}
    assert with_type({"volumes": 1}, None) == {"volumes": 1}
    assert split_typed("gigabytes_gold_fast") == ("gigabytes", "gold_fast")
    assert split_typed("per_volume_gigabytes") is None
    assert split_typed("volumes") is None


def test_a_project_s_set_shows_each_type_it_may_use_by_name(types: TypeCatalog) -> None:
    kept = QuotaSet("demo", limits={"volumes": 10, "volumes_id-gold": 3,
                                    "volumes_id-gone": 1},  # a deleted type's row
                    in_use={"volumes": 2, "volumes_id-gold": 2, "gigabytes_id-gold": 4},
                    reserved={"volumes": 0})
    shown = named_quota(kept, types, shown_types(types, "demo", admin=False))
    assert shown.limits == {"volumes": 10, "volumes_gold_fast": 3, "gigabytes_gold_fast": -1,
                            "snapshots_gold_fast": -1, "volumes___DEFAULT__": -1,
                            "gigabytes___DEFAULT__": -1, "snapshots___DEFAULT__": -1}
    assert shown.in_use["volumes_gold_fast"] == 2 and shown.in_use["gigabytes_gold_fast"] == 4
    assert shown.in_use["snapshots___DEFAULT__"] == 0
    assert "volumes_secret" not in shown.limits  # a private type of others': not named
    friend = named_quota(QuotaSet("friend"), types, shown_types(types, "friend", False))
    assert friend.limits["volumes_secret"] == -1
    assert "volumes_secret" in named_quota(
        QuotaSet("demo", limits={"volumes_id-secret": 4}), types, ()).limits  # set: shown


def test_limits_are_set_by_name_or_id_and_an_unknown_type_is_a_bad_key(
    types: TypeCatalog,
) -> None:
    assert typed_limits({"volumes_gold_fast": 3, "gigabytes_id-plain": 9, "volumes": 4},
                        types) == {"volumes_id-gold": 3, "gigabytes_id-plain": 9, "volumes": 4}
    with pytest.raises(InvalidInput, match=r"Bad key.*volumes_bronze.*no volume type 'bronze'"):
        typed_limits({"volumes_bronze": 1}, types)
    assert by_name({"gigabytes_id-gold": 4, "gigabytes": 4, "volumes_id-gone": 1}, types) == {
        "gigabytes_gold_fast": 4, "gigabytes": 4}


def test_a_refusal_names_the_type_by_name(types: TypeCatalog) -> None:
    refused = OverQuota("Quota exceeded for resources: volumes_id-gold. Requested 1 ...",
                        {"resource": "volumes_id-gold", "limit": 1,
                         "overs": [{"resource": "volumes_id-gold"}, {"resource": "gigabytes"}]})
    named = named_over_quota(refused, types)
    assert named.message.startswith("Quota exceeded for resources: volumes_gold_fast.")
    assert named.details["resource"] == "volumes_gold_fast" and named.details["limit"] == 1
    assert [o["resource"] for o in named.details["overs"]] == ["volumes_gold_fast", "gigabytes"]
    plain = OverQuota("Quota exceeded for resources: gigabytes.", {"resource": "gigabytes"})
    assert named_over_quota(plain, types) is plain

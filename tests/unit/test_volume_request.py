"""ExtractVolumeRequestTask's checks (actors/volume_request.py): pure code, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.gateway.volume_request import (
    MAX_HINTED,
    MAX_NAME,
    TypeCatalog,
    VolumeSpec,
    check_hinted,
    check_metadata,
    check_size,
    check_source_hinted,
    check_text,
    check_zone,
    hinted_backends,
    normalize_create,
    schema_size,
    validate_create,
)
from cinderblock.protocol.messages.limits import MAX_SIZE_GB
from cinderblock.protocol.messages.volumes import VolumeCreate, VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, NotFound

DEFAULT = VolumeType("id-default", "__DEFAULT__")
FC = VolumeType("id-fc", "FCVolumeType", extra_specs={"volume_backend_name": "file"})
ZONES = ("nova", "zone-b")


@pytest.fixture
def types() -> TypeCatalog:
    catalog = TypeCatalog()
    catalog.add(DEFAULT)
    catalog.add(FC)
    return catalog


def invalid(check: Any, *args: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        check(*args)
    return err.value


# ---- size ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 1000, MAX_SIZE_GB])
def test_a_whole_positive_size_is_accepted(size: int) -> None:
    assert check_size(size) == size


@pytest.mark.parametrize(
    ("size", "mentions"),
    [
        pytest.param(0, "Volume size '0' must be an integer and greater than 0", id="zero"),
        pytest.param(-1, "Volume size '-1' must be", id="negative"),
        pytest.param(1.5, "Volume size '1.5' must be", id="float"),
        pytest.param(1.0, "Volume size '1.0' must be", id="whole-float"),
        pytest.param(True, "Volume size 'True' must be", id="bool"),
        pytest.param(None, "Volume size 'None' must be", id="none"),
        pytest.param(MAX_SIZE_GB + 1, "greater than the maximum", id="too-big"),
    ],
)
def test_a_bad_size_is_invalid_input_naming_the_value(size: Any, mentions: str) -> None:
    err = invalid(check_size, size)
    assert mentions in err.message
    assert err.details == {"field": "size"}


# Cinder's schema takes a size as a number or a string of digits (cinderclient sends "1").
@pytest.mark.parametrize(("size", "taken"), [("1", 1), ("007", 7), (5, 5), (None, None)])
def test_the_schema_takes_a_size_given_as_digits(size: Any, taken: int | None) -> None:
    assert schema_size(size) == taken


@pytest.mark.parametrize("size", ["1.5", "-1", "", " 1", 1.5, True, 0, MAX_SIZE_GB + 1])
def test_the_schema_refuses_a_size_that_is_neither_digits_nor_a_whole_number(size: Any) -> None:
    err = invalid(schema_size, size)
    assert err.message.startswith("Invalid input for field/attribute size.")


# ---- name and description ------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, "", "n", "n" * MAX_NAME, "ünïcødé 名前"])
def test_names_up_to_255_characters_are_accepted(value: str | None) -> None:
    assert check_text("name", value) == value


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_name_or_description_of_256_characters_is_refused(field: str) -> None:
    err = invalid(check_text, field, "x" * (MAX_NAME + 1))
    assert err.message == f"{field} has 256 characters, more than 255"
    assert err.details == {"field": field}


# Cinder strips surrounding white space before it measures (and stores "" for "   ").
@pytest.mark.parametrize(("value", "kept"), [
    (" " + "n" * MAX_NAME + " ", "n" * MAX_NAME), ("   ", ""), ("\tname\n", "name")])
def test_names_are_stripped_of_surrounding_white_space(value: str, kept: str) -> None:
    assert check_text("name", value) == kept


# ---- metadata --------------------------------------------------------------------------------
def test_metadata_with_every_allowed_key_character_is_accepted() -> None:
    metadata = {"abcXYZ019": "v", "a-b_c:d.e/f g": "", "k" * MAX_NAME: "v" * MAX_NAME}
    assert check_metadata(metadata) == metadata


def test_metadata_has_no_cap_on_its_number_of_items_as_in_cinder() -> None:
    many = {f"k{i}": "v" for i in range(500)}
    assert check_metadata(many) == many


def test_null_metadata_is_no_metadata() -> None:
    assert check_metadata(None) == {}


def test_check_metadata_returns_a_copy() -> None:
    original = {"k": "v"}
    copy = check_metadata(original)
    assert copy == original and copy is not original


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * (MAX_NAME + 1), id="256-chars"),
        pytest.param("bad*key", id="star"),
        pytest.param("semi;colon", id="semicolon"),
        pytest.param("new\nline", id="inner-newline"),
        pytest.param("trailing-newline\n", id="trailing-newline"),
        pytest.param("tab\t", id="tab"),
        pytest.param("ключ", id="non-ascii"),
        pytest.param("back\\slash", id="backslash"),
    ],
)
def test_a_metadata_key_with_a_bad_character_or_length_is_refused(key: str) -> None:
    err = invalid(check_metadata, {key: "v"})
    assert err.message.startswith("metadata key ")
    assert err.details["field"] == "metadata"


@pytest.mark.parametrize("value", [1, None, True, ["v"], {"v": 1}, "v" * (MAX_NAME + 1)])
def test_a_metadata_value_that_is_not_a_short_string_is_refused(value: Any) -> None:
    err = invalid(check_metadata, {"key": value})
    assert "metadata value for 'key'" in err.message
    assert err.details == {"field": "metadata", "key": "key"}


# ---- zone and type ---------------------------------------------------------------------------
def test_no_zone_means_the_default_zone() -> None:
    assert check_zone(None, ZONES, "nova") == "nova"


def test_a_known_zone_is_kept() -> None:
    assert check_zone("zone-b", ZONES, "nova") == "zone-b"


def test_an_unknown_zone_is_invalid_input_listing_the_known_zones() -> None:
    err = invalid(check_zone, "atlantis", ZONES, "nova")
    assert err.message == "Availability zone 'atlantis' is invalid."
    assert err.details == {"field": "availability_zone", "zones": ["nova", "zone-b"]}


def test_a_type_is_found_by_name_or_by_id(types: TypeCatalog) -> None:
    assert types.find("FCVolumeType") is FC
    assert types.find("id-fc") is FC


def test_an_unknown_type_is_not_found_naming_it(types: TypeCatalog) -> None:
    with pytest.raises(NotFound) as err:
        types.find("Gold")
    assert err.value.message == "Volume type with name Gold could not be found."
    assert err.value.details == {"volume_type": "Gold"}


# ---- the whole request ------------------------------------------------------------------------
def test_a_full_request_becomes_a_volume_spec(types: TypeCatalog) -> None:
    req = VolumeCreate(3, "vol", "desc", "FCVolumeType", "zone-b", {"k": "v"})

    spec = validate_create(req, types, ZONES, "nova", "__DEFAULT__")

    assert spec == VolumeSpec(3, "vol", "desc", FC, "zone-b", {"k": "v"})


def test_a_minimal_request_gets_the_default_type_and_zone(types: TypeCatalog) -> None:
    spec = validate_create(VolumeCreate(1), types, ZONES, "nova", "__DEFAULT__")
    assert (spec.volume_type, spec.availability_zone, spec.name, spec.metadata) == (
        DEFAULT, "nova", None, {})


def test_a_missing_default_type_is_not_found(types: TypeCatalog) -> None:
    with pytest.raises(NotFound):
        validate_create(VolumeCreate(1), types, ZONES, "nova", "NoDefault")


@pytest.mark.parametrize(
    ("req", "error"),
    [
        pytest.param(VolumeCreate(0), InvalidInput, id="size"),
        pytest.param(VolumeCreate(1, name="n" * 256), InvalidInput, id="name"),
        pytest.param(VolumeCreate(1, description="d" * 256), InvalidInput, id="description"),
        pytest.param(VolumeCreate(1, volume_type="nope"), NotFound, id="type"),
        pytest.param(VolumeCreate(1, availability_zone="nope"), InvalidInput, id="zone"),
        pytest.param(VolumeCreate(1, metadata={"*": "v"}), InvalidInput, id="metadata"),
    ],
)
def test_validate_create_refuses_each_bad_field(
    types: TypeCatalog, req: VolumeCreate, error: type[Exception]
) -> None:
    with pytest.raises(error):
        validate_create(req, types, ZONES, "nova", "__DEFAULT__")


# ---- Cinder's request schema (normalize_create) ----------------------------------------------
UUID = "9b0d7b8e-4a57-4c35-9a0e-1f0c2d6b1a11"


def test_the_schema_strips_names_and_takes_the_display_names() -> None:
    req = normalize_create(VolumeCreate("2", display_name="  old  ", display_description=" d "))
    assert (req.size, req.name, req.description) == (2, "old", "d")
    assert (req.display_name, req.display_description) == (None, None)


def test_name_wins_over_display_name_as_in_cinder() -> None:
    assert normalize_create(VolumeCreate(1, name="new", display_name="old")).name == "new"


@pytest.mark.parametrize("value", [False, "false", "no", None])
def test_multiattach_false_is_accepted(value: Any) -> None:
    assert normalize_create(VolumeCreate(1, multiattach=value)).multiattach is None


@pytest.mark.parametrize("value", [True, "true", "yes"])
def test_multiattach_true_is_refused_pointing_at_multiattach_types(value: Any) -> None:
    err = invalid(normalize_create, VolumeCreate(1, multiattach=value))
    assert err.message.startswith("multiattach parameter has been removed.")


@pytest.mark.parametrize("field", ["snapshot_id", "source_volid", "consistencygroup_id",
                                   "backup_id"])
def test_a_source_id_that_is_not_a_uuid_is_invalid_input(field: str) -> None:
    fields: dict[str, Any] = {field: "not-a-uuid"}
    err = invalid(normalize_create, VolumeCreate(1, **fields))
    assert err.message == (f"Invalid input for field/attribute {field}. Value: not-a-uuid. "
                           "'not-a-uuid' is not a 'uuid'")


@pytest.mark.parametrize(("fields", "mentions"), [
    ({"image_ref": "cirros"}, "Image cirros could not be found."),
    ({"consistencygroup_id": UUID}, f"Group {UUID} could not be found."),
])
def test_an_image_or_consistency_group_is_not_found_here(fields: dict[str, Any],
                                                         mentions: str) -> None:
    with pytest.raises(NotFound) as err:
        normalize_create(VolumeCreate(1, **fields))
    assert err.value.message == mentions
    # a generic group is the create flow's to find (groups.py): it passes here
    assert normalize_create(VolumeCreate(1, group_id="g1")).group_id == "g1"


@pytest.mark.parametrize("fields", [
    {"backup_id": UUID, "snapshot_id": UUID}, {"backup_id": UUID, "source_volid": UUID},
    {"snapshot_id": UUID, "source_volid": UUID},
])
def test_a_volume_is_made_from_one_source_at_most(fields: dict[str, Any]) -> None:
    err = invalid(normalize_create, VolumeCreate(1, **fields))
    assert err.message.startswith("give one source of") and "not both" in err.message


def test_a_type_name_of_256_characters_is_invalid_input_not_not_found() -> None:
    err = invalid(normalize_create, VolumeCreate(1, volume_type="t" * 256))
    assert err.message.startswith("Invalid input for field/attribute volume_type.")


def test_a_type_s_size_bounds_are_enforced(types: TypeCatalog) -> None:
    types.add(VolumeType("id-b", "Bounded", extra_specs={
        "provisioning:min_vol_size": "2", "provisioning:max_vol_size": "4"}))
    assert validate_create(VolumeCreate(3, volume_type="Bounded"), types, ZONES, "nova",
                           "__DEFAULT__").size == 3
    for size, word in ((1, "less than the minimum"), (5, "greater than the maximum")):
        err = invalid(validate_create, VolumeCreate(size, volume_type="Bounded"), types, ZONES,
                      "nova", "__DEFAULT__")
        assert word in err.message


def test_a_type_s_zones_limit_where_its_volumes_go(types: TypeCatalog) -> None:
    types.add(VolumeType("id-z", "ZoneB", extra_specs={"RESKEY:availability_zones": "zone-b"}))
    spec = validate_create(VolumeCreate(1, volume_type="ZoneB"), types, ZONES, "nova",
                           "__DEFAULT__")
    assert spec.availability_zone == "zone-b"
    err = invalid(validate_create, VolumeCreate(1, volume_type="ZoneB",
                                                availability_zone="nova"),
                  types, ZONES, "nova", "__DEFAULT__")
    assert err.message == "Availability zone 'nova' is invalid."


# ---- affinity hints ---------------------------------------------------------------------
A, B, C = (f"{n}0000000-0000-4000-8000-000000000000" for n in "abc")


def test_an_affinity_hint_is_a_volume_id_or_a_list_of_distinct_ones() -> None:
    assert check_hinted("same_host", None) is None
    assert check_hinted("same_host", A) == (A,)
    assert check_hinted("different_host", [A, B]) == (A, B)
    assert check_hinted("different_host", []) == ()
    for bad, says in ((["x"], "'x' is not a 'uuid'"), ([A, A], "non-unique"),
                      ({"id": A}, "not a volume id or a list"), ([A, 1], "not a volume id"),
                      ([A] * (MAX_HINTED + 1), f"names at most {MAX_HINTED}")):
        with pytest.raises(InvalidInput, match=says) as refused:
            check_hinted("different_host", bad)
        assert "different_host" in refused.value.message
    normalized = normalize_create(VolumeCreate(1, same_host=A, different_host=[B]))
    assert (normalized.same_host, normalized.different_host) == ((A,), (B,))


def test_hints_become_the_backends_to_avoid_and_to_choose_among() -> None:
    """Cinder's affinity filters: different_host avoids the backends of the caller's
    placed volumes it names (others pass over); same_host takes any backend holding one
    of them, and with none of them placed, none."""
    placed = {A: "n1@file", B: "n2@file"}  # C: not the caller's, or not placed yet
    assert hinted_backends(None, None, placed.get) == ((), None)
    assert hinted_backends(None, [A, C], placed.get) == (("n1@file",), None)
    assert hinted_backends([A, B, C], [A], placed.get) == (("n1@file",),
                                                           ("n1@file", "n2@file"))
    assert hinted_backends([C], None, placed.get) == ((), ())
    assert hinted_backends([], [], placed.get) == ((), None)  # Cinder's: as no hint
    check_source_hinted("n1@file", (), None)
    check_source_hinted("n1@file", ("n2@file",), ("n1@file",))
    for avoid, only in ((("n1@file",), None), ((), ("n2@file",)), ((), ())):
        with pytest.raises(InvalidInput, match="source's backend, n1@file"):
            check_source_hinted("n1@file", avoid, only)

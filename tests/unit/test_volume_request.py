"""ExtractVolumeRequestTask's checks (actors/volume_request.py): pure code, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.gateway.volume_request import (
    MAX_METADATA_ITEMS,
    MAX_NAME,
    MAX_SIZE_GB,
    TypeCatalog,
    VolumeSpec,
    check_metadata,
    check_size,
    check_text,
    check_zone,
    validate_create,
)
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
        pytest.param(0, "at least 1 GiB, got 0", id="zero"),
        pytest.param(-1, "at least 1 GiB, got -1", id="negative"),
        pytest.param(1.5, "integer number of GiB, got float 1.5", id="float"),
        pytest.param(1.0, "got float 1.0", id="whole-float"),
        pytest.param("1", "got str '1'", id="string"),
        pytest.param(True, "got bool True", id="bool"),
        pytest.param(None, "got NoneType None", id="none"),
        pytest.param(MAX_SIZE_GB + 1, "larger than", id="too-big"),
    ],
)
def test_a_bad_size_is_invalid_input_naming_the_value(size: Any, mentions: str) -> None:
    err = invalid(check_size, size)
    assert mentions in err.message
    assert err.details == {"field": "size"}


# ---- name and description ------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, "", "n", "n" * MAX_NAME, "ünïcødé 名前"])
def test_names_up_to_255_characters_are_accepted(value: str | None) -> None:
    assert check_text("name", value) == value


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_name_or_description_of_256_characters_is_refused(field: str) -> None:
    err = invalid(check_text, field, "x" * (MAX_NAME + 1))
    assert err.message == f"{field} must be at most 255 characters, got 256"
    assert err.details == {"field": field}


# ---- metadata --------------------------------------------------------------------------------
def test_metadata_with_every_allowed_key_character_is_accepted() -> None:
    metadata = {"abcXYZ019": "v", "a-b_c:d.e/f g": "", "k" * MAX_NAME: "v" * MAX_NAME}
    assert check_metadata(metadata) == metadata


def test_metadata_of_128_items_is_accepted_and_129_refused() -> None:
    full = {f"k{i}": "v" for i in range(MAX_METADATA_ITEMS)}
    assert check_metadata(full) == full
    err = invalid(check_metadata, {**full, "one-more": "v"})
    assert "at most 128 items, got 129" in err.message


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
    assert "'atlantis'" in err.message and "['nova', 'zone-b']" in err.message
    assert err.details == {"field": "availability_zone"}


def test_a_type_is_found_by_name_or_by_id(types: TypeCatalog) -> None:
    assert types.find("FCVolumeType") is FC
    assert types.find("id-fc") is FC


def test_an_unknown_type_is_not_found_naming_it(types: TypeCatalog) -> None:
    with pytest.raises(NotFound) as err:
        types.find("Gold")
    assert "'Gold'" in err.value.message
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

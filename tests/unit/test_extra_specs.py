"""Extra-spec matching, with Cinder's operators and CapabilitiesFilter's key scopes."""

from __future__ import annotations

import pytest

from cinderblock.actors.scheduler.extra_specs import as_bool, match, satisfies


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        ("iSCSI", "iSCSI", True),
        ("iSCSI", "FC", False),
        (True, "True", True),
        (10, "10", True),
        ("lvm", "", False),
    ],
)
def test_a_requirement_without_an_operator_is_a_string_comparison(
    value: object, requirement: str, expected: bool
) -> None:
    assert match(value, requirement) is expected


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        (True, "<is> True", True),
        (True, "<is> true", True),
        ("TRUE", "<is> True", True),
        ("yes", "<is> True", True),
        (False, "<is> False", True),
        (False, "<is> True", False),
        ("no", "<is> False", True),
        ("bogus", "<is> False", True),
        (True, "<is> FALSE", False),
    ],
)
def test_is_compares_booleans_case_insensitively(
    value: object, requirement: str, expected: bool
) -> None:
    assert match(value, requirement) is expected


def test_in_looks_for_a_substring_or_a_list_member() -> None:
    assert match("thin,thick", "<in> thick")
    assert not match("thin", "<in> thick")
    assert match(["iSCSI", "FC"], "<in> FC")
    assert not match(["iSCSI", "FC"], "<in> NVMe")


def test_all_in_needs_every_operand_present() -> None:
    assert match("aes mmx sse", "<all-in> aes sse")
    assert not match("aes mmx", "<all-in> aes sse")
    assert match(["a", "b", "c"], "<all-in> a c")
    assert not match("aes", "<all-in>")


def test_or_accepts_any_listed_value() -> None:
    assert match("FC", "<or> iSCSI <or> FC")
    assert match("iSCSI", "<or> iSCSI <or> FC")
    assert not match("NVMe", "<or> iSCSI <or> FC")
    assert match("lvm", "<or> lvm")
    assert not match("lvm", "<or>")


def test_single_equals_means_at_least_as_cinder_does() -> None:
    assert match(12, "= 10")
    assert match("10", "= 10")
    assert not match(9, "= 10")


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        (10, "== 10", True),
        ("10.0", "== 10", True),
        (11, "== 10", False),
        (11, "!= 10", True),
        (10, "!= 10", False),
        (10, ">= 10", True),
        (9, ">= 10", False),
        (10, "<= 10", True),
        (11, "<= 10", False),
        (11, "> 10", True),
        (10, "> 10", False),
        (9, "< 10", True),
        (10, "< 10", False),
    ],
)
def test_numeric_operators_compare_as_numbers(
    value: object, requirement: str, expected: bool
) -> None:
    assert match(value, requirement) is expected


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        ("abc", "s== abc", True),
        ("abc", "s!= abc", False),
        ("abc", "s< abd", True),
        ("abc", "s<= abc", True),
        ("abd", "s> abc", True),
        ("abc", "s>= abd", False),
        (9, "s> 10", True),
    ],
)
def test_string_operators_compare_as_strings(
    value: object, requirement: str, expected: bool
) -> None:
    assert match(value, requirement) is expected


def test_an_operand_that_is_not_a_number_fails_instead_of_raising() -> None:
    assert not match("fast", ">= 10")
    assert not match(10, ">= many")


def test_an_operator_without_an_operand_fails() -> None:
    assert not match(10, ">=")
    assert not match("x", "<in>")


def test_a_missing_capability_fails_any_operator() -> None:
    assert not match(None, "<is> False")
    assert not match(None, "<or> a <or> b")


def test_as_bool_follows_oslo_true_words() -> None:
    assert [as_bool(w) for w in ("1", "t", "On", "Y", "yes", " true ")] == [True] * 6
    assert [as_bool(w) for w in ("0", "off", "", "maybe")] == [False] * 4


CAPABILITIES: dict[str, object] = {
    "volume_backend_name": "file",
    "storage_protocol": "iSCSI",
    "multiattach": True,
    "compression": {"algorithm": "lz4"},
}


def test_capabilities_scope_and_unscoped_keys_are_matched() -> None:
    assert satisfies(CAPABILITIES, {"capabilities:storage_protocol": "iSCSI"})
    assert satisfies(CAPABILITIES, {"volume_backend_name": "file"})
    assert not satisfies(CAPABILITIES, {"volume_backend_name": "lvm"})
    assert not satisfies(CAPABILITIES, {"capabilities:storage_protocol": "FC"})


def test_multiattach_is_unscoped_and_matched_against_the_capability() -> None:
    assert satisfies(CAPABILITIES, {"multiattach": "<is> True"})
    assert not satisfies({"volume_backend_name": "file"}, {"multiattach": "<is> True"})


def test_other_scopes_are_left_to_others() -> None:
    specs = {"qos:read_iops_sec": "1000", "provisioning:type": "thick", "RESKEY:x": "y"}
    assert satisfies(CAPABILITIES, specs)


def test_a_missing_capability_fails_the_match() -> None:
    assert not satisfies(CAPABILITIES, {"capabilities:replication": "<is> False"})


def test_nested_capabilities_are_reached_through_the_scope() -> None:
    assert satisfies(CAPABILITIES, {"capabilities:compression:algorithm": "lz4"})
    assert not satisfies(CAPABILITIES, {"capabilities:compression:algorithm": "zstd"})
    assert not satisfies(CAPABILITIES, {"capabilities:storage_protocol:x": "y"})


def test_no_extra_specs_match_every_backend() -> None:
    assert satisfies({}, {})

"""The REST front's pure parts: who is calling (noauth on loopback only, tokens
elsewhere), microversion negotiation, and which sorts the gateway pages itself."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest

from cinderblock.actors.rest.app import (
    by_creation,
    extra_specs_filter,
    other_sort,
    scheduler_hints,
)
from cinderblock.actors.rest.auth import AuthConfigError, Authenticator, Caller, is_loopback
from cinderblock.actors.rest.errors import HttpFault, fault_body
from cinderblock.actors.rest.filters import (
    RESOURCE_FILTERS,
    check_query,
    resource_filters,
)
from cinderblock.actors.rest.microversion import MAX, MIN, Version, negotiate, parse_version
from cinderblock.actors.rest.server import tls_context
from cinderblock.actors.runtime.config import embedded
from cinderblock.protocol.messages.volumes import time_comparisons
from cinderblock.protocol.wire.errors import InvalidInput
from tests.conftest import self_signed

KEY = "rq3ouEqFJ8d!P[9n?2{E]^=aL3VyR]p2^Qz@Rj)B"  # a z85 public key's shape


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("10.0.0.5", False), ("::", False), ("api.example.com", False)])
def test_only_loopback_addresses_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_noauth_tokens_name_user_and_project_and_admin_is_the_admin_user(
    tmp_path: Path,
) -> None:
    auth = Authenticator(tmp_path, "127.0.0.1")
    assert auth.noauth
    assert auth.identify("demo:demo") == Caller("demo", "demo", admin=False)
    assert auth.identify("admin:admin") == Caller("admin", "admin", admin=True)


def test_the_users_file_gives_the_admin_role(tmp_path: Path) -> None:
    (tmp_path / "users").write_text(f"{KEY} ops ops admin,member\n{KEY} bob bob member\n")
    auth = Authenticator(tmp_path, "127.0.0.1")
    assert auth.identify("ops:ops").admin and not auth.identify("bob:bob").admin


@pytest.mark.parametrize("token", [None, "", "demo", ":demo", "demo:"])
def test_a_missing_or_misshapen_noauth_token_is_401(tmp_path: Path, token: str | None) -> None:
    with pytest.raises(HttpFault) as err:
        Authenticator(tmp_path, "127.0.0.1").identify(token)
    assert err.value.status == 401


def test_a_front_on_a_public_address_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="without tokens"):
        Authenticator(tmp_path, "0.0.0.0")


def test_a_front_beyond_loopback_serves_only_tls_unless_told_tls_ends_before_it(
    tmp_path: Path,
) -> None:
    cfg = embedded(tmp_path)
    assert tls_context(cfg, "127.0.0.1") is None  # plain HTTP on loopback
    with pytest.raises(AuthConfigError, match=r"beyond loopback.*over plain HTTP: give "
                                              "rest_certfile and rest_keyfile"):
        tls_context(cfg, "10.0.0.5")
    assert tls_context(dataclasses.replace(cfg, rest_plain_http=True), "10.0.0.5") is None
    cert, key = self_signed(tmp_path, "10.0.0.5")
    served = tls_context(dataclasses.replace(cfg, rest_certfile=str(cert),
                                             rest_keyfile=str(key)), "10.0.0.5")
    assert served is not None and served.minimum_version >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(AuthConfigError, match=f"cannot load rest_certfile {key}"):
        tls_context(dataclasses.replace(cfg, rest_certfile=str(key), rest_keyfile=str(key)),
                    "10.0.0.5")


def test_with_tokens_only_a_configured_token_of_a_known_user_gets_in(tmp_path: Path) -> None:
    (tmp_path / "users").write_text(f"{KEY} demo demo member\n{KEY} admin admin admin\n")
    (tmp_path / "rest-tokens").write_text("s3cret demo\nr00t admin\nlost nobody\n")
    auth = Authenticator(tmp_path, "0.0.0.0")
    assert not auth.noauth
    assert auth.identify("s3cret") == Caller("demo", "demo", admin=False)
    assert auth.identify("r00t").admin
    for token in ("demo:demo", "admin:admin", "lost", "guess"):
        with pytest.raises(HttpFault) as err:
            auth.identify(token)
        assert err.value.status == 401


# ---- microversions -----------------------------------------------------------------------
@pytest.mark.parametrize(("header", "version"), [
    (None, MIN), ("volume 3.27", Version(3, 27)), ("volume latest", MAX),
    ("compute 2.1, volume 3.44", Version(3, 44)), ("compute 2.1", MIN)])
def test_the_volume_part_of_the_header_decides(header: str | None, version: Version) -> None:
    assert negotiate(header) == version


def test_the_legacy_header_is_read_when_the_new_one_is_absent() -> None:
    assert negotiate(None, "3.10") == Version(3, 10)


@pytest.mark.parametrize(("header", "status"), [
    ("volume 3.72", 406), ("volume 2.0", 406), ("volume 3", 400), ("volume 3.x", 400),
    ("volume 3.01", 400)])
def test_an_unsupported_or_malformed_version_is_refused(header: str, status: int) -> None:
    with pytest.raises(HttpFault) as err:
        negotiate(header)
    assert err.value.status == status


def test_versions_compare_as_numbers() -> None:
    assert parse_version("3.10") > parse_version("3.9")
    assert Version(3, 42).at_least("3.42") and not Version(3, 41).at_least("3.42")


def test_fault_bodies_have_cinder_s_names() -> None:
    assert fault_body(400, "x") == {"badRequest": {"code": 400, "message": "x"}}
    assert fault_body(413, "y") == {"overLimit": {"code": 413, "message": "y",
                                                  "retryAfter": "0"}}
    assert list(fault_body(409, "z")) == ["conflictingRequest"]
    assert list(fault_body(406, "v")) == ["computeFault"]


@pytest.mark.parametrize(("sort", "sort_dir", "order"), [
    (None, None, "desc"), ("", "asc", "desc"),
    ("created_at:desc", None, "desc"),  # Horizon's every page
    ("created_at:asc", None, "asc"),  # and its page back
    ("created_at", None, "desc"), ("created_at", "desc", "desc"), ("created_at", "asc", "asc"),
    ("created_at,id", None, "desc"), ("created_at:desc,name:asc", None, "desc"),
    ("size:desc", None, None), ("name", None, None), ("created_at:up", None, None),
    ("id:desc,created_at:desc", None, None),
])
def test_only_an_order_by_creation_is_left_to_the_gateways_pages(
    sort: str | None, sort_dir: str | None, order: str | None,
) -> None:
    """A sort by creation, either way, is paged through the gateway's listing indexes (a
    page costs a page); any other is the gateway's ``sort`` (``other_sort``)."""
    assert by_creation(sort, sort_dir) == order


@pytest.mark.parametrize(("sort", "sort_dir", "asked"), [
    ("size:desc", None, "size:desc"), ("name", None, "name:desc"), ("name", "asc", "name:asc"),
    ("id:desc,created_at:desc", None, "id:desc"), ("status:asc,size:desc", "desc", "status:asc"),
])
def test_another_sort_is_asked_of_the_gateway_by_its_first_key(
    sort: str, sort_dir: str | None, asked: str,
) -> None:
    assert other_sort(sort, sort_dir) == asked


@pytest.mark.parametrize("sort", ["colour", "created_at:up", "size:sideways", ""])
def test_a_sort_cinder_does_not_know_is_a_bad_request_naming_the_keys(sort: str) -> None:
    with pytest.raises(HttpFault) as refused:
        other_sort(sort, None)
    assert refused.value.status == 400 and "keys are" in refused.value.message


# ---- the filters a listing takes ---------------------------------------------------------
def test_time_filters_are_cinder_s_comparisons_of_iso_times() -> None:
    """``created_at=gt:...,lte:...`` (3.60): each comparison with its time in seconds
    since the epoch, UTC unless the time says otherwise; anything else a 400 naming it."""
    assert time_comparisons("gt:2026-12-01T00:00:00,lte:2026-12-02T01:00:00+01:00",
                            "created_at") == {"gt": 1796083200.0, "lte": 1796169600.0}
    assert time_comparisons("eq:2026-12-01T00:00:00Z,eq:2026-12-01", "updated_at") == {
        "eq": 1796083200.0}
    for raw, says in (("gt", "Invalid created_at value"), ("after:2026-12-01",
                                                          "Invalid after operator"),
                      ("gt:yesterday", "Invalid yesterday value"), ("", "Invalid created_at")):
        with pytest.raises(InvalidInput, match=says):  # the REST front's 400
            time_comparisons(raw, "created_at")


def test_a_query_naming_a_filter_the_listing_does_not_honour_is_refused_naming_it() -> None:
    check_query({"name": "a", "display_name": "a", "status": "available", "limit": "5",
                 "sort": "size:asc", "all_tenants": "1", "metadata": "{}"}, "volume")
    with pytest.raises(HttpFault) as refused:
        check_query({"status": "available", "bootable": "true", "group_id": "g",
                     "migration_status": "migrating", "created_at": "gt:2026-01-01",
                     "name~": "a"}, "volume")
    assert refused.value.status == 400
    assert refused.value.message.startswith(
        "Invalid filters name~ are found in query options. This route "
        "filters by name, status, metadata, bootable, availability_zone, size, created_at, "
        "updated_at, consumes_quota, migration_status, group_id (GET "
        "/resource_filters?resource=volume)")
    with pytest.raises(HttpFault, match="offset is not supported here"):
        check_query({"offset": "10"}, "volume")
    with pytest.raises(HttpFault, match=r"Invalid filters limit .* takes all_tenants"):
        check_query({"limit": "1"}, "transfer", {"all_tenants"})
    with pytest.raises(HttpFault, match="This route has no filters and takes resource"):
        check_query({"resource": "volume", "x": "1"}, None, {"resource"})


def test_resource_filters_are_what_the_listings_honour() -> None:
    every = resource_filters(None)
    assert {f["resource"] for f in every} == set(RESOURCE_FILTERS)
    assert resource_filters("snapshot") == [
        {"resource": "snapshot", "filters": ["name", "status", "volume_id", "metadata",
                                             "availability_zone", "consumes_quota"]}]
    assert resource_filters("backup") == [
        {"resource": "backup", "filters": ["name", "status", "volume_id"]}]
    assert resource_filters("group_snapshot") == [
        {"resource": "group_snapshot", "filters": ["name", "status", "group_id"]}]
    assert resource_filters("consistencygroup") == []  # no such listing here: none


def test_a_create_s_scheduler_hints_are_the_affinity_ones_or_refused_naming_the_others(
) -> None:
    assert scheduler_hints(None) == {}
    assert scheduler_hints({"same_host": "a", "different_host": ["b"]}) == {
        "same_host": "a", "different_host": ["b"]}
    assert scheduler_hints({"same_host": None}) == {}
    with pytest.raises(HttpFault, match="local_to_instance, query are not honoured here"):
        scheduler_hints({"query": "[]", "same_host": "a", "local_to_instance": "i"})
    with pytest.raises(HttpFault, match="a mapping is expected") as refused:
        scheduler_hints(["same_host"])
    assert refused.value.status == 400


def test_theextra_specs_filter_of_types_is_a_dict_as_cinderclient_sends_it() -> None:
    assert extra_specs_filter("{'multiattach': '<is> True'}") == {"multiattach": "<is> True"}
    assert extra_specs_filter('{"a": "b", "n": 2}') == {"a": "b", "n": "2"}
    for bad in ("multiattach=True", "['a']", "{'a': ['b']}", "{1: 'a'}", "{'a': True}",
                "__import__('os')", "(" * 200):
        with pytest.raises(HttpFault, match="Invalid extra_specs filter"):
            extra_specs_filter(bad)

"""Cinder's API v3 over HTTP against a running cluster: the create rules as Cinder's
schema and create flow answer them, bad requests, microversions, auth, discovery.

Every refused request is checked for what it left behind: nothing (no volume in
the project, no quota used).
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from cinderblock.actors.rest.errors import FAULT_NAMES
from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.volumes import Volume
from tests.conftest import CINDERBLOCK, GIB, E2ECluster
from tests.e2e.test_rest_clients import (
    backup_gone,
    backup_status,
    gone,
    volume_status,
    wait_for,
)
from tests.lifecycle_helpers import file_of, read, same_bytes, write_pattern

UUID = "0b6a2f8e-6f5b-4a3e-9d52-1c8f3e1d2a44"
BIG = (1 << 31) - 1


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """A tiny HTTP client for the REST front (a new connection per request)."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def call(self, method: str, path: str, body: Any = None, version: str | None = None,
             raw: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.token is not None:
            sent["X-Auth-Token"] = self.token
        if version is not None:
            sent["OpenStack-API-Version"] = f"volume {version}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            text = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        return Reply(resp.status, got, json.loads(text) if text else None)


@pytest.fixture(scope="module")
def rest_cluster(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(rest_fronts=1)


@pytest.fixture
def project() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(rest_cluster: E2ECluster, project: str) -> Api:
    return Api(rest_cluster.rest_url, f"{project}:{project}")


@pytest.fixture
def admin_api(rest_cluster: E2ECluster) -> Api:
    return Api(rest_cluster.rest_url, "admin:admin")


@pytest.fixture
def admin_view(rest_cluster: E2ECluster) -> Iterator[SyncClient]:
    with SyncClient(rest_cluster.gateway, project="admin", admin=True, timeout=20.0,
                    key=rest_cluster.user_key("admin", admin=True)) as c:
        yield c


@pytest.fixture(scope="module")
def special_types(rest_cluster: E2ECluster) -> None:
    """Types with Cinder's size bounds and zone list, made through the API by an admin."""
    admin = Api(rest_cluster.rest_url, "admin:admin")
    for name, specs in (("Bounded", {"provisioning:min_vol_size": "2",
                                     "provisioning:max_vol_size": "4"}),
                        ("Nowhere", {"RESKEY:availability_zones": "atlantis"})):
        made = admin.call("POST", "/v3/types", {"volume_type": {"name": name,
                                                                "extra_specs": specs}})
        assert made.status == 200, made.body


def nothing_written(admin: SyncClient, project: str) -> None:
    assert [v for v in admin.list_volumes(all_projects=True) if v.project_id == project] == []
    assert admin.show_quota(project).in_use.get("volumes", 0) == 0
    assert admin.show_quota(project).in_use.get("gigabytes", 0) == 0


def fault(reply: Reply, status: int, name: str, says: str) -> None:
    assert reply.status == status, reply.body
    assert list(reply.body) == [name], reply.body
    assert reply.body[name]["code"] == status
    assert says in reply.body[name]["message"], reply.body


# ---- the create rules, as Cinder answers them --------------------------------------------------
ACCEPTED = [
    pytest.param({"size": "1"}, {"size": 1}, None, id="size-as-string"),
    pytest.param({"size": 1, "name": " " + "n" * 255 + " "}, {"name": "n" * 255}, None,
                 id="255-char-name-with-spaces-around"),
    pytest.param({"size": 1, "name": "   "}, {"name": ""}, None, id="blank-name-stored-empty"),
    pytest.param({"size": 1, "description": "  d  "}, {"description": "d"}, None,
                 id="description-stripped"),
    pytest.param({"size": 1, "display_name": "old", "display_description": "older"},
                 {"name": "old", "description": "older"}, None, id="display-name"),
    pytest.param({"size": 1, "metadata": None}, {"metadata": {}}, None, id="metadata-null"),
    pytest.param({"size": 1, "metadata": {f"k{i}": "v" for i in range(129)}}, {}, None,
                 id="129-metadata-keys"),
    pytest.param({"size": 1, "multiattach": False}, {}, None, id="multiattach-false"),
    pytest.param({"size": 1, "volume_type": ""}, {"volume_type": "__DEFAULT__"}, None,
                 id="empty-type-is-default"),
    pytest.param({"size": 3, "volume_type": "Bounded"}, {"size": 3}, None,
                 id="within-type-size-bounds"),
    pytest.param({"size": 1, "surprise": 1}, {}, None, id="extra-field-before-3.53"),
    pytest.param({"size": 1, "OS-SCH-HNT:scheduler_hints": None}, {}, None,
                 id="scheduler-hints-in-volume"),
]


@pytest.mark.parametrize(("volume", "expect", "version"), ACCEPTED)
def test_cinder_accepts_these_creates_and_so_does_the_gateway(
    api: Api, admin_view: SyncClient, special_types: None, volume: dict[str, Any],
    expect: dict[str, Any], version: str | None,
) -> None:
    reply = api.call("POST", "/v3/volumes", {"volume": volume}, version)
    assert reply.status == 202, reply.body
    view = reply.body["volume"]
    for key, value in expect.items():
        assert view[key] == value
    stored = admin_view.show_volume(view["id"])
    for key, value in expect.items():
        assert getattr(stored, key) == value


REFUSED = [
    # (volume body, microversion, status, fault name, what the message says)
    ({"size": 1, "multiattach": True}, None, 400, "badRequest",
     "multiattach parameter has been removed"),
    ({"size": 1, "snapshot_id": "not-a-uuid"}, None, 400, "badRequest", "is not a 'uuid'"),
    ({"size": 1, "source_volid": "not-a-uuid"}, None, 400, "badRequest", "is not a 'uuid'"),
    ({"size": 1, "snapshot_id": UUID}, None, 404, "itemNotFound", UUID),
    ({"size": 1, "source_volid": UUID}, None, 404, "itemNotFound", UUID),
    ({"size": 1, "imageRef": "cirros"}, None, 404, "itemNotFound",
     "Image cirros could not be found."),
    ({"size": 1, "backup_id": UUID}, "3.47", 404, "itemNotFound",
     f"Backup {UUID} could not be found."),
    ({"size": 1, "group_id": "g1"}, "3.13", 404, "itemNotFound", "Group g1 could not be found."),
    ({"size": 1, "consistencygroup_id": UUID}, None, 404, "itemNotFound",
     f"Group {UUID} could not be found."),
    ({"size": 1, "volume_type": "t" * 256}, None, 400, "badRequest",
     "Invalid input for field/attribute volume_type"),
    ({"size": 1, "volume_type": "Gold"}, None, 404, "itemNotFound",
     "Volume type with name Gold could not be found."),
    ({"size": 1, "volume_type": "Bounded"}, None, 400, "badRequest",
     "less than the minimum required size of '2'"),
    ({"size": 5, "volume_type": "Bounded"}, None, 400, "badRequest",
     "greater than the maximum allowable size of '4'"),
    ({"size": 1, "volume_type": "Nowhere"}, None, 400, "badRequest",
     "availability zone(s) ['atlantis'] is invalid"),
    ({"size": BIG}, None, 413, "overLimit", "VolumeSizeExceedsAvailableQuota"),
    ({"size": BIG + 1}, None, 400, "badRequest", "greater than the maximum"),
    ({"size": 0}, None, 400, "badRequest", "less than the minimum of 1"),
    ({"size": -1}, None, 400, "badRequest", "less than the minimum of 1"),
    ({"size": "0"}, None, 400, "badRequest", "Volume size '0' must be an integer"),
    ({"size": "abc"}, None, 400, "badRequest", "does not match '^[0-9]+$'"),
    ({"size": 1.5}, None, 400, "badRequest", "is not of type 'integer', 'string', 'null'"),
    ({"size": True}, None, 400, "badRequest", "is not of type 'integer', 'string', 'null'"),
    ({}, None, 400, "badRequest", "Volume size 'None' must be an integer"),
    ({"size": 1, "name": "n" * 256}, None, 400, "badRequest", "more than 255"),
    ({"size": 1, "name": 5}, None, 400, "badRequest", "name"),
    ({"size": 1, "availability_zone": "atlantis"}, None, 400, "badRequest",
     "Availability zone 'atlantis' is invalid."),
    ({"size": 1, "metadata": {"bad*key": "v"}}, None, 400, "badRequest", "metadata key"),
    ({"size": 1, "metadata": {"k": 5}}, None, 400, "badRequest", "metadata value for 'k'"),
    ({"size": 1, "metadata": []}, None, 400, "badRequest", "metadata"),
    ({"size": 1, "surprise": 1}, "3.53", 400, "badRequest", "Additional properties"),
]


@pytest.mark.parametrize(("volume", "version", "status", "name", "says"), REFUSED,
                         ids=lambda v: str(v)[:40] if isinstance(v, dict) else None)
def test_cinder_refuses_these_creates_with_its_codes_and_nothing_is_written(
    api: Api, admin_view: SyncClient, project: str, special_types: None,
    volume: dict[str, Any], version: str | None, status: int, name: str, says: str,
) -> None:
    reply = api.call("POST", "/v3/volumes", {"volume": volume}, version)
    fault(reply, status, name, says)
    nothing_written(admin_view, project)


# ---- bad requests ------------------------------------------------------------------------------
def test_malformed_json_is_a_bad_request(api: Api, admin_view: SyncClient,
                                         project: str) -> None:
    fault(api.call("POST", "/v3/volumes", raw=b'{"volume": {"size": 1'), 400, "badRequest",
          "Malformed request body")
    fault(api.call("POST", "/v3/volumes", raw=b"[1]"), 400, "badRequest",
          "Malformed request body")
    fault(api.call("POST", "/v3/volumes", raw=b"[" * 100_000), 400, "badRequest",
          "Malformed request body")  # nested past the parser's stack
    fault(api.call("GET", "/v3/volumes?metadata=" + "[" * 5000), 400, "badRequest",
          "Invalid filter metadata")
    fault(api.call("POST", "/v3/volumes", {"size": 1}), 400, "badRequest", "volume")
    nothing_written(admin_view, project)


def test_work_cleanup_is_an_admin_s_from_3_24_and_its_body_is_checked(
    api: Api, admin_api: Api,
) -> None:
    """``POST /workers/cleanup`` (the cleanup itself: ``test_e2e_work_cleanup.py``)."""
    path = "/v3/workers/cleanup"
    fault(admin_api.call("POST", path, {}, "3.23"), 404, "itemNotFound", "need 3.24")
    fault(api.call("POST", path, {}, "3.24"), 403, "forbidden", "workers:cleanup")
    fault(admin_api.call("POST", path, {"binary": "cinder-backup"}, "3.24"), 400,
          "badRequest", "binary")
    fault(admin_api.call("POST", path, {"resource_id": UUID, "is_up": True}, "3.24"), 400,
          "badRequest", f"There is no resource with UUID {UUID} pending cleanup")
    fault(admin_api.call("POST", path, raw=b"{", version="3.24"), 400, "badRequest",
          "Malformed")
    bodies: tuple[dict[str, Any] | None, ...] = (None, {})
    for body in bodies:  # the services that are down: none here
        done = admin_api.call("POST", path, body, "3.24")
        assert (done.status, done.body) == (202, {"cleaning": [], "unavailable": []})
    done = admin_api.call("POST", path, {"is_up": "true", "host": "node-1"}, "3.24")
    assert done.status == 202 and done.body["unavailable"] == []
    assert [(s["host"], s["binary"], s["cluster_name"]) for s in done.body["cleaning"]] == [
        ("node-1@file", "cinder-volume", None)]


def test_a_body_over_the_limit_is_413_before_it_is_parsed(
    api: Api, admin_view: SyncClient, project: str,
) -> None:
    huge = b'{"volume": {"size": 1, "description": "' + b"x" * 200_000 + b'"}}'
    reply = api.call("POST", "/v3/volumes", raw=huge)
    fault(reply, 413, "overLimit", "Request is too large.")
    assert reply.headers["retry-after"] == "0"
    nothing_written(admin_view, project)


def test_over_quota_is_413_with_retry_after_and_cinder_s_words(
    api: Api, admin_api: Api, admin_view: SyncClient, project: str,
) -> None:
    put = admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {"volumes": 1}})
    assert put.status == 200 and put.body["quota_set"]["volumes"] == 1
    first = api.call("POST", "/v3/volumes", {"volume": {"size": 1}})
    assert first.status == 202
    reply = api.call("POST", "/v3/volumes", {"volume": {"size": 1}})
    fault(reply, 413, "overLimit", "VolumeLimitExceeded: Maximum number of volumes allowed (1)")
    assert reply.headers["retry-after"] == "0"
    usage = api.call("GET", f"/v3/os-quota-sets/{project}?usage=True").body["quota_set"]
    assert usage["volumes"] == {"limit": 1, "in_use": 1, "reserved": 0, "allocated": 0}


def test_another_project_s_volume_is_not_found_and_stays_as_it_was(
    rest_cluster: E2ECluster, api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1, "name": "mine"}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    other = Api(rest_cluster.rest_url, "intruder:intruder")
    for method, path, body in (
        ("GET", f"/v3/volumes/{vol['id']}", None),
        ("PUT", f"/v3/volumes/{vol['id']}", {"volume": {"name": "theirs"}}),
        ("DELETE", f"/v3/volumes/{vol['id']}", None),
        ("POST", f"/v3/volumes/{vol['id']}/action", {"os-extend": {"new_size": 2}}),
        ("POST", f"/v3/volumes/{vol['id']}/metadata", {"metadata": {"k": "v"}}),
    ):
        fault(other.call(method, path, body), 404, "itemNotFound", vol["id"])
    stored = admin_view.show_volume(vol["id"])
    assert (stored.name, stored.status, stored.size, stored.metadata) == (
        "mine", "available", 1, {})


def test_a_project_in_the_url_must_be_the_caller_s(api: Api, project: str) -> None:
    assert api.call("GET", f"/v3/{project}/volumes").status == 200
    fault(api.call("GET", "/v3/someone-else/volumes"), 403, "forbidden", "someone-else")


def test_no_token_is_401_and_a_foreign_token_shape_too(rest_cluster: E2ECluster) -> None:
    fault(Api(rest_cluster.rest_url, None).call("GET", "/v3/volumes"), 401, "unauthorized",
          "X-Auth-Token")
    fault(Api(rest_cluster.rest_url, "just-a-token").call("GET", "/v3/volumes"), 401,
          "unauthorized", "user:project")


# ---- microversions and discovery ---------------------------------------------------------------
def test_the_microversion_is_negotiated_echoed_and_varied_on(api: Api) -> None:
    plain = api.call("GET", "/v3/volumes")
    assert plain.headers["x-openstack-request-id"].startswith("req-")
    assert plain.headers["openstack-api-version"] == "volume 3.0"
    assert plain.headers["vary"] == "OpenStack-API-Version"
    asked = api.call("GET", "/v3/volumes", version="3.67")
    assert asked.headers["openstack-api-version"] == "volume 3.67"
    latest = api.call("GET", "/v3/volumes", version="latest")
    assert latest.headers["openstack-api-version"] == "volume 3.71"


@pytest.mark.parametrize("version", ["3.99", "2.0", "4.0"])
def test_an_unsupported_microversion_is_406(api: Api, version: str) -> None:
    fault(api.call("GET", "/v3/volumes", version=version), 406, "computeFault",
          f"Version {version} is not supported by the API. Minimum is 3.0 and maximum is 3.71.")


def test_version_discovery_answers_at_the_root_and_at_v3(rest_cluster: E2ECluster) -> None:
    anyone = Api(rest_cluster.rest_url, None)
    root = anyone.call("GET", "/")
    assert root.status == 300
    (doc,) = root.body["versions"]
    assert (doc["id"], doc["min_version"], doc["version"], doc["status"]) == (
        "v3.0", "3.0", "3.71", "CURRENT")
    assert anyone.call("GET", "/v3/").body == root.body


# ---- the rest of the API --------------------------------------------------------------------
def test_a_volume_is_updated_its_metadata_set_and_its_flags_changed(
    api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    path = f"/v3/volumes/{vol['id']}"
    upd = api.call("PUT", path, {"volume": {"name": " new ", "description": "d"}})
    assert (upd.status, upd.body["volume"]["name"]) == (200, "new")
    assert api.call("PUT", f"{path}/metadata", {"metadata": {"a": "1", "b": "2"}}).status == 200
    assert api.call("PUT", f"{path}/metadata/a", {"meta": {"a": "9"}}).body == {
        "meta": {"a": "9"}}
    assert api.call("DELETE", f"{path}/metadata/b").status == 200
    fault(api.call("DELETE", f"{path}/metadata/b"), 404, "itemNotFound", "b")
    assert api.call("GET", f"{path}/metadata").body == {"metadata": {"a": "9"}}
    assert api.call("POST", f"{path}/action", {"os-set_bootable": {"bootable": True}}
                    ).status == 200
    assert api.call("POST", f"{path}/action",
                    {"os-update_readonly_flag": {"readonly": "true"}}).status == 200
    shown = api.call("GET", path).body["volume"]
    assert (shown["bootable"], shown["metadata"]) == ("true", {"a": "9", "readonly": "True"})
    stored = admin_view.show_volume(vol["id"])
    assert (stored.name, stored.description, stored.bootable, stored.readonly) == (
        "new", "d", True, True)
    fault(api.call("POST", f"{path}/action", {"os-set_bootable": {"bootable": "maybe"}}),
          400, "badRequest", "not a valid boolean")


def test_image_metadata_is_set_shown_and_unset_and_a_copy_of_a_bootable_volume_has_it(
    api: Api, admin_view: SyncClient,
) -> None:
    """Cinder's os-vol-image-meta (Nova reads ``volume_image_metadata`` to boot a
    volume): the actions had been "There is no such action". A clone of a bootable
    volume, or a volume from a snapshot of one, is bootable and has its image metadata
    (the snapshot's copy, made with it) (a clone had been neither); a copy of a volume
    that is not bootable has none."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    action = f"/v3/volumes/{vol['id']}/action"
    assert "volume_image_metadata" not in api.call("GET", f"/v3/volumes/{vol['id']}").body[
        "volume"]
    set_ = api.call("POST", action, {"os-set_image_metadata": {"metadata": {
        "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi", "os_type": "linux"}}})
    assert (set_.status, set_.body) == (200, {"metadata": {
        "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi", "os_type": "linux"}})
    unset = api.call("POST", action, {"os-unset_image_metadata": {"key": "os_type"}})
    assert (unset.status, unset.body) == (200, None)
    fault(api.call("POST", action, {"os-unset_image_metadata": {"key": "os_type"}}), 404,
          "itemNotFound", f"Glance metadata for volume/snapshot {vol['id']} cannot be found")
    fault(api.call("POST", action, {"os-set_image_metadata": {"metadata": {"k": 1}}}), 400,
          "badRequest", "must be a string")
    fault(api.call("POST", action, {"os-set_image_metadata": {"items": {}}}), 400,
          "badRequest", "items")
    fault(api.call("POST", action, {"os-unset_image_metadata": {"key": ""}}), 400,
          "badRequest", "1 to 255 characters")
    image = {"hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi"}
    assert api.call("POST", action, {"os-show_image_metadata": None}).body == {
        "metadata": image}
    assert api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"][
        "volume_image_metadata"] == image
    listed = api.call("GET", f"/v3/volumes/detail?name={vol['name'] or ''}").body["volumes"]
    assert [v.get("volume_image_metadata") for v in listed if v["id"] == vol["id"]] == [image]

    def made(body: dict[str, str]) -> str:  # a volume copied from another, available
        made_id: str = api.call("POST", "/v3/volumes", {"volume": body}).body["volume"]["id"]
        volume_status(admin_view, made_id, "available")
        return made_id

    plain = made({"source_volid": vol["id"]})
    assert api.call("POST", action, {"os-set_bootable": {"bootable": True}}).status == 200
    clone = made({"source_volid": vol["id"]})
    snap = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"]}})
    wait_for(lambda: admin_view.show_snapshot(snap.body["snapshot"]["id"]).status
             == "available")
    # the snapshot keeps the image metadata its volume had: a later change is not its
    assert api.call("POST", action, {"os-set_image_metadata": {"metadata": {
        "hw_disk_bus": "ide"}}}).status == 200
    from_snap = made({"snapshot_id": snap.body["snapshot"]["id"]})
    for made_id, bootable, has in ((plain, "false", None), (clone, "true", image),
                                   (from_snap, "true", image)):
        shown = api.call("GET", f"/v3/volumes/{made_id}").body["volume"]
        assert (shown["bootable"], shown.get("volume_image_metadata")) == (bootable, has)
        assert api.call("DELETE", f"/v3/volumes/{made_id}").status == 202
    assert api.call("DELETE", f"/v3/snapshots/{snap.body['snapshot']['id']}").status == 202


def test_detail_filters_sorts_and_pages(api: Api, admin_view: SyncClient) -> None:
    made = [api.call("POST", "/v3/volumes", {"volume": {
        "size": i + 1, "name": f"v{i}", "metadata": {"i": str(i % 2)}}}).body["volume"]["id"]
        for i in range(3)]
    for vid in made:
        volume_status(admin_view, vid, "available")
    by_name = api.call("GET", "/v3/volumes/detail?name=v1").body["volumes"]
    assert [v["id"] for v in by_name] == [made[1]]
    by_meta = api.call("GET", '/v3/volumes/detail?metadata={"i":"0"}').body["volumes"]
    assert {v["id"] for v in by_meta} == {made[0], made[2]}
    # as python-openstackclient sends it (a Python literal), which Cinder reads too
    as_osc = api.call("GET", f"/v3/volumes/detail?metadata={quote(str({'i': '0'}))}")
    assert {v["id"] for v in as_osc.body["volumes"]} == {made[0], made[2]}
    fault(api.call("GET", f"/v3/volumes/detail?metadata={quote('__import__(1)')}"), 400,
          "badRequest", "neither JSON nor a literal mapping")
    by_size = api.call("GET", "/v3/volumes/detail?sort=size:asc").body["volumes"]
    assert [v["size"] for v in by_size] == [1, 2, 3]
    sorted_page = api.call("GET", f"/v3/volumes?sort=size:asc&limit=1&marker={made[0]}"
                           ).body["volumes"]
    assert [v["id"] for v in sorted_page] == [made[1]]
    fault(api.call("GET", '/v3/volumes/detail?metadata={"i":0}'), 400, "badRequest",
          "metadata")
    fault(api.call("GET", "/v3/volumes/detail?sort=colour"), 400, "badRequest", "sort")
    first = api.call("GET", "/v3/volumes?limit=2").body["volumes"]
    rest = api.call("GET", f"/v3/volumes?limit=2&marker={first[-1]['id']}").body["volumes"]
    assert [v["id"] for v in first + rest] == made[::-1]
    for newest in ("sort=created_at:desc", "sort_key=created_at&sort_dir=desc"):
        page = api.call("GET", f"/v3/volumes?{newest}&limit=2").body["volumes"]
        after = api.call("GET", f"/v3/volumes?{newest}&limit=2&marker={page[-1]['id']}"
                         ).body["volumes"]
        assert [v["id"] for v in page + after] == made[::-1]
    oldest = api.call("GET", "/v3/volumes?sort=created_at:asc&limit=2").body["volumes"]
    assert [v["id"] for v in oldest] == made[:2]
    by_dir = api.call("GET", "/v3/volumes?sort_dir=asc&limit=2").body["volumes"]
    assert [v["id"] for v in by_dir] == made[:2]  # Cinder's default key, created_at
    newer = api.call("GET", f"/v3/volumes?sort=created_at:asc&limit=2&marker={made[0]}"
                     ).body["volumes"]  # Horizon's page back: those after the marker
    assert [v["id"] for v in newer] == made[1:]


def test_a_summary_counts_a_project_s_volumes_their_gib_and_metadata_from_3_12(
    api: Api, admin_api: Api, admin_view: SyncClient, project: str,
) -> None:
    """``GET /volumes/summary`` (3.12; metadata from 3.36): it had been 404 (as the id
    of a volume named "summary"), so ``cinder summary`` and ``openstack volume summary``
    failed."""
    for size, metadata in ((1, {"tier": "gold"}), (2, {"tier": "lead", "a": "b"}), (3, {})):
        vid = api.call("POST", "/v3/volumes", {"volume": {"size": size, "metadata": metadata}}
                       ).body["volume"]["id"]
        volume_status(admin_view, vid, "available")
    path = "/v3/volumes/summary"
    fault(api.call("GET", path, version="3.11"), 404, "itemNotFound", "3.12")
    assert api.call("GET", path, version="3.12").body == {
        "volume-summary": {"total_count": 3, "total_size": 6}}
    assert api.call("GET", path, version="3.36").body == {"volume-summary": {
        "total_count": 3, "total_size": 6,
        "metadata": {"a": ["b"], "tier": ["gold", "lead"]}}}
    everyone = admin_api.call("GET", f"{path}?all_tenants=1", version="3.12").body
    assert everyone["volume-summary"]["total_count"] >= 3
    theirs = admin_api.call("GET", f"{path}?all_tenants=1&project_id={project}",
                            version="3.12").body
    assert theirs == {"volume-summary": {"total_count": 3, "total_size": 6}}
    # a member's all_tenants is its own project's, as its listing is
    assert api.call("GET", f"{path}?all_tenants=1", version="3.12").body == theirs


def test_a_full_page_links_to_the_next_and_the_last_has_no_link(
    api: Api, admin_view: SyncClient,
) -> None:
    """Cinder's ``volumes_links``: a page as long as its limit links to the next (the
    same query, its marker the page's last id), which cinderclient and openstacksdk
    follow; a page without a limit holds at most 1000 (osapi_max_limit)."""
    made = [api.call("POST", "/v3/volumes", {"volume": {"size": 1, "name": "linked"}}
                     ).body["volume"]["id"] for _ in range(3)]
    for vid in made:
        volume_status(admin_view, vid, "available")
    first = api.call("GET", "/v3/volumes/detail?name=linked&limit=2").body
    assert [v["id"] for v in first["volumes"]] == made[:0:-1]
    (link,) = first["volumes_links"]
    assert link["rel"] == "next"
    href = urlsplit(link["href"])
    assert href.path == "/v3/volumes/detail"
    assert parse_qs(href.query) == {"name": ["linked"], "limit": ["2"], "marker": [made[1]]}
    last = api.call("GET", f"{href.path}?{href.query}").body
    assert [v["id"] for v in last["volumes"]] == [made[0]] and "volumes_links" not in last
    whole = api.call("GET", "/v3/volumes?name=linked").body
    assert len(whole["volumes"]) == 3 and "volumes_links" not in whole


def test_admin_views_pools_zones_limits_and_all_tenants(
    api: Api, admin_api: Api, project: str, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    as_owner = api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"]
    assert "os-vol-host-attr:host" not in as_owner  # Cinder's: admins only
    assert as_owner["os-vol-tenant-attr:tenant_id"] == project  # Cinder's: project readers
    as_admin = admin_api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"]
    assert as_admin["os-vol-tenant-attr:tenant_id"] == project
    assert as_admin["os-vol-host-attr:host"] == admin_view.show_volume(vol["id"]).host
    everyone = admin_api.call("GET", "/v3/volumes/detail?all_tenants=1").body["volumes"]
    assert vol["id"] in {v["id"] for v in everyone}
    fault(api.call("GET", "/v3/scheduler-stats/get_pools"), 403, "forbidden", "get_pools")
    pools = admin_api.call("GET", "/v3/scheduler-stats/get_pools?detail=True").body["pools"]
    assert {p["name"].partition("#")[0] for p in pools} == {
        b.backend for b in admin_view.list_backends()}
    zones = api.call("GET", "/v3/os-availability-zone").body["availabilityZoneInfo"]
    assert [z["zoneName"] for z in zones] == admin_view.list_zones()
    absolute = api.call("GET", "/v3/limits").body["limits"]["absolute"]
    assert (absolute["totalVolumesUsed"], absolute["totalGigabytesUsed"]) == (1, 1)


def test_an_admin_lists_one_project_s_volumes_a_page_at_a_time(
    api: Api, admin_api: Api, project: str, admin_view: SyncClient,
    rest_cluster: E2ECluster,
) -> None:
    """``all_tenants`` with ``project_id`` (``openstack volume list --project``): the
    gateway pages that project's volumes through its index; a member's ``project_id``
    naming another project is refused, as Cinder's."""
    made = [api.call("POST", "/v3/volumes", {"volume": {"size": i + 1}}).body["volume"]["id"]
            for i in range(3)]
    elsewhere = f"other-{uuid.uuid4().hex[:8]}"
    theirs = Api(rest_cluster.rest_url, f"{elsewhere}:{elsewhere}").call(
        "POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]["id"]
    for vid in (*made, theirs):
        volume_status(admin_view, vid, "available")
    query = f"/v3/volumes/detail?all_tenants=1&project_id={project}"
    first = admin_api.call("GET", f"{query}&limit=2").body
    assert [v["id"] for v in first["volumes"]] == [made[2], made[1]]
    assert {v["os-vol-tenant-attr:tenant_id"] for v in first["volumes"]} == {project}
    last = admin_api.call("GET", f"{query}&limit=2&marker={made[1]}").body
    assert [v["id"] for v in last["volumes"]] == [made[0]] and "volumes_links" not in last
    by_size = admin_api.call("GET", f"{query}&sort=size:asc").body["volumes"]
    assert [v["id"] for v in by_size] == made
    fault(admin_api.call("GET", f"{query}&marker={theirs}"), 400, "badRequest", "marker")
    assert [v.id for v in admin_view.list_volumes(all_projects=True, project_id=elsewhere)
            ] == [theirs]
    fault(api.call("GET", f"/v3/volumes?project_id={elsewhere}"), 400, "badRequest",
          "Invalid filters project_id")  # as Cinder's (it had listed the member's own)
    snap = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": made[0]}}
                    ).body["snapshot"]["id"]
    Api(rest_cluster.rest_url, f"{elsewhere}:{elsewhere}").call(
        "POST", "/v3/snapshots", {"snapshot": {"volume_id": theirs}})
    snaps = admin_api.call("GET", f"/v3/snapshots?all_tenants=1&project_id={project}"
                           ).body["snapshots"]
    assert [s["id"] for s in snaps] == [snap]


def test_a_volume_no_backend_can_hold_has_a_user_message_saying_why(
    rest_cluster: E2ECluster, api: Api, admin_api: Api, project: str, admin_view: SyncClient,
) -> None:
    admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {"gigabytes": -1}})
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 10_000_000}}).body["volume"]
    volume_status(admin_view, vol["id"], "error")
    fault(api.call("GET", "/v3/messages"), 404, "itemNotFound", "3.3")
    (message,) = wait_for(lambda: api.call("GET", "/v3/messages", version="3.3"
                                           ).body["messages"])
    assert (message["resource_uuid"], message["message_level"]) == (vol["id"], "ERROR")
    for query, found in ((f"event_id={message['event_id']}", [message]),
                         (f"request_id={message['request_id']}&resource_type=VOLUME",
                          [message]),
                         ("message_level=ERROR", [message]), ("event_id=VOLUME_000000", []),
                         ("message_level=INFO", [])):
        assert api.call("GET", f"/v3/messages?{query}", version="3.3").body == {
            "messages": found}, query
    reason = admin_view.show_volume(vol["id"]).reason
    assert message["user_message"] == f"schedule allocate volume: {reason}"
    one = api.call("GET", f"/v3/messages/{message['id']}", version="3.3").body
    assert one == {"message": message}
    other = Api(rest_cluster.rest_url, "intruder:intruder")
    assert other.call("GET", "/v3/messages", version="3.3").body == {"messages": []}
    fault(other.call("GET", f"/v3/messages/{message['id']}", version="3.3"), 404,
          "itemNotFound", message["id"])
    for query in ("sort=created_at:asc", "sort_key=created_at&sort_dir=desc"):
        assert api.call("GET", f"/v3/messages?{query}", version="3.3").body == {
            "messages": [message]}, query
    fault(api.call("GET", "/v3/messages?sort=event_id", version="3.3"), 400, "badRequest",
          "messages are sorted by created_at")
    assert api.call("DELETE", f"/v3/messages/{message['id']}", version="3.3").status == 204
    assert api.call("GET", "/v3/messages", version="3.3").body == {"messages": []}


def test_delete_with_cascade_takes_the_snapshots_first(
    api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    snap = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"]}}
                    ).body["snapshot"]
    wait_for(lambda: admin_view.show_snapshot(snap["id"]).status == "available")
    fault(api.call("DELETE", f"/v3/volumes/{vol['id']}"), 400, "badRequest", "snapshot")
    assert api.call("DELETE", f"/v3/volumes/{vol['id']}?cascade=True").status == 202
    wait_for(lambda: vol["id"] not in {v.id for v in admin_view.list_volumes(
        all_projects=True)})
    assert admin_view.list_snapshots(all_projects=True, volume_id=vol["id"]) == []


def test_private_types_are_for_the_projects_given_access_and_unused_types_are_deleted(
    rest_cluster: E2ECluster, api: Api, admin_api: Api, project: str, admin_view: SyncClient,
) -> None:
    made = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"private-{project}", "os-volume-type-access:is_public": False}})
    assert made.status == 200 and made.body["volume_type"]["is_public"] is False
    type_id = made.body["volume_type"]["id"]
    assert type_id not in {t["id"] for t in api.call("GET", "/v3/types").body["volume_types"]}
    fault(api.call("POST", "/v3/volumes", {"volume": {"size": 1, "volume_type": type_id}}),
          404, "itemNotFound", "could not be found")
    fault(api.call("DELETE", f"/v3/types/{type_id}"), 403, "forbidden", "admin")
    grant = {"addProjectAccess": {"project": project}}
    assert admin_api.call("POST", f"/v3/types/{type_id}/action", grant).status == 202
    access = admin_api.call("GET", f"/v3/types/{type_id}/os-volume-type-access").body
    assert access == {"volume_type_access": [{"volume_type_id": type_id,
                                              "project_id": project}]}
    fault(admin_api.call("GET", "/v3/types/__DEFAULT__/os-volume-type-access"), 404,
          "itemNotFound", "not available for public volume types")
    assert type_id in {t["id"] for t in api.call("GET", "/v3/types").body["volume_types"]}
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1, "volume_type": type_id}})
    assert vol.status == 202
    fault(admin_api.call("DELETE", f"/v3/types/{type_id}"), 400, "badRequest",
          "deletion is not allowed with volumes present")
    volume_status(admin_view, vol.body["volume"]["id"], "available")  # not deletable before
    assert api.call("DELETE", f"/v3/volumes/{vol.body['volume']['id']}").status == 202
    wait_for(lambda: vol.body["volume"]["id"] not in {
        v.id for v in admin_view.list_volumes(all_projects=True)})
    assert admin_api.call("DELETE", f"/v3/types/{type_id}").status == 202
    assert type_id not in {t.id for t in admin_view.list_types()}
    fault(admin_api.call("DELETE", "/v3/types/__DEFAULT__"), 400, "badRequest",
          "can not be deleted")


def test_a_member_sees_only_the_extra_specs_cinder_shows_users_and_filters_by_them(
    api: Api, admin_api: Api, project: str,
) -> None:
    """Cinder's ``read_sensitive`` policy: a project is shown a type's zones,
    multiattach and replication specs, not its backend name or capabilities, and no QoS
    specs id; from 3.52 ``extra_specs`` filters the listing by the specs the caller sees
    (by a spec a member is not shown, nothing, as Cinder answers)."""
    name = f"seen-{project}"
    made = admin_api.call("POST", "/v3/types", {"volume_type": {"name": name, "extra_specs": {
        "volume_backend_name": "file", "multiattach": "<is> True"}}})
    assert made.status == 200, made.body
    type_id = made.body["volume_type"]["id"]
    try:
        mine = api.call("GET", f"/v3/types/{type_id}").body["volume_type"]
        assert mine["extra_specs"] == {"multiattach": "<is> True"}
        assert "qos_specs_id" not in mine
        shown = admin_api.call("GET", f"/v3/types/{type_id}").body["volume_type"]
        assert shown["extra_specs"]["volume_backend_name"] == "file"
        assert "qos_specs_id" in shown
        assert api.call("GET", f"/v3/types/{type_id}/extra_specs").body == {
            "extra_specs": {"multiattach": "<is> True"}}

        def listed(caller: Api, specs: str) -> list[str]:
            reply = caller.call("GET", f"/v3/types?extra_specs={quote(specs)}",
                                version="3.52")
            assert reply.status == 200, reply.body
            return [t["name"] for t in reply.body["volume_types"]]

        both = "{'volume_backend_name': 'file', 'multiattach': '<is> True'}"
        assert listed(admin_api, both) == [name]
        assert listed(admin_api, "{'volume_backend_name': 'lvm'}") == []
        assert name in listed(api, "{'multiattach': '<is> True'}")
        assert listed(api, "{'volume_backend_name': 'file'}") == []  # not shown: none match
        fault(api.call("GET", "/v3/types?extra_specs=multiattach", version="3.52"), 400,
              "badRequest", "Invalid extra_specs filter")
        fault(api.call("GET", f"/v3/types?extra_specs={quote(both)}", version="3.51"), 400,
              "badRequest", "from microversion 3.52")
    finally:
        assert admin_api.call("DELETE", f"/v3/types/{type_id}").status == 202


def test_qos_specs_answer_as_cinders_and_are_an_admins(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``/qos-specs`` as Cinder's ``qos_specs_manage``: the create's view and links, a
    name taken (409), a consumer or a per-GB value Cinder could not use (400), an unknown
    id or key (404), a type's ``qos_specs_id``, and nothing of it for a member (403)."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    made = admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {
        "name": name, "consumer": "both", "total_bytes_sec": "1000"}})
    assert made.status == 200, made.body
    qos = made.body["qos_specs"]
    assert qos == {"id": qos["id"], "name": name, "consumer": "both",
                   "specs": {"total_bytes_sec": "1000"}}
    assert [link["rel"] for link in made.body["links"]] == ["self", "bookmark"]
    default = admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {"name": f"{name}-b"}})
    assert default.body["qos_specs"]["consumer"] == "back-end"  # Cinder's default
    fault(admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {"name": name}}), 409,
          "conflictingRequest", "already exists")
    fault(admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {
        "name": f"{name}-c", "consumer": "middle"}}), 400, "badRequest", "consumer")
    fault(admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {
        "name": f"{name}-c", "read_iops_sec_per_gb": "lots"}}), 400, "badRequest",
        "whole number")
    fault(admin_api.call("POST", "/v3/qos-specs", {"qos_specs": {
        "name": f"{name}-c", "read_iops_sec": 5}}), 400, "badRequest", "must be a string")
    base = f"/v3/qos-specs/{qos['id']}"
    changed = admin_api.call("PUT", base, {"qos_specs": {"consumer": "front-end",
                                                         "total_iops_sec": "9"}})
    assert changed.body == {"qos_specs": {"consumer": "front-end", "total_iops_sec": "9"}}
    assert admin_api.call("PUT", f"{base}/delete_keys",
                          {"keys": ["total_bytes_sec"]}).status == 202
    fault(admin_api.call("PUT", f"{base}/delete_keys", {"keys": ["total_bytes_sec"]}), 404,
          "itemNotFound", "total_bytes_sec")
    assert admin_api.call("GET", base).body["qos_specs"] == {
        "id": qos["id"], "name": name, "consumer": "front-end",
        "specs": {"total_iops_sec": "9"}}
    fault(admin_api.call("GET", "/v3/qos-specs/nope"), 404, "itemNotFound", "nope")

    vtype = admin_view.create_type(f"qt-{uuid.uuid4().hex[:8]}")
    fault(admin_api.call("GET", f"{base}/associate"), 400, "badRequest", "must not be None")
    assert admin_api.call("GET", f"{base}/associate?vol_type_id={vtype.id}").status == 202
    other = default.body["qos_specs"]["id"]
    fault(admin_api.call("GET", f"/v3/qos-specs/{other}/associate?vol_type_id={vtype.id}"),
          400, "badRequest", "already associated with another qos specs")
    assert admin_api.call("GET", f"/v3/types/{vtype.id}").body["volume_type"][
        "qos_specs_id"] == qos["id"]
    assert admin_api.call("GET", f"{base}/associations").body == {"qos_associations": [
        {"association_type": "volume_type", "name": vtype.name, "id": vtype.id}]}
    fault(admin_api.call("DELETE", base), 400, "badRequest", "still in use")
    assert admin_api.call("GET", f"{base}/disassociate?vol_type_id={vtype.id}").status == 202
    assert admin_api.call("GET", f"{base}/associations").body == {"qos_associations": []}

    for method, path in (("GET", "/v3/qos-specs"), ("GET", base), ("DELETE", base),
                         ("GET", f"{base}/associate?vol_type_id={vtype.id}")):
        fault(api.call(method, path), 403, "forbidden", "qos_specs_manage")
    listed = admin_api.call("GET", "/v3/qos-specs").body["qos_specs"]
    assert [q["id"] for q in listed][:2] == [other, qos["id"]]  # newest first
    first = admin_api.call("GET", "/v3/qos-specs?limit=1").body
    assert [q["id"] for q in first["qos_specs"]] == [other]
    assert f"marker={other}" in first["qos_specs_links"][0]["href"]
    after = admin_api.call("GET", f"/v3/qos-specs?limit=1&marker={other}").body
    assert [q["id"] for q in after["qos_specs"]] == [qos["id"]]
    for qos_id in (qos["id"], other):
        assert admin_api.call("DELETE", f"/v3/qos-specs/{qos_id}").status == 202
    admin_view.delete_type(vtype.id)


def test_default_types_are_cinders_from_3_62_and_an_admins(
    api: Api, project: str, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``/default-types`` as Cinder's: only from 3.62 (a 404 before), an admin's (403),
    a type it cannot find is a 400, a project without one is a 404; ``GET
    /types/default`` shows the caller's project its own."""
    gold = admin_view.create_type(f"gold-{uuid.uuid4().hex[:8]}")
    path = f"/v3/default-types/{project}"
    body = {"default_type": {"volume_type": gold.name}}
    fault(admin_api.call("PUT", path, body, version="3.61"), 404, "itemNotFound", "3.62")
    fault(api.call("PUT", path, body, version="3.62"), 403, "forbidden", "default_set")
    fault(admin_api.call("PUT", path, {"default_type": {"volume_type": "nope"}},
                         version="3.62"), 400, "badRequest", "nope")
    fault(admin_api.call("PUT", path, {"default_type": {"volume_type": gold.name, "x": 1}},
                         version="3.62"), 400, "badRequest", "x")
    fault(admin_api.call("GET", path, version="3.62"), 404, "itemNotFound", project)
    made = admin_api.call("PUT", path, body, version="3.62")
    assert (made.status, made.body) == (200, {"default_type": {
        "project_id": project, "volume_type_id": gold.id}})
    assert admin_api.call("GET", path, version="3.62").body == made.body
    listed = admin_api.call("GET", "/v3/default-types", version="3.62").body["default_types"]
    assert made.body["default_type"] in listed
    assert api.call("GET", "/v3/types/default").body["volume_type"]["id"] == gold.id
    assert admin_api.call("GET", "/v3/types/default").body["volume_type"]["name"] == \
        "__DEFAULT__"
    assert admin_api.call("DELETE", path, version="3.62").status == 204
    assert api.call("GET", "/v3/types/default").body["volume_type"]["name"] == "__DEFAULT__"
    admin_view.delete_type(gold.id)


def test_a_type_is_renamed_published_and_its_extra_specs_changed_until_a_volume_has_it(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``PUT /types/{id}`` and ``/types/{id}/extra_specs`` (``openstack volume type set``,
    ``cinder type-key``, ``cinder type-update``): they had been 405."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    type_id = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": name, "extra_specs": {"qos:a": "1"}}}).body["volume_type"]["id"]
    specs = f"/v3/types/{type_id}/extra_specs"
    merged = admin_api.call("POST", specs, {"extra_specs": {"qos:b": "2", "qos:c": "3"}})
    assert (merged.status, merged.body) == (200, {"extra_specs": {"qos:b": "2", "qos:c": "3"}})
    assert admin_api.call("PUT", f"{specs}/qos:b", {"qos:b": "9"}).body == {"qos:b": "9"}
    assert admin_api.call("GET", f"{specs}/qos:b").body == {"qos:b": "9"}
    assert admin_api.call("DELETE", f"{specs}/qos:c").status == 202
    fault(admin_api.call("DELETE", f"{specs}/qos:c"), 404, "itemNotFound", "no extra specs")
    fault(admin_api.call("GET", f"{specs}/qos:c"), 404, "itemNotFound", "no extra specs")
    fault(admin_api.call("PUT", f"{specs}/qos:b", {"x": "1"}), 400, "badRequest", "mismatch")
    fault(api.call("POST", specs, {"extra_specs": {"qos:d": "4"}}), 403, "forbidden", "admin")
    assert admin_api.call("GET", specs).body == {"extra_specs": {"qos:a": "1", "qos:b": "9"}}

    renamed = admin_api.call("PUT", f"/v3/types/{type_id}", {"volume_type": {
        "name": f"{name}-2", "description": "after", "is_public": False}})
    assert renamed.status == 200, renamed.body
    view = renamed.body["volume_type"]
    assert (view["name"], view["description"], view["is_public"]) == (f"{name}-2", "after",
                                                                      False)
    stored = next(t for t in admin_view.list_types() if t.id == type_id)
    assert (stored.name, stored.description, stored.is_public) == (f"{name}-2", "after", False)
    fault(api.call("POST", "/v3/volumes", {"volume": {"size": 1, "volume_type": type_id}}),
          404, "itemNotFound", type_id)  # private now, and not shared
    assert admin_api.call("PUT", f"/v3/types/{type_id}", {"volume_type": {
        "os-volume-type-access:is_public": True}}).body["volume_type"]["is_public"] is True
    for body, status, says in (
        ({"volume_type": {}}, 400, "Specify volume type name"),
        ({"volume_type": {"name": "  "}}, 400, "can not be empty"),
        ({"volume_type": {"colour": "red"}}, 400, "Additional properties"),
        ({"volume_type": {"name": "__DEFAULT__"}}, 409, "already exists"),
        ({"volume_type": {"is_public": "perhaps"}}, 400, "not a valid boolean"),
    ):
        fault(admin_api.call("PUT", f"/v3/types/{type_id}", body), status, FAULT_NAMES[status],
              says)
    fault(admin_api.call("PUT", "/v3/types/__DEFAULT__", {"volume_type": {"name": "other"}}),
          400, "badRequest", "keeps its name")

    # a volume has it: its extra specs stay (the volume was placed by them), its name may
    # change, and the volume shows the new one (``qos:`` specs do not restrict placement)
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1, "volume_type": type_id}})
    volume_status(admin_view, vol.body["volume"]["id"], "available")
    fault(admin_api.call("POST", specs, {"extra_specs": {"qos:d": "4"}}), 400, "badRequest",
          "currently in use")
    fault(admin_api.call("DELETE", f"{specs}/qos:a"), 400, "badRequest", "currently in use")
    assert admin_api.call("PUT", f"/v3/types/{type_id}", {"volume_type": {
        "name": f"{name}-3"}}).status == 200
    shown = api.call("GET", f"/v3/volumes/{vol.body['volume']['id']}").body["volume"]
    assert shown["volume_type"] == f"{name}-3"
    assert admin_api.call("GET", specs).body == {"extra_specs": {"qos:a": "1", "qos:b": "9"}}
    assert api.call("DELETE", f"/v3/volumes/{vol.body['volume']['id']}").status == 202


def test_quota_defaults_are_the_limits_a_new_project_gets(
    api: Api, admin_api: Api, project: str,
) -> None:
    admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {"volumes": 3}})
    mine = api.call("GET", f"/v3/os-quota-sets/{project}").body["quota_set"]
    defaults = api.call("GET", f"/v3/os-quota-sets/{project}/defaults").body["quota_set"]
    assert (mine["volumes"], defaults["volumes"]) == (3, 10)
    fault(admin_api.call("PUT", f"/v3/os-quota-sets/{project}",
                         {"quota_set": {"volumes": "many"}}), 400, "badRequest", "many")
    fault(api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {"volumes": 50}}),
          403, "forbidden", "admin")
    fault(api.call("DELETE", f"/v3/os-quota-sets/{project}"), 403, "forbidden", "admin")
    assert api.call("GET", f"/v3/os-quota-sets/{project}").body["quota_set"]["volumes"] == 3
    assert admin_api.call("DELETE", f"/v3/os-quota-sets/{project}").status == 200
    assert api.call("GET", f"/v3/os-quota-sets/{project}").body["quota_set"]["volumes"] == 10


def test_an_attachment_s_body_is_cinder_s_schema_and_read_only_is_not_lost(
    api: Api, admin_view: SyncClient,
) -> None:
    """A ``mode`` before 3.54 had been dropped (a read-only attachment asked for, a
    read-write one made); as Cinder's schema, it is 400 there, as is any unknown key;
    an update needs a connector object."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    wanted = {"attachment": {"volume_uuid": vol["id"], "mode": "ro"}}
    fault(api.call("POST", "/v3/attachments", wanted, version="3.53"), 400, "badRequest",
          "'mode' were unexpected")
    fault(api.call("POST", "/v3/attachments", {"attachment": {
        "volume_uuid": vol["id"], "host": "h1"}}, version="3.54"), 400, "badRequest",
        "'host' were unexpected")
    assert admin_view.show_volume(vol["id"]).status == "available"  # nothing reserved
    att = api.call("POST", "/v3/attachments", wanted, version="3.54").body["attachment"]
    assert att["attach_mode"] == "ro"
    path = f"/v3/attachments/{att['id']}"
    for body, says in (({"connector": {}}, "at least one property"), ({}, "connector"),
                       ({"connector": {"host": "h"}, "mode": "rw"}, "'mode' were unexpected")):
        fault(api.call("PUT", path, {"attachment": body}, version="3.54"), 400, "badRequest",
              says)
    assert admin_view.show_attachment(att["id"]).status == "reserved"
    assert api.call("DELETE", path, version="3.54").status == 200


def test_a_volume_action_with_a_field_it_does_not_take_is_refused(
    api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    action = f"/v3/volumes/{vol['id']}/action"
    for body in ({"os-extend": {"new_size": 2, "in_use": True}},
                 {"os-set_bootable": {"bootable": True, "image": "x"}},
                 {"os-update_readonly_flag": {"readonly": True, "force": True}}):
        fault(api.call("POST", action, body, version="3.42"), 400, "badRequest",
              "were unexpected")
    shown = admin_view.show_volume(vol["id"])
    assert (shown.size, shown.bootable, shown.readonly) == (1, False, False)


def test_a_type_asked_to_be_private_is_never_made_public(admin_api: Api, project: str,
                                                         admin_view: SyncClient) -> None:
    """``is_public`` is the update's name; on a create it had been dropped (a public type
    made); as Cinder's schema, it is 400 there, and the create's own name works."""
    fault(admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"p-{project}", "is_public": False}}), 400, "badRequest",
        "'is_public' were unexpected")
    assert f"p-{project}" not in {t.name for t in admin_view.list_types()}
    made = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"p-{project}", "os-volume-type-access:is_public": False}})
    assert made.status == 200 and made.body["volume_type"]["is_public"] is False
    fault(admin_api.call("POST", f"/v3/types/{made.body['volume_type']['id']}/action", {
        "addProjectAccess": {"project": project, "role": "x"}}), 400, "badRequest",
        "'role' were unexpected")


def test_snapshot_and_transfer_bodies_are_cinder_s_schema(
    api: Api, admin_view: SyncClient,
) -> None:
    """``no_snapshots`` before 3.55 had been dropped (a transfer asked to leave the
    snapshots would have taken them): 400 there, as in Cinder; unknown keys in a
    snapshot create or an accept: 400; nothing made by a refused request."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    fault(api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"],
                                                          "size": 5}}),
          400, "badRequest", "'size' were unexpected")
    fault(api.call("POST", "/v3/os-volume-transfer", {"transfer": {
        "volume_id": vol["id"], "no_snapshots": True}}, version="3.54"), 400, "badRequest",
        "'no_snapshots' were unexpected")
    assert admin_view.show_volume(vol["id"]).status == "available"  # nothing offered
    made = api.call("POST", "/v3/volume-transfers", {"transfer": {
        "volume_id": vol["id"], "no_snapshots": True}}, version="3.55")
    assert made.status == 202, made.body
    offer = made.body["transfer"]
    fault(api.call("POST", f"/v3/volume-transfers/{offer['id']}/accept", {"accept": {
        "auth_key": offer["auth_key"], "project": "x"}}, version="3.55"), 400, "badRequest",
        "'project' were unexpected")
    assert admin_view.show_volume(vol["id"]).status == "awaiting-transfer"
    other = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, other["id"], "available")
    later = api.call("POST", "/v3/volume-transfers", {"transfer": {
        "volume_id": other["id"], "name": "later"}}, version="3.55").body["transfer"]

    def listed(query: str, version: str = "3.59") -> tuple[list[str], list[str]]:
        found = api.call("GET", f"/v3/volume-transfers?{query}", version=version)
        assert found.status == 200, found.body
        return ([t["id"] for t in found.body["transfers"]],
                [link["href"] for link in found.body.get("transfers_links", [])])

    assert listed("", version="3.55") == ([offer["id"], later["id"]], [])  # Cinder's order
    assert listed("") == ([later["id"], offer["id"]], [])
    assert listed("sort=created_at:asc") == ([offer["id"], later["id"]], [])
    (first, (link,)) = listed("limit=1")
    assert first == [later["id"]] and f"marker={later['id']}" in link
    assert listed(f"limit=1&marker={later['id']}")[0] == [offer["id"]]
    assert listed("name=later")[0] == [later["id"]]
    fault(api.call("GET", "/v3/volume-transfers?limit=1", version="3.58"), 400, "badRequest",
          "Invalid filters limit")
    fault(api.call("GET", "/v3/volume-transfers?sort=name", version="3.59"), 400,
          "badRequest", "transfers are sorted by created_at")
    for made_offer, volume in ((offer, vol), (later, other)):
        assert api.call("DELETE", f"/v3/volume-transfers/{made_offer['id']}",
                        version="3.55").status == 202
        assert admin_view.show_volume(volume["id"]).status == "available"


def test_an_admin_force_detaches_one_attachment_or_every_one(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``os-force_detach`` (Cinder's admin action; it had been "no such action"): the
    attachment named is deleted and its export closed, or, none named, all of the
    volume's; an attachment of another volume is a 400; a member's is a 403."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    other = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    for v in (vol, other):
        volume_status(admin_view, v["id"], "available")

    def attach(volume_id: str) -> str:
        att = api.call("POST", "/v3/attachments", {"attachment": {
            "volume_uuid": volume_id, "instance_uuid": f"vm-{uuid.uuid4().hex[:6]}",
            "connector": {"host": "vm-host", "initiator": "iqn.x"}}}, version="3.54")
        assert att.status == 200, att.body
        attachment_id: str = att.body["attachment"]["id"]
        return attachment_id

    mine, theirs = attach(vol["id"]), attach(other["id"])

    def attachments(volume_id: str) -> list[str]:
        return [a.id for a in admin_view.list_attachments(volume_id=volume_id,
                                                          all_projects=True)]

    assert attachments(vol["id"]) == [mine]
    action = f"/v3/volumes/{vol['id']}/action"
    fault(api.call("POST", action, {"os-force_detach": {}}), 403, "forbidden", "force_detach")
    fault(admin_api.call("POST", action, {"os-force_detach": {"attachment_id": theirs}}), 400,
          "badRequest", "VolumeAttachmentNotFound")
    fault(admin_api.call("POST", action, {"os-force_detach": {"host": "x"}}), 400,
          "badRequest", "host")
    done = admin_api.call("POST", action, {"os-force_detach": {"attachment_id": mine,
                                                               "connector": None}})
    assert done.status == 202, done.body
    volume_status(admin_view, vol["id"], "available")
    assert attachments(vol["id"]) == []
    assert admin_api.call("POST", f"/v3/volumes/{other['id']}/action",
                          {"os-force_detach": {}}).status == 202
    volume_status(admin_view, other["id"], "available")
    for v in (vol, other):
        assert admin_api.call("POST", f"/v3/volumes/{v['id']}/action",
                              {"os-force_delete": {}}).status == 202
    ids = {vol["id"], other["id"]}
    wait_for(lambda: not ids & {x.id for x in admin_view.list_volumes(all_projects=True)})


def test_an_attached_volume_is_extended_from_3_42_and_stays_attached(
    api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    att = api.call("POST", "/v3/attachments", {"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": "vm-1"}}, version="3.27").body["attachment"]
    assert att["status"] == "reserved"
    updated = api.call("PUT", f"/v3/attachments/{att['id']}", {"attachment": {
        "connector": {"host": "vm-host", "initiator": "iqn.x", "mountpoint": None}}},
        version="3.27").body["attachment"]
    assert updated["connection_info"]["driver_volume_type"] == "nbd"
    done = api.call("POST", f"/v3/attachments/{att['id']}/action", {"os-complete": {}},
                    version="3.44")
    assert done.status == 204
    volume_status(admin_view, vol["id"], "in-use")
    other = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, other["id"], "available")
    page = api.call("GET", "/v3/volumes/detail?limit=2", version="3.27").body["volumes"]
    shown = {v["id"]: [a["attachment_id"] for a in v["attachments"]] for v in page}
    assert shown == {other["id"]: [], vol["id"]: [att["id"]]}  # a page's own attachments
    listed = api.call("GET", "/v3/attachments?limit=1", version="3.27").body["attachments"]
    after = api.call("GET", f"/v3/attachments?marker={att['id']}", version="3.27")
    of_volume = api.call("GET", f"/v3/attachments?volume_id={vol['id']}&limit=1",
                         version="3.27").body["attachments"]
    assert [a["id"] for a in listed] == [att["id"]]  # the newest first
    assert att["id"] not in [a["id"] for a in after.body["attachments"]]
    assert [a["id"] for a in of_volume] == [att["id"]]
    fault(api.call("GET", "/v3/attachments?marker=nonesuch", version="3.27"),
          400, "badRequest", "not found")
    second = api.call("POST", "/v3/attachments", {"attachment": {
        "volume_uuid": other["id"], "instance_uuid": "vm-2"}}, version="3.27"
    ).body["attachment"]

    def ids(query: str) -> list[str]:
        found = api.call("GET", f"/v3/attachments?{query}", version="3.27")
        assert found.status == 200, found.body
        return [a["id"] for a in found.body["attachments"]]

    assert ids("sort=created_at:asc") == ids("sort_key=created_at&sort_dir=asc") == [
        att["id"], second["id"]]
    assert ids("sort=created_at") == ids("sort_dir=desc") == [second["id"], att["id"]]
    assert ids(f"sort=created_at:asc&marker={att['id']}") == [second["id"]]
    assert ids(f"sort=created_at:desc&limit=1&marker={second['id']}") == [att["id"]]
    assert ids(f"volume_id={other['id']}&sort=created_at:desc") == [second["id"]]
    fault(api.call("GET", "/v3/attachments?sort=status:asc", version="3.27"),
          400, "badRequest", "attachments are sorted by created_at")
    assert api.call("DELETE", f"/v3/attachments/{second['id']}", version="3.27").status == 200
    extend = {"os-extend": {"new_size": 2}}
    fault(api.call("POST", f"/v3/volumes/{vol['id']}/action", extend, version="3.41"),
          400, "badRequest", "must be available")
    assert admin_view.show_volume(vol["id"]).size == 1
    grown = api.call("POST", f"/v3/volumes/{vol['id']}/action", extend, version="3.42")
    assert grown.status == 202, grown.body
    wait_for(lambda: admin_view.show_volume(vol["id"]).size == 2)
    volume_status(admin_view, vol["id"], "in-use")
    assert admin_view.show_attachment(att["id"]).status == "attached"
    gone_att = api.call("DELETE", f"/v3/attachments/{att['id']}", version="3.27")
    assert gone_att.status == 200
    volume_status(admin_view, vol["id"], "available")


def test_snapshots_are_created_listed_updated_and_deleted(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    made = api.call("POST", "/v3/snapshots", {"snapshot": {
        "volume_id": vol["id"], "name": " s1 ", "metadata": {"k": "v"}}})
    assert made.status == 202 and made.body["snapshot"]["name"] == "s1"
    snap_id = made.body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(snap_id).status == "available")
    listed = api.call("GET", "/v3/snapshots/detail").body["snapshots"]
    assert [(s["id"], s["volume_id"], s["status"]) for s in listed] == [
        (snap_id, vol["id"], "available")]
    upd = api.call("PUT", f"/v3/snapshots/{snap_id}", {"snapshot": {
        "name": "renamed", "description": " why ", "metadata": {"a": "b"}}})
    assert upd.status == 200, upd.body
    stored = admin_view.show_snapshot(snap_id)
    assert (stored.name, stored.description, stored.metadata) == ("renamed", "why",
                                                                   {"a": "b"})
    # Cinder's snapshot filters (they had been ignored: every snapshot was listed)
    by_name = api.call("GET", "/v3/snapshots/detail?name=renamed").body["snapshots"]
    assert [s["id"] for s in by_name] == [snap_id]
    assert api.call("GET", "/v3/snapshots?name=s1").body["snapshots"] == []
    by_item = api.call("GET", '/v3/snapshots/detail?metadata={"a":"b"}').body["snapshots"]
    assert [s["id"] for s in by_item] == [snap_id]
    assert api.call("GET", '/v3/snapshots?metadata={"k":"v"}').body["snapshots"] == []
    # sorted (the order had been ignored: always newest first)
    second = api.call("POST", "/v3/snapshots", {"snapshot": {
        "volume_id": vol["id"], "name": "a-first"}}).body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(second).status == "available")
    for query, order in (("sort=name:asc", [second, snap_id]),
                         ("sort=display_name:desc", [snap_id, second]),  # cinderclient's
                         ("sort_key=name&sort_dir=desc", [snap_id, second]),
                         ("sort=created_at:asc", [snap_id, second]),
                         ("sort_dir=asc", [snap_id, second]),
                         ("", [second, snap_id])):
        listed = api.call("GET", f"/v3/snapshots?{query}").body["snapshots"]
        assert [s["id"] for s in listed] == order, query
    first = api.call("GET", "/v3/snapshots?sort=name:asc&limit=1").body
    rest = api.call("GET", f"/v3/snapshots?sort=name:asc&limit=1&marker={second}").body
    assert [s["id"] for s in first["snapshots"] + rest["snapshots"]] == [second, snap_id]
    fault(api.call("GET", "/v3/snapshots?sort=colour"), 400, "badRequest", "sort")
    assert api.call("DELETE", f"/v3/snapshots/{second}").status == 202
    fault(api.call("PUT", f"/v3/snapshots/{snap_id}", {"snapshot": {"size": 5}}), 400,
          "badRequest", "Additional properties")
    # the owner sees its project, as Cinder's project readers do
    shown = api.call("GET", f"/v3/snapshots/{snap_id}").body["snapshot"]
    assert shown["os-extended-snapshot-attributes:project_id"] == stored.project_id
    # an admin's os-reset_status (cinder snapshot-reset-state)
    reset = f"/v3/snapshots/{snap_id}/action"
    fault(api.call("POST", reset, {"os-reset_status": {"status": "error"}}), 403,
          "forbidden", "admin")
    assert admin_api.call("POST", reset, {"os-reset_status": {"status": "error"}}
                          ).status == 202
    assert admin_view.show_snapshot(snap_id).status == "error"
    fault(admin_api.call("POST", reset, {"os-reset_status": {"status": "creating"}}), 400,
          "badRequest", "can be reset to")
    fault(admin_api.call("POST", reset, {"os-update_progress": "50%"}), 400, "badRequest",
          "no such action")
    fault(api.call("POST", reset, {"os-force_delete": {}}), 403, "forbidden", "force_delete")
    assert admin_api.call("POST", reset, {"os-reset_status": {"status": "available"}}
                          ).status == 202
    fault(api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": UUID}}), 404,
          "itemNotFound", UUID)
    assert api.call("DELETE", f"/v3/snapshots/{snap_id}").status == 202
    wait_for(lambda: admin_view.list_snapshots(all_projects=True, volume_id=vol["id"]) == [])


def test_a_snapshot_s_metadata_is_merged_replaced_set_and_deleted_a_key_at_a_time(
    api: Api, admin_view: SyncClient, rest_cluster: E2ECluster,
) -> None:
    """Cinder's ``/snapshots/{id}/metadata`` calls (``openstack volume snapshot set
    --property``): they had been 404, as no route served them."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    snap_id = api.call("POST", "/v3/snapshots", {"snapshot": {
        "volume_id": vol["id"], "metadata": {"k": "v"}}}).body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(snap_id).status == "available")
    path = f"/v3/snapshots/{snap_id}/metadata"
    merged = api.call("POST", path, {"metadata": {"a": "1", "b": "2"}})
    assert (merged.status, merged.body) == (200, {"metadata": {"k": "v", "a": "1", "b": "2"}})
    replaced = api.call("PUT", path, {"metadata": {"a": "3", "c": "4"}})
    assert replaced.body == {"metadata": {"a": "3", "c": "4"}}
    assert api.call("PUT", f"{path}/c", {"meta": {"c": "5"}}).body == {"meta": {"c": "5"}}
    assert api.call("GET", f"{path}/c").body == {"meta": {"c": "5"}}
    assert api.call("DELETE", f"{path}/a").status == 200
    fault(api.call("DELETE", f"{path}/a"), 404, "itemNotFound", "'a'")
    fault(api.call("GET", f"{path}/a"), 404, "itemNotFound", "'a'")
    fault(api.call("PUT", f"{path}/c", {"meta": {"d": "1"}}), 400, "badRequest", "mismatch")
    fault(api.call("POST", path, {"metadata": {"bad*key": "v"}}), 400, "badRequest",
          "metadata key")
    assert api.call("GET", path).body == {"metadata": {"c": "5"}}
    assert admin_view.show_snapshot(snap_id).metadata == {"c": "5"}
    # another project sees no snapshot, and changes nothing
    stranger = f"other-{uuid.uuid4().hex[:8]}"
    other = Api(rest_cluster.rest_url, f"{stranger}:{stranger}")
    fault(other.call("GET", path), 404, "itemNotFound", snap_id)
    fault(other.call("POST", path, {"metadata": {"x": "y"}}), 404, "itemNotFound", snap_id)
    fault(other.call("DELETE", f"{path}/c"), 404, "itemNotFound", snap_id)
    assert admin_view.show_snapshot(snap_id).metadata == {"c": "5"}
    assert api.call("DELETE", f"/v3/snapshots/{snap_id}").status == 202


def test_a_volume_is_reverted_to_its_latest_snapshot_from_3_40(
    api: Api, admin_view: SyncClient,
) -> None:
    """The ``revert`` action (Cinder's 3.40): 202, the volume back to available; a
    snapshot that is not the newest, or a size that differs, 400; a volume that is not
    available, 409; below 3.40 no such action."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    older = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"]}}
                     ).body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(older).status == "available")
    newest = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"]}}
                      ).body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(newest).status == "available")
    action = f"/v3/volumes/{vol['id']}/action"
    fault(api.call("POST", action, {"revert": {"snapshot_id": newest}}, version="3.39"), 400,
          "badRequest", "no such action")
    done = api.call("POST", action, {"revert": {"snapshot_id": newest}}, version="3.40")
    assert done.status == 202, done.body
    volume_status(admin_view, vol["id"], "available")
    wait_for(lambda: admin_view.show_snapshot(newest).status == "available")
    fault(api.call("POST", action, {"revert": {"snapshot_id": older}}, version="3.40"), 400,
          "badRequest", "not the latest one")
    fault(api.call("POST", action, {"revert": {}}, version="3.40"), 400, "badRequest",
          "snapshot_id")
    api.call("POST", "/v3/attachments", {"attachment": {"volume_uuid": vol["id"],
                                                        "instance_uuid": UUID}}, version="3.27")
    fault(api.call("POST", action, {"revert": {"snapshot_id": newest}}, version="3.40"), 409,
          "conflictingRequest", "must be 'available'")
    assert admin_view.show_volume(vol["id"]).status == "reserved"


def test_a_volume_is_retyped_in_place_by_os_retype(
    api: Api, admin_api: Api, admin_view: SyncClient, project: str,
) -> None:
    """``os-retype``: 202 and the new type, in place; Cinder's schema (``new_type`` a
    string, ``migration_policy`` never or on-demand, nothing else) 400; an unknown type
    404; a type the backend does not satisfy 400, with why."""
    for name, specs in ((f"gold-{project}", {"volume_backend_name": "file"}),
                        (f"lvm-{project}", {"volume_backend_name": "lvm"})):
        made = admin_api.call("POST", "/v3/types", {"volume_type": {"name": name,
                                                                    "extra_specs": specs}})
        assert made.status == 200, made.body
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    action = f"/v3/volumes/{vol['id']}/action"
    for bad, says in (({}, "new_type"), ({"new_type": 1}, "new_type"),
                      ({"new_type": "x", "migration_policy": "always"}, "migration_policy"),
                      ({"new_type": "x", "force": True}, "Additional properties")):
        fault(api.call("POST", action, {"os-retype": bad}), 400, "badRequest", says)
    fault(api.call("POST", action, {"os-retype": {"new_type": "no-such"}}), 404,
          "itemNotFound", "no-such")
    fault(api.call("POST", action, {"os-retype": {"new_type": f"lvm-{project}"}}), 400,
          "badRequest", "migration not allowed")
    done = api.call("POST", action, {"os-retype": {"new_type": f"gold-{project}",
                                                   "migration_policy": None}})
    assert done.status == 202, done.body
    shown = api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"]
    assert (shown["volume_type"], shown["status"]) == (f"gold-{project}", "available")


def test_a_volume_reset_says_what_it_does_not_reset_instead_of_ignoring_it(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``os-reset_status`` with ``attach_status`` (``cinder reset-state --attach-status``,
    ``openstack volume set --detached``) had been answered 202 and ignored: a volume's
    attachments decide it, so it is refused with what to do; ``migration_status`` may
    only say ``none`` (no volume migrates here); nothing else is taken."""
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1}}).body["volume"]
    volume_status(admin_view, vol["id"], "available")
    action = f"/v3/volumes/{vol['id']}/action"
    for body, says in (({"status": "error", "attach_status": "detached"},
                        "attachments decide"),
                       ({"attach_status": "detached"}, "attachments decide"),
                       ({"status": "error", "migration_status": "migrating"},
                        "may only be reset to 'none'"),
                       ({"status": "error", "colour": "red"}, "Additional properties"),
                       ({}, "'status' is a required property")):
        fault(admin_api.call("POST", action, {"os-reset_status": body}), 400, "badRequest",
              says)
    assert admin_view.show_volume(vol["id"]).status == "available"  # nothing was reset
    done = admin_api.call("POST", action, {"os-reset_status": {
        "status": "error", "migration_status": "none"}})
    assert done.status == 202 and admin_view.show_volume(vol["id"]).status == "error"


def test_one_extension_is_shown_by_its_alias_and_one_not_served_is_not_found(
    api: Api,
) -> None:
    shown = api.call("GET", "/v3/extensions/os-volume-transfer")
    assert shown.status == 200 and shown.body["extension"]["name"] == "VolumeTransfer"
    assert set(shown.body["extension"]) == {"alias", "name", "description", "updated", "links"}
    backups = api.call("GET", "/v3/extensions/backups").body["extension"]
    assert (backups["name"], backups["updated"]) == ("Backups", "2012-12-12T00:00:00+00:00")
    assert "records exported and imported" in backups["description"]
    fault(api.call("GET", "/v3/extensions/os-volume-encryption-metadata"), 404,
          "itemNotFound", "os-volume-encryption-metadata")


def test_a_front_on_a_public_address_without_tokens_refuses_to_start(
    rest_cluster: E2ECluster,
) -> None:
    done = subprocess.run(
        [CINDERBLOCK, "actor", "rest", "--config", str(rest_cluster.cluster.config_path),
         "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert "refusing to serve the API on 0.0.0.0 without tokens" in done.stderr


def test_a_volume_s_view_says_multiattach_from_its_type_and_grows_with_the_microversion(
    api: Api, admin_api: Api, project: str,
) -> None:
    made = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"shared-{project}", "extra_specs": {"multiattach": "<is> True"}}})
    assert made.status == 200
    vol = api.call("POST", "/v3/volumes", {"volume": {
        "size": 1, "volume_type": f"shared-{project}"}}).body["volume"]
    assert vol["multiattach"] is True
    plain = api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"]
    assert "consumes_quota" not in plain and "shared_targets" not in plain
    newer = api.call("GET", f"/v3/volumes/{vol['id']}", version="3.69").body["volume"]
    assert (newer["consumes_quota"], newer["shared_targets"], newer["cluster_name"]) == (
        True, False, None)


def test_a_front_that_dies_is_started_again_on_its_port_and_serves_the_same_state(
    rest_cluster: E2ECluster, api: Api,
) -> None:
    vol = api.call("POST", "/v3/volumes", {"volume": {"size": 1, "name": "kept"}}).body
    cluster = rest_cluster.cluster
    cluster.procs["rest-1"].kill()
    cluster.procs["rest-1"].wait()
    cluster.respawn("rest-1")

    def answers() -> Reply | None:
        try:
            return api.call("GET", f"/v3/volumes/{vol['volume']['id']}")
        except OSError:
            return None

    shown: Reply = wait_for(answers)
    assert shown.body["volume"]["name"] == "kept"


def test_each_http_request_is_a_line_of_the_front_s_log_under_the_id_it_answered_with(
    rest_cluster: E2ECluster, api: Api, project: str,
) -> None:
    """The front logs as the actors do (``logs/rest-1.log``): a line a request with the
    method, path, status, size, time and caller, under the request id of its answer's
    ``x-openstack-request-id`` (with a caller's own well-formed id beside it); the
    gateway's line about the same refusal carries the same id; the token is never
    written."""
    refused = api.call("POST", "/v3/volumes", {"volume": {"size": 1001}})  # quota: 1000
    assert refused.status == 413
    rid = refused.headers["x-openstack-request-id"]
    made = api.call("POST", "/v3/volumes", {"volume": {"size": 1}})
    assert made.status == 202
    vol_id = made.body["volume"]["id"]
    shown = api.call("GET", f"/v3/volumes/{vol_id}?x=1")
    anonymous = Api(rest_cluster.rest_url, None).call("GET", "/v3/volumes")
    assert anonymous.status == 401
    nova_id = f"req-{uuid.uuid4()}"
    traced = api.call("GET", "/v3/volumes", headers={"X-OpenStack-Request-ID": nova_id})
    forged = api.call("GET", "/v3/volumes", headers={"X-OpenStack-Request-ID": "x] forged"})
    assert traced.headers["x-openstack-request-id"] != nova_id  # the front's own, always
    front_log = rest_cluster.cluster.log_path("rest-1")

    def lines_with(needle: str, path: Any = front_log) -> list[str]:
        return [line for line in path.read_text().splitlines() if needle in line]

    (line,) = wait_for(lambda: lines_with(rid))
    assert f"[{rid} project={project} volume=-]" in line
    assert '"POST /v3/volumes" 413 ' in line and f"user={project}" in line
    assert " rest INFO cinderblock.rest.access " in line
    (line,) = wait_for(lambda: lines_with(shown.headers["x-openstack-request-id"]))
    assert f"project={project} volume={vol_id}]" in line
    assert f'"GET /v3/volumes/{vol_id}?x=1" 200 ' in line
    (line,) = wait_for(lambda: lines_with(anonymous.headers["x-openstack-request-id"]))
    assert "project=- volume=-]" in line and '"GET /v3/volumes" 401 ' in line
    (line,) = wait_for(lambda: lines_with(traced.headers["x-openstack-request-id"]))
    assert line.endswith(f"user={project} global={nova_id}")  # the caller's, beside ours
    (line,) = wait_for(lambda: lines_with(forged.headers["x-openstack-request-id"]))
    assert "global=" not in line and "forged" not in line  # not an id: not logged
    # the gateway's warning about the refused create names the HTTP request
    (warned,) = wait_for(lambda: lines_with(rid, rest_cluster.cluster.log_path("gateway")))
    assert "volume_create_api failed" in warned and f"project={project}" in warned
    assert f"{project}:{project}" not in front_log.read_text()  # the noauth token
    assert "Traceback" not in front_log.read_text()


def test_os_services_lists_the_scheduler_and_each_backend_for_an_admin_only(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``cinder service-list``'s call: the scheduler, one ``cinder-volume`` a backend and
    one ``cinder-backup`` a node (its node makes a volume's backups), each up with when
    it last reported; ``host`` and ``binary`` filter; members are 403."""
    fault(api.call("GET", "/v3/os-services"), 403, "forbidden", "services:index")
    backends = {b.backend: b for b in wait_for(
        lambda: [b for b in admin_view.list_backends() if b.up] or None)}
    listed = admin_api.call("GET", "/v3/os-services", version="3.49").body["services"]
    backup_services = {s["host"]: s for s in listed if s["binary"] == "cinder-backup"}
    assert set(backup_services) == {b.host for b in backends.values()}
    for backend in backends.values():
        service = backup_services[backend.host]
        assert (service["zone"], service["state"], service["status"]) == (
            backend.availability_zone, "up", "enabled")
        assert "backend_state" not in service and "frozen" not in service  # as Cinder's
    by_host = {s["host"]: s for s in listed if s["binary"] != "cinder-backup"}
    assert set(by_host) == {"scheduler", *backends}
    scheduler = by_host.pop("scheduler")
    assert (scheduler["binary"], scheduler["state"], scheduler["status"]) == (
        "cinder-scheduler", "up", "enabled")
    assert "backend_state" not in scheduler and scheduler["cluster"] is None
    for host, service in by_host.items():
        assert (service["binary"], service["zone"]) == ("cinder-volume",
                                                        backends[host].availability_zone)
        assert (service["state"], service["backend_state"], service["frozen"]) == (
            "up", "up", False)
        age = datetime.now(UTC) - datetime.fromisoformat(service["updated_at"] + "+00:00")
        assert age.total_seconds() < 30  # its stats came moments ago
    host = next(iter(backends))
    only = admin_api.call("GET", f"/v3/os-services?host={host}").body["services"]
    assert [(s["host"], s["binary"]) for s in only] == [(host, "cinder-volume")]
    assert "backend_state" not in only[0] and "cluster" not in only[0]  # 3.0 shows less
    volumes = admin_api.call("GET", "/v3/os-services?binary=cinder-volume").body["services"]
    assert {s["host"] for s in volumes} == set(backends)
    backup_rows = admin_api.call("GET", "/v3/os-services?binary=cinder-backup"
                                 ).body["services"]
    assert sorted(s["host"] for s in backup_rows) == sorted(b.host for b in backends.values())
    node = backends[host].host
    assert [s["binary"] for s in admin_api.call("GET", f"/v3/os-services?host={node}"
                                                ).body["services"]] == ["cinder-backup"]


def test_an_admin_disables_a_backend_s_service_with_a_reason_and_enables_it(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``os-services/disable-log-reason`` and ``enable`` (``cinder service-disable``):
    the service shows disabled, with why, until enabled; members are 403; a binary other
    than cinder-volume is 400 and a host no backend has 404."""
    host = sorted(b.backend for b in wait_for(
        lambda: [b for b in admin_view.list_backends() if b.up] or None))[0]
    body = {"host": host, "binary": "cinder-volume", "disabled_reason": "maintenance"}
    fault(api.call("PUT", "/v3/os-services/disable", body), 403, "forbidden",
          "services:update")
    fault(admin_api.call("PUT", "/v3/os-services/disable", {**body, "binary":
                                                            "cinder-scheduler"}),
          400, "badRequest", "cinder-volume")
    fault(admin_api.call("PUT", "/v3/os-services/disable", {**body, "host": "x@y"}),
          404, "itemNotFound", "Service x@y could not be found")
    try:
        done = admin_api.call("PUT", "/v3/os-services/disable-log-reason", body)
        assert done.status == 200, done.body
        assert (done.body["status"], done.body["disabled"], done.body["disabled_reason"]) == (
            "disabled", True, "maintenance")
        shown = admin_api.call("GET", f"/v3/os-services?host={host}").body["services"]
        assert [(s["status"], s["disabled_reason"]) for s in shown] == [
            ("disabled", "maintenance")]
    finally:
        enabled = admin_api.call("PUT", "/v3/os-services/enable",
                                 {"host": host, "binary": "cinder-volume"})
    assert (enabled.status, enabled.body["status"]) == (200, "enabled")
    shown = admin_api.call("GET", f"/v3/os-services?host={host}").body["services"]
    assert [(s["status"], s["disabled_reason"]) for s in shown] == [("enabled", None)]


def test_an_admin_reads_a_backend_s_capabilities_as_its_service_names_it(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``/capabilities/{host}`` (``cinder get-capabilities``, ``openstack volume backend
    capability show``): what the backend's node reports, the keys an extra spec can name
    as typed properties; a host no service has is 404, a member 403, as Cinder's."""
    backend = wait_for(lambda: [b for b in admin_view.list_backends() if b.up] or None)[0]
    fault(api.call("GET", f"/v3/capabilities/{backend.backend}"), 403, "forbidden",
          "volume_extension:capabilities")
    caps = admin_api.call("GET", f"/v3/capabilities/{backend.backend}").body
    assert caps["namespace"] == f"OS::Storage::Capabilities::{backend.backend}"
    assert (caps["volume_backend_name"], caps["storage_protocol"], caps["pool_name"]) == (
        backend.capabilities["volume_backend_name"], "nbd", backend.backend.partition("@")[2])
    assert caps["properties"]["multiattach"]["type"] == "boolean"
    assert caps["properties"]["clone_method"]["type"] == "string"
    assert set(caps["properties"]) == set(backend.capabilities) - {
        "volume_backend_name", "storage_protocol"}
    fault(admin_api.call("GET", "/v3/capabilities/nowhere@file"), 404, "itemNotFound",
          "Can't find service: nowhere@file")


def test_os_services_says_the_scheduler_is_down_while_it_is_and_up_again_after(
    cluster_factory: Callable[..., E2ECluster],
) -> None:
    """A dedicated cluster, its scheduler killed: ``os-services`` answers (within the
    gateway's 10 s for the call) with the scheduler down and no backend (nobody else knows
    them), and lists them all again once the scheduler is back."""
    own = cluster_factory(rest_fronts=1, nodes=1)
    admin_api = Api(own.rest_url, "admin:admin")

    def hosts_up() -> set[str]:
        services = admin_api.call("GET", "/v3/os-services").body["services"]
        return {s["host"] for s in services if s["state"] == "up"}

    wait_for(lambda: hosts_up() == {"scheduler", "node-1@file", "node-1"})
    own.cluster.procs["scheduler"].kill()
    own.cluster.procs["scheduler"].wait()
    down = admin_api.call("GET", "/v3/os-services").body["services"]
    assert [(s["binary"], s["state"], s["updated_at"]) for s in down] == [
        ("cinder-scheduler", "down", None)]
    own.cluster.respawn("scheduler")
    wait_for(lambda: hosts_up() == {"scheduler", "node-1@file", "node-1"}, timeout=30.0)


def test_manage_and_unmanage_refuse_what_cinder_s_schemas_and_policies_refuse(
    api: Api, admin_api: Api, admin_view: SyncClient, rest_cluster: E2ECluster,
) -> None:
    """``os-volume-manage``, ``manageable_volumes`` and ``os-unmanage``: an admin's, their
    bodies as Cinder's schemas have them; each refusal says what was wrong and leaves the
    file where it was."""
    source = rest_cluster.node_dir("node-1") / f"api-{uuid.uuid4().hex[:8]}.raw"
    source.write_bytes(b"stays")
    good = {"host": "node-1@file#file", "ref": {"source-name": source.name}}
    fault(api.call("POST", "/v3/os-volume-manage", {"volume": good}), 403, "forbidden",
          "volume_manage")
    fault(api.call("GET", "/v3/manageable_volumes?host=node-1", version="3.8"), 403,
          "forbidden", "list_manageable")
    fault(admin_api.call("GET", "/v3/manageable_volumes?host=node-1", version="3.7"), 404,
          "itemNotFound", "3.8")
    for body, words in (
        ({"ref": good["ref"]}, "Host field is missing"),
        ({**good, "cluster": "c"}, "Additional properties"),  # before 3.16
        ({**good, "size": 1}, "Additional properties"),
        ({**good, "ref": {"source-id": "x"}}, "Additional properties"),
        ({**good, "ref": 7}, "'ref' is a required property"),
        ({**good, "bootable": "maybe"}, "bootable"),
        ({**good, "host": "node-9@file"}, "no storage node here"),
        ({**good, "ref": {"source-name": "../gateway.db"}}, "not a file name"),
        ({**good, "metadata": {"k": 1}}, "metadata"),
    ):
        answer = admin_api.call("POST", "/v3/os-volume-manage", {"volume": body})
        assert answer.status in (400, 404) and words in json.dumps(answer.body), (body, answer)
    for query, words in (("", "Host field is missing"), ("host=node-1&offset=1", "offset"),
                         ("host=node-1&sort=size", "Invalid sort"),
                         ("host=node-1&limit=0", "limit")):
        fault(admin_api.call("GET", f"/v3/manageable_volumes/detail?{query}", version="3.8"),
              400, "badRequest", words)
    assert source.read_bytes() == b"stays"

    made = admin_api.call("POST", "/v3/manageable_volumes", {"volume": good}, version="3.8")
    assert made.status == 202 and made.body["volume"]["status"] == "creating", made.body
    volume_id = made.body["volume"]["id"]
    volume_status(admin_view, volume_id, "available")
    page = admin_api.call("GET", "/v3/os-volume-manage/detail?host=node-1&limit=1",
                          version="3.8").body["manageable-volumes"]
    assert len(page) == 1 and set(page[0]) == {"reference", "size", "safe_to_manage",
                                               "reason_not_safe", "cinder_id", "extra_info"}
    action = f"/v3/volumes/{volume_id}/action"
    fault(api.call("POST", action, {"os-unmanage": None}), 403, "forbidden", "unmanage")
    fault(admin_api.call("POST", action, {"os-unmanage": {"keep": True}}), 400, "badRequest",
          "no arguments")
    assert admin_api.call("POST", action, {"os-unmanage": None}).status == 202
    wait_for(lambda: volume_id not in {v.id for v in admin_view.list_volumes(all_projects=True)})
    kept = rest_cluster.node_dir("node-1") / f"unmanaged-volume-{volume_id}"
    assert kept.read_bytes()[:5] == b"stays"


def test_snapshot_manage_and_unmanage_refuse_what_cinder_s_schemas_and_policies_refuse(
    api: Api, admin_api: Api, admin_view: SyncClient, rest_cluster: E2ECluster,
) -> None:
    """``os-snapshot-manage``, ``manageable_snapshots`` and a snapshot's ``os-unmanage``:
    an admin's, their bodies as Cinder's schemas have them; each refusal says what was
    wrong and leaves the file where it was."""
    volume = admin_view.create_volume(1, wait=True)
    assert volume.host is not None
    node = volume.host.split("@")[0]  # where the scheduler put it: the file goes there
    source = rest_cluster.node_dir(node) / f"api-{uuid.uuid4().hex[:8]}.raw"
    source.write_bytes(b"stays")
    good = {"volume_id": volume.id, "ref": {"source-name": source.name}}
    fault(api.call("POST", "/v3/os-snapshot-manage", {"snapshot": good}), 403, "forbidden",
          "snapshot_manage")
    fault(api.call("GET", f"/v3/manageable_snapshots?host={node}", version="3.8"), 403,
          "forbidden", "list_manageable")
    fault(admin_api.call("GET", f"/v3/manageable_snapshots?host={node}", version="3.7"), 404,
          "itemNotFound", "3.8")
    for body, status, words in (
        ({"ref": good["ref"]}, 400, "'volume_id' is a required property"),
        ({"volume_id": volume.id}, 400, "'ref' is a required property"),
        ({**good, "host": "node-1"}, 400, "Additional properties"),
        ({**good, "ref": {"source-id": "x"}}, 400, "Additional properties"),
        ({**good, "ref": None}, 400, "'ref' is a required property"),
        ({**good, "volume_id": "no-such-volume"}, 404, "could not be found"),
        ({**good, "ref": {"source-name": "../gateway.db"}}, 400, "not a file name"),
        ({**good, "metadata": {"k": 1}}, 400, "metadata"),
        ({**good, "name": 7}, 400, "name"),
    ):
        fault(admin_api.call("POST", "/v3/os-snapshot-manage", {"snapshot": body}), status,
              "badRequest" if status == 400 else "itemNotFound", words)
    fault(admin_api.call("GET", f"/v3/manageable_snapshots/detail?host={node}&sort=size",
                         version="3.8"), 400, "badRequest", "Invalid sort: manageable snapshots")
    assert source.read_bytes() == b"stays"

    made = admin_api.call("POST", "/v3/manageable_snapshots", {"snapshot": {
        **good, "name": None, "description": None, "metadata": None}}, version="3.8")
    assert made.status == 202 and made.body["snapshot"]["status"] == "creating", made.body
    snapshot_id = made.body["snapshot"]["id"]
    wait_for(lambda: admin_view.show_snapshot(snapshot_id).status == "available")
    page = admin_api.call("GET", f"/v3/os-snapshot-manage/detail?host={node}&limit=1",
                          version="3.8").body["manageable-snapshots"]
    assert len(page) == 1 and set(page[0]) == {
        "reference", "size", "safe_to_manage", "reason_not_safe", "cinder_id", "extra_info",
        "source_reference"}
    action = f"/v3/snapshots/{snapshot_id}/action"
    fault(api.call("POST", action, {"os-unmanage": None}), 403, "forbidden", "unmanage")
    fault(admin_api.call("POST", action, {"os-unmanage": {"keep": True}}), 400, "badRequest",
          "no arguments")
    assert admin_api.call("POST", action, {"os-unmanage": {}}).status == 202
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=volume.id))
    kept = rest_cluster.node_dir(node) / f"unmanaged-snapshot-{snapshot_id}"
    assert kept.read_bytes()[:5] == b"stays"
    admin_view.delete_volume(volume.id, wait=True)


def test_clusters_are_none_and_a_cluster_named_is_not_found(api: Api, admin_api: Api) -> None:
    """3.7's clusters, an admin's: every backend is a service of its own, so the list is
    empty; its filters are checked as Cinder's, and a cluster named is a 404."""
    fault(admin_api.call("GET", "/v3/clusters", version="3.6"), 404, "itemNotFound", "3.7")
    fault(api.call("GET", "/v3/clusters", version="3.7"), 403, "forbidden", "clusters:get_all")
    for path in ("/v3/clusters", "/v3/clusters/detail?is_up=true&binary=cinder-volume"):
        assert admin_api.call("GET", path, version="3.7").body == {"clusters": []}
    fault(admin_api.call("GET", "/v3/clusters?frozen=true", version="3.7"), 400, "badRequest",
          "Invalid filter keys: frozen")
    assert admin_api.call("GET", "/v3/clusters?frozen=true", version="3.26").status == 200
    fault(admin_api.call("GET", "/v3/clusters?is_up=maybe", version="3.7"), 400, "badRequest",
          "is_up")
    fault(admin_api.call("GET", "/v3/clusters/c1", version="3.7"), 404, "itemNotFound",
          "Cluster c1 could not be found")
    fault(admin_api.call("PUT", "/v3/clusters/disable", {"name": "c1"}, version="3.7"), 404,
          "itemNotFound", "Cluster c1 could not be found")
    fault(admin_api.call("PUT", "/v3/clusters/enable", {}, version="3.7"), 400, "badRequest",
          "'name' is a required property")


def test_a_filter_a_listing_does_not_honour_is_refused_and_resource_filters_say_which(
    api: Api, admin_api: Api, admin_view: SyncClient, project: str,
) -> None:
    """A filter a listing would pass over answered with the unfiltered list (every
    volume, asked for the bootable ones): now a 400 naming it, an admin's too; 3.33's
    ``/resource_filters`` says what each listing filters by, and those filters work."""
    made = api.call("POST", "/v3/volumes", {"volume": {"size": 1, "name": "filtered"}})
    vol = made.body["volume"]
    volume_status(admin_view, vol["id"], "available")
    for caller in (api, admin_api):
        for query, says in (("name~=filt", "Invalid filters name~ are found"),
                            ("offset=1", "offset is not supported here")):
            fault(caller.call("GET", f"/v3/volumes/detail?{query}", version="3.60"), 400,
                  "badRequest", says)
        fault(caller.call("GET", "/v3/volumes?with_count=true", version="3.44"), 400,
              "badRequest", "counted from microversion 3.45 on")
    named = api.call("GET", "/v3/volumes?name=filtered&with_count=false").body["volumes"]
    assert [v["id"] for v in named] == [vol["id"]]
    # Cinder's bootable, availability_zone and size (the first had been refused, the
    # others too); a bootable word as Cinder reads it from 3.2 on, a size a number.
    plain = api.call("POST", "/v3/volumes", {"volume": {"size": 2, "name": "filtered"}})
    volume_status(admin_view, plain.body["volume"]["id"], "available")
    assert api.call("POST", f"/v3/volumes/{vol['id']}/action",
                    {"os-set_bootable": {"bootable": True}}).status == 200

    def named_ids(query: str) -> list[str]:
        found = api.call("GET", f"/v3/volumes/detail?name=filtered&{query}").body["volumes"]
        return [v["id"] for v in found]

    assert named_ids("bootable=true") == [vol["id"]]
    assert named_ids("bootable=False&size=2") == [plain.body["volume"]["id"]]
    assert named_ids("bootable=1&availability_zone=nova&size=1") == [vol["id"]]
    assert named_ids("availability_zone=elsewhere") == []
    # 3.60's time comparisons, of the times the views show (to the microsecond)
    first = api.call("GET", f"/v3/volumes/{vol['id']}").body["volume"]["created_at"]

    def timed(query: str) -> list[str]:
        found = api.call("GET", f"/v3/volumes/detail?name=filtered&{query}",
                         version="3.60").body["volumes"]
        return [v["id"] for v in found]

    assert timed(f"created_at=gt:{first}") == [plain.body["volume"]["id"]]
    assert timed(f"created_at=eq:{first}") == [vol["id"]]
    assert timed(f"created_at=lte:{first}Z,gte:2000-01-01") == [vol["id"]]
    assert timed("updated_at=lt:2000-01-01T00:00:00") == []
    fault(api.call("GET", f"/v3/volumes?created_at=gt:{first}", version="3.59"), 400,
          "badRequest", "filtered by time from microversion 3.60 on")
    fault(api.call("GET", "/v3/volumes?created_at=after:2026-01-01", version="3.60"), 400,
          "badRequest", "Invalid after operator")
    # 3.45's with_count: how many the listing has in all, beside its page (it had been
    # refused), with every filter.
    for query, count, page in (("limit=1", 2, 1), ("bootable=true", 1, 1),
                               ("size=3", 0, 0), ("status=available&limit=0", 2, 0),
                               ("consumes_quota=true", 2, 2), ("consumes_quota=false", 0, 0)):
        counted = api.call("GET", f"/v3/volumes/detail?name=filtered&with_count=true&{query}",
                           version="3.45").body
        assert (counted["count"], len(counted["volumes"])) == (count, page), counted
    assert "count" not in api.call("GET", "/v3/volumes?with_count=false",
                                   version="3.45").body
    fault(api.call("GET", "/v3/volumes?with_count=maybe", version="3.45"), 400, "badRequest",
          "with_count")
    snap = api.call("POST", "/v3/snapshots", {"snapshot": {"volume_id": vol["id"],
                                                           "name": "counted"}})
    wait_for(lambda: admin_view.show_snapshot(snap.body["snapshot"]["id"]).status
             == "available")
    for query, count in ((f"volume_id={vol['id']}", 1), ("name=counted&status=error", 0),
                         ("name=counted&limit=0", 1), ("name=counted&consumes_quota=1", 1),
                         ("name=counted&consumes_quota=0", 0),
                         ("availability_zone=nova&name=counted", 1),
                         ("availability_zone=elsewhere&name=counted", 0)):
        counted = api.call("GET", f"/v3/snapshots/detail?with_count=1&{query}",
                           version="3.45").body
        assert counted["count"] == count, counted
    fault(api.call("GET", "/v3/snapshots?with_count=true", version="3.44"), 400,
          "badRequest", "counted from microversion 3.45 on")
    assert api.call("DELETE", f"/v3/snapshots/{snap.body['snapshot']['id']}").status == 202
    wait_for(lambda: not admin_view.list_snapshots(all_projects=True, volume_id=vol["id"]))
    fault(api.call("GET", "/v3/volumes?bootable=maybe"), 400, "badRequest",
          "Invalid input for field/attribute bootable. Value: maybe.")
    fault(api.call("GET", "/v3/snapshots?consumes_quota=perhaps"), 400, "badRequest",
          "Invalid input for field/attribute consumes_quota. Value: perhaps.")
    for listing in ("volumes?bootable=maybe", "snapshots?sort=nosuchkey"):  # checked first
        fault(api.call("GET", f"/v3/{listing}&consumes_quota=false"), 400, "badRequest",
              "Invalid")
    fault(api.call("GET", "/v3/volumes?size=big"), 400, "badRequest",
          "Invalid filter size=big: a size is a whole number of GiB")
    # the wire's integers end where SQLite's do (2^63 - 1): a size past them is refused
    # by the wire's schema, the last of them matches no volume
    fault(api.call("GET", f"/v3/volumes?size={2**63}"), 400, "badRequest",
          "size: must be an integer from -9223372036854775808 to 9223372036854775807")
    assert api.call("GET", f"/v3/volumes?size={2**63 - 1}").body["volumes"] == []
    assert api.call("DELETE", f"/v3/volumes/{plain.body['volume']['id']}").status == 202
    wait_for(lambda: named_ids("") == [vol["id"]])
    # project_id names only the caller's own project, but for an admin's all_tenants
    # (a member's had been passed over: its own volumes, as if the other project's).
    fault(api.call("GET", "/v3/volumes?project_id=someone-else"), 400, "badRequest",
          "only an admin lists another project's")
    own = api.call("GET", f"/v3/volumes?project_id={project}&name=filtered").body["volumes"]
    assert [v["id"] for v in own] == [vol["id"]]
    theirs = admin_api.call("GET", f"/v3/snapshots?all_projects=1&project_id={project}")
    assert theirs.status == 200, theirs.body
    summary = admin_api.call("GET", f"/v3/volumes/summary?all_tenants=1&project_id={project}",
                             version="3.12").body["volume-summary"]
    assert summary["total_count"] == 1
    fault(api.call("GET", f"/v3/snapshots?volume_id={vol['id']}&size=1"), 400, "badRequest",
          "This route filters by name, status, volume_id, metadata")
    fault(api.call("GET", "/v3/attachments?mountpoint=/dev/vdb", version="3.27"), 400,
          "badRequest", "Invalid filters mountpoint")
    instance = str(uuid.uuid4())
    made_att = api.call("POST", "/v3/attachments", {"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": instance}}, version="3.27").body
    for query in (f"instance_id={instance}", f"volume_id={vol['id']}&status=reserved",
                  f"attach_status=reserved&instance_id={instance}"):
        found = api.call("GET", f"/v3/attachments?{query}", version="3.27").body
        assert [a["id"] for a in found["attachments"]] == [made_att["attachment"]["id"]]
    assert api.call("GET", f"/v3/attachments?instance_id={instance}&status=attached",
                    version="3.27").body["attachments"] == []
    assert api.call("DELETE", f"/v3/attachments/{made_att['attachment']['id']}",
                    version="3.27").status == 200
    fault(api.call("GET", "/v3/messages?guaranteed_until=1", version="3.3"), 400,
          "badRequest", "Invalid filters guaranteed_until")
    fault(api.call("GET", f"/v3/volumes?group_id={uuid.uuid4()}", version="3.9"), 400,
          "badRequest", "filtered by group from microversion 3.10 on")
    assert api.call("GET", f"/v3/volumes?group_id={uuid.uuid4()}",
                    version="3.10").body["volumes"] == []  # a group nobody has: none

    fault(api.call("GET", "/v3/resource_filters", version="3.32"), 404, "itemNotFound", "3.33")
    listed = api.call("GET", "/v3/resource_filters", version="3.33").body["resource_filters"]
    assert {"resource": "volume", "filters": [
        "name", "status", "metadata", "bootable", "availability_zone", "size", "created_at",
        "updated_at", "consumes_quota", "migration_status", "group_id"]} in listed
    one = api.call("GET", "/v3/resource_filters?resource=pool", version="3.33").body
    assert one == {"resource_filters": [{"resource": "pool",
                                         "filters": ["name", "volume_type"]}]}

    # An admin's types by is_public, and pools by name and by the type they could hold.
    private = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"filters-{project}", "os-volume-type-access:is_public": False}}).body
    type_id = private["volume_type"]["id"]

    def type_ids(query: str) -> set[str]:
        return {t["id"] for t in admin_api.call("GET", f"/v3/types?{query}").body[
            "volume_types"]}

    assert type_id in type_ids("is_public=none") and type_id in type_ids("is_public=false")
    assert type_id not in type_ids("is_public=true")
    fault(admin_api.call("GET", "/v3/types?is_public=perhaps"), 400, "badRequest",
          "Invalid is_public filter [perhaps]")
    pools = admin_api.call("GET", "/v3/scheduler-stats/get_pools").body["pools"]
    first = pools[0]["name"]
    by_name = admin_api.call("GET", f"/v3/scheduler-stats/get_pools?name={quote(first)}")
    assert by_name.body == {"pools": [{"name": first}]}
    nowhere = admin_api.call("POST", "/v3/types", {"volume_type": {
        "name": f"nowhere-{project}", "extra_specs": {"volume_backend_name": "tape"}}}).body
    for name, found in ((f"nowhere-{project}", []), ("__DEFAULT__", pools)):
        assert admin_api.call("GET", f"/v3/scheduler-stats/get_pools?volume_type={name}"
                              ).body == {"pools": found}
    fault(admin_api.call("GET", "/v3/scheduler-stats/get_pools?host=x"), 400, "badRequest",
          "Invalid filters host")
    for made_type in (type_id, nowhere["volume_type"]["id"]):
        assert admin_api.call("DELETE", f"/v3/types/{made_type}").status == 202
    assert api.call("DELETE", f"/v3/volumes/{vol['id']}").status == 202


def test_an_admin_sets_and_reads_log_levels_through_os_services(
    api: Api, admin_api: Api,
) -> None:
    """3.32's ``os-services/set-log`` and ``get-log`` (each had been a 404): a node's
    loggers set, read back from that node only; the front's own as ``cinder-api``."""
    prefix = "cinderblock.storage_node"
    body = {"binary": "cinder-volume", "server": "node-1@file", "prefix": prefix,
            "level": "DEBUG"}
    fault(admin_api.call("PUT", "/v3/os-services/set-log", body, version="3.31"), 404,
          "itemNotFound", "3.32")
    fault(api.call("PUT", "/v3/os-services/set-log", body, version="3.32"), 403, "forbidden",
          "services:update")
    for wrong, says in (({**body, "level": "LOUD"}, "'LOUD' is not a valid log level"),
                        ({**body, "binary": "cinder-tape"}, "binary 'cinder-tape'"),
                        ({**body, "extra": 1}, "Additional properties"),
                        ({**body, "prefix": 7}, "prefix")):
        fault(admin_api.call("PUT", "/v3/os-services/set-log", wrong, version="3.32"), 400,
              "badRequest", says)
    assert admin_api.call("PUT", "/v3/os-services/set-log", body,
                          version="3.32").status == 202
    shown = admin_api.call("PUT", "/v3/os-services/get-log", {"prefix": prefix},
                           version="3.32").body["log_levels"]
    by_host = {(s["binary"], s["host"]): s["levels"] for s in shown}
    assert set(by_host[("cinder-volume", "node-1@file")].values()) == {"DEBUG"}
    assert ("cinder-api", shown[0]["host"]) in by_host  # this front's own, first
    assert ("cinder-scheduler", "scheduler") in by_host
    api_only = admin_api.call("PUT", "/v3/os-services/get-log",
                              {"binary": "cinder-api", "prefix": "cinderblock.rest"},
                              version="3.32").body["log_levels"]
    assert [s["binary"] for s in api_only] == ["cinder-api"]
    assert api_only[0]["levels"]["cinderblock.rest.access"] == "INFO"
    assert admin_api.call("PUT", "/v3/os-services/set-log", {**body, "level": "INFO"},
                          version="3.32").status == 202


# ---- backups -----------------------------------------------------------------------------
BACKUP_DETAIL = {"id", "status", "size", "object_count", "availability_zone", "container",
                 "created_at", "updated_at", "name", "description", "fail_reason",
                 "volume_id", "links", "is_incremental", "has_dependent_backups",
                 "snapshot_id", "data_timestamp"}
BACKED_UP = [(0, b"the first block " * 64), (GIB // 2 - 3, b"across the middle"),
             (GIB - 7, b"the end")]


def made_volume(api: Api, admin_view: SyncClient, size: int = 1, **fields: Any) -> Volume:
    made = api.call("POST", "/v3/volumes", {"volume": {"size": size, **fields}})
    assert made.status == 202, made.body
    return volume_status(admin_view, made.body["volume"]["id"], "available")


def made_backup(api: Api, admin_view: SyncClient, volume_id: str, version: str | None = None,
                **fields: Any) -> str:
    made = api.call("POST", "/v3/backups", {"backup": {"volume_id": volume_id, **fields}},
                    version)
    assert made.status == 202, made.body
    backup_status(admin_view, made.body["backup"]["id"], "available")
    return str(made.body["backup"]["id"])


def test_a_backup_is_made_shown_restored_into_a_volume_and_a_new_one_and_deleted(
    api: Api, admin_api: Api, admin_view: SyncClient, rest_cluster: E2ECluster, project: str,
) -> None:
    """Cinder's backup calls over HTTP, and the bytes: a backup holds the volume's as
    they were, a restore writes them back over what changed since, a restore without a
    volume and a create from the backup (3.47) make new volumes holding them."""
    vol = made_volume(api, admin_view, name="source")
    write_pattern(file_of(rest_cluster, vol), BACKED_UP)
    made = api.call("POST", "/v3/backups", {"backup": {
        "volume_id": vol.id, "name": " nightly ", "description": "before the change",
        "container": "shelf", "incremental": "false", "force": False, "snapshot_id": None}})
    assert made.status == 202, made.body
    summary = made.body["backup"]
    assert set(summary) == {"id", "name", "links"} and summary["name"] == "nightly"
    assert summary["links"][0]["href"].endswith(f"/v3/backups/{summary['id']}")
    backup_id = summary["id"]
    backup_status(admin_view, backup_id, "available")
    assert volume_status(admin_view, vol.id, "available").status == "available"

    shown = api.call("GET", f"/v3/backups/{backup_id}").body["backup"]
    assert set(shown) == BACKUP_DETAIL
    assert (shown["status"], shown["size"], shown["volume_id"], shown["container"],
            shown["description"], shown["is_incremental"], shown["object_count"]) == (
        "available", 1, vol.id, "shelf", "before the change", False, 4)  # 8 MiB chunks:
    # the first, two across the middle, the last (the rest is holes, not stored)
    assert shown["availability_zone"] == vol.availability_zone
    newer = api.call("GET", f"/v3/backups/{backup_id}", version="3.71").body["backup"]
    assert set(newer) == BACKUP_DETAIL | {"metadata"}  # whose it is: admins only
    as_admin = admin_api.call("GET", f"/v3/backups/{backup_id}", version="3.71"
                              ).body["backup"]
    assert (as_admin["os-backup-project-attr:project_id"], as_admin["user_id"]) == (
        project, project)
    at_3_18 = admin_api.call("GET", f"/v3/backups/{backup_id}", version="3.18"
                             ).body["backup"]
    assert set(at_3_18) == BACKUP_DETAIL | {"os-backup-project-attr:project_id"}

    # the volume changes; a restore into it gives it the backed-up bytes, whole
    write_pattern(file_of(rest_cluster, vol), [(0, b"overwritten"), (4096, b"new data")])
    restored = api.call("POST", f"/v3/backups/{backup_id}/restore",
                        {"restore": {"volume_id": vol.id}})
    assert restored.status == 202, restored.body
    assert restored.body == {"restore": {"backup_id": backup_id, "volume_id": vol.id,
                                         "volume_name": "source"}}
    backup_status(admin_view, backup_id, "available")
    volume_status(admin_view, vol.id, "available")
    assert read(file_of(rest_cluster, vol), 4096, 8) == bytes(8)
    for offset, data in BACKED_UP:
        assert read(file_of(rest_cluster, vol), offset, len(data)) == data

    # into a new volume, named (openstack volume backup restore BACKUP NAME)
    again = api.call("POST", f"/v3/backups/{backup_id}/restore", {"restore": {"name": "again"}})
    assert again.status == 202, again.body
    assert again.body["restore"]["volume_name"] == "again"
    new = volume_status(admin_view, again.body["restore"]["volume_id"], "available")
    assert (new.size, new.project_id) == (1, project)
    assert same_bytes(file_of(rest_cluster, new), file_of(rest_cluster, vol))
    unnamed = api.call("POST", f"/v3/backups/{backup_id}/restore", {"restore": None})
    assert unnamed.body["restore"]["volume_name"] == f"restore_backup_{backup_id}"
    volume_status(admin_view, unnamed.body["restore"]["volume_id"], "available")

    # a volume created from the backup (3.47), larger than it; an unknown backup is 404
    backup_status(admin_view, backup_id, "available")
    grown = api.call("POST", "/v3/volumes", {"volume": {"size": 2, "backup_id": backup_id}},
                     version="3.47")
    assert grown.status == 202, grown.body
    from_backup = volume_status(admin_view, grown.body["volume"]["id"], "available")
    assert same_bytes(file_of(rest_cluster, from_backup), file_of(rest_cluster, vol),
                      length=GIB)
    assert read(file_of(rest_cluster, from_backup), GIB, 4096) == bytes(4096)
    fault(api.call("POST", "/v3/volumes", {"volume": {"size": 1, "backup_id": UUID}},
                   version="3.47"), 404, "itemNotFound", f"Backup {UUID} could not be found.")

    backup_status(admin_view, backup_id, "available")
    assert api.call("DELETE", f"/v3/backups/{backup_id}").status == 202
    backup_gone(admin_view, backup_id)
    fault(api.call("GET", f"/v3/backups/{backup_id}"), 404, "itemNotFound",
          f"Backup {backup_id} could not be found.")
    wait_for(lambda: admin_view.show_quota(project).in_use.get("backups", 0) == 0)


def test_backups_are_listed_filtered_paged_counted_and_sorted_newest_first_only(
    api: Api, admin_api: Api, admin_view: SyncClient, rest_cluster: E2ECluster, project: str,
) -> None:
    """The summary and detail listings, by name, status and volume, a page at a time
    with a link to the next, counted from 3.45; an admin's ``all_tenants`` with
    ``project_id``; a sort the gateway does not page (anything but newest first) and a
    filter it does not honour are 400s, not the list in another order or unfiltered."""
    vol, other = made_volume(api, admin_view), made_volume(api, admin_view)
    first = made_backup(api, admin_view, vol.id, name="first")
    second = made_backup(api, admin_view, vol.id, name="second")
    third = made_backup(api, admin_view, other.id, name="first")

    def listed(query: str, version: str | None = None, caller: Api = api) -> dict[str, Any]:
        reply = caller.call("GET", f"/v3/backups{query}", version=version)
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    summaries = listed("")["backups"]
    assert [b["id"] for b in summaries] == [third, second, first]  # newest first
    assert all(set(b) == {"id", "name", "links"} for b in summaries)
    details = listed("/detail")["backups"]
    assert [set(b) for b in details] == [BACKUP_DETAIL] * 3
    assert [b["id"] for b in listed("/detail?name=first")["backups"]] == [third, first]
    assert [b["id"] for b in listed(f"?volume_id={vol.id}")["backups"]] == [second, first]
    assert [b["id"] for b in listed("?display_name=second&status=available")["backups"]
            ] == [second]
    assert listed("?status=error")["backups"] == []
    page = listed("/detail?limit=2")
    assert [b["id"] for b in page["backups"]] == [third, second]
    next_query = parse_qs(urlsplit(page["backups_links"][0]["href"]).query)
    assert next_query["marker"] == [second] and next_query["limit"] == ["2"]
    last = listed(f"/detail?limit=2&marker={second}")
    assert [b["id"] for b in last["backups"]] == [first] and "backups_links" not in last
    counted = listed("?with_count=true&limit=1&name=first", "3.45")
    assert (counted["count"], len(counted["backups"])) == (2, 1)
    assert "count" not in listed("?with_count=false", "3.45")
    for query in ("sort=created_at:desc", "sort_key=created_at&sort_dir=desc"):
        assert [b["id"] for b in listed(f"?{query}")["backups"]] == [third, second, first]
    for query, says in (("sort=created_at:asc", "listed newest first only"),
                        ("sort_dir=asc", "listed newest first only"),
                        ("sort=name", "listed newest first only"),
                        ("offset=1", "offset is not supported here"),
                        ("container=shelf", "Invalid filters container are found"),
                        ("status=lost", "unknown BackupStatus 'lost'"),
                        ("marker=" + UUID, "marker")):
        fault(api.call("GET", f"/v3/backups/detail?{query}"), 400, "badRequest", says)
    fault(api.call("GET", "/v3/backups?with_count=true", version="3.44"), 400, "badRequest",
          "counted from microversion 3.45 on")
    assert api.call("GET", "/v3/resource_filters?resource=backup", version="3.33").body == {
        "resource_filters": [{"resource": "backup",
                              "filters": ["name", "status", "volume_id"]}]}
    in_project = api.call("GET", f"/v3/{project}/backups/detail")  # 3.67's path too
    assert in_project.status == 200
    assert [b["id"] for b in in_project.body["backups"]] == [third, second, first]
    # whose: a member's own only; an admin's every project's, or one's
    elsewhere = f"other-{uuid.uuid4().hex[:8]}"
    fault(api.call("GET", f"/v3/backups?project_id={elsewhere}"), 400, "badRequest",
          "Invalid filters project_id")
    mine = listed(f"/detail?all_tenants=1&project_id={project}", "3.18", admin_api)
    assert [(b["id"], b["os-backup-project-attr:project_id"]) for b in mine["backups"]] == [
        (third, project), (second, project), (first, project)]
    assert listed("?all_tenants=1", caller=api)["backups"] == summaries  # passed over
    assert {third, second, first} <= {
        b["id"] for b in listed("?all_tenants=1&limit=1000", caller=admin_api)["backups"]}
    for backup_id in (first, second, third):
        assert api.call("DELETE", f"/v3/backups/{backup_id}").status == 202


def test_backup_bodies_are_cinder_s_schemas_and_each_refusal_changes_nothing(
    api: Api, admin_api: Api, admin_view: SyncClient, rest_cluster: E2ECluster, project: str,
) -> None:
    vol = made_volume(api, admin_view, size=2)
    small = made_volume(api, admin_view, size=1)
    refused_creates: list[tuple[dict[str, Any], str | None, int, str, str]] = [
        ({}, None, 400, "badRequest", "'volume_id' is a required property"),
        ({"volume_id": "vol-1"}, None, 400, "badRequest", "'vol-1' is not a 'uuid'"),
        ({"volume_id": UUID}, None, 404, "itemNotFound", UUID),
        ({"volume_id": vol.id, "snapshot_id": "s"}, None, 400, "badRequest",
         "field/attribute snapshot_id"),
        ({"volume_id": vol.id, "snapshot_id": UUID}, None, 404, "itemNotFound", UUID),
        ({"volume_id": vol.id, "name": "n" * 256}, None, 400, "badRequest",
         "field/attribute name"),
        ({"volume_id": vol.id, "force": "sure"}, None, 400, "badRequest",
         "field/attribute force"),
        ({"volume_id": vol.id, "incremental": True}, None, 400, "badRequest",
         "No backups available to do an incremental backup."),
        ({"volume_id": vol.id, "metadata": {"k": "v"}}, "3.42", 400, "badRequest",
         "'metadata' were unexpected"),
        ({"volume_id": vol.id, "metadata": {"k": 1}}, "3.43", 400, "badRequest",
         "metadata value for 'k'"),
        ({"volume_id": vol.id, "availability_zone": "nova"}, "3.50", 400, "badRequest",
         "'availability_zone' were unexpected"),
        ({"volume_id": vol.id, "availability_zone": "atlantis"}, "3.51", 400, "badRequest",
         "a backup is made by its volume's node, in its zone"),
        ({"volume_id": vol.id, "size": 1}, None, 400, "badRequest", "'size' were unexpected"),
    ]
    for backup, version, status, name, says in refused_creates:
        fault(api.call("POST", "/v3/backups", {"backup": backup}, version), status, name,
              says)
    fault(api.call("POST", "/v3/backups", {"volume_id": vol.id}), 400, "badRequest",
          "'volume_id' were unexpected")
    assert api.call("GET", "/v3/backups").body["backups"] == []
    assert admin_view.show_quota(project).in_use.get("backups", 0) == 0

    backup_id = made_backup(api, admin_view, vol.id, "3.43", metadata={"tier": "gold"})
    url = f"/v3/backups/{backup_id}"
    for body, says in (({"restore": {"volume_id": "v"}}, "'v' is not a 'uuid'"),
                       ({"restore": {"volume_id": vol.id, "force": True}},
                        "'force' were unexpected"),
                       ({"restore": {"name": 5}}, "field/attribute name"),
                       ({}, "'restore' is a required property"),
                       ({"restore": {"volume_id": small.id}},
                        "volume size 1 is too small to restore backup of size 2")):
        fault(api.call("POST", f"{url}/restore", body), 400, "badRequest", says)
    fault(api.call("POST", f"{url}/restore", {"restore": {"volume_id": UUID}}), 404,
          "itemNotFound", UUID)
    fault(api.call("POST", f"/v3/backups/{UUID}/restore", {"restore": {}}), 404,
          "itemNotFound", f"Backup {UUID} could not be found.")
    assert volume_status(admin_view, small.id, "available").status == "available"

    # updates from 3.9, metadata from 3.43 (replaced); the summary back
    fault(api.call("PUT", url, {"backup": {"name": "x"}}), 404, "itemNotFound", "3.9")
    fault(api.call("PUT", url, {"backup": {"metadata": {}}}, "3.9"), 400, "badRequest",
          "'metadata' were unexpected")
    fault(api.call("PUT", url, {"backup": {"status": "error"}}, "3.43"), 400, "badRequest",
          "'status' were unexpected")
    updated = api.call("PUT", url, {"backup": {"name": " renamed ", "metadata": {"a": "b"}}},
                       "3.43")
    assert updated.status == 200, updated.body
    assert updated.body["backup"]["name"] == "renamed" and set(updated.body["backup"]) == {
        "id", "name", "links"}
    stored = admin_view.show_backup(backup_id)
    assert (stored.name, stored.metadata) == ("renamed", {"a": "b"})
    cleared = api.call("PUT", url, {"backup": {"description": None, "name": None}}, "3.9")
    assert cleared.status == 200 and cleared.body["backup"]["name"] is None
    stored = admin_view.show_backup(backup_id)
    assert (stored.name, stored.description) == (None, None)  # null, as Cinder's

    # actions, and the records' export and import: an admin's
    fault(api.call("POST", f"{url}/action", {"os-reset_status": {"status": "error"}}), 403,
          "forbidden", "backup_admin_actions:reset_status")
    fault(api.call("POST", f"{url}/action", {"os-force_delete": {}}), 403, "forbidden",
          "backup_admin_actions:force_delete")
    fault(api.call("POST", f"{url}/action", {"os-extend": {}}), 400, "badRequest",
          "There is no such action: os-extend")
    fault(api.call("GET", f"{url}/export_record"), 403, "forbidden", "backup:export-import")
    fault(api.call("POST", "/v3/backups/import_record", {"backup-record": {
        "backup_service": "cinder.backup.drivers.posix", "backup_url": "eyJ9"}}), 403,
          "forbidden", "backup:backup-import")
    exported = admin_api.call("GET", f"{url}/export_record")
    assert exported.status == 200 and set(exported.body) == {"backup-record"}
    record = exported.body["backup-record"]
    assert record["backup_service"] == "cinderblock.storage_node.backup_repository"
    assert json.loads(base64.b64decode(record["backup_url"]))["id"] == backup_id
    fault(admin_api.call("POST", "/v3/backups/import_record", {"backup-record": record}),
          400, "badRequest", "Backup already exists in database.")
    for body, words in (({"backup-record": {"backup_service": "x"}}, "'backup_url' is a "
                         "required property"),
                        ({"backup-record": {**record, "backup_url": ""}}, "is too short"),
                        ({"backup-record": {**record, "backup_url": "%%%"}}, "not base64"),
                        ({"backup-record": {**record, "size": 1}}, "'size' were unexpected"),
                        ({"backup-record": {**record, "backup_service": "posix"}},
                         "is not this cluster's")):
        fault(admin_api.call("POST", "/v3/backups/import_record", body), 400, "badRequest",
              words)
    assert admin_view.show_backup(backup_id).status == "available"

    # another project's backup is not found, whatever is asked of it
    stranger = Api(rest_cluster.rest_url, f"x-{project}:x-{project}")
    asked: tuple[tuple[str, str, Any], ...] = (
        ("GET", url, None), ("DELETE", url, None),
        ("POST", f"{url}/restore", {"restore": {}}), ("PUT", url, {"backup": {"name": "mine"}}))
    for method, path, body in asked:
        fault(stranger.call(method, path, body, "3.9"), 404, "itemNotFound",
              f"Backup {backup_id} could not be found.")
    assert api.call("DELETE", url).status == 202
    backup_gone(admin_view, backup_id)


def test_an_admin_resets_a_backup_s_status_and_force_deletes_it(
    api: Api, admin_api: Api, admin_view: SyncClient,
) -> None:
    """``cinder backup-reset-state`` and ``cinder backup-delete --force``: an admin's;
    a reset to anything but available or error is Cinder's 400; the force delete is the
    delete (a backup its node is working on is refused with the delete's words)."""
    vol = made_volume(api, admin_view)
    backup_id = made_backup(api, admin_view, vol.id)
    action = f"/v3/backups/{backup_id}/action"
    fault(admin_api.call("POST", action, {"os-reset_status": {"status": "creating"}}), 400,
          "badRequest", "Backup status: creating is invalid, valid statuses are: "
                        "['available', 'error']")
    fault(admin_api.call("POST", action, {"os-reset_status": {}}), 400, "badRequest",
          "'status' is a required property")
    fault(admin_api.call("POST", action, {"os-reset_status": {"status": "error",
                                                              "force": True}}),
          400, "badRequest", "'force' were unexpected")
    done = admin_api.call("POST", action, {"os-reset_status": {"status": "ERROR"}})
    assert done.status == 202, done.body
    assert admin_view.show_backup(backup_id).status == "error"
    fault(api.call("POST", f"/v3/backups/{backup_id}/restore", {"restore": {}}), 400,
          "badRequest", "Backup status must be available")
    assert admin_api.call("POST", action, {"os-reset_status": {"status": "available"}}
                          ).status == 202
    assert admin_view.show_backup(backup_id).status == "available"
    fault(admin_api.call("POST", f"/v3/backups/{UUID}/action", {"os-force_delete": {}}),
          404, "itemNotFound", UUID)
    assert admin_api.call("POST", action, {"os-force_delete": None}).status == 202
    backup_gone(admin_view, backup_id)


def test_backup_quota_is_kept_shown_in_quota_sets_and_limits_and_refused_with_413(
    api: Api, admin_api: Api, admin_view: SyncClient, project: str,
) -> None:
    """``backups`` and ``backup_gigabytes`` are quota of their own (they had been shown
    as 0, kept nowhere): set, shown with their use, in the limits, and a backup over
    them is Cinder's 413 with ``Retry-After``; a restore into a new volume over the
    volumes' quota is too."""
    vol = made_volume(api, admin_view, size=2)
    assert admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {
        "backups": 1, "backup_gigabytes": 5}}).status == 200
    backup_id = made_backup(api, admin_view, vol.id)
    quota = api.call("GET", f"/v3/os-quota-sets/{project}?usage=true").body["quota_set"]
    assert quota["backups"] == {"limit": 1, "in_use": 1, "reserved": 0, "allocated": 0}
    assert quota["backup_gigabytes"] == {"limit": 5, "in_use": 2, "reserved": 0,
                                         "allocated": 0}
    assert quota["groups"] == {"limit": 10, "in_use": 0, "reserved": 0, "allocated": 0}
    assert quota["gigabytes"]["in_use"] == 2  # a backup's GiB are not the volumes'
    absolute = api.call("GET", "/v3/limits").body["limits"]["absolute"]
    assert (absolute["maxTotalBackups"], absolute["maxTotalBackupGigabytes"],
            absolute["totalBackupsUsed"], absolute["totalBackupGigabytesUsed"]) == (1, 5, 1, 2)
    over = api.call("POST", "/v3/backups", {"backup": {"volume_id": vol.id}})
    fault(over, 413, "overLimit",
          "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded")
    assert over.headers["retry-after"] == "0"
    admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {
        "backups": 5, "backup_gigabytes": 3}})
    fault(api.call("POST", "/v3/backups", {"backup": {"volume_id": vol.id}}), 413,
          "overLimit", "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds "
                       "allowed Backup gigabytes quota. Requested 2G, quota is 3G and 2G "
                       "has been consumed.")
    assert volume_status(admin_view, vol.id, "available").status == "available"
    admin_api.call("PUT", f"/v3/os-quota-sets/{project}", {"quota_set": {"volumes": 1}})
    restore = api.call("POST", f"/v3/backups/{backup_id}/restore", {"restore": {}})
    fault(restore, 413, "overLimit", "VolumeLimitExceeded")
    assert restore.headers["retry-after"] == "0"
    defaults = admin_api.call("GET", f"/v3/os-quota-sets/{project}/defaults"
                              ).body["quota_set"]
    assert (defaults["backups"], defaults["backup_gigabytes"]) == (10, 1000)
    same = admin_api.call("PUT", "/v3/os-quota-class-sets/default", {"quota_class_set": {
        "backups": 10, "backup_gigabytes": 1000}})
    assert same.status == 200 and same.body["quota_class_set"]["backups"] == 10
    assert api.call("DELETE", f"/v3/backups/{backup_id}").status == 202
    backup_gone(admin_view, backup_id)
    wait_for(lambda: admin_view.show_quota(project).in_use.get("backup_gigabytes") == 0)


def test_group_types_answer_as_cinders_and_are_an_admins_to_change(
    api: Api, admin_api: Api,
) -> None:
    """``/group_types`` as Cinder's 3.11 ``group_types`` and ``group_specs``: not there
    before 3.11 (404); the create's 202 and view; a name taken (409); bodies Cinder's
    schema refuses (400); specs set, shown, unset; a member sees the public ones without
    specs and may change none (403); ``default`` is not found."""
    v = "3.11"
    fault(admin_api.call("GET", "/v3/group_types", version="3.10"), 404, "itemNotFound",
          "need 3.11")
    name = f"gt-{uuid.uuid4().hex[:8]}"
    made = admin_api.call("POST", "/v3/group_types", {"group_type": {
        "name": name, "description": "d", "group_specs": {"a": "1"}}}, version=v)
    assert made.status == 202, made.body
    gt = made.body["group_type"]
    assert gt == {"id": gt["id"], "name": name, "description": "d", "is_public": True,
                  "group_specs": {"a": "1"}}
    fault(admin_api.call("POST", "/v3/group_types", {"group_type": {"name": name}},
                         version=v), 409, "conflictingRequest", "already exists")
    for bad, says in (({"group_type": {}}, "'name' is a required property"),
                      ({"group_type": {"name": "x", "is_public": "maybe"}}, "boolean"),
                      ({"group_type": {"name": "x", "extra": 1}}, "extra"),
                      ({"group_type": {"name": "x", "group_specs": [1]}}, "object")):
        fault(admin_api.call("POST", "/v3/group_types", bad, version=v), 400, "badRequest",
              says)
    fault(api.call("POST", "/v3/group_types", {"group_type": {"name": "mine"}},
                   version=v), 403, "forbidden", "group:group_types:create")
    base = f"/v3/group_types/{gt['id']}"
    seen = api.call("GET", base, version=v)
    assert seen.body["group_type"] == {"id": gt["id"], "name": name, "description": "d",
                                       "is_public": True}
    assert admin_api.call("POST", f"{base}/group_specs", {"group_specs": {"b": "2"}},
                          version=v).status == 202
    assert admin_api.call("PUT", f"{base}/group_specs/c", {"c": "3"}, version=v).body == \
        {"c": "3"}
    fault(admin_api.call("PUT", f"{base}/group_specs/c", {"d": "3"}, version=v), 400,
          "badRequest", "Request body and URI mismatch")
    assert admin_api.call("GET", f"{base}/group_specs", version=v).body == {
        "group_specs": {"a": "1", "b": "2", "c": "3"}}
    assert admin_api.call("DELETE", f"{base}/group_specs/a", version=v).status == 202
    fault(admin_api.call("GET", f"{base}/group_specs/a", version=v), 404, "itemNotFound",
          "has no specs with key a")
    fault(api.call("GET", f"{base}/group_specs", version=v), 403, "forbidden",
          "group:group_types_specs")
    fault(admin_api.call("PUT", base, {"group_type": {}}, version=v), 400, "badRequest",
          "Specify group type name, description")
    hidden = admin_api.call("PUT", base, {"group_type": {"is_public": False}}, version=v)
    assert hidden.body["group_type"]["is_public"] is False
    assert gt["id"] not in {t["id"] for t in api.call("GET", "/v3/group_types",
                                                       version=v).body["group_types"]}
    private = admin_api.call("GET", "/v3/group_types?is_public=false", version=v).body
    assert gt["id"] in {t["id"] for t in private["group_types"]}
    fault(api.call("GET", "/v3/group_types/default", version=v), 404, "itemNotFound",
          "Default group type can not be found")
    assert admin_api.call("DELETE", base, version=v).status == 202
    fault(admin_api.call("GET", base, version=v), 404, "itemNotFound", "could not be found")


def test_groups_answer_as_cinders(api: Api, admin_api: Api, admin_view: SyncClient) -> None:
    """``/groups`` as Cinder's 3.13: not there before (404); the create's 202 and summary;
    bodies Cinder's schema refuses (400); the detail view by microversion (3.14's
    snapshot and source ids, 3.25's ``list_volume``); update's 202; a reset by a member
    (403) and before 3.20 (404); the delete action's 202, and refused while volumes
    are in the group."""
    gtype = admin_view.create_group_type(f"g-{uuid.uuid4().hex[:8]}")
    fault(api.call("GET", "/v3/groups", version="3.12"), 404, "itemNotFound", "need 3.13")
    for bad, says in (({"group": {"volume_types": ["FCVolumeType"]}}, "group_type"),
                      ({"group": {"group_type": gtype.id}}, "volume_types"),
                      ({"group": {"group_type": gtype.id, "volume_types": []}}, "volume_types"),
                      ({"group": {"group_type": gtype.id, "volume_types": ["a", "a"]}},
                       "non-unique"),
                      ({"group": {"group_type": gtype.id, "volume_types": ["a"], "x": 1}},
                       "x")):
        fault(api.call("POST", "/v3/groups", bad, version="3.13"), 400, "badRequest", says)
    fault(api.call("POST", "/v3/groups", {"group": {
        "group_type": "nope", "volume_types": ["FCVolumeType"]}}, version="3.13"), 404,
        "itemNotFound", "Group type with id nope could not be found")
    made = api.call("POST", "/v3/groups", {"group": {
        "group_type": gtype.name, "volume_types": ["FCVolumeType"], "name": "g"}},
        version="3.13")
    assert made.status == 202 and set(made.body["group"]) == {"id", "name"}, made.body
    gid = made.body["group"]["id"]
    detail = api.call("GET", f"/v3/groups/{gid}", version="3.13").body["group"]
    assert (detail["status"], detail["group_type"], detail["name"]) == (
        "available", gtype.id, "g")
    assert "group_snapshot_id" not in detail and "volumes" not in detail
    newer = api.call("GET", f"/v3/groups/{gid}?list_volume=true", version="3.25").body
    assert (newer["group"]["group_snapshot_id"], newer["group"]["volumes"]) == (None, [])
    listed = api.call("GET", "/v3/groups", version="3.13").body["groups"]
    assert {"id": gid, "name": "g"} in listed
    assert len(api.call("GET", "/v3/groups?limit=1", version="3.13").body["groups"]) == 1
    assert api.call("GET", f"/v3/groups?marker={listed[-1]['id']}",
                    version="3.13").body["groups"] == []
    fault(api.call("GET", "/v3/groups?marker=nope", version="3.13"), 400, "badRequest",
          "Marker nope could not be found")
    vol = api.call("POST", "/v3/volumes", {"volume": {
        "size": 1, "volume_type": "FCVolumeType", "group_id": gid}}, version="3.13")
    assert vol.status == 202, vol.body
    vid = vol.body["volume"]["id"]
    volume_status(admin_view, vid, "available")
    shown = api.call("GET", f"/v3/volumes/{vid}", version="3.13").body["volume"]
    assert shown["group_id"] == gid
    assert api.call("PUT", f"/v3/groups/{gid}", {"group": {"description": "d"}},
                    version="3.13").status == 202
    fault(api.call("PUT", f"/v3/groups/{gid}", {"group": {}}, version="3.13"), 400,
          "badRequest", "is required")
    fault(api.call("POST", f"/v3/groups/{gid}/action", {"reset_status": {
        "status": "error"}}, version="3.20"), 403, "forbidden", "group:reset_status")
    fault(admin_api.call("POST", f"/v3/groups/{gid}/action", {"reset_status": {
        "status": "error"}}, version="3.19"), 404, "itemNotFound", "3.20")
    fault(api.call("POST", f"/v3/groups/{gid}/action", {"delete": {}}, version="3.13"), 400,
          "badRequest", "still contains volumes")
    fault(api.call("POST", f"/v3/groups/{gid}/action", {"explode": {}}, version="3.13"),
          400, "badRequest", "There is no such action: explode")
    assert api.call("POST", f"/v3/groups/{gid}/action", {"delete": {
        "delete-volumes": True}}, version="3.13").status == 202
    gone(admin_view, vid)
    # the group goes with its last volume, in the write after that volume's removal
    wait_for(lambda: api.call("GET", f"/v3/groups/{gid}", version="3.13").status == 404)
    fault(api.call("GET", f"/v3/groups/{gid}", version="3.13"), 404, "itemNotFound",
          "could not be found")
    admin_view.delete_group_type(gtype.id)


def test_group_snapshots_answer_as_cinders(api: Api, admin_view: SyncClient) -> None:
    """``/group_snapshots`` as Cinder's 3.14: not there before (404); a body without a
    group (400); the create's 202 and summary, the detail view, a member snapshot's
    ``group_snapshot_id``; a member's own delete refused (400); 3.19's reset action an
    admin's (a member's 403, before 3.19 a 404, another action a 400); the delete's
    202."""
    gtype = admin_view.create_group_type(f"gs-{uuid.uuid4().hex[:8]}")
    fault(api.call("GET", "/v3/group_snapshots", version="3.13"), 404, "itemNotFound",
          "need 3.14")
    fault(api.call("POST", "/v3/group_snapshots", {"group_snapshot": {"name": "x"}},
                   version="3.14"), 400, "badRequest", "group_id")
    fault(api.call("POST", "/v3/group_snapshots", {"group_snapshot": {"group_id": "nope"}},
                   version="3.14"), 404, "itemNotFound", "Group nope could not be found")
    gid = api.call("POST", "/v3/groups", {"group": {
        "group_type": gtype.id, "volume_types": ["FCVolumeType"]}},
        version="3.14").body["group"]["id"]
    vid = api.call("POST", "/v3/volumes", {"volume": {
        "size": 1, "volume_type": "FCVolumeType", "group_id": gid}},
        version="3.14").body["volume"]["id"]
    volume_status(admin_view, vid, "available")
    made = api.call("POST", "/v3/group_snapshots", {"group_snapshot": {
        "group_id": gid, "name": "n"}}, version="3.14")
    assert made.status == 202 and made.body["group_snapshot"]["name"] == "n", made.body
    gs_id = made.body["group_snapshot"]["id"]
    wait_for(lambda: admin_view.show_group_snapshot(gs_id).status == "available")
    shown = api.call("GET", f"/v3/group_snapshots/{gs_id}", version="3.14").body
    assert (shown["group_snapshot"]["group_id"], shown["group_snapshot"]["status"]) == (
        gid, "available")
    detail = api.call("GET", "/v3/group_snapshots/detail", version="3.14").body
    assert gs_id in {g["id"] for g in detail["group_snapshots"]}
    (member,) = admin_view.show_group_snapshot(gs_id).snapshots
    snap = api.call("GET", f"/v3/snapshots/{member}", version="3.14").body["snapshot"]
    assert snap["group_snapshot_id"] == gs_id
    fault(api.call("DELETE", f"/v3/snapshots/{member}", version="3.14"), 400, "badRequest",
          "part of group snapshot")
    reset = {"reset_status": {"status": "error"}}
    fault(api.call("POST", f"/v3/group_snapshots/{gs_id}/action", reset, version="3.18"),
          404, "itemNotFound", "need 3.19")
    fault(api.call("POST", f"/v3/group_snapshots/{gs_id}/action", reset, version="3.19"),
          403, "forbidden", "group_snapshot:reset_status")  # an admin's
    fault(api.call("POST", f"/v3/group_snapshots/{gs_id}/action", {"delete": {}},
                   version="3.19"), 400, "badRequest", "a group snapshot takes reset_status")
    assert api.call("DELETE", f"/v3/group_snapshots/{gs_id}", version="3.14").status == 202
    wait_for(lambda: not admin_view.list_group_snapshots(all_projects=True, group_id=gid))
    assert api.call("POST", f"/v3/groups/{gid}/action", {"delete": {
        "delete-volumes": True}}, version="3.14").status == 202
    gone(admin_view, vid)
    wait_for(lambda: gid not in {g.id for g in admin_view.list_groups(True)})
    admin_view.delete_group_type(gtype.id)

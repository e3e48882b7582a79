"""Cinder's work cleanup at the REST front, as plain code: the body checked as Cinder's
schema checks it, and the services the filters match."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cinderblock.actors.rest.errors import HttpFault
from cinderblock.actors.rest.workers import (
    CleanupRequest,
    Service,
    host_matches,
    matching,
    parse_request,
    services_of,
    view,
)
from cinderblock.protocol.messages.scheduling import Backend

SCHEDULER = Service("cinder-scheduler", "scheduler", True, False)
NODE_1 = Service("cinder-volume", "node-1@file", True, False)
NODE_2 = Service("cinder-volume", "node-2@file", False, True)  # down, disabled
ALL = [SCHEDULER, NODE_1, NODE_2]


def refused(body: Any) -> str:
    with pytest.raises(HttpFault) as caught:
        parse_request(body)
    assert caught.value.status == 400
    return str(caught.value)


def test_no_body_or_an_empty_one_asks_for_the_services_that_are_down() -> None:
    assert parse_request(None) == parse_request({}) == CleanupRequest(is_up=False)
    assert matching(ALL, parse_request({})) == [NODE_2]


def test_each_filter_is_taken_as_cinder_takes_it() -> None:
    rid = str(uuid.uuid4())
    req = parse_request({"host": "node-1", "is_up": "True", "disabled": "no",
                         "binary": "cinder-volume", "resource_id": rid,
                         "resource_type": "snapshot", "service_id": "12"})
    assert req == CleanupRequest(12, None, "node-1", "cinder-volume", True, False, rid,
                                 "Snapshot")
    assert req.located and not CleanupRequest(resource_id=rid).located
    assert parse_request({"is_up": None, "host": None}) == CleanupRequest()


@pytest.mark.parametrize(("body", "words"), [
    ([], "JSON object"),
    ({"stray": 1}, "'stray' was unexpected"),
    ({"is_up": "maybe"}, "is_up"),
    ({"binary": "cinder-backup"}, "binary"),
    ({"host": ""}, "host"),
    ({"host": "a b"}, "host"),
    ({"cluster_name": 3}, "cluster_name"),
    ({"service_id": "1x"}, "service_id"),
    ({"service_id": True}, "service_id"),
    ({"service_id": "123456789012"}, "service_id"),
    ({"resource_type": "Backup"}, "Resource type Backup not valid"),
    ({"resource_id": "not-a-uuid"}, "resource_id"),
])
def test_a_body_cinders_schema_refuses_is_a_400_naming_the_field(body: Any, words: str) -> None:
    assert words in refused(body)


def test_the_filters_match_services_together() -> None:
    up = CleanupRequest(is_up=True)
    assert matching(ALL, up) == [SCHEDULER, NODE_1]
    assert matching(ALL, CleanupRequest(is_up=True, binary="cinder-volume")) == [NODE_1]
    assert matching(ALL, CleanupRequest(is_up=True, host="node-1")) == [NODE_1]
    assert matching(ALL, CleanupRequest(is_up=False, disabled=True)) == [NODE_2]
    assert matching(ALL, CleanupRequest(is_up=True, disabled=True)) == []
    assert matching(ALL, CleanupRequest(is_up=True, cluster_name="c1")) == []  # no clusters
    assert matching(ALL, CleanupRequest(is_up=True, service_id=NODE_1.id)) == [NODE_1]


def test_a_host_matches_as_cinders_does_at_each_level() -> None:
    assert host_matches("node-1@file", "node-1")
    assert host_matches("node-1@file", "node-1@file")
    assert host_matches("node-1@file#file", "node-1@file")
    assert not host_matches("node-1@file", "node-1@file#file")
    assert not host_matches("node-10@file", "node-1")
    assert not host_matches("node-1@file", "node")


def test_a_service_has_a_stable_id_and_names_the_node_it_cleans() -> None:
    backends = [Backend("node-1@file", "node-1", "nova", 10, 10, 0, 0, up=True),
                Backend("node-2@file", "node-2", "nova", 10, 10, 0, 0, up=False)]
    found = services_of(backends, scheduler_up=True)
    assert [(s.binary, s.host, s.up, s.node) for s in found] == [
        ("cinder-scheduler", "scheduler", True, None),
        ("cinder-volume", "node-1@file", True, "node-1"),
        ("cinder-volume", "node-2@file", False, "node-2")]
    assert [s.id for s in found] == [s.id for s in services_of(backends, False)]
    assert len({s.id for s in found}) == 3 and all(0 < s.id < 2**31 for s in found)
    assert view(found[1]) == {"id": found[1].id, "host": "node-1@file",
                              "binary": "cinder-volume", "cluster_name": None}

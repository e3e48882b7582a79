"""Connector and attachment-request checks (pure code: no sockets, no actors)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cinderblock.actors.gateway.attachment_request import (
    attach_mode,
    check_connector,
    check_instance,
    check_mode,
)
from cinderblock.protocol.states import (
    AttachmentStatus,
    VolumeStatus,
    check_attachment_move,
    volume_status_for,
)
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

A, V = AttachmentStatus, VolumeStatus
NOVA_CONNECTOR = {
    "platform": "x86_64", "os_type": "linux", "ip": "192.0.2.10", "host": "compute-1",
    "multipath": False, "initiator": "iqn.1993-08.org.debian:01:abc", "do_local_attach": False,
    "system uuid": "4c4c4544-0051", "uuid": "c0ffee00-0000", "mode": "rw",
    "wwpns": ["50014380186af83c"], "nqn": "nqn.2014-08.org.nvmexpress:uuid:1",
}


def test_a_connector_as_nova_sends_it_is_accepted_whole() -> None:
    connector = check_connector(dict(NOVA_CONNECTOR))

    assert connector.host == "compute-1" and connector.mode == "rw"
    assert connector.fields == NOVA_CONNECTOR


def test_the_smallest_connector_names_only_its_host() -> None:
    connector = check_connector({"host": "h"})
    assert (connector.host, connector.mode, connector.fields) == ("h", None, {"host": "h"})


def test_a_connector_key_sent_as_null_counts_as_absent_as_cinderclient_sends_them() -> None:
    connector = check_connector({"host": "h", "mountpoint": None, "ip": None,
                                 "initiator": "iqn.x"})
    assert connector.fields == {"host": "h", "initiator": "iqn.x"}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (None, "a connector is required"),
        (["host", "h"], "connector must be a map, got list"),
        ("host=h", "connector must be a map, got str"),
        ({}, "'host' is required"),
        ({"host": "h", "mode": "rwx"}, "'mode' must be one of rw, ro, got 'rwx'"),
        ({"host": "h", "mode": None}, "'mode' must be one of rw, ro"),
        ({"host": "h" * 256}, "'host' must be 1-255 characters, got 256"),
        ({"host": ""}, "'host' must be 1-255 characters, got 0"),
        ({"host": "h", "initiator": "i" * 1000}, "'initiator' must be 1-255 characters"),
        ({"host": 7}, "'host' must be a string, got int"),
        ({"host": "h", "multipath": "yes"}, "'multipath' must be true or false, got str"),
        ({"host": "h", "ip": "not-an-ip"}, "'ip' must be an IP address"),
        ({"host": "h", "wwpns": "5001"}, "'wwpns' must be a list of at most 32 strings"),
        ({"host": "h", "wwpns": ["a"] * 33}, "'wwpns' must be a list of at most 32 strings"),
        ({"host": "h", "wwpns": ["ok", 5]}, "'wwpns[1]' must be a string, got int"),
        ({"host": "h", "password": "x"}, "'password' is not a connector key"),
        ({"host": "h", 5: "x"}, "'5' is not a connector key"),
    ],
)
def test_a_bad_connector_is_refused_naming_the_key_and_the_rule(raw: Any, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_connector(raw)
    assert says in err.value.message
    assert err.value.details["field"] == "connector"


def test_ipv6_addresses_are_accepted() -> None:
    assert check_connector({"host": "h", "ip": "2001:db8::1"}).fields["ip"] == "2001:db8::1"


def test_the_export_mode_is_the_attachments_else_the_connectors_else_read_write() -> None:
    assert attach_mode(None, check_connector({"host": "h"})) == "rw"
    assert attach_mode(None, check_connector({"host": "h", "mode": "ro"})) == "ro"
    assert attach_mode("ro", check_connector({"host": "h"})) == "ro"
    assert attach_mode("ro", check_connector({"host": "h", "mode": "ro"})) == "ro"
    with pytest.raises(InvalidInput, match="contradicts the attachment's mode ro"):
        attach_mode("ro", check_connector({"host": "h", "mode": "rw"}))


def test_instance_ids_and_modes_of_a_create_are_checked() -> None:
    assert check_instance(None) is None and check_instance("vm-1") == "vm-1"
    assert check_mode(None) is None and check_mode("ro") == "ro"
    for bad in ("", "x" * 256):
        with pytest.raises(InvalidInput, match="instance id"):
            check_instance(bad)
    with pytest.raises(InvalidInput, match="mode must be one of rw, ro"):
        check_mode("rx")


# ---- the attachment state machine ------------------------------------------------
def test_an_attachment_goes_reserved_attaching_attached_detaching_detached() -> None:
    path = [A.RESERVED, A.ATTACHING, A.ATTACHED, A.DETACHING, A.DETACHED]
    for old, new in itertools.pairwise(path):
        check_attachment_move(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [(A.RESERVED, A.ATTACHED), (A.ATTACHED, A.ATTACHING), (A.DETACHED, A.RESERVED),
     (A.ATTACHED, A.RESERVED), (A.ERROR_DETACHING, A.ATTACHED)],
)
def test_moves_outside_the_table_are_invalid_state(
    old: AttachmentStatus, new: AttachmentStatus
) -> None:
    with pytest.raises(InvalidState, match=f"cannot go from {old.value} to {new.value}"):
        check_attachment_move(old, new)


@pytest.mark.parametrize(
    ("attachments", "status"),
    [
        ([], V.AVAILABLE),
        ([A.RESERVED], V.RESERVED),
        ([A.RESERVED, A.ATTACHING], V.ATTACHING),
        ([A.RESERVED, A.ATTACHING, A.ATTACHED], V.IN_USE),
        ([A.ERROR_DETACHING], V.IN_USE),
    ],
)
def test_a_volumes_status_follows_its_attachments(
    attachments: list[AttachmentStatus], status: VolumeStatus
) -> None:
    assert volume_status_for(attachments) is status

"""The pure access rules: who connects where, who sends which op, who hears which
events; the users file; key files; a reply settles only the call to its sender."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import zmq

from cinderblock.actors.runtime.config import embedded
from cinderblock.actors.runtime.keyring import add_user, list_users, provision, remove_user
from cinderblock.protocol.messages.ops import OPS, SENDERS
from cinderblock.protocol.wire.access import (
    DOMAINS,
    ROLES,
    Principal,
    UsersFileError,
    admits,
    event_topic,
    may_send,
    may_subscribe,
    parse_users,
)
from cinderblock.protocol.wire.codec import Envelope
from cinderblock.protocol.wire.keys import KeyFileError, load_secret, make_key, secret_path
from cinderblock.protocol.wire.rpc import Calls

MEMBER = Principal("alice", "p1", frozenset({"member"}))
ADMIN = Principal("root", "admin", frozenset({"admin"}))
FRONT = Principal("rest", "svc", frozenset({"front"}))
MONITOR = Principal("prom", "svc", frozenset({"monitor"}))
NODE = Principal("node-1", "", frozenset({"node"}))
GATEWAY = Principal("gateway", "", frozenset({"gateway"}))
SCHEDULER = Principal("scheduler", "", frozenset({"scheduler"}))
KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


# ---- sockets ----------------------------------------------------------------------
def test_users_reach_only_the_gateway_and_the_event_subscriber_side() -> None:
    for user in (MEMBER, ADMIN, FRONT, MONITOR):
        assert {d for d in DOMAINS if admits(d, user)} == {"gateway", "events"}


def test_actors_reach_only_the_sockets_they_need() -> None:
    assert {d for d in DOMAINS if admits(d, NODE)} == {"gateway", "scheduler", "stats",
                                                      "events_in"}
    assert {d for d in DOMAINS if admits(d, GATEWAY)} == {"quota", "scheduler", "events_in"}
    assert {d for d in DOMAINS if admits(d, SCHEDULER)} == {"events_in"}


def test_an_unknown_domain_admits_nobody() -> None:
    assert not admits("nbd", ADMIN)


# ---- ops --------------------------------------------------------------------------
def test_every_op_says_who_may_send_it_with_known_roles() -> None:
    assert set(SENDERS) == set(OPS)
    assert all(roles and roles <= ROLES for roles in SENDERS.values())


def test_a_client_may_send_no_node_only_or_internal_op() -> None:
    internal = {op for op in OPS if op.startswith(("node.", "quota.reserve", "quota.apply",
                                                   "quota.rollback_abandoned",
                                                   "schedule.", "quota.sync_usage"))}
    internal |= {"volume.update", "volume.deleted", "volume.extended", "volume.reverted",
                 "snapshot.update", "snapshot.deleted"}
    for user in (MEMBER, ADMIN, FRONT, MONITOR):
        assert {op for op in internal if may_send(SENDERS[op], user)} == set()


def test_a_node_cannot_create_volumes_or_touch_quotas() -> None:
    assert not may_send(SENDERS["volume.create"], NODE)
    assert not any(may_send(SENDERS[op], NODE) for op in OPS if op.startswith("quota."))
    assert may_send(SENDERS["volume.update"], NODE)
    assert may_send(SENDERS["schedule.create"], NODE)  # a failed create is rescheduled


def test_quota_ops_come_from_the_gateway_alone_and_node_ops_from_gateway_or_scheduler() -> None:
    for op in ("quota.reserve", "quota.apply", "quota.rollback_abandoned",
               "quota.sync_usage"):
        assert SENDERS[op] == {"gateway"}
    assert SENDERS["node.create_volume"] == {"gateway", "scheduler"}


def test_a_monitor_reads_but_changes_nothing() -> None:
    readable = {op for op in OPS if may_send(SENDERS[op], MONITOR)}
    assert "volume.list" in readable and "flow.history" in readable
    assert not readable & {"volume.create", "volume.delete", "quota.set", "type.create",
                           "type.update", "volume.revert", "volume.retype", "attachment.create",
                           "snapshot.create", "snapshot.modify"}


# ---- events -----------------------------------------------------------------------
def test_a_member_subscribes_only_inside_its_project() -> None:
    assert may_subscribe(MEMBER, event_topic("p1"))
    assert not may_subscribe(MEMBER, b"")
    assert not may_subscribe(MEMBER, b"p")  # a prefix of p1/ and of p10/, p2/...
    assert not may_subscribe(MEMBER, event_topic("p10"))
    assert not may_subscribe(MEMBER, event_topic(""))  # the cluster's own events


def test_admins_and_monitors_hear_everything_services_without_them_nothing() -> None:
    for principal in (ADMIN, MONITOR):
        assert may_subscribe(principal, b"") and may_subscribe(principal, event_topic("p1"))
    assert not may_subscribe(FRONT, event_topic("svc"))
    assert not may_subscribe(NODE, b"")


# ---- the users file -------------------------------------------------------------------
def test_the_users_file_reads_keys_names_projects_and_roles() -> None:
    users = parse_users(f"# comment\n\n{KEY} alice p1 member,admin\n")
    assert [(u.name, u.project, u.roles) for u in users.values()] == [
        ("alice", "p1", ("member", "admin"))]


@pytest.mark.parametrize(("line", "mentions"), [
    ("short alice p1 member", "40 z85"),
    (f"{KEY} alice p1", "expected"),
    (f"{KEY} alice p1 root", "roles"),
    (f"{KEY} alice p1 node", "roles"),  # an actor's role is no user's
    (f"{KEY} al/ice p1 member", "user"),
    (f"{KEY} alice ../p member", "project"),
])
def test_a_bad_users_line_is_refused_naming_the_line_and_field(line: str, mentions: str) -> None:
    with pytest.raises(UsersFileError, match=mentions) as caught:
        parse_users(f"# header\n{line}\n", "users")
    assert "users line 2" in str(caught.value)


def test_a_user_or_key_listed_twice_is_refused() -> None:
    with pytest.raises(UsersFileError, match="twice"):
        parse_users(f"{KEY} alice p1 member\n{KEY} bob p2 member\n")


# ---- key files and users on disk ----------------------------------------------------
def test_a_key_pair_is_made_private_and_never_replaced(tmp_path: Path) -> None:
    pair = make_key(tmp_path, "alice")
    secret = secret_path(tmp_path, "alice")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert load_secret(secret) == pair
    with pytest.raises(KeyFileError, match="already exists"):
        make_key(tmp_path, "alice")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_provision_makes_every_actor_and_the_default_users_once(tmp_path: Path) -> None:
    cfg = embedded(tmp_path)
    made = provision(cfg)
    assert set(made) == {"gateway", "quota", "scheduler", "node-1", "node-2", "admin", "demo",
                         "rest", "exporter"}
    assert provision(cfg) == []
    assert [(u.name, u.project, u.roles) for u in list_users(tmp_path)] == [
        ("admin", "admin", ("admin",)), ("demo", "demo", ("member",)),
        ("exporter", "services", ("monitor",)), ("rest", "services", ("front",))]


def test_users_are_added_and_removed_and_actor_names_are_not_theirs(tmp_path: Path) -> None:
    provision(embedded(tmp_path))
    remove_user(tmp_path, "rest")
    add_user(tmp_path, "rest", "svc", ("front",))
    with pytest.raises(UsersFileError, match="already exists"):
        add_user(tmp_path, "rest", "svc", ("front",))
    with pytest.raises(UsersFileError, match="actor"):
        add_user(tmp_path, "node-1", "p", ("member",), reserved={"node-1": "node"})
    remove_user(tmp_path, "rest")
    assert [u.name for u in list_users(tmp_path)] == ["admin", "demo", "exporter"]
    with pytest.raises(UsersFileError, match="no user"):
        remove_user(tmp_path, "rest")


# ---- replies --------------------------------------------------------------------------
async def test_a_reply_settles_a_call_only_from_the_peer_it_went_to() -> None:
    calls = Calls()
    fut = calls.start(7, "quota.reserve", 5.0, peer=("link", "quota"))
    forged = Envelope("rep", 1, "quota.reserve", None, None, 7,
                      {"code": "over_quota", "message": "forged", "details": {}})
    assert not calls.settle(forged, ("link", "mallory"))
    assert not fut.done() and len(calls) == 1
    assert calls.settle(Envelope("rep", 2, "quota.reserve", {"id": "r"}, None, 7),
                        ("link", "quota"))
    assert await asyncio.wait_for(fut, 1) == {"id": "r"}


def test_curve_keypairs_are_available() -> None:
    assert zmq.has("curve")

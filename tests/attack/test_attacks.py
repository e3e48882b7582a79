"""The attacks of issue 8, each by a hostile local process against a real cluster:
each fails, and the state it aimed at is the same afterwards."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from cinderblock.actors.runtime.keyring import add_user, remove_user, secret_key_file
from cinderblock.actors.runtime.trust import REFUSAL_LOG_S
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.messages.scheduling import BackendStatsMsg
from cinderblock.protocol.wire.codec import pack, unpack
from cinderblock.protocol.wire.keys import load_secret
from cinderblock.protocol.wire.schema import dump
from tests.attack.peers import Peer, server_key, stranger
from tests.conftest import E2ECluster, EventTap

FORGED = {"code": "over_quota", "message": "forged by the attacker", "details": {}}


def quota_state(cluster: E2ECluster, project: str) -> tuple[Any, ...]:
    with SyncClient(cluster.gateway, key=cluster.user_key("admin", admin=True),
                    timeout=10.0) as admin:
        q = admin.show_quota(project)
    return (q.limits, q.in_use, q.reserved)


def volume_state(cluster: E2ECluster, project: str) -> list[tuple[str, str, str | None]]:
    with SyncClient(cluster.gateway, key=cluster.user_key(project), timeout=10.0) as c:
        return sorted((v.id, v.status, v.host) for v in c.list_volumes())


def credentials(cluster: E2ECluster, server: str) -> dict[str, dict[str, Any]]:
    """The ways in that must all fail: plaintext, a key nobody listed, a user's key."""
    return {
        "no key": {},
        "unknown key": {"own": stranger(), "server": server_key(cluster.cfg.data_dir, server)},
        "a user's key": {"user_key": cluster.user_key("mallory")},
    }


# ---- forged replies ------------------------------------------------------------------
async def test_forged_replies_to_the_gateways_pending_calls_settle_nothing(
    cluster: E2ECluster, project: str,
) -> None:
    async with cluster.client("admin", admin=True) as admin:
        await admin.set_quota(project, volumes=40, gigabytes=100)
    ready, stop = threading.Event(), threading.Event()
    sent = [0]

    def flood() -> None:
        attacker = Peer(zmq.DEALER, cluster.gateway, user_key=cluster.user_key("mallory"))
        try:
            attacker.envelope("ping", {}, msg_id=1)
            now = attacker.reply()[2]  # the gateway's own message counter, as it stands
            ready.set()
            while not stop.is_set():
                for corr_id in range(now, now + 2000):
                    sent[0] += attacker.envelope("quota.reserve", None, kind="rep",
                                                 msg_id=corr_id, corr_id=corr_id, error=FORGED)
        finally:
            attacker.close()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        async with cluster.client(project) as victim:
            made = await asyncio.gather(*(victim.create_volume(1, wait=True)
                                          for _ in range(20)), return_exceptions=True)
    finally:
        stop.set()
        thread.join(10)

    assert sent[0] > 0
    assert [str(v) for v in made if isinstance(v, BaseException)] == []
    async with cluster.client("admin", admin=True) as admin:
        quota = await admin.show_quota(project)
    assert (quota.in_use["volumes"], quota.in_use["gigabytes"]) == (20, 20)
    assert all(n == 0 for n in quota.reserved.values())


# ---- a claimed role ------------------------------------------------------------------
def test_a_member_claiming_the_admin_role_and_another_project_gets_nothing(
    cluster: E2ECluster, project: str,
) -> None:
    with SyncClient(cluster.gateway, key=cluster.user_key(project), timeout=20.0) as victim:
        vol = victim.create_volume(1, wait=True)
    types_before = _type_names(cluster)
    quota_before, volumes_before = quota_state(cluster, project), volume_state(cluster, project)
    claimed = {"project_id": project, "user_id": "admin", "roles": ["admin", "member"],
               "request_id": f"req-{uuid.uuid4()}"}
    attacker = Peer(zmq.DEALER, cluster.gateway, user_key=cluster.user_key("mallory"))
    try:
        answers = {}
        for i, (op, body) in enumerate([
            ("volume.reset_state", {"volume_id": vol.id, "status": "error"}),
            ("type.create", {"name": "stolen"}),
            ("quota.set", {"project": project, "limits": {"volumes": 0}}),
            ("quota.sync", {"project": project}),
            ("volume.delete", {"volume_id": vol.id}),
            ("volume.extend", {"volume_id": vol.id, "new_size": 5}),
            ("volume.show", {"volume_id": vol.id}),
            ("snapshot.create", {"volume_id": vol.id}),
        ]):
            attacker.envelope(op, body, msg_id=i + 1, context=claimed)
            env = attacker.reply()
            answers[op] = env[7]["code"] if env[7] else "ok"
        attacker.envelope("volume.list", {"all_projects": True}, msg_id=99, context=claimed)
        listed = attacker.reply()[6]["volumes"]
    finally:
        attacker.close()

    assert answers == {
        "volume.reset_state": "forbidden", "type.create": "forbidden",
        "quota.set": "forbidden", "quota.sync": "forbidden",
        "volume.delete": "not_found", "volume.extend": "not_found",
        "volume.show": "not_found", "snapshot.create": "not_found"}
    assert listed == []
    assert _type_names(cluster) == types_before
    assert quota_state(cluster, project) == quota_before
    assert volume_state(cluster, project) == volumes_before


def test_a_client_may_send_no_internal_op(cluster: E2ECluster, project: str) -> None:
    with SyncClient(cluster.gateway, key=cluster.user_key(project), timeout=20.0) as victim:
        vol = victim.create_volume(1, wait=True)
    before = volume_state(cluster, project), quota_state(cluster, project)
    attacker = Peer(zmq.DEALER, cluster.gateway, user_key=cluster.user_key("mallory"))
    try:
        codes = {}
        for i, (op, body) in enumerate([
            ("volume.update", {"volume_id": vol.id, "status": "error", "reason": "spoofed"}),
            ("volume.deleted", {"volume_id": vol.id}),
            ("snapshot.update", {"snapshot_id": "x", "status": "error"}),
            ("quota.reserve", {"project": project, "deltas": {"volumes": 1000}}),
            ("quota.sync_usage", {"project": project, "in_use": {"volumes": 0}}),
            ("schedule.create", {"volume_id": vol.id, "size": 1}),
            ("node.delete_volume", {"volume_id": vol.id}),
            ("flow.recent", {}),
        ]):
            attacker.envelope(op, body, msg_id=i + 1)
            codes[op] = attacker.reply()[7]["code"]
        attacker.envelope("volume.update", {"volume_id": vol.id, "status": "deleting"},
                          kind="cast")
        assert attacker.nothing()
    finally:
        attacker.close()

    handled_here = {"volume.update", "volume.deleted", "snapshot.update", "flow.recent"}
    assert codes == {op: "forbidden" if op in handled_here else "invalid_input"  # not an op
                     for op in codes}  # of the gateway's, and no other socket admits users
    assert (volume_state(cluster, project), quota_state(cluster, project)) == before


def test_a_removed_user_is_refused_at_once(cluster: E2ECluster) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    key = cluster.user_key(name)
    peer = Peer(zmq.DEALER, cluster.gateway, user_key=key)
    try:
        peer.envelope("ping", {}, msg_id=1)
        assert peer.reply()[7] is None
        remove_user(Path(cluster.cfg.data_dir), name)
        time.sleep(1.5)  # the gateway looks at the users file every second
        peer.envelope("ping", {}, msg_id=2)
        assert peer.nothing()
    finally:
        peer.close()
    fresh = Peer(zmq.DEALER, cluster.gateway, user_key=key)
    try:
        fresh.envelope("ping", {}, msg_id=3)
        assert fresh.nothing()
    finally:
        fresh.close()


# ---- closed doors: the internal sockets --------------------------------------------------
@pytest.mark.parametrize("way", ["no key", "unknown key", "a user's key"])
def test_quota_and_scheduler_answer_nobody_but_the_actors(
    cluster: E2ECluster, project: str, way: str,
) -> None:
    before = quota_state(cluster, project)
    peers = [Peer(zmq.DEALER, cluster.cfg.quota, **credentials(cluster, "quota")[way]),
             Peer(zmq.DEALER, cluster.cfg.scheduler,
                  **credentials(cluster, "scheduler")[way])]
    try:
        quota, scheduler = peers
        quota.envelope("quota.reserve", {"project": project, "deltas": {"volumes": 1000}})
        quota.envelope("quota.set", {"project": project, "limits": {"volumes": 0}})
        quota.envelope("ping", {})
        scheduler.envelope("backend.list", {})
        scheduler.envelope("ping", {})
        assert quota.nothing() and scheduler.nothing()
    finally:
        for peer in peers:
            peer.close()
    assert quota_state(cluster, project) == before


@pytest.mark.parametrize("way", ["no key", "unknown key"])
def test_the_gateway_answers_no_stranger(cluster: E2ECluster, way: str) -> None:
    peer = Peer(zmq.DEALER, cluster.gateway, **credentials(cluster, "gateway")[way])
    try:
        peer.envelope("volume.create", {"size": 1})
        peer.envelope("ping", {})
        assert peer.nothing()
    finally:
        peer.close()


@pytest.mark.parametrize("way", ["no key", "unknown key", "a user's key", "another node's key"])
def test_zero_capacity_stats_from_anyone_but_the_node_itself_are_not_taken(
    cluster: E2ECluster, project: str, way: str,
) -> None:
    with SyncClient(cluster.gateway, key=cluster.user_key("admin", admin=True),
                    timeout=10.0) as admin:
        real = {b.backend: b for b in admin.list_backends()}["node-1@file"]
    fake = BackendStatsMsg(real.backend, real.host, real.availability_zone, 0.0, 0.0, 0.0, 0.0,
                           timestamp=time.time())
    creds = (credentials(cluster, "scheduler").get(way)
             or {"own": load_secret(Path(cluster.cfg.data_dir, "keys", "node-2.key_secret")),
                 "server": server_key(cluster.cfg.data_dir, "scheduler")})
    pub = Peer(zmq.PUB, cluster.cfg.stats, **creds)
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            pub.sock.send_multipart([b"stats", pack(dump(fake))])
            time.sleep(0.05)
    finally:
        pub.close()
    with SyncClient(cluster.gateway, key=cluster.user_key("admin", admin=True),
                    timeout=10.0) as admin:
        now = {b.backend: b for b in admin.list_backends()}["node-1@file"]
    assert now.total_capacity_gb == real.total_capacity_gb > 0


# ---- the event hub -----------------------------------------------------------------
def _subscriber(cluster: E2ECluster, topic: bytes, **creds: Any) -> Peer:
    sub = Peer(zmq.SUB, cluster.cfg.events, **creds)
    sub.sock.setsockopt(zmq.SUBSCRIBE, topic)
    return sub


def _received(sub: Peer, seconds: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.sock.poll(int(left * 1000) + 1):
            events.extend(unpack(sub.sock.recv_multipart()[-1]))
    return events


async def test_nobody_unauthenticated_hears_an_event_and_members_only_their_projects(
    cluster: E2ECluster, project: str,
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    strangers = {way: _subscriber(cluster, b"", **creds)
                 for way, creds in credentials(cluster, "gateway").items() if way != "a user's key"}
    member = cluster.user_key(project)
    nosy = [_subscriber(cluster, b"", user_key=member),
            _subscriber(cluster, f"{other}/".encode(), user_key=member),
            _subscriber(cluster, b"/", user_key=member)]
    own = _subscriber(cluster, f"{project}/".encode(), user_key=member)
    peers = [*strangers.values(), *nosy, own]
    try:
        async with EventTap(cluster) as tap:
            await asyncio.sleep(0.5)  # every subscription has reached the hub
            async with cluster.client(other) as them, cluster.client(project) as me:
                theirs = await them.create_volume(1, wait=True)
                mine = await me.create_volume(1, wait=True)
            await tap.wait_until(lambda evs: any(e.get("volume_id") == theirs.id
                                                 and e.get("status") == "available"
                                                 for e in evs))
            heard = {way: _received(sub, 0.5) for way, sub in strangers.items()}
            heard.update({f"member on {i}": _received(sub, 0.2) for i, sub in enumerate(nosy)})
            own_events = _received(own, 1.0)
    finally:
        for peer in peers:
            peer.close()

    assert {way: len(events) for way, events in heard.items() if events} == {}
    assert {e.get("volume_id") for e in own_events if e.get("volume_id")} == {mine.id}
    assert theirs.id in {e.get("volume_id") for e in tap.events}


@pytest.mark.parametrize("way", ["no key", "unknown key", "a user's key"])
async def test_only_actors_publish_events(cluster: E2ECluster, way: str) -> None:
    forged = [{"kind": "volume", "actor": "gateway", "ts": time.time(), "status": "error",
               "volume_id": f"forged-{uuid.uuid4()}", "project_id": "demo"}]
    async with EventTap(cluster) as tap:
        pub = Peer(zmq.XPUB, cluster.cfg.events_in, **credentials(cluster, "gateway")[way])
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                pub.sock.send_multipart([b"demo/", msgpack.packb(forged)])
                await asyncio.sleep(0.05)
        finally:
            pub.close()
        await asyncio.sleep(0.3)
    assert forged[0]["volume_id"] not in {e.get("volume_id") for e in tap.events}


def _type_names(cluster: E2ECluster) -> list[str]:
    with SyncClient(cluster.gateway, key=cluster.user_key(), timeout=10.0) as c:
        return sorted(t.name for t in c.list_types())


def test_a_storm_of_refused_connections_leaves_one_counted_line_not_one_per_attempt(
    cluster: E2ECluster,
) -> None:
    log = cluster.cfg.path("logs", "quota.log")
    lines_before, started = log.read_text().count("refused"), time.monotonic()
    peers = [Peer(zmq.DEALER, cluster.cfg.quota, **credentials(cluster, "quota")[way])
             for way in ("no key", "unknown key", "a user's key") for _ in range(20)]
    try:
        for peer in peers:
            peer.envelope("ping", {})
        assert peers[-1].nothing(1500)
    finally:
        for peer in peers:
            peer.close()
    text = log.read_text()
    periods = 1 + int((time.monotonic() - started) / REFUSAL_LOG_S)  # one line per period
    assert text.count("refused") - lines_before <= periods < 6
    assert "refused" in text  # counted, if not line by line


# ---- the one principal whose envelope context counts ------------------------------------
def test_a_front_acts_for_the_user_it_names_and_a_member_cannot(
    cluster: E2ECluster, project: str,
) -> None:
    data_dir = Path(cluster.cfg.data_dir)
    front_name = f"rest-{uuid.uuid4().hex[:6]}"
    add_user(data_dir, front_name, "services", ("front",))
    acting_for = {"project_id": project, "user_id": "bob", "roles": ["member"],
                  "request_id": f"req-{uuid.uuid4()}"}
    front = Peer(zmq.DEALER, cluster.gateway, user_key=secret_key_file(data_dir, front_name))
    try:
        front.envelope("volume.create", {"size": 1, "name": "via-front"}, context=acting_for)
        made = front.reply()
        front.envelope("volume.update", {"volume_id": made[6]["id"], "status": "error"},
                       msg_id=2, context=acting_for)
        refused = front.reply()
    finally:
        front.close()

    assert made[7] is None and made[6]["project_id"] == project
    assert refused[7]["code"] == "forbidden"  # a front's role is no node's
    with SyncClient(cluster.gateway, key=cluster.user_key(project), timeout=20.0) as member:
        vol = member.wait_for_status(made[6]["id"], "available")
        assert vol.name == "via-front"


async def test_a_refused_subscriber_that_leaves_does_not_silence_the_admitted_ones(
    cluster: E2ECluster, project: str,
) -> None:
    """libzmq hands the hub an unsubscription for every topic a leaving subscriber
    asked for, refused or not, with nothing to say whose: a member that asks for all
    events (refused) and leaves, again and again, must not switch the actors' events
    off under the admin's dashboard."""
    member = cluster.user_key(project)
    async with EventTap(cluster) as tap:
        for _ in range(3):
            nosy = _subscriber(cluster, b"", user_key=member)
            await asyncio.sleep(0.2)  # its subscription is read, and refused
            nosy.close()
        await asyncio.sleep(0.5)  # every leave has reached the hub
        await tap.caught_up(timeout=5)  # heartbeats still come from every actor

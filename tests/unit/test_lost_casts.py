"""Creates a dead scheduler may have taken with it (``actors/gateway/lost_casts.py``):
which the gateway remembers and sends again, and the node's fence, which drops the
dead scheduler's cast should it come after all, so that a create is made once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.lost_casts import ScheduleCasts, fenced_everywhere
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.groups import GroupSnapshotMember, NodeCreateGroupSnapshot
from cinderblock.protocol.messages.reconcile import NodeFenceCreates, NodeFenceReply
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.storage_node.lifecycle_flows import lifecycle_handlers
from cinderblock.storage_node.node import StorageNode
from tests.conftest import make_config

ME = Context("demo", "demo")


def request(volume_id: str, fence: str = "") -> ScheduleRequest:
    return ScheduleRequest(volume_id, "demo", 1, fence=fence)


# ---- the gateway's side: plain code --------------------------------------------------


def test_only_the_casts_made_before_the_loss_and_still_unplaced_are_sent_again() -> None:
    casts = ScheduleCasts()
    for n, at in ((1, 1.0), (2, 2.0), (3, 5.0)):
        casts.sent(request(f"v{n}"), ME, at)
    placed = {"v2"}
    again = casts.before(4.0, lambda v: v not in placed)
    assert [c.request.volume_id for c in again] == ["v1"]  # v3 was cast after the loss
    assert len(casts) == 2  # v2 is forgotten
    casts.prune(lambda v: False)
    assert len(casts) == 0


def test_a_scheduler_death_sends_again_none_of_the_copies_sent_to_their_node() -> None:
    """A copy or a manage a gateway started again sent straight to its node (``backend``)
    is not the scheduler's to lose."""
    casts = ScheduleCasts()
    casts.sent(request("v1"), ME, 1.0)
    casts.sent(request("v2"), ME, 1.0, backend="node-1@file")
    assert [c.request.volume_id for c in casts.before(2.0, lambda v: True)] == ["v1"]
    assert len(casts) == 2  # both known until placed (the reconciler's grace)


def test_a_create_sent_again_is_known_as_such_until_it_is_placed() -> None:
    """What keeps the reconciler from judging it lost while the new scheduler has it."""
    casts = ScheduleCasts()
    casts.sent(request("v1"), ME, 1.0)
    assert casts.resent_at("v1") is None
    casts.resending("v1", 1000.0)
    casts.sent(request("v1", "t1"), ME, 2.0)
    casts.prune(lambda v: True)
    assert casts.resent_at("v1") == 1000.0
    casts.prune(lambda v: False)  # placed
    assert casts.resent_at("v1") is None


def test_a_create_is_sent_again_only_when_every_node_fenced_it() -> None:
    ids = ["v1", "v2", "v3"]
    replies: dict[str, NodeFenceReply | None] = {
        "node-1": NodeFenceReply(busy=("v2",), fenced=("v1", "v3")),
        "node-2": NodeFenceReply(volumes=("v3",), fenced=("v1", "v2")),
    }
    assert fenced_everywhere(ids, replies) == ["v1"]
    assert fenced_everywhere(ids, {**replies, "node-3": None}) == []  # it may hold any
    assert fenced_everywhere(ids, {}) == []


# ---- the node's fence -----------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[StorageNode, list[str]]:
    cfg = make_config(tmp_path)
    made: list[str] = []
    storage = StorageNode(cfg, cfg.nodes[0])

    async def run_flow(flow: Any, c: Any, volume_id: str, ctx: Context) -> None:
        made.append(volume_id)

    monkeypatch.setattr(storage, "run_flow", run_flow)
    monkeypatch.setattr(storage, "stats_changed", lambda: None)
    return storage, made


def asked(body: object) -> Request:
    return Request(Envelope("req", 1, "op", None, ME), body, cast(Any, None), b"")


def create(volume_id: str, fence: str = "", seq: int = 7) -> Request:
    return asked(NodeCreateVolume(request(volume_id, fence), "node-1@file", "epoch-1", seq))


async def test_a_fenced_create_is_made_only_from_the_cast_that_carries_the_fence(
    node: tuple[StorageNode, list[str]],
) -> None:
    storage, made = node
    storage.busy["v-busy"] += 1
    reply = storage.on_fence_creates(asked(NodeFenceCreates(("v1", "v-busy"), "t1")))
    assert (reply.busy, reply.volumes, reply.fenced) == (("v-busy",), (), ("v1",))
    await storage.on_create_volume(create("v1", seq=7))  # the dead scheduler's, late
    assert made == [] and storage._sched_seq == 7  # dropped, its placement acknowledged
    await storage.on_create_volume(create("v1", "t1", seq=1))  # the gateway's resend
    assert made == ["v1"]
    await storage.on_create_volume(create("v1", seq=8))  # the old cast, after the resend
    assert made == ["v1"]
    await storage.on_create_volume(create("v2"))  # what was never fenced is made
    assert made == ["v1", "v2"]


def test_a_snapshot_create_is_fenced_as_a_volume_create_is(
    node: tuple[StorageNode, list[str]],
) -> None:
    """What a gateway started again fences before it sends a snapshot create again: the
    node says which it works on, and drops a create of a fenced one without the token."""
    storage, _ = node
    storage.busy["s-busy"] += 1
    reply = storage.on_fence_creates(asked(NodeFenceCreates(fence="t1",
                                                            snapshot_ids=("s1", "s-busy"))))
    assert (reply.busy, reply.snapshots, reply.fenced) == (("s-busy",), (), ("s1",))
    assert storage.fenced_out("s1", "") and storage.fenced_out("s1", "t0")
    assert not storage.fenced_out("s1", "t1")  # the resend
    assert not storage.fenced_out("s2", "")  # never fenced


async def test_a_group_snapshot_create_is_made_only_with_the_token_of_its_fence(
    node: tuple[StorageNode, list[str]],
) -> None:
    """A group snapshot's snapshots, fenced by a gateway started again: the lost cast,
    should it come after all, is dropped, and the resend (its token) is made."""
    storage, made = node
    take = lifecycle_handlers(storage)["node.create_group_snapshot"]
    members = (GroupSnapshotMember("v1", "s1"), GroupSnapshotMember("v2", "s2"))
    reply = storage.on_fence_creates(asked(NodeFenceCreates(fence="t1",
                                                            snapshot_ids=("s1", "s2"))))
    assert reply.fenced == ("s1", "s2")
    await take(asked(NodeCreateGroupSnapshot("gs1", members)))  # the dead gateway's
    assert made == []
    await take(asked(NodeCreateGroupSnapshot("gs1", members, fence="t1")))  # the resend
    assert made == ["v1"]  # one flow for them all, named by its first volume


def test_a_fence_names_a_token_and_not_too_many_volumes(
    node: tuple[StorageNode, list[str]],
) -> None:
    storage, _ = node
    with pytest.raises(InvalidInput, match="1 to 64 characters"):
        storage.on_fence_creates(asked(NodeFenceCreates(("v1",), "")))
    with pytest.raises(InvalidInput, match="at most 2000 volumes"):
        storage.on_fence_creates(asked(NodeFenceCreates(tuple(f"v{i}" for i in range(2001)),
                                                        "t1")))
    assert storage.fences == {}

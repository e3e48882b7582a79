"""The gateway's ``work.cleanup`` (an admin's cleanup now): which records it looks at and
which verdicts it applies, with the nodes' answers given and the actions recorded (the
e2e tests make real crashes and send the cleanups through ``cinder`` and the CLI)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from cinderblock.actors.flow.history import FlowHistory, RunTrace
from cinderblock.actors.gateway.reconcile import Reconciler
from cinderblock.actors.gateway.reconcile_rules import Action, Answer, Do, Stuck
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.reconcile import WorkCleaned, WorkCleanup
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput

ADMIN = Context("admin", "admin", ("admin",))
NOW = 1000.0


def record(rid: str, status: str, host: str | None, **more: Any) -> SimpleNamespace:
    return SimpleNamespace(id=rid, status=status, host=host, updated_at=NOW - 1,
                           created_at=NOW - 2, **more)


class Gateway:
    """What the reconciler reads of a gateway: its records, its running flows."""

    def __init__(self, volumes: list[SimpleNamespace], snapshots: list[SimpleNamespace],
                 flowing: tuple[str, ...] = ()) -> None:
        self.cfg = SimpleNamespace(reconcile_after_s=120.0, reconcile_every_s=0.0,
                                   heartbeat_s=0.5, nodes=[SimpleNamespace(host="node-1"),
                                                           SimpleNamespace(host="node-2")])
        by_id = {s.id: s for s in snapshots}
        self.store = SimpleNamespace(
            in_transition_since=lambda before, limit: volumes,
            volumes={v.id: v for v in volumes}, extend_sizes={"v-extend": 3},
            snapshots=SimpleNamespace(in_transition_since=lambda before, limit: snapshots,
                                      get=by_id.get))
        self.flow_history = FlowHistory()
        for v in flowing:
            self.flow_history.started(RunTrace(f"flow-{v}", "volume_delete_api", v, "p", ()))
        self.told: list[dict[str, Any]] = []
        self.events = SimpleNamespace(emit=lambda kind, **f: self.told.append(f))


class Cleaner(Reconciler):
    """The reconciler with the nodes' answers given and its actions recorded."""

    def __init__(self, gw: Gateway, answers: dict[str, Answer | None]) -> None:
        super().__init__(cast(GatewayServices, gw), cast(Any, None), cast(Any, None),
                         clock=lambda: NOW)
        self.answers = answers
        self.asked: list[Stuck] = []
        self.applied: list[Action] = []

    async def probe(self, stuck: list[Stuck]) -> dict[str, Answer | None]:
        self.asked = stuck
        return self.answers

    async def apply(self, action: Action) -> None:
        self.applied.append(action)


def answer(busy: tuple[str, ...] = (), volumes: tuple[str, ...] = (),
           snapshots: tuple[str, ...] = ()) -> Answer:
    return Answer(frozenset(busy), frozenset(volumes), frozenset(snapshots))


def clean(cleaner: Cleaner, body: WorkCleanup, ctx: Context = ADMIN) -> WorkCleaned:
    req = Request(Envelope("req", 1, "work.cleanup", None, ctx), body, cast(Any, None), b"")
    return asyncio.run(cleaner.on_work_cleanup(req))


def cluster(flowing: tuple[str, ...] = ()) -> Gateway:
    return Gateway(
        [record("v-delete", VolumeStatus.DELETING, "node-1@file#file"),
         record("v-extend", VolumeStatus.EXTENDING, "node-2@file#file"),
         record("v-made", VolumeStatus.CREATING, None),
         record("v-lost", VolumeStatus.CREATING, None)],
        [record("s-delete", SnapshotStatus.DELETING, "node-2@file#file", volume_id="v-other")],
        flowing)


HEALTHY: dict[str, Answer | None] = {"node-1": answer(volumes=("v-delete",)),
           "node-2": answer(volumes=("v-extend", "v-made"), snapshots=("s-delete",))}


def test_what_holds_at_any_age_is_applied_and_a_create_no_node_holds_is_left() -> None:
    cleaner = Cleaner(cluster(), HEALTHY)
    done = clean(cleaner, WorkCleanup(("node-1", "node-2"), unplaced=True))
    assert [(a.stuck.id, a.do) for a in cleaner.applied] == [
        ("v-delete", Do.REDO_DELETE), ("v-extend", Do.REDO_EXTEND), ("v-made", Do.AVAILABLE),
        ("s-delete", Do.REDO_DELETE)]
    assert done.looked_at == 5 and "v-lost" not in {a.id for a in done.mended}
    assert [(a.kind, a.id, a.status, a.action) for a in done.mended][-1] == (
        "snapshot", "s-delete", "deleting", "redo_delete")


def test_only_the_nodes_named_and_with_unplaced_what_is_on_no_node() -> None:
    cleaner = Cleaner(cluster(), HEALTHY)
    done = clean(cleaner, WorkCleanup(("node-1",)))
    assert [s.id for s in cleaner.asked] == ["v-delete"] and done.looked_at == 1
    cleaner = Cleaner(cluster(), HEALTHY)
    clean(cleaner, WorkCleanup((), unplaced=True))
    assert [s.id for s in cleaner.asked] == ["v-made", "v-lost"]
    cleaner = Cleaner(cluster(), HEALTHY)
    done = clean(cleaner, WorkCleanup(every_node=True))
    assert [s.id for s in cleaner.asked] == ["v-delete", "v-extend", "s-delete"]


def test_what_a_running_flow_of_this_process_holds_is_left_to_it() -> None:
    """A delete whose flow still runs may yet put its volume back (its cast failed):
    sending it again now could delete a volume that stays available."""
    cleaner = Cleaner(cluster(flowing=("v-delete", "v-other")), HEALTHY)
    done = clean(cleaner, WorkCleanup(("node-1", "node-2")))
    assert [a.stuck.id for a in cleaner.applied] == ["v-extend"] and done.looked_at == 1


def test_a_node_that_does_not_answer_is_named_and_nothing_of_it_decided() -> None:
    cleaner = Cleaner(cluster(), {**HEALTHY, "node-2": None})
    done = clean(cleaner, WorkCleanup(("node-1", "node-2")))
    assert [a.stuck.id for a in cleaner.applied] == ["v-delete"]
    assert done.unanswered == ("node-2",)


def test_one_resource_is_looked_up_and_refused_unless_in_transition() -> None:
    cleaner = Cleaner(cluster(), HEALTHY)
    done = clean(cleaner, WorkCleanup((), resource_id="s-delete"))
    assert (done.looked_at, done.resource_node, cleaner.applied) == (0, "node-2", [])
    done = clean(cleaner, WorkCleanup(("node-2",), resource_id="s-delete",
                                      resource_type="snapshot"))
    assert [a.id for a in done.mended] == ["s-delete"]
    for body in (WorkCleanup(resource_id="nothing"),
                 WorkCleanup(resource_id="s-delete", resource_type="volume")):
        with pytest.raises(InvalidInput, match=r"no resource with UUID .* pending cleanup"):
            clean(cleaner, body)


def test_only_an_admin_and_only_nodes_and_kinds_there_are() -> None:
    cleaner = Cleaner(cluster(), HEALTHY)
    with pytest.raises(Forbidden):
        clean(cleaner, WorkCleanup(("node-1",)), Context("p", "p", ("member",)))
    with pytest.raises(InvalidInput, match="no storage node is named node-3"):
        clean(cleaner, WorkCleanup(("node-3",)))
    with pytest.raises(InvalidInput, match="resource_type must be volume or snapshot"):
        clean(cleaner, WorkCleanup(resource_id="v-delete", resource_type="backup"))
    assert cleaner.applied == []


def test_a_node_heard_again_has_its_own_records_mended_and_no_other_s() -> None:
    """``mend_node``: the same verdicts for the records of the node that came back (the
    gateway's look when a node judged silent is heard from again), none of another's
    nor of none; what a running flow holds is left to it."""
    cleaner = Cleaner(cluster(), HEALTHY)
    mended = asyncio.run(cleaner.mend_node("node-2"))
    assert [s.id for s in cleaner.asked] == ["v-extend", "s-delete"]
    assert [(a.stuck.id, a.do) for a in mended] == [("v-extend", Do.REDO_EXTEND),
                                                     ("s-delete", Do.REDO_DELETE)]
    assert cleaner.applied == mended
    cleaner = Cleaner(cluster(flowing=("v-other",)), HEALTHY)
    assert [a.stuck.id for a in asyncio.run(cleaner.mend_node("node-2"))] == ["v-extend"]


def test_a_node_heard_again_that_does_not_answer_has_nothing_decided() -> None:
    cleaner = Cleaner(cluster(), {**HEALTHY, "node-1": None})
    assert asyncio.run(cleaner.mend_node("node-1")) == [] and cleaner.applied == []
    cleaner = Cleaner(cluster(), HEALTHY)
    assert asyncio.run(cleaner.mend_node("node-3")) == [] and cleaner.asked == []

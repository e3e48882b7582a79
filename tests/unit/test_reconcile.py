"""The reconciler's decisions: what a stuck record becomes, given the nodes' answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from cinderblock.actors.gateway.reconcile_rules import (
    Answer,
    Do,
    ProbeTurns,
    Stuck,
    decide,
    shared,
)
from cinderblock.protocol.states import SnapshotStatus, VolumeStatus

NODES = ("node-1", "node-2")


def answer(busy: Iterable[str] = (), volumes: Iterable[str] = (),
           snapshots: Iterable[str] = ()) -> Answer:
    return Answer(frozenset(busy), frozenset(volumes), frozenset(snapshots))


def vol(status: str, node: str | None = None, vid: str = "v1") -> Stuck:
    return Stuck("volume", vid, VolumeStatus(status), node, 1.0)


def test_a_create_no_node_has_or_works_on_is_lost() -> None:
    (action,) = decide([vol("creating")], {n: answer() for n in NODES})
    assert action.do is Do.ERROR and action.node is None and "lost" in action.reason


def test_a_create_some_node_works_on_is_left_alone() -> None:
    assert decide([vol("creating")], {"node-1": answer(), "node-2": answer(busy={"v1"})}) == []


def test_nothing_is_decided_while_a_node_that_may_hold_it_does_not_answer() -> None:
    assert decide([vol("creating")], {"node-1": answer(), "node-2": None}) == []
    assert decide([vol("deleting", "node-2")], {"node-1": answer(), "node-2": None}) == []


def test_a_create_found_whole_on_a_node_is_available_there_and_its_report_named_lost() -> None:
    (action,) = decide([vol("creating")], {"node-1": answer(), "node-2": answer(volumes={"v1"})})
    assert (action.do, action.node) == (Do.AVAILABLE, "node-2")
    assert action.reason == ("the create finished on node-2, and its report was lost "
                             "(the node or the gateway restarted)")


def test_a_delete_nobody_works_on_is_sent_again_to_its_own_node_only() -> None:
    (action,) = decide([vol("deleting", "node-2")], {"node-1": None, "node-2": answer()})
    assert action.do is Do.REDO_DELETE and action.node == "node-2"


def test_an_interrupted_unmanage_is_sent_again_as_an_unmanage_or_finished() -> None:
    (action,) = decide([vol("unmanaging", "node-1")], {"node-1": answer(volumes={"v1"})})
    assert action.do is Do.REDO_DELETE and action.node == "node-1"
    assert "the unmanage was interrupted" in action.reason
    assert decide([vol("unmanaging", "node-1")], {"node-1": answer(busy={"v1"})}) == []
    (action,) = decide([vol("unmanaging")], {n: answer() for n in NODES})
    assert action.do is Do.FINISH_DELETE and "the unmanage was interrupted" in action.reason
    snap = Stuck("snapshot", "s1", SnapshotStatus.UNMANAGING, "node-1", 1.0)
    (action,) = decide([snap], {"node-1": answer(snapshots={"s1"})})
    assert action.do is Do.REDO_DELETE and "the unmanage was interrupted" in action.reason


def test_an_interrupted_extend_is_sent_again_to_its_node() -> None:
    extending = dataclasses.replace(vol("extending", "node-1"), extend_to=3)
    (action,) = decide([extending], {"node-1": answer(volumes={"v1"})})
    assert (action.do, action.node) == (Do.REDO_EXTEND, "node-1")
    assert "the extend to 3 GiB was interrupted on node-1" in action.reason
    assert decide([extending], {"node-1": answer(volumes={"v1"}, busy={"v1"})}) == []
    assert decide([extending], {"node-1": None}) == []


def test_an_extend_begun_before_its_size_was_kept_becomes_error_extending() -> None:
    (action,) = decide([vol("extending", "node-1")], {"node-1": answer(volumes={"v1"})})
    assert action.do is Do.ERROR_EXTENDING


def test_snapshots_are_judged_by_the_snapshots_on_the_backend() -> None:
    snap = Stuck("snapshot", "s1", SnapshotStatus.CREATING, "node-1", 1.0)
    (action,) = decide([snap], {"node-1": answer(volumes={"s1"})})
    assert action.node is None and "node-1 neither has it" in action.reason  # not a volume
    (action,) = decide([snap], {"node-1": answer(snapshots={"s1"})})
    assert action.do is Do.AVAILABLE and action.node == "node-1"
    assert "its report was lost" in action.reason
    gone = Stuck("snapshot", "s2", SnapshotStatus.DELETING, "node-1", 1.0)
    (action,) = decide([gone], {"node-1": answer()})
    assert action.do is Do.REDO_DELETE


def test_each_record_is_judged_on_its_own() -> None:
    stuck = [vol("creating", vid="a"), vol("creating", vid="b"), vol("deleting", "node-1", "c")]
    answers = {"node-1": answer(busy={"b"}), "node-2": answer(volumes={"a"})}
    assert [(a.stuck.id, a.do, a.node) for a in decide(stuck, answers)] == [
        ("a", Do.AVAILABLE, "node-2"), ("c", Do.REDO_DELETE, "node-1")]


def test_a_host_less_delete_goes_to_the_node_that_has_it_else_the_gateway_finishes_it() -> None:
    stuck = vol("deleting")  # the record names no node: every node is asked
    (action,) = decide([stuck], {"node-1": answer(), "node-2": answer(volumes={"v1"})})
    assert action.do is Do.REDO_DELETE and action.node == "node-2"
    (action,) = decide([stuck], {"node-1": answer(), "node-2": answer()})
    assert action.do is Do.FINISH_DELETE and action.node is None
    assert "no node has it" in action.reason
    assert decide([stuck], {"node-1": answer(), "node-2": None}) == []  # might hold it
    assert decide([stuck], {"node-1": answer(busy={"v1"}), "node-2": answer()}) == []


def test_an_interrupted_revert_is_sent_again_to_its_node_once_nobody_works_on_it() -> None:
    stuck = vol("reverting", "node-1")
    assert decide([stuck], {"node-1": answer(busy={"v1"})}) == []
    (action,) = decide([stuck], {"node-1": answer(volumes={"v1"})})
    assert action.do is Do.REDO_REVERT and action.node == "node-1"


def test_a_probe_shares_its_ids_between_stuck_volumes_and_snapshots() -> None:
    volumes = [vol("creating", vid=f"v{i}") for i in range(10)]
    snapshots = [dataclasses.replace(vol("creating", vid=f"s{i}"), kind="snapshot")
                 for i in range(10)]
    assert shared(volumes, snapshots, 20) == volumes + snapshots  # room for all
    assert shared(volumes, snapshots, 8) == volumes[:4] + snapshots[:4]  # half each
    assert shared(volumes[:2], snapshots, 8) == volumes[:2] + snapshots[:6]  # the rest
    assert shared(volumes, snapshots[:1], 8) == volumes[:7] + snapshots[:1]
    assert shared(volumes, [], 8) == volumes[:8]  # the oldest, as before


def test_a_probe_asks_in_turns_so_a_newer_record_is_not_starved_by_older_busy_ones() -> None:
    """3,000 creates busy on their node (never decided, so found every round) and one
    newer create a dead scheduler lost, with 2,000 ids a probe: oldest first alone, the
    newer one would never be asked about."""
    busy = [vol("creating", "node-1", f"busy-{i:04}") for i in range(3000)]
    lost = vol("creating", "node-1", "lost")
    turns = ProbeTurns()
    first = turns.pick([*busy, lost], [], 2000)
    assert first == busy[:2000]  # none asked about yet: the oldest, as before
    turns.asked(first)
    second = turns.pick([*busy, lost], [], 2000)
    assert second[:1001] == [*busy[2000:], lost]  # never asked about, then the least lately
    assert second[1001:] == busy[:999]
    (action,) = decide(second, {"node-1": answer(busy={s.id for s in busy})})
    assert action.stuck == lost and action.do is Do.ERROR
    turns.asked(second)
    third = turns.pick(busy, [], 2000)  # the lost one moved on: it is forgotten
    assert "lost" not in turns.asked_in
    assert third[:1001] == busy[999:2000]  # asked about in the first probe only
    assert {s.id for s in first + second + third} == {s.id for s in busy} | {"lost"}


def test_turns_share_a_probe_between_the_kinds_and_keep_each_kinds_order() -> None:
    volumes = [vol("creating", vid=f"v{i}") for i in range(6)]
    snapshots = [dataclasses.replace(vol("creating", vid=f"s{i}"), kind="snapshot")
                 for i in range(6)]
    turns = ProbeTurns()
    first = turns.pick(volumes, snapshots, 4)
    assert first == volumes[:2] + snapshots[:2]
    turns.asked(first)
    assert turns.pick(volumes, snapshots, 4) == volumes[2:4] + snapshots[2:4]

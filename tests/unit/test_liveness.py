"""Liveness from heartbeats: the scheduler's view of nodes, the gateway's of its peers."""

from __future__ import annotations

import pytest

from cinderblock.actors.gateway.peers import PeerWatch
from cinderblock.actors.scheduler.liveness import Held, Liveness, NodeReport
from cinderblock.actors.scheduler.scheduler import settle_lost
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import Unavailable

EPOCH = "e1"
STALE = 2.5


def report(sched_seq: int = 0, oldest_seq: int = 0, epoch: str = EPOCH,
           incarnation: str = "p1") -> NodeReport:
    return NodeReport(epoch, sched_seq, oldest_seq, incarnation)


def live(*backends: str) -> Liveness[str]:
    liveness: Liveness[str] = Liveness(EPOCH, STALE)
    for b in backends:
        liveness.seen(b, 0.0, report())
    return liveness


def held_ids(liveness: Liveness[str], now: float) -> dict[str, list[str]]:
    return {b: [h.volume_id for h in held] for b, held in liveness.sweep(now).down.items()}


def test_a_backend_silent_past_stale_after_goes_down_once_with_what_it_held() -> None:
    liveness = live("a", "b")
    liveness.placed("a", 1, "v1", "ctx-1", 0.1)
    liveness.seen("b", 2.0, report())
    assert held_ids(liveness, STALE) == {}  # exactly stale_after: not yet
    assert held_ids(liveness, STALE + 0.01) == {"a": ["v1"]}
    assert held_ids(liveness, 10.0) == {"b": []}  # a is not reported twice
    assert not liveness.is_up("a") and len(liveness) == 0


def test_the_failed_create_keeps_its_context_for_the_error_report() -> None:
    liveness = live("a")
    liveness.placed("a", 1, "v1", "ctx-1", 0.1)
    [held] = liveness.sweep(STALE + 1).down["a"]
    assert (held.volume_id, held.seq, held.note) == ("v1", 1, "ctx-1")


def test_stats_after_being_down_bring_it_back() -> None:
    liveness = live("a")
    liveness.sweep(STALE + 1)
    assert liveness.seen("a", STALE + 2, report()).back
    assert liveness.is_up("a") and liveness.came_back == 1
    assert not liveness.seen("a", STALE + 2.5, report()).back


@pytest.mark.parametrize(
    ("sched_seq", "oldest_seq", "still_held"),
    [
        (0, 0, ["v1", "v2", "v3"]),  # received none yet
        (2, 0, ["v3"]),  # received 1 and 2, working on none: both finished
        (3, 2, ["v2", "v3"]),  # 1 finished; 2 is the oldest still running
        (3, 3, ["v3"]),  # 1 and 2 finished, 3 running
        (3, 0, []),  # all received and finished
    ],
)
def test_stats_release_the_creates_the_node_has_finished(
    sched_seq: int, oldest_seq: int, still_held: list[str]
) -> None:
    liveness = live("a")
    for seq in (1, 2, 3):
        liveness.placed("a", seq, f"v{seq}", "ctx", 0.1)
    liveness.seen("a", 1.0, report(sched_seq, oldest_seq))
    assert held_ids(liveness, 1.0 + STALE + 0.1) == {"a": still_held}


def test_stats_of_another_scheduler_epoch_release_nothing() -> None:
    liveness = live("a")
    liveness.placed("a", 1, "v1", "ctx", 0.1)
    liveness.seen("a", 1.0, report(sched_seq=5, epoch="old"))
    assert held_ids(liveness, 1.0 + STALE + 0.1) == {"a": ["v1"]}


def test_a_reschedule_moves_the_volume_to_its_new_backend() -> None:
    liveness = live("a", "b")
    liveness.placed("a", 1, "v1", "ctx", 0.1)
    liveness.placed("b", 1, "v1", "ctx", 0.2)  # a failed it and asked again
    liveness.seen("b", 2.0, report())
    assert held_ids(liveness, STALE + 0.1) == {"a": []}
    assert len(liveness) == 1


def test_a_restarted_node_hands_back_what_its_previous_process_held() -> None:
    liveness = live("a")
    liveness.placed("a", 1, "v1", "ctx", 0.1)
    seen = liveness.seen("a", 0.5, report(incarnation="p2"))
    assert not seen.back and [h.volume_id for h in seen.lost] == ["v1"]
    assert len(liveness) == 0


def test_a_new_process_heard_from_before_its_stats_hands_back_only_what_was_cast_before(
) -> None:
    """Its first message (the hello) comes before its first stats: what was cast before
    the hello went to the process that is gone, what after to the new one, whose first
    stats (another incarnation) then hand back nothing."""
    liveness = live("a")
    liveness.placed("a", 1, "v1", "ctx", 0.1)
    assert [h.volume_id for h in liveness.restarted("a")] == ["v1"]
    liveness.placed("a", 2, "v2", "ctx", 0.2)
    seen = liveness.seen("a", 0.3, report(sched_seq=2, oldest_seq=2, incarnation="p2"))
    assert not seen.back and seen.lost == []
    assert len(liveness) == 1  # v2: the new process is working on it
    seen = liveness.seen("a", 0.4, report(sched_seq=2, oldest_seq=0, incarnation="p2"))
    assert len(liveness) == 0  # and has finished it
    later = liveness.seen("a", 0.5, report(incarnation="p3"))  # stats say: another one
    assert later.lost == []


def test_stats_of_the_new_process_before_its_hello_hand_back_what_the_old_held_once(
) -> None:
    liveness = live("a")
    liveness.placed("a", 1, "v1", "ctx", 0.1)
    assert [h.volume_id for h in liveness.seen("a", 0.2, report(incarnation="p2")).lost] \
        == ["v1"]
    liveness.placed("a", 2, "v2", "ctx", 0.3)  # cast before the hello: to the old route
    assert [h.volume_id for h in liveness.restarted("a")] == ["v2"]
    assert liveness.seen("a", 0.4, report(incarnation="p2")).lost == []


def test_a_hello_from_a_node_never_reported_hands_back_nothing() -> None:
    assert live().restarted("a") == []


def test_the_gateway_sees_a_silent_peer_down_and_refuses_with_unavailable() -> None:
    peers = PeerWatch(("quota", "scheduler"), STALE, now=0.0)
    peers.refuse_if_down(("quota", "scheduler"), 2.0, "creating a volume")  # grace at start
    peers.answered("quota", 2.0)
    assert peers.newly_down(3.0) == ["scheduler"]
    assert peers.newly_down(3.5) == []
    peers.refuse_if_down(("quota",), 3.0, "creating a volume")
    with pytest.raises(Unavailable, match=r"the scheduler has not answered for 3\.0s: "
                                          r"creating a volume is refused until it is back"):
        peers.refuse_if_down(("quota", "scheduler"), 3.0, "creating a volume")
    assert peers.answered("scheduler", 3.2)  # back
    peers.refuse_if_down(("quota", "scheduler"), 3.3, "creating a volume")


def test_a_peer_down_with_its_connection_open_is_frozen_not_restarting() -> None:
    peers = PeerWatch(("quota", "scheduler"), STALE, now=0.0)
    assert not peers.open_but_silent("quota")  # up
    peers.connection_closed("quota")  # killed: its supervisor starts it again
    assert peers.newly_down(3.0) == ["quota", "scheduler"]
    assert not peers.open_but_silent("quota")  # down, but starting again
    assert peers.open_but_silent("scheduler")  # silent, its connection open: frozen
    assert peers.answered("quota", 4.0)  # the new process
    peers.answered("scheduler", 4.0)
    assert peers.newly_down(7.0) == ["quota", "scheduler"]  # both frozen now
    assert peers.open_but_silent("quota") and peers.open_but_silent("scheduler")



def test_the_gateway_gives_up_on_a_node_for_as_long_as_it_is_not_heard_from() -> None:
    nodes = PeerWatch(("node-1", "node-2"), STALE, now=0.0)
    assert nodes.silences(2.0) == []  # grace at start
    nodes.answered("node-2", 2.0)  # its hello
    assert nodes.newly_down(3.0) == ["node-1"]
    assert nodes.silences(3.0) == [("node-1", 3.0)]
    assert nodes.newly_down(3.5) == [] and nodes.silences(3.5) == [("node-1", 3.5)]
    assert nodes.answered("node-1", 3.75)  # back
    assert nodes.newly_down(4.0) == [] and nodes.silences(4.0) == []
    assert nodes.newly_down(6.5) == ["node-1", "node-2"]
    assert nodes.silences(6.5) == [("node-1", 2.75), ("node-2", 4.5)]


def _held(volume_id: str, seq: int) -> Held[Context]:
    return Held(volume_id, seq, Context())


async def test_a_restarted_nodes_creates_it_holds_are_made_and_the_rest_lost() -> None:
    """The new process is asked about every create the old one held: those it holds
    were made whole before the old one died (a driver names a volume only once it is),
    the others are lost."""
    asked: list[list[str]] = []

    async def held_whole(ids: list[str]) -> set[str]:
        asked.append(ids)
        return {"made", "from-a-backup"} & set(ids)

    held = [_held("made", 1), _held("missing", 2), _held("from-a-backup", 3)]
    made, lost = await settle_lost(held, held_whole, "a@file")
    assert asked == [["made", "missing", "from-a-backup"]]
    assert [h.volume_id for h in made] == ["made", "from-a-backup"]
    assert [h.volume_id for h in lost] == ["missing"]


@pytest.mark.parametrize("error", [Unavailable("node-1 is not connected"), TimeoutError(),
                                   ValueError("a reply that does not parse")])
async def test_a_restarted_node_that_does_not_answer_lost_every_create(
    error: Exception,
) -> None:
    async def held_whole(ids: list[str]) -> set[str]:
        raise error

    held = [_held("v1", 1), _held("v2", 2)]
    assert await settle_lost(held, held_whole, "a@file") == ([], held)


def test_a_node_that_dialled_again_keeps_what_it_holds_until_its_answer_settles_it() -> None:
    """``holding`` keeps; ``settled`` forgets only what is still held as it was: a
    create its stats finished meanwhile, or placed again elsewhere, is not settled twice."""
    liveness = live("a", "b")
    for seq, volume in enumerate(("v1", "v2", "v3", "v4"), start=1):
        liveness.placed("a", seq, volume, "ctx", 0.1)
    held = liveness.holding("a")
    assert [h.volume_id for h in held] == ["v1", "v2", "v3", "v4"] and len(liveness) == 4
    liveness.seen("a", 0.5, report(sched_seq=1))  # v1 finished there meanwhile
    liveness.placed("b", 5, "v3", "ctx", 0.6)  # v3 rescheduled to b
    settled = liveness.settled("a", held)
    assert [h.volume_id for h in settled] == ["v2", "v4"]
    assert liveness.holding("a") == [] and [h.volume_id for h in liveness.holding("b")] == ["v3"]
    assert liveness.settled("a", held) == [] and liveness.holding("nowhere") == []

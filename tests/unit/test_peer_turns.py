"""Turns per peer: a few of one peer's requests run, the rest wait in order, and a
flooding peer's line has an end; other peers are not in it."""

from __future__ import annotations

from cinderblock.actors.runtime.peer_turns import PeerTurns


def test_a_peer_runs_its_allowance_and_the_rest_wait_in_order() -> None:
    turns: PeerTurns[int] = PeerTurns(running=2, waiting=3)
    assert [turns.take(b"flood", i) for i in range(5)] == [True, True, False, False, False]
    assert turns.full(b"flood")
    assert turns.take(b"other", 99), "another peer runs at once"
    assert turns.statistics() == {"running": 3, "waiting": 3}
    assert [turns.done(b"flood") for _ in range(5)] == [2, 3, 4, None, None]
    assert turns.statistics() == {"running": 1, "waiting": 0}
    assert not turns.full(b"flood")


def test_stopping_takes_everyone_out_of_line() -> None:
    turns: PeerTurns[str] = PeerTurns(running=1, waiting=10)
    for item in ("a", "b", "c"):
        turns.take(b"p", item)
    assert turns.clear() == ["b", "c"]
    assert turns.done(b"p") is None
    assert turns.statistics() == {"running": 0, "waiting": 0}

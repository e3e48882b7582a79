"""When a DEALER is dialled again (``actors.runtime.redial``): only over a connection
made since its server last answered, on which a hello then went unanswered, and ever
further apart until the server answers."""

from __future__ import annotations

from cinderblock.actors.runtime.redial import (
    FIRST_GAP_S,
    MOST_GAP_S,
    Redial,
    routing_id,
    same_process,
)


def test_routing_ids_of_one_process_are_told_from_another_process_s() -> None:
    first = routing_id("node-1", "0f3a", 0)
    assert first == b"node-1/0f3a.0"
    assert same_process(first, routing_id("node-1", "0f3a", 7))
    assert not same_process(first, routing_id("node-1", "9bc1", 0))
    assert not same_process(first, routing_id("node-2", "0f3a", 0))
    assert not same_process(b"node-1/0f3a", b"node-1/9bc1")  # ids without a count


def test_an_unanswered_hello_on_a_connection_made_before_it_dials_again() -> None:
    r = Redial()
    r.connected(10.0)
    assert r.unanswered(sent_at=10.5, now=13.0)
    assert r.dials == 1 and r.connected_at is None  # the new socket is not connected yet


def test_a_hello_sent_before_the_connection_was_made_does_not() -> None:
    """It went out while the server was away (queued, or lost with the old connection)."""
    r = Redial()
    r.connected(10.0)
    assert not r.unanswered(sent_at=9.5, now=12.0)


def test_no_connection_up_no_dial() -> None:
    """The server is away: ZeroMQ connects again by itself, and what the socket holds
    for it goes then; a new socket would lose that."""
    r = Redial()
    assert not r.unanswered(sent_at=1.0, now=4.0)
    r.connected(5.0)
    r.disconnected()
    assert not r.unanswered(sent_at=6.0, now=9.0)


def test_a_server_that_answered_on_this_connection_is_only_slow() -> None:
    """Frozen or overloaded with its connection open: the connection is not the trouble."""
    r = Redial()
    r.connected(10.0)
    r.answered(11.0)
    assert not r.unanswered(sent_at=12.0, now=15.0)


def test_dials_come_ever_further_apart_until_the_server_answers() -> None:
    r = Redial()
    now = 0.0
    gaps = []
    last = None
    while now < 400.0:
        r.connected(now)
        if r.unanswered(sent_at=now, now=now + 0.5):
            if last is not None:
                gaps.append(now + 0.5 - last)
            last = now + 0.5
        now += 0.5
    assert gaps[0] >= FIRST_GAP_S and gaps == sorted(gaps) and max(gaps) <= MOST_GAP_S + 0.5
    assert max(gaps) >= MOST_GAP_S
    r.answered(now)
    assert r.gap_s == FIRST_GAP_S

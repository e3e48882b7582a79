"""The event hub's count of who listens to what (``Subscribers``): per connection,
so only a connection that holds a topic can let it go, and a connection's end lets
go of exactly what it held."""

from __future__ import annotations

from cinderblock.actors.gateway.event_hub import Subscribers


def test_a_topic_is_listened_to_from_its_first_holder_until_its_last_lets_go() -> None:
    subs = Subscribers()
    assert subs.subscribe(10, b"p/") is True  # the actors are told
    assert subs.subscribe(11, b"p/") is False
    assert subs.subscribe(10, b"p/") is False  # again from the same connection: one hold
    assert subs.unsubscribe(10, b"p/") is False  # 11 still listens
    assert subs.listened() == {b"p/"}
    assert subs.unsubscribe(11, b"p/") is True
    assert subs.listened() == set()


def test_an_unsubscription_from_a_connection_that_does_not_hold_the_topic_counts_for_nothing(
) -> None:
    subs = Subscribers()
    subs.subscribe(10, b"p/")
    for _ in range(3):
        assert subs.holds(12, b"p/") is False
        assert subs.unsubscribe(12, b"p/") is False
        assert subs.unsubscribe(12, b"") is False
    assert subs.ended(12) == []
    assert subs.listened() == {b"p/"}


def test_a_connection_that_ends_lets_go_of_what_it_held_and_nothing_else() -> None:
    subs = Subscribers()
    subs.subscribe(10, b"")
    subs.subscribe(10, b"p/")
    subs.subscribe(11, b"p/")
    assert sorted(subs.ended(10)) == [b""]  # p/ is still 11's
    assert subs.ended(10) == []  # ended once: a second report changes nothing
    assert subs.listened() == {b"p/"}
    assert subs.ended(11) == [b"p/"]
    assert subs.listened() == set()


def test_a_descriptor_taken_again_starts_empty() -> None:
    """An accept on a descriptor whose previous connection's end was not seen (the
    hub reads it as that end): the new connection inherits nothing."""
    subs = Subscribers()
    subs.subscribe(10, b"q/")
    assert subs.ended(10) == [b"q/"]  # what the hub does at the accept
    assert subs.holds(10, b"q/") is False
    assert subs.subscribe(10, b"q/") is True

"""The line of reads aside: served by turns of whose they are."""

from __future__ import annotations

from cinderblock.actors.runtime.fair_line import FairLine


def _served(line: FairLine[str]) -> list[str]:
    out = []
    while (item := line.next()) is not None:
        out.append(item)
    return out


def test_askers_take_turns_in_the_order_they_first_came() -> None:
    line: FairLine[str] = FairLine()
    for i in range(1, 5):
        line.add("flooder", f"f{i}")
    line.add("other", "o1")
    line.add("third", "t1")
    line.add("other", "o2")
    assert len(line) == 7
    assert _served(line) == ["f1", "o1", "t1", "f2", "o2", "f3", "f4"]
    assert len(line) == 0 and line.next() is None


def test_the_asker_served_last_waits_for_everyone_elses_turn() -> None:
    line: FairLine[str] = FairLine()
    line.add("a", "a1")
    line.add("a", "a2")
    assert line.next() == "a1"
    line.add("b", "b1")  # comes while a2 waits, but a was served last: b goes first
    line.add("a", "a3")
    assert _served(line) == ["b1", "a2", "a3"]


def test_an_asker_whose_line_emptied_and_began_again_still_waits_its_turn() -> None:
    line: FairLine[str] = FairLine()
    line.add("a", "a1")
    assert line.next() == "a1"  # served at once: nobody else waited
    for i in range(2, 5):
        line.add("a", f"a{i}")  # a floods while its first is served
    line.add("b", "b1")
    assert _served(line) == ["b1", "a2", "a3", "a4"]


def test_clearing_takes_out_everything_waiting() -> None:
    line: FairLine[str] = FairLine()
    for whose, item in (("a", "a1"), ("b", "b1"), ("a", "a2")):
        line.add(whose, item)
    assert sorted(line.clear()) == ["a1", "a2", "b1"]
    assert line.next() is None and len(line) == 0

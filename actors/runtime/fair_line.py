"""A line served in turns by whose its items are (round robin), not first come first served.

Reads that one thread serves one at a time (``Database.read_aside``: a sorted page
reads every row of a listing, half a second at a million volumes) would otherwise be
served in the order they came: a project that asks for a hundred such pages at once
would hold every other project's page behind all of them. Here each asker has a line
of its own, and the askers take turns, the one served last going last: an item waits
for at most one item of each other asker (besides the one being served when it comes).
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class FairLine(Generic[T]):
    def __init__(self) -> None:
        # whose -> their items in order; the dict's order is the order of turns
        self._lines: dict[str, collections.deque[T]] = {}
        self._last: str | None = None  # whose item was served last

    def add(self, whose: str, item: T) -> None:
        line = self._lines.get(whose)
        if line is None:
            line = self._lines[whose] = collections.deque()
        line.append(item)

    def next(self) -> T | None:
        """The first item of the asker whose turn it is, who then goes to the back (None
        when nobody waits). The asker served last waits for everyone else's turn, even
        if its line emptied and began again meanwhile."""
        if not self._lines:
            return None
        whose = next(iter(self._lines))
        if whose == self._last and len(self._lines) > 1:
            self._lines[whose] = self._lines.pop(whose)  # to the back
            whose = next(iter(self._lines))
        line = self._lines.pop(whose)
        item = line.popleft()
        if line:
            self._lines[whose] = line
        self._last = whose
        return item

    def clear(self) -> list[T]:
        """Everything waiting, taken out (the reader is closing)."""
        items = [item for line in self._lines.values() for item in line]
        self._lines.clear()
        return items

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

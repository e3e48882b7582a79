"""The cyclic garbage collector: told what an actor keeps for its whole life, and
watched.

CPython's full collection walks every object the collector tracks, and it runs
whenever the objects that survived younger collections have grown by a quarter: an
actor's loop stands still for as long as the walk takes (about 0.5 µs an object,
measured: 20-30 ms for a gateway that has just started, more with its records
loaded). Most of what an actor holds never becomes garbage in a cycle: its modules,
classes and functions, its sockets, and what its start read from its database (a
volume record that is later removed is freed by its reference count, like any
object outside a cycle). ``freeze_what_started`` moves all of that out of the
collector's sight once the actor has started (``gc.freeze``), so that a full
collection walks only what was made since; an object that was frozen and then
becomes part of a garbage cycle is not freed (none is known to).

Young collections are rarer than CPython's default: one every ``YOUNG_THRESHOLD``
(50,000) tracked objects made and not yet freed, instead of every 700. The default
ran a young collection in the gateway every twenty-odd creates, each promoting what
was alive at that moment (records, flows in flight, rows waiting for their commit) to
the older generations, whose collections walked it again and again: 960 collections
and 0.5 s of pauses in the gateway for 20,000 creates (the longest 40 ms), freeing
nothing. With 50,000 the gateway made one collection in the same run (18 ms); its CPU
per create moved less than this machine's noise, the p99 of creates at 30,000 volumes
was lower in three pairs of three (``docs/performance.md``, "The collector, less
often"). Garbage cycles are still freed, later: a young collection walks at most
50,000 objects (about 25 ms at 0.5 µs an object), and the older generations keep
CPython's own thresholds.

What makes cycles while an actor runs is kept out of its paths instead (an answered
request's exception drops its frames, ``actor.drop_frames``; a retried create's
outcome is a value, ``guards.Outcome``): ``WATCH.statistics()`` says how many objects the
collector had to free (``collected``; near 0 when nothing makes cycles) and how long
its pauses were, in every actor's ``stats``.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class CollectorWatch:
    """The collector's pauses and what it freed (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.collections = 0
        self.collected = 0
        self.pause_s = 0.0
        self.longest_s = 0.0
        self.frozen = 0  # counted once: gc.get_freeze_count walks the whole list (1 ms)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        self.collections += 1
        self.collected += info["collected"]
        self.pause_s += took
        self.longest_s = max(self.longest_s, took)

    def statistics(self) -> dict[str, Any]:
        return {"collections": self.collections, "collected": self.collected,
                "pause_s": round(self.pause_s, 4),
                "longest_pause_ms": round(self.longest_s * 1000, 2),
                "frozen": self.frozen}


WATCH = CollectorWatch()
YOUNG_THRESHOLD = 50_000  # CPython's default is 700


def freeze_what_started() -> int:
    """Freeze everything there is, make young collections rarer (``YOUNG_THRESHOLD``)
    and watch the collector from now on; returns how many objects were frozen. No
    collection first: it would walk every record a start loaded (a second for a
    million volumes, on the restart's clock), and a start leaves no garbage cycles to
    speak of (importing every module of the gateway leaves 0)."""
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    if WATCH not in gc.callbacks:
        gc.callbacks.append(WATCH)
    WATCH.frozen = gc.get_freeze_count()
    return WATCH.frozen

"""A log that says the same kind of thing at most a few times a minute.

Input a peer controls (malformed messages, unknown ops, messages dropped for a peer
that does not read) must not let that peer grow our logs without bound: each kind
of line is written at most ``per_window`` times per ``window_s``; what was held
back is counted and said in one line when the next window opens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

WINDOW_S = 60.0
PER_WINDOW = 10


class ThrottledLog:
    def __init__(self, logger: logging.Logger, per_window: int = PER_WINDOW,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._log = logger
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> start, said, held

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = self._clock()
        start, said, held = self._windows.get(kind, (now, 0, 0))
        if now - start >= self._window_s:
            if held:
                self._log.warning("%d more %s lines were held back in the last %.0fs",
                                  held, kind, now - start)
            start, said, held = now, 0, 0
        if said < self._per_window:
            self._log.warning(message, *args)
            said += 1
        else:
            held += 1
        self._windows[kind] = (start, said, held)

    def held_back(self, kind: str) -> int:
        return self._windows.get(kind, (0.0, 0, 0))[2]

"""Named failpoints: places in the code where a test can make a process die or fail.

Off unless the environment names them, as FreeBSD's fail(9) and TiKV's ``fail``
crate::

    CINDERBLOCK_FAILPOINTS="gateway.volume_create.entry.after_commit=kill,quota.apply.before_commit"
    CINDERBLOCK_FAILPOINT_DIR=/path/to/markers      # optional: fire each point once

An action is ``kill`` (the default: SIGKILL of the process itself, as ``kill -9``
from outside, so nothing is flushed or unwound) or ``raise`` (``FailPointError``
at that place, as an I/O error would). With ``CINDERBLOCK_FAILPOINT_DIR`` set, a
point fires only if ``DIR/NAME`` does not exist, and makes that file before it
fires: the restarted process then runs past it, which is what a failpoint matrix
(kill there, restart, check the final state) needs.

Each module declares its points at import (``AFTER_COMMIT = declare("...")``) so
``declared()`` lists every name a matrix must cover; a call site is one attribute
test when nothing is armed::

    AFTER_COMMIT()   # does nothing unless armed
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "CINDERBLOCK_FAILPOINTS"
ENV_DIR = "CINDERBLOCK_FAILPOINT_DIR"
ACTIONS = ("kill", "raise")


class FailPointError(RuntimeError):
    """Raised by a failpoint armed with ``raise``."""


def _parse(spec: str) -> dict[str, str]:
    """``"a=kill,b"`` -> {"a": "kill", "b": "kill"}; ValueError names a bad action."""
    armed: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        action = action or "kill"
        if action not in ACTIONS:
            raise ValueError(
                f"{ENV}: failpoint {name!r} has action {action!r}; expected one of {ACTIONS}")
        armed[name] = action
    return armed


_ARMED = _parse(os.environ.get(ENV, ""))
_MARKS = os.environ.get(ENV_DIR) or None


class FailPoint:
    """One named place; calling it does nothing unless the environment armed it."""

    __slots__ = ("action", "name")

    def __init__(self, name: str, action: str | None) -> None:
        self.name = name
        self.action = action

    def __call__(self) -> None:
        if self.action is not None:
            self._fire()

    def _fire(self) -> None:
        if _MARKS is not None:
            mark = Path(_MARKS) / self.name
            try:
                mark.touch(exist_ok=False)
            except FileExistsError:
                return  # fired before this restart
        if self.action == "raise":
            raise FailPointError(f"failpoint {self.name}")
        os.kill(os.getpid(), signal.SIGKILL)

    def __repr__(self) -> str:
        return f"FailPoint({self.name!r}, {self.action!r})"


_DECLARED: dict[str, FailPoint] = {}


def declare(name: str) -> FailPoint:
    """The failpoint called ``name`` (declared once per process; names are global)."""
    if name in _DECLARED:
        raise ValueError(f"failpoint {name!r} is declared twice")
    point = _DECLARED[name] = FailPoint(name, _ARMED.get(name))
    return point


def declared() -> list[str]:
    """Every failpoint name declared by the modules imported so far, sorted."""
    return sorted(_DECLARED)

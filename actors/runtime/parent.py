"""An actor started by ``cinderblock up`` stops when ``up`` dies, however it dies.

``up`` passes its pid in ``CINDERBLOCK_PARENT_PID``; the actor asks Linux for
a SIGTERM when its parent exits (``prctl(PR_SET_PDEATHSIG)``), so a killed
``up`` (SIGKILL, a closed terminal) leaves no actors holding the data
directory. Actors started any other way (tests, benchmarks, by hand) are not
tied to their parent.

An actor that cannot start because of what it found (not a passing fault) exits
with ``EXIT_CANNOT_START``, so that ``up`` reports it instead of restarting it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal

PARENT_PID_ENV = "CINDERBLOCK_PARENT_PID"
# An actor's exit status when it must not be started again as things are (a database
# file it must not start over, its file owned by another process): ``up`` gives up.
EXIT_CANNOT_START = 78  # EX_CONFIG
PR_SET_PDEATHSIG = 1

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """Ask for SIGTERM when the supervising ``up`` exits; exit now if it already has."""
    wanted = os.environ.get(PARENT_PID_ENV)
    if not wanted:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("cannot ask to stop with my parent: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:  # not Linux
        log.warning("cannot ask to stop with my parent: %s", exc)
    if os.getppid() != int(wanted):  # it died before the request took effect
        raise SystemExit(f"cinderblock up (pid {wanted}) is gone; not starting")

"""An actor's log levels, read and changed while it runs (Cinder's ``set-log`` and
``get-log`` of ``os-services``, 3.32): the loggers whose names start with a prefix.

As Cinder's ``utils.set_log_levels``/``get_log_levels``: a level is one of DEBUG, INFO,
WARNING and ERROR (any case); it is set on every logger already made whose name starts
with the prefix (the empty prefix: every one, the libraries' too), and read as each
such logger's effective level. A level set so lasts until the actor restarts (a
restarted actor logs as its configuration says). Plain code over ``logging``'s manager.
"""

from __future__ import annotations

import logging

from cinderblock.protocol.wire.errors import InvalidInput

LOG_LEVELS = ("INFO", "WARNING", "ERROR", "DEBUG")  # Cinder's, in Cinder's order
MAX_PREFIX = 255


def check_level(level: object) -> int:
    """`level`'s number, or InvalidInput saying which are levels."""
    word = level.upper() if isinstance(level, str) else ""
    if word not in LOG_LEVELS:
        raise InvalidInput(f"{level!r} is not a valid log level: one of "
                           f"{', '.join(LOG_LEVELS)}", {"level": str(level)[:40]})
    number: int = getattr(logging, word)
    return number


def check_prefix(prefix: object) -> str:
    """A logger name prefix: a string of at most 255 characters (None: every logger)."""
    if prefix is None:
        return ""
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX:
        raise InvalidInput(f"a log prefix is a logger name's start, a string of at most "
                           f"{MAX_PREFIX} characters", {"field": "prefix"})
    return prefix


def _loggers(prefix: str) -> dict[str, logging.Logger]:
    return {name: found for name, found in list(logging.root.manager.loggerDict.items())
            if name and name.startswith(prefix) and isinstance(found, logging.Logger)}


def set_levels(prefix: str, level: str) -> list[str]:
    """Every logger of `prefix` set to `level`; the names set, sorted."""
    number = check_level(level)
    found = _loggers(check_prefix(prefix))
    for logger in found.values():
        logger.setLevel(number)
    return sorted(found)


def levels(prefix: str) -> dict[str, str]:
    """Each logger of `prefix` and its effective level's name."""
    return {name: logging.getLevelName(logger.getEffectiveLevel())
            for name, logger in sorted(_loggers(check_prefix(prefix)).items())}

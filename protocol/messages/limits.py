"""The largest numbers cinderblock stores, and the one check every edge uses.

SQLite holds 64-bit signed integers and msgpack at most 64-bit unsigned ones; every
number a request carries must fit both (the wire schema refuses any integer outside
SQLite's range). Tighter caps where Cinder has them: a quota limit is at most
2^31 - 1, as in Cinder's quota API, and so is a size in GiB (Cinder's DB_MAX_INT, its
schema's maximum), so sizes and their sums stay within SQLite's range.
"""

from __future__ import annotations

from cinderblock.protocol.wire.errors import InvalidInput

MAX_QUOTA_LIMIT = (1 << 31) - 1
MAX_SIZE_GB = 0x7FFFFFFF  # Cinder's DB_MAX_INT


def check_range(field: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an integer from ``low`` to ``high``, else ``invalid_input``
    naming the field."""
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(f"{field} must be an integer from {low} to {high}, got {value!r}",
                           {"field": field})
    return value

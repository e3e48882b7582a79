"""Back-end QoS on an export: I/O operations and bytes a second, as token buckets.

The limits are the libvirt/Cinder names a QoS spec uses (``total_iops_sec``,
``read_iops_sec``, ``write_iops_sec``, ``total_bytes_sec``, ``read_bytes_sec``,
``write_bytes_sec``; 0 or absent: no limit), worked out for the volume's size by the
gateway. A read counts against the read and total buckets, a write (and a trim or a
write of zeroes, as one operation of no bytes) against the write and total ones; a
flush against none. Each bucket holds one second of its rate and may go into debt: a
request larger than a second's worth is admitted after the wait it costs, and the
requests behind it wait their turn. The NBD server waits before it reads the next
request off the connection, so a throttled client's pipeline fills and TCP holds it
back; nothing is refused.

Plain code over an injected clock: ``Throttle.delay`` charges a request and says how
long it must wait; the connection does the waiting (and stops waiting when it is closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

LIMIT_KEYS = ("total_iops_sec", "read_iops_sec", "write_iops_sec",
              "total_bytes_sec", "read_bytes_sec", "write_bytes_sec")


@dataclass(frozen=True, slots=True)
class IoLimits:
    total_iops_sec: int = 0
    read_iops_sec: int = 0
    write_iops_sec: int = 0
    total_bytes_sec: int = 0
    read_bytes_sec: int = 0
    write_bytes_sec: int = 0

    @classmethod
    def from_specs(cls, specs: Mapping[str, int]) -> IoLimits:
        """The limits among ``specs`` (other keys are not this server's); a value that
        is not a whole number above 0 is no limit."""
        return cls(**{key: value for key in LIMIT_KEYS
                      if isinstance(value := specs.get(key), int) and value > 0})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def as_specs(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


class _Bucket:
    def __init__(self, rate: int, now: float) -> None:
        self.rate = float(rate)
        self.tokens = self.rate  # a second's worth, full at the start
        self.stamp = now

    def charge(self, amount: float, now: float) -> float:
        """Take ``amount``; the seconds until the bucket is out of debt again."""
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Throttle:
    def __init__(self, limits: IoLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        now = clock()
        self._buckets: dict[str, _Bucket] = {
            key: _Bucket(rate, now) for key, rate in limits.as_specs().items()}
        self.delayed = 0  # requests that waited
        self.waited_s = 0.0  # and how long, in all

    def delay(self, is_read: bool, nbytes: int) -> float:
        """Charge one request; the seconds it must wait before it runs."""
        side = "read" if is_read else "write"
        now = self._clock()
        wait = 0.0
        for key, amount in ((f"{side}_iops_sec", 1), ("total_iops_sec", 1),
                            (f"{side}_bytes_sec", nbytes), ("total_bytes_sec", nbytes)):
            bucket = self._buckets.get(key)
            if bucket is not None and amount:
                wait = max(wait, bucket.charge(amount, now))
        if wait > 0:
            self.delayed += 1
            self.waited_s += wait
        return wait

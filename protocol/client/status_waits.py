"""Waiting for a pushed status: the one mechanism behind every ``wait=True``.

The gateway pushes each change of a watched volume or snapshot to the client
that watches it. ``StatusWaits.seen`` records the push and settles the callers
waiting for it; ``wait`` returns at once if the newest known state already
matches, raises the kind's error if it reached one of the kind's error
statuses (``VOLUME_ERRORS``, ``SNAPSHOT_ERRORS``) the caller did not ask for,
and otherwise waits (with a deadline) for the push that does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import CinderblockError, PeerGone, Timeout


class Tracked(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def status(self) -> StrEnum: ...

    @property
    def updated_at(self) -> float: ...


T = TypeVar("T", bound=Tracked)


class VolumeError(CinderblockError):
    """A volume reached ``error`` (or another error status) while being waited for."""

    code = "volume_error"

    def __init__(self, volume: Volume) -> None:
        super().__init__(
            f"volume {volume.id} went to {volume.status}: {volume.reason or 'no reason given'}",
            {"volume_id": volume.id, "status": volume.status, "reason": volume.reason},
        )
        self.volume = volume


class StatusWaits(Generic[T]):
    def __init__(self, noun: str, error: Callable[[T], CinderblockError],
                 errors: frozenset[StrEnum], on_wait: Callable[[], None] = lambda: None,
                 ) -> None:
        """``on_wait``: called as a caller starts waiting (the client then watches its
        connection: a wait must hear that the pushes can no longer come)."""
        self.on_wait = on_wait
        self.noun = noun
        self.error = error
        self.errors = errors
        self._waiters: dict[str, list[tuple[frozenset[StrEnum], asyncio.Future[T]]]] = {}
        self._latest: dict[str, T] = {}

    def seen(self, obj: T) -> None:
        """A pushed state: remember it and settle whoever it answers."""
        self._latest[obj.id] = obj
        waiters = self._waiters.get(obj.id)
        if not waiters:
            return
        for wanted, fut in waiters:
            if fut.done():
                continue
            if obj.status in wanted:
                fut.set_result(obj)
            elif self._failed(obj.status, wanted):
                fut.set_exception(self.error(obj))
        waiters[:] = [(w, f) for w, f in waiters if not f.done()]

    @property
    def waiting(self) -> bool:
        """Whether anybody waits for a push now."""
        return bool(self._waiters)

    def fail_all(self, reason: str) -> None:
        """Fail every wait: the pushes it waits for can no longer come (the connection
        that watched went away with the gateway's end of the watch)."""
        waiters, self._waiters = self._waiters, {}
        for obj_id, futures in waiters.items():
            for _, fut in futures:
                if not fut.done():
                    fut.set_exception(PeerGone(
                        f"{self.noun} {obj_id}: {reason}; its status is unknown: wait again",
                        {f"{self.noun}_id": obj_id}))

    def statistics(self) -> dict[str, int]:
        """Callers waiting now, and pushed states kept for a wait still to come."""
        return {"waiting": sum(len(w) for w in self._waiters.values()),
                "remembered": len(self._latest)}

    def _failed(self, status: StrEnum, wanted: frozenset[StrEnum]) -> bool:
        return status in self.errors and status not in wanted

    async def wait(self, current: T, wanted: frozenset[StrEnum], timeout: float) -> T:
        latest = self._latest.pop(current.id, None)
        obj = latest if latest is not None and latest.updated_at >= current.updated_at else current
        if obj.status in wanted:
            return obj
        if self._failed(obj.status, wanted):
            raise self.error(obj)
        self.on_wait()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(obj.id, [])
        waiters.append((wanted, fut))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            words = sorted(map(str, wanted))
            raise Timeout(
                f"{self.noun} {obj.id} did not reach {words} within {timeout:g}s",
                {f"{self.noun}_id": obj.id, "status": obj.status},
            ) from None
        finally:
            self._latest.pop(obj.id, None)
            if all(f.done() for _, f in waiters):
                self._waiters.pop(obj.id, None)

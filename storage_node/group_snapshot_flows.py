"""A group snapshot on its node (``node.create_group_snapshot``): a snapshot of each
volume of a group, at one instant when its group's type says so (``consistent``).

    group_snapshot_create_manager  ReportGroupFailureTask → TakeGroupSnapshotTask →
                                   GroupSnapshotOnFinishTask

TakeGroupSnapshotTask holds the writes to every member's exports
(``ExportManager.writes_held``: new writes wait unanswered, those under way end first),
takes each snapshot with the driver, and lets the writes go; so the set is
crash-consistent (``nbd/write_gate.py``). Not ``consistent`` (Cinder's generic
groups), it takes them one after the other, each volume's writes held only while its
own snapshot is taken, as a single snapshot's create. If one snapshot fails, those taken are
deleted again and every member is reported ``error`` with why (ReportGroupFailureTask);
otherwise each is reported ``available``, as a single snapshot's create reports it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.groups import GroupSnapshotMember
from cinderblock.protocol.messages.lifecycle import SnapshotUpdate
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.wire.codec import Context
from cinderblock.storage_node.backends import Driver, DriverError

log = logging.getLogger(__name__)
GROUP_SNAPSHOT_HELD = declare("node.create_group_snapshot.writes_held")
GROUP_SNAPSHOT_BEFORE_REPORT = declare("node.create_group_snapshot.before_report")


class GroupSnapshotServices(Protocol):
    @property
    def driver(self) -> Driver: ...

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]: ...
    def tell_gateway(self, op: str, body: object, ctx: Context) -> None: ...
    def changed(self) -> None: ...


@dataclass(slots=True)
class GroupSnapshotOpContext:
    ctx: Context
    group_snapshot_id: str
    members: tuple[GroupSnapshotMember, ...]
    consistent: bool = True
    taken: list[GroupSnapshotMember] = field(default_factory=list)


class _Task(Task[GroupSnapshotOpContext]):
    def __init__(self, services: GroupSnapshotServices) -> None:
        self.s = services


class ReportGroupFailureTask(_Task):
    """Nothing on the way forward; on failure, every member is reported ``error``."""

    async def execute(self, c: GroupSnapshotOpContext) -> None:
        """The work is in revert."""

    async def revert(self, c: GroupSnapshotOpContext, failure: BaseException) -> None:
        why = f"group snapshot {c.group_snapshot_id} failed: {failure}"
        for m in c.members:
            self.s.tell_gateway("snapshot.update", SnapshotUpdate(m.snapshot_id, P.ERROR, why),
                                c.ctx)


class TakeGroupSnapshotTask(_Task):
    async def execute(self, c: GroupSnapshotOpContext) -> None:
        """Consistent: every member under one hold; else each under a hold of its own."""
        held_together = [c.members] if c.consistent else [(m,) for m in c.members]
        for members in held_together:
            async with self.s.writes_held(m.volume_id for m in members):
                GROUP_SNAPSHOT_HELD()
                for m in members:
                    await self.s.driver.create_snapshot(m.snapshot_id, m.volume_id)
                    c.taken.append(m)

    async def revert(self, c: GroupSnapshotOpContext, failure: BaseException) -> None:
        for m in c.taken:  # all or none
            with contextlib.suppress(DriverError):
                await self.s.driver.delete_snapshot(m.snapshot_id)


class GroupSnapshotOnFinishTask(_Task):
    async def execute(self, c: GroupSnapshotOpContext) -> None:
        self.s.changed()
        GROUP_SNAPSHOT_BEFORE_REPORT()
        for m in c.members:
            self.s.tell_gateway("snapshot.update", SnapshotUpdate(m.snapshot_id, P.AVAILABLE),
                                c.ctx)


def group_snapshot_create_manager(s: GroupSnapshotServices
                                  ) -> LinearFlow[GroupSnapshotOpContext]:
    return LinearFlow("group_snapshot_create_manager", [
        ReportGroupFailureTask(s), TakeGroupSnapshotTask(s), GroupSnapshotOnFinishTask(s)],
        given=("ctx", "group_snapshot_id", "members", "consistent"))


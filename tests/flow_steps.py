"""Tasks for flow tests that need no actor (their events: ``conftest.EventRecorder``)."""

from __future__ import annotations

import asyncio

from cinderblock.actors.flow.engine import Task


class Step(Task[None]):
    """A task named ``label`` that waits for ``gate`` if given, then fails with
    ``RuntimeError(fail)`` if given."""

    def __init__(self, label: str, fail: str | None = None,
                 gate: asyncio.Event | None = None) -> None:
        self.label, self.fail, self.gate = label, fail, gate

    @property
    def name(self) -> str:
        return self.label

    async def execute(self, ctx: None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise RuntimeError(self.fail)

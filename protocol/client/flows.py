"""The client library's flow history call, mixed into ``Client`` and ``SyncClient``:

    history = await c.flow_history(done_within_s=10.0)
    for trace in history.flows:          # failed first, then running, then done
        print(trace.flow, trace.volume_id, [s.state for s in trace.steps])
    history.missing                      # actors that did not answer in time

A non-admin sees its own project's flows; an admin sees every project's with
``all_projects=True``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cinderblock.protocol.messages.flows import FlowHistoryRequest, FlowTraceList
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class FlowMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def flow_history(
        self, all_projects: bool = False, limit: int = 500, done_within_s: float | None = None
    ) -> FlowTraceList:
        """The flows the gateway, the scheduler and the nodes remember: running ones,
        failed ones, and those done within ``done_within_s`` (all kept, if None)."""
        body = FlowHistoryRequest(all_projects, limit, done_within_s)
        return parse(FlowTraceList, await self.call("flow.history", body), strict=False)


class SyncFlowMethods:
    def _run(self, make: Callable[[FlowMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def flow_history(
        self, all_projects: bool = False, limit: int = 500, done_within_s: float | None = None
    ) -> FlowTraceList:
        return self._run(lambda c: c.flow_history(all_projects, limit, done_within_s))

"""What the gateway's helpers (attachments, lifecycle, admin, reconciler, quota
sync, flow history) may use of the gateway: a narrow protocol, so that none of
them imports the ``Gateway`` class that owns them (no import circles).

``Gateway`` satisfies it structurally; a test can hand a helper anything else
that does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.flow.history import FlowHistory
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.gateway.watchers import Watchers
from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.protocol.messages.flows import FlowTraceList
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context


class GatewayServices(Protocol):
    """The gateway's state and services its helpers share."""

    @property
    def name(self) -> str: ...
    @property
    def cfg(self) -> ClusterConfig: ...
    @property
    def store(self) -> GatewayStore: ...
    @property
    def watchers(self) -> Watchers: ...
    @property
    def types(self) -> TypeCatalog: ...
    @property
    def events(self) -> EventPublisher: ...
    @property
    def flow_history(self) -> FlowHistory: ...
    @property
    def router(self) -> Link:
        """The ROUTER clients and nodes come to (a node's identity is its host name)."""
    @property
    def scheduler(self) -> Link: ...
    @property
    def quota(self) -> Link: ...

    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...
    def attachment_status(self, volume_id: str) -> VolumeStatus:
        """The status the volume's attachments make it (``volume_status_for``)."""
    async def quota_call(self, op: str, body: object, ctx: Context,
                         timeout: float | None = None) -> dict[str, Any]: ...
    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None: ...
    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]: ...
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]: ...
    def every(self, seconds: float, tick: Callable[[], Awaitable[None] | None]) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def on_flow_recent(self, req: Request) -> FlowTraceList: ...

"""Events: every flow, task and status change an actor publishes.

An actor calls ``emit`` (or ``add``, an event already whole) as often as it
likes; the events gather in a buffer, and a flush ``FLUSH_S`` after the first
publishes them as one msgpack message per project, ``[b"<project>/", Events]``
(``b"/"`` for the cluster's own events: heartbeats, backend stats,
notifications without a project), at most ``FLUSH_EVENTS`` events a message,
so a busy actor pays one send per project per 10 ms, not one per event or per
loop turn (a dashboard redraws far less often than that; every send is a
wake-up of libzmq's I/O thread, a CURVE box, and a message the hub forwards). The hub
lets a member subscribe only to its own project's topic, an admin to all.
Publishing is PUB/SUB: a slow or absent subscriber loses events and
never slows the actor down.

The publisher is an XPUB socket: the hub forwards its subscribers'
subscriptions upstream, so an actor knows whether anybody listens at all and,
when nobody does, does not even build its events (libzmq would drop them
anyway). A dashboard that subscribes turns them on within one round trip.

Event maps (the wire schema the dashboard reads), all with ``kind``, ``actor``, ``ts``:
- flow:   flow_id, flow, volume_id, state, reason?
- task:   flow_id, flow, volume_id, task, state, reason?
- volume: volume_id, project_id, status, size, host?, name?, volume_type?, reason?
- notify: volume_id, event ("volume.create.start" ...), host
- heartbeat: statistics of the actor
- backend: the stats a node published
- liveness: subject (a backend, or quota/scheduler as the gateway sees them), state
  (up/down), volume_ids? (the creates failed with a node that went down)
- reconcile: stuck (ids the gateway's reconciler found stuck), acted (those it moved on)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import zmq

from cinderblock.protocol.wire.access import event_topic
from cinderblock.protocol.wire.codec import pack
from cinderblock.protocol.wire.transport import Channel, tune

Dial = Callable[[zmq.Socket[bytes], str], None]
FLUSH_S = 0.01
FLUSH_EVENTS = 256  # a task event is ~250 bytes packed: a message stays far below MAX_FRAME


class EventPublisher:
    def __init__(
        self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str | None, actor: str,
        dial: Dial | None = None,
    ) -> None:
        self.actor = actor
        self._buffer: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._channel: Channel | None = None
        self._loop = asyncio.get_running_loop()
        self.published = 0
        self._topics: set[bytes] = set()
        self.listening = False
        if endpoint:
            sock = ctx.socket(zmq.XPUB)
            tune(sock)
            if dial is not None:
                dial(sock, "gateway")  # the hub is the gateway's
            sock.connect(endpoint)
            self._channel = Channel(sock, self._on_subscription)

    def _on_subscription(self, frames: list[bytes]) -> None:
        """XPUB delivers b"\x01topic" (subscribe) and b"\x00topic" (unsubscribe)."""
        message = frames[0]
        if not message:
            return
        topic = message[1:]
        if message[0] == 1:
            self._topics.add(topic)
        else:
            self._topics.discard(topic)
        self.listening = bool(self._topics)

    def emit(self, kind: str, **fields: Any) -> None:
        if not self.listening:
            return
        fields["kind"] = kind
        fields["actor"] = self.actor
        if "ts" not in fields:  # the flow engine gives the time it recorded the change at
            fields["ts"] = time.time()
        self.add(fields)

    def add(self, event: dict[str, Any]) -> None:
        """Publish `event`, already whole; called only while ``listening``."""
        if self._timer is None:
            self._timer = self._loop.call_later(FLUSH_S, self._flush)
        self._buffer.append(event)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events, self._buffer = self._buffer, []
        if self._channel is None or not events:
            return
        by_project: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_project.setdefault(event.get("project_id") or "", []).append(event)
        for project, batch in by_project.items():
            topic = event_topic(project)
            for start in range(0, len(batch), FLUSH_EVENTS):
                self._channel.send([topic, pack(batch[start:start + FLUSH_EVENTS])])
        self.published += len(events)

    def close(self) -> None:
        self._flush()
        if self._channel is not None:
            self._channel.close()

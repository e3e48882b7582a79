"""User messages: why a volume went to an error status, kept for its project.

As Cinder's ``message`` API: when a scheduler's or a node's report moves a volume to
``error`` or ``error_deleting`` with a reason, the gateway records one message (the
action and the reason) for the volume's project, in its SQLite file (table
``user_messages``). Messages expire after 30 days (Cinder's ``message_ttl``); at most
``MAX_KEPT`` are kept: past it, the oldest message of the project that holds the most
goes, so that one project's flood of errors does not wipe out every other project's
messages. A project sees its own; an admin may see every project's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Protocol

from cinderblock.actors.gateway.paging import (
    FIXED_BYTES,
    in_listing_order,
    page,
    sort_direction,
)
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.protocol.messages.user_messages import (
    MessageList,
    MessageListRequest,
    UserMessage,
)
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import NotFound

TTL_S = 30 * 24 * 3600.0
MAX_KEPT = 10_000
# (action id, action) by the error status a volume moved to, as Cinder's message_field
ACTIONS = {
    VolumeStatus.ERROR: ("001", "schedule allocate volume"),
    VolumeStatus.ERROR_EXTENDING: ("003", "extend volume"),
    VolumeStatus.ERROR_DELETING: ("008", "delete volume"),
}


class MessageServices(Protocol):
    store: GatewayStore


class UserMessages:
    def __init__(self, services: MessageServices) -> None:
        self.s = services
        self.kept: OrderedDict[str, UserMessage] = OrderedDict()
        self.held: Counter[str] = Counter()  # messages kept, by project

    def handlers(self) -> dict[str, Handler]:
        return {"message.list": self.on_list, "message.show": self.on_show,
                "message.delete": self.on_delete}

    async def load(self) -> None:
        (await self.s.store.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: the messages kept (at start, and after a failed write);
        what it returns makes them the ones in memory (messages never change: replaced)."""
        rows = conn.execute(
            "SELECT id, project_id, resource_uuid, action, event_id, user_message, "
            "request_id, created_at, expires_at FROM user_messages WHERE expires_at > ? "
            "ORDER BY created_at", (time.time(),)).fetchall()
        kept = OrderedDict(
            (mid, UserMessage(mid, project, volume_id, action, event_id, text, request_id=rid,
                              created_at=created, expires_at=expires))
            for mid, project, volume_id, action, event_id, text, rid, created, expires in rows)
        return partial(self._keep, kept)

    def _keep(self, kept: OrderedDict[str, UserMessage]) -> None:
        self.kept = kept
        self.held = Counter(m.project_id for m in kept.values())

    def record(self, rec: VolumeRecord, request_id: str | None = None) -> None:
        """Remember why ``rec`` went to its error status (nothing for other moves)."""
        action = ACTIONS.get(rec.status)
        if action is None or not rec.reason:
            return
        now = time.time()
        msg = UserMessage(
            id=str(uuid.uuid4()), project_id=rec.project_id, resource_uuid=rec.id,
            action=action[1], event_id=f"VOLUME_VOLUME_{action[0]}_001",
            user_message=f"{action[1]}: {rec.reason}", request_id=request_id,
            created_at=now, expires_at=now + TTL_S)
        self.kept[msg.id] = msg
        self.held[msg.project_id] += 1
        self.s.store.db.write(
            "INSERT INTO user_messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (msg.id, msg.project_id, msg.resource_uuid, msg.action, msg.event_id,
             msg.user_message, msg.request_id, msg.created_at, msg.expires_at))
        while len(self.kept) > MAX_KEPT:
            self._forget(self._oldest_of_the_most_held())

    def _oldest_of_the_most_held(self) -> UserMessage:
        """What goes past ``MAX_KEPT``: the oldest message of the project holding the most
        (a walk of the messages, once a message is recorded past the bound)."""
        most = max(self.held, key=self.held.__getitem__)
        return next(m for m in self.kept.values() if m.project_id == most)

    def _forget(self, msg: UserMessage) -> asyncio.Future[None]:
        """Drop ``msg``; the future resolves once its row's deletion is committed."""
        del self.kept[msg.id]
        self.held[msg.project_id] -= 1
        if not self.held[msg.project_id]:
            del self.held[msg.project_id]
        return self.s.store.db.write("DELETE FROM user_messages WHERE id=?", (msg.id,))

    def on_list(self, req: Request) -> MessageList:
        """A page of them, newest first (as volumes': ``limit``, ``marker``, at most 1000
        and about 512 KB a page; they were all in one reply, which past 1,700 to 2,600
        messages, by the length of their reasons, exceeded a frame and was refused), or
        oldest first (``sort_dir`` "asc")."""
        body: MessageListRequest = req.body
        everyone = body.all_projects and req.ctx.is_admin
        project = None if everyone else req.ctx.project_id
        now = time.time()
        wanted = [(field, value) for field, value in (
            ("resource_uuid", body.resource_uuid), ("event_id", body.event_id),
            ("request_id", body.request_id), ("resource_type", body.resource_type),
            ("message_level", body.message_level)) if value is not None]

        def passes(m: UserMessage) -> bool:
            return m.expires_at > now and all(getattr(m, f) == v for f, v in wanted)

        oldest_first = sort_direction(body.sort_dir, "messages")
        mine = [m for m in self.kept.values() if project is None or m.project_id == project]
        found, next_marker = page(
            self.kept.get, partial(in_listing_order, mine, oldest_first), project, passes,
            body.marker, body.limit, message_bytes)
        return MessageList(tuple(found), next_marker)

    def on_show(self, req: Request) -> UserMessage:
        return self._visible(req.body.message_id, req.ctx)

    async def on_delete(self, req: Request) -> Empty:
        msg = self._visible(req.body.message_id, req.ctx)
        await self._forget(msg)
        return Empty()

    def _visible(self, message_id: str, ctx: Context) -> UserMessage:
        msg = self.kept.get(message_id)
        if msg is None or (msg.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"Message {message_id} could not be found.",
                           {"message_id": message_id})
        return msg


def message_bytes(m: UserMessage) -> int:
    """About how many bytes the message takes in a reply (its texts, an upper bound)."""
    return FIXED_BYTES + len(m.user_message.encode()) + len(m.action) + len(m.event_id)

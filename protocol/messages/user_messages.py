"""User messages on the wire (Cinder's ``messages`` API, microversion 3.3): why a
volume went to an error status, for the project that owns it.

Client → gateway: ``message.list`` (``MessageListRequest``), ``message.show`` and
``message.delete`` (``MessageRef``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class UserMessage:
    id: str
    project_id: str
    resource_uuid: str
    action: str  # what was being done: "schedule allocate volume", "extend volume"...
    event_id: str  # Cinder's VOLUME_VOLUME_<action>_<detail>
    user_message: str  # "<action>: <why>"
    message_level: str = "ERROR"
    resource_type: str = "VOLUME"
    request_id: str | None = None
    created_at: float = 0.0
    expires_at: float = 0.0


@message
@dataclass(frozen=True, slots=True)
class MessageListRequest:
    resource_uuid: str | None = None
    all_projects: bool = False
    limit: int | None = None  # a page, newest first, as volumes' (at most 1000)
    marker: str | None = None  # the last message id of the previous page
    # Cinder's other message filters: only the messages with this field so
    event_id: str | None = None
    request_id: str | None = None
    resource_type: str | None = None
    message_level: str | None = None
    sort_dir: str | None = None  # "asc": oldest first instead (by creation, ties by id)


@message
@dataclass(frozen=True, slots=True)
class MessageList:
    messages: tuple[UserMessage, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class MessageRef:
    message_id: str

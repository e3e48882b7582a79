"""Events on the wire: what every actor publishes to the event hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.wire.schema import message

# Every event message is [topic, Events]; the topic is b"<project>/" (b"/" for the
# cluster's own events: protocol.wire.access.event_topic). TOPIC, a prefix of every
# topic, is what an admin's dashboard subscribes to; a member's subscribes to its project's.
TOPIC = b""


@message
@dataclass(frozen=True, slots=True)
class Events:
    """A batch of events published together (one message per flush)."""

    events: tuple[dict[str, Any], ...] = ()

"""Events on the wire: what every actor publishes to the event hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cinderblock.protocol.wire.schema import message

TOPIC = b"evt"  # every event message is [TOPIC, Events]: what a dashboard subscribes to


@message
@dataclass(frozen=True, slots=True)
class Events:
    """A batch of events published together (one message per flush)."""

    events: tuple[dict[str, Any], ...] = ()

"""A reply that would not fit in a frame is refused by its sender with a clear error
that reaches the caller, never sent to be dropped (which cut peers off)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cinderblock.actors.runtime.actor import Actor, Handler, Request
from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.codec import MAX_FRAME
from cinderblock.protocol.wire.errors import CinderblockError


class Oversharing(Actor):
    """Answers ping with whatever size it is told to."""

    name = "oversharing"

    def __init__(self, endpoint: str) -> None:
        super().__init__(None)
        self.endpoint = endpoint
        self.reply_bytes = 10

    def handlers(self) -> dict[str, Handler]:
        return {"ping": self.on_ping}

    def on_ping(self, req: Request) -> dict[str, Any]:
        return {"blob": "x" * self.reply_bytes}

    async def on_start(self) -> None:
        self.bind(self.endpoint, domain="oversharing")  # no trust: plain


async def test_a_reply_over_the_frame_limit_becomes_an_error_the_caller_receives() -> None:
    actor = Oversharing(f"tcp://127.0.0.1:{free_port()}")
    running = asyncio.create_task(actor.run())
    try:
        async with Client(actor.endpoint, timeout=5.0) as client:
            await client.ping()  # a small reply goes through
            actor.reply_bytes = 2 * MAX_FRAME
            with pytest.raises(CinderblockError, match="over the 1048576-byte frame limit") \
                    as caught:
                await client.ping()
            assert caught.value.code == "internal"
            actor.reply_bytes = 10
            await client.ping()  # and the connection is still there
    finally:
        actor.stop()
        await running

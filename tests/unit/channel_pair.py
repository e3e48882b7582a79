"""Two ``Channel``s on loopback, for the wire's unit tests (``conftest.pair``)."""

from __future__ import annotations

import asyncio

import zmq

from cinderblock.protocol.wire.batching import Batcher
from cinderblock.protocol.wire.transport import Channel


class ChannelPair:
    """A ROUTER (mandatory routing) and a DEALER (identity ``dealer-1``) connected to
    it, each a Channel and a Batcher; what each receives is kept as whole messages,
    what the DEALER's Batcher loses in ``lost``."""

    def __init__(self) -> None:
        self.router_got: asyncio.Queue[list[bytes]] = asyncio.Queue()
        self.dealer_got: asyncio.Queue[list[bytes]] = asyncio.Queue()
        self.lost: list[tuple[list[int], str]] = []
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        rsock = ctx.socket(zmq.ROUTER)
        rsock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        rsock.bind("tcp://127.0.0.1:*")
        dsock = ctx.socket(zmq.DEALER)
        dsock.setsockopt(zmq.IDENTITY, b"dealer-1")
        dsock.connect(rsock.getsockopt_string(zmq.LAST_ENDPOINT))
        self.router = Channel(rsock, self.router_got.put_nowait)
        self.dealer = Channel(dsock, self.dealer_got.put_nowait)
        self.router_out = Batcher(self.router, routed=True)
        self.dealer_out = Batcher(self.dealer, routed=False,
                                  on_lost=lambda ids, exc: self.lost.append((ids, exc.code)))

    async def router_message(self) -> list[bytes]:
        return await asyncio.wait_for(self.router_got.get(), 5.0)

    async def dealer_message(self) -> list[bytes]:
        return await asyncio.wait_for(self.dealer_got.get(), 5.0)

    def close(self) -> None:
        self.router.close()
        self.dealer.close()

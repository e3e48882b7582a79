"""A client whose gateway goes away while it waits hears so at once, not at its deadline.

A stand-in gateway (a plain ROUTER on 127.0.0.1) takes a request and then closes its
socket without answering, as a gateway killed mid-request does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import zmq
import zmq.asyncio

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client, SyncClient
from cinderblock.protocol.messages.volumes import Volume, VolumeList
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Envelope, decode, encode, next_id
from cinderblock.protocol.wire.errors import PeerGone
from cinderblock.protocol.wire.schema import dump

DEADLINE_S = 30.0  # the client's own timeout: far beyond what any check here waits


class StandInGateway:
    """A ROUTER that can be closed under a waiting client, and bound again."""

    def __init__(self, zctx: zmq.asyncio.Context, address: str) -> None:
        self.zctx, self.address = zctx, address
        self.sock: zmq.asyncio.Socket | None = None

    def start(self) -> None:
        self.sock = self.zctx.socket(zmq.ROUTER)
        self.sock.bind(self.address)

    async def request(self) -> tuple[bytes, Envelope]:
        assert self.sock is not None
        identity, payload = await self.sock.recv_multipart()
        return identity, decode(payload)

    async def answer(self, identity: bytes, env: Envelope, body: object) -> None:
        assert self.sock is not None
        await self.sock.send_multipart(
            [identity, encode(Envelope("rep", next_id(), env.op, body, None, env.msg_id))])

    def kill(self) -> None:
        assert self.sock is not None
        self.sock.close(linger=0)
        self.sock = None


@pytest.fixture
async def gateway() -> AsyncIterator[StandInGateway]:
    zctx = zmq.asyncio.Context()
    stand_in = StandInGateway(zctx, f"tcp://127.0.0.1:{free_port()}")
    stand_in.start()
    try:
        yield stand_in
    finally:
        if stand_in.sock is not None:
            stand_in.kill()
        zctx.term()


async def test_a_call_the_gateway_took_down_with_it_fails_at_once_and_the_next_reconnects(
    gateway: StandInGateway,
) -> None:
    async with Client(gateway.address, timeout=DEADLINE_S) as client:
        call = asyncio.create_task(client.show_volume("vol-1"))
        _, env = await gateway.request()
        assert env.op == "volume.show"
        began = time.monotonic()
        gateway.kill()
        with pytest.raises(PeerGone) as caught:
            await asyncio.wait_for(call, 10.0)
        assert time.monotonic() - began < 5.0  # not the 30 s deadline
        message = str(caught.value)
        assert message.startswith("volume.show: the connection to the gateway at "
                                  f"{gateway.address} closed before it answered")
        assert "may or may not have been carried out" in message

        gateway.start()  # the gateway back on its port: the same client goes on
        ping = asyncio.create_task(client.ping())
        identity, env = await asyncio.wait_for(gateway.request(), 10.0)
        await gateway.answer(identity, env, {})
        await asyncio.wait_for(ping, 10.0)


async def test_an_answered_call_is_untouched_and_a_wait_for_a_push_fails_with_the_connection(
    gateway: StandInGateway,
) -> None:
    volume = Volume(id="vol-1", project_id="demo", size=1, status=VolumeStatus.CREATING,
                    created_at=1.0, updated_at=1.0)
    async with Client(gateway.address, timeout=DEADLINE_S) as client:
        wait = asyncio.create_task(client.wait_for_status("vol-1"))
        identity, env = await gateway.request()
        assert env.op == "volume.watch"
        await gateway.answer(identity, env, dump(VolumeList((volume,))))
        await asyncio.sleep(0.2)  # the watch answered: the wait waits for a push now
        assert not wait.done()
        gateway.kill()
        with pytest.raises(PeerGone) as caught:
            await asyncio.wait_for(wait, 10.0)
        assert str(caught.value) == (f"volume vol-1: the connection to the gateway at "
                                     f"{gateway.address} closed; its status is unknown: "
                                     "wait again")


@contextmanager
def answering_pings(address: str) -> Iterator[None]:
    """A stand-in gateway in a thread of its own, answering every request until the end."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.ROUTER)
    sock.bind(address)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if sock.poll(50):
                identity, payload = sock.recv_multipart()
                env = decode(payload)
                reply = Envelope("rep", next_id(), env.op, {}, None, env.msg_id)
                sock.send_multipart([identity, encode(reply)])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sock.close(linger=0)
        zctx.term()


def test_a_gateway_restarted_between_two_calls_of_a_script_is_no_news_to_the_second() -> None:
    """A script's client runs its loop only during a call: the connection closed and
    opened again while no call ran, and the second call must simply be answered."""
    address = f"tcp://127.0.0.1:{free_port()}"
    with SyncClient(address, timeout=5.0) as client:
        with answering_pings(address):
            client.ping()
        with answering_pings(address):
            time.sleep(0.5)  # the old connection closed, the new one opened meanwhile
            client.ping()

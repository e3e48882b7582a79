"""The request id each call carries on the wire: a new one per call, or, for a view made
by ``acting_for`` with an HTTP request's id, that id on its first call and the id
numbered on each later one (no two calls share a retry key)."""

from __future__ import annotations

import asyncio
import contextlib

import zmq
import zmq.asyncio

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import VolumeRef
from cinderblock.protocol.wire.codec import Envelope, decode_frame


async def sent_request_ids(calls: int, view_of: str | None) -> list[str]:
    """The request ids of ``calls`` calls made by a client (or by its view acting for
    another user with ``view_of`` as the request id), read by a socket in the gateway's
    place that never answers."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    client = Client(endpoint, project="front", timeout=30.0)
    caller = (client if view_of is None
              else client.acting_for("p1", "alice", ("member",), request_id=view_of))
    pending = [asyncio.create_task(caller.call("volume.show", VolumeRef(f"v-{i}")))
               for i in range(calls)]
    seen: dict[str, str] = {}
    try:
        async with asyncio.timeout(10):
            while len(seen) < calls:
                frames = await router.recv_multipart()
                for envelope, _ in decode_frame(frames[-1]):
                    assert isinstance(envelope, Envelope) and envelope.context is not None
                    said = envelope.context
                    seen[envelope.body["volume_id"]] = said.request_id
                    if view_of is not None:
                        assert (said.project_id, said.user_id) == ("p1", "alice")
    finally:
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client.close()
        router.close(linger=0)
        ctx.term()
    return [seen[f"v-{i}"] for i in range(calls)]


async def test_a_view_s_calls_carry_its_request_id_then_the_id_numbered() -> None:
    assert await sent_request_ids(3, "req-http-1") == ["req-http-1", "req-http-1.2",
                                                        "req-http-1.3"]


async def test_a_client_s_own_calls_each_carry_a_new_request_id() -> None:
    ids = await sent_request_ids(3, None)
    assert len(set(ids)) == 3 and all(rid.startswith("req-") for rid in ids)

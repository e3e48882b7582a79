"""A client that follows a data directory's endpoints.json goes where its gateway moved."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import zmq
import zmq.asyncio

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.codec import Envelope, decode, encode, next_id


async def _answer_pings(sock: zmq.asyncio.Socket, seen: list[str], name: str) -> None:
    while True:
        identity, payload = await sock.recv_multipart()
        env = decode(payload)
        seen.append(name)
        reply = Envelope("rep", next_id(), env.op, {}, None, env.msg_id)
        await sock.send_multipart([identity, encode(reply)])


async def test_a_rewritten_endpoints_file_moves_the_client_to_the_new_gateway(
    tmp_path: Path,
) -> None:
    zctx = zmq.asyncio.Context()
    endpoints = tmp_path / "endpoints.json"
    seen: list[str] = []
    servers, tasks = [], []
    try:
        addresses = {}
        for name in ("old", "new"):
            sock = zctx.socket(zmq.ROUTER)
            addresses[name] = f"tcp://127.0.0.1:{free_port()}"
            sock.bind(addresses[name])
            servers.append(sock)
            tasks.append(asyncio.create_task(_answer_pings(sock, seen, name)))
        endpoints.write_text(json.dumps({"gateway": addresses["old"]}))
        async with Client(addresses["old"], follow=endpoints, timeout=5.0) as client:
            await client.ping()
            time.sleep(0.01)  # a later mtime, whatever the file system's granularity
            endpoints.write_text(json.dumps({"gateway": addresses["new"]}))
            await client.ping()
            endpoints.unlink()  # no cluster published now: the client stays where it is
            await client.ping()
        assert seen == ["old", "new", "new"]
    finally:
        for task in tasks:
            task.cancel()
        for sock in servers:
            sock.close(linger=0)
        zctx.term()

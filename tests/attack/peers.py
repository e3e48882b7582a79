"""Hostile peers for the attack tests: bare sockets that speak the envelope by hand,
with no key, a key nobody listed, or a real key used where it does not belong."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgpack
import zmq

from cinderblock.protocol.wire.codec import PROTOCOL_VERSION
from cinderblock.protocol.wire.keys import KeyPair, client_keys, curve_client, load_public

NO_REPLY_MS = 1000
# How long a send waits for a connection to queue on. A server drops a refused peer's
# connection when its handshake fails, and until the socket reconnects a DEALER has
# nowhere to put a message: without a bound, its send would wait forever.
SEND_MS = 300


def stranger() -> KeyPair:
    """A valid CURVE key pair that no users file and no keys directory lists."""
    public, secret = zmq.curve_keypair()
    return KeyPair("stranger", public, secret)


def server_key(cluster_dir: str, server: str) -> bytes:
    return load_public(Path(cluster_dir) / "keys" / f"{server}.key")


class Peer:
    """One socket of a hostile process (closed by ``close``)."""

    def __init__(self, kind: int, endpoint: str, *, own: KeyPair | None = None,
                 server: bytes | None = None, identity: bytes | None = None,
                 user_key: Path | None = None) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDTIMEO, SEND_MS)
        if identity is not None:
            self.sock.setsockopt(zmq.IDENTITY, identity)
        if user_key is not None:
            keys = client_keys(user_key)
            assert keys is not None
            own, server = keys
        if own is not None and server is not None:
            curve_client(self.sock, own, server)
        self.sock.connect(endpoint)

    def envelope(self, op: str, body: Any = None, *, kind: str = "req", msg_id: int = 1,
                 corr_id: int | None = None, context: dict[str, Any] | None = None,
                 error: dict[str, Any] | None = None) -> bool:
        """Send one envelope; False when no connection would take it (see ``SEND_MS``).
        A test that expects an answer finds out at ``reply``."""
        ctx = context if context is not None else {
            "project_id": "attacker", "user_id": "attacker", "roles": ["member"],
            "request_id": f"req-{uuid.uuid4()}"}
        try:
            self.sock.send(msgpack.packb(
                [PROTOCOL_VERSION, kind, msg_id, corr_id, op, ctx, body, error]))
        except zmq.Again:
            return False
        return True

    def reply(self, timeout_ms: int = 5000) -> list[Any]:
        assert self.sock.poll(timeout_ms), "no reply"
        env: list[Any] = msgpack.unpackb(self.sock.recv_multipart()[-1], raw=False)
        return env

    def nothing(self, timeout_ms: int = NO_REPLY_MS) -> bool:
        """Whether nothing at all arrives within the time."""
        return not self.sock.poll(timeout_ms)

    def close(self) -> None:
        self.sock.close(linger=0)

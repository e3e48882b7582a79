"""The gateway as a trust boundary: raw bytes from a plain ZeroMQ DEALER.

Whatever arrives (garbage, an oversized frame, an unknown op, a body of the
wrong shape), the gateway answers with an ``invalid_input`` error reply or the
socket's size limit drops the frame, and it goes on serving the next client.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.codec import MAX_FRAME, PROTOCOL_VERSION
from cinderblock.protocol.wire.errors import Forbidden, NotFound
from cinderblock.protocol.wire.keys import client_keys, curve_client
from tests.conftest import E2ECluster

REPLY_WAIT_MS = 5000


class RawPeer:
    """A bare DEALER speaking msgpack by hand."""

    def __init__(self, endpoint: str, key: Path | None = None) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        keys = client_keys(key)
        if keys is not None:
            curve_client(self.sock, *keys)
        self.sock.connect(endpoint)
        self._ids = iter(range(1, 1 << 30))

    def send_raw(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def envelope(self, op: str, body: Any = None, *, kind: str = "req",
                 msg_id: int | None = None, context: Any = "default",
                 version: int = PROTOCOL_VERSION) -> int:
        msg_id = next(self._ids) if msg_id is None else msg_id
        ctx = ({"project_id": "wire", "user_id": "wire", "roles": ["member"],
                "request_id": f"req-{uuid.uuid4()}"} if context == "default" else context)
        self.send_raw(msgpack.packb([version, kind, msg_id, None, op, ctx, body, None]))
        return msg_id

    def reply(self, timeout_ms: int = REPLY_WAIT_MS) -> list[Any]:
        assert self.sock.poll(timeout_ms), "no reply from the gateway"
        frames = self.sock.recv_multipart()
        env = msgpack.unpackb(frames[-1], raw=False)
        assert env[1] == "rep"
        return list(env)

    def no_reply(self, timeout_ms: int = 300) -> None:
        assert not self.sock.poll(timeout_ms), "expected no reply"

    def error(self, timeout_ms: int = REPLY_WAIT_MS) -> tuple[int | None, dict[str, Any]]:
        env = self.reply(timeout_ms)
        assert env[7] is not None, f"expected an error reply, got {env}"
        return env[3], env[7]

    def ping(self) -> None:
        msg_id = self.envelope("ping", {})
        env = self.reply()
        assert (env[3], env[7]) == (msg_id, None)

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def raw(cluster: E2ECluster) -> Iterator[RawPeer]:
    peer = RawPeer(cluster.gateway, cluster.user_key("wire"))
    yield peer
    peer.close()


@pytest.fixture
def still_serving(cluster: E2ECluster) -> Iterator[None]:
    """After the test, a normal client can still create a volume end to end."""
    yield
    project = f"after-{uuid.uuid4().hex[:8]}"
    with SyncClient(cluster.gateway, project=project, key=cluster.user_key(project),
                    timeout=10.0) as c:
        assert c.create_volume(1, wait=True).status == "available"


pytestmark = pytest.mark.usefixtures("still_serving")


# ---- bytes that are not an envelope ------------------------------------------------------
@pytest.mark.parametrize(
    ("frame", "mentions"),
    [
        pytest.param(b"\xc1garbage\x00\xff", "not valid msgpack", id="garbage"),
        pytest.param(b"", "not valid msgpack", id="empty"),
        pytest.param(b"\x91" * 5000, "not valid msgpack", id="deeply-nested"),
        pytest.param(msgpack.packb({"op": "volume.create"}), "array", id="a-map"),
        pytest.param(msgpack.packb([1, "req", 1]), "at least 8", id="too-short"),
        pytest.param(msgpack.packb({1: 2}), "not valid msgpack", id="int-map-key"),
        pytest.param(msgpack.packb(msgpack.ExtType(5, b"x")), "not valid msgpack", id="ext"),
    ],
)
def test_bytes_that_are_not_an_envelope_get_an_invalid_input_reply(
    raw: RawPeer, frame: bytes, mentions: str
) -> None:
    raw.send_raw(frame)

    corr_id, error = raw.error()

    assert corr_id is None
    assert error["code"] == "invalid_input"
    assert mentions in error["message"]
    raw.ping()


def test_a_frame_over_the_codec_limit_but_under_the_socket_limit_is_refused_by_size(
    raw: RawPeer,
) -> None:
    raw.send_raw(msgpack.packb([b"x" * (MAX_FRAME + 10)]))

    _, error = raw.error()

    assert error["code"] == "invalid_input"
    assert "exceeds" in error["message"] and str(MAX_FRAME) in error["message"]
    raw.ping()


def test_an_oversized_frame_is_dropped_by_the_socket_limit(
    raw: RawPeer, cluster: E2ECluster
) -> None:
    raw.envelope("volume.create", {"size": 1, "name": "x" * (2 * MAX_FRAME)})

    raw.no_reply(500)

    with SyncClient(cluster.gateway, key=cluster.user_key(), timeout=5.0) as c:
        c.ping()


def test_a_burst_of_random_bytes_gets_one_error_reply_each(raw: RawPeer) -> None:
    rng = random.Random(20240601)
    frames = [rng.randbytes(rng.randrange(1, 300)) for _ in range(300)]
    arrays = {*range(0x90, 0xA0), 0xDC, 0xDD}  # first bytes of msgpack arrays: no envelopes
    frames = [f for f in frames if f[0] not in arrays]
    for frame in frames:
        raw.send_raw(frame)

    codes = [raw.error()[1]["code"] for _ in frames]

    assert set(codes) == {"invalid_input"}
    raw.ping()


# ---- envelopes that are wrong -----------------------------------------------------------
def test_an_unsupported_protocol_version_is_refused_with_the_message_id(raw: RawPeer) -> None:
    msg_id = raw.envelope("ping", {}, version=99)

    corr_id, error = raw.error()

    assert corr_id == msg_id
    assert error["code"] == "invalid_input" and "version" in error["message"]


@pytest.mark.parametrize(
    ("context", "mentions"),
    [
        pytest.param("not-a-map", "context must be a map", id="string"),
        pytest.param({"project_id": 5}, "must be strings", id="int-project"),
        pytest.param({"roles": "admin"}, "roles", id="roles-string"),
        pytest.param({"project_id": "p" * 300}, "too long", id="long-project"),
    ],
)
def test_a_bad_context_is_refused(raw: RawPeer, context: Any, mentions: str) -> None:
    msg_id = raw.envelope("volume.list", {}, context=context)

    corr_id, error = raw.error()

    assert corr_id == msg_id
    assert error["code"] == "invalid_input" and mentions in error["message"]


@pytest.mark.parametrize("kind", [[], {}, ["req"], 5, None])
def test_an_envelope_whose_kind_is_not_a_string_is_refused(raw: RawPeer, kind: Any) -> None:
    raw.send_raw(msgpack.packb([PROTOCOL_VERSION, kind, 5, None, "ping", None, {}, None]))

    corr_id, error = raw.error()

    assert corr_id == 5
    assert error["code"] == "invalid_input" and "kind must be one of" in error["message"]
    raw.ping()


def test_a_valid_envelope_with_an_unknown_op_gets_an_invalid_input_reply(raw: RawPeer) -> None:
    msg_id = raw.envelope("volume.explode", {"size": 1})

    corr_id, error = raw.error()

    assert corr_id == msg_id
    assert error["code"] == "invalid_input"
    assert "unknown op 'volume.explode'" in error["message"]
    assert error["details"] == {"op": "volume.explode"}


@pytest.mark.parametrize("op", ["quota.reserve", "quota.apply", "schedule.create",
                                "node.create_volume"])
def test_ops_of_other_actors_are_unknown_to_the_gateway(raw: RawPeer, op: str) -> None:
    raw.envelope(op, {})

    _, error = raw.error()

    assert error["code"] == "invalid_input" and "unknown op" in error["message"]


@pytest.mark.parametrize(
    ("body", "field", "mentions"),
    [
        pytest.param({"size": "big"}, "size", "does not match '^[0-9]+$'", id="size-string"),
        pytest.param({"size": 1, "name": 5}, "name", "must be a string", id="name-int"),
        pytest.param({"size": 1, "metadata": [1, 2]}, "metadata", "is not of type 'object'",
                     id="metadata-list"),
        pytest.param({"size": 1, "watch": 1}, "watch", "must be a boolean", id="watch-int"),
        pytest.param({"size": 1, "colour": "red"}, "colour", "not a known field",
                     id="unknown-field"),
        pytest.param([1], "", "body must be a map", id="body-list"),
    ],
)
def test_a_body_of_the_wrong_shape_gets_an_error_naming_the_field(
    raw: RawPeer, body: Any, field: str, mentions: str
) -> None:
    msg_id = raw.envelope("volume.create", body)

    corr_id, error = raw.error()

    assert corr_id == msg_id
    assert error["code"] == "invalid_input"
    assert mentions in error["message"]
    assert error["details"].get("field") == field


def test_casts_events_and_stray_replies_get_no_answer_and_do_no_harm(raw: RawPeer) -> None:
    raw.envelope("volume.create", {"size": "big"}, kind="cast")
    raw.envelope("volume.explode", {}, kind="cast")
    raw.envelope("volume.status", {"id": "x"}, kind="evt")
    raw.send_raw(msgpack.packb([PROTOCOL_VERSION, "rep", 7, 123456, "ping", None, {}, None]))

    raw.no_reply()
    raw.ping()


def test_a_request_split_over_several_frames_is_read_from_its_last_frame(raw: RawPeer) -> None:
    payload = msgpack.packb([PROTOCOL_VERSION, "req", 42, None, "ping", None, {}, None])

    raw.send_raw(b"junk", payload)

    env = raw.reply()
    assert (env[3], env[7]) == (42, None)


# ---- what a client must not be able to do through the gateway ----------------------------
def test_a_client_cannot_change_a_volumes_status_with_an_internal_update(
    raw: RawPeer, cluster: E2ECluster
) -> None:
    with SyncClient(cluster.gateway, project="victim",
                    key=cluster.user_key("victim"), timeout=10.0) as victim:
        vol = victim.create_volume(1, wait=True)

        msg_id = raw.envelope("volume.update", {"volume_id": vol.id, "status": "error",
                                                "reason": "spoofed"})
        corr_id, error = raw.error()

        assert corr_id == msg_id
        assert error["code"] == "forbidden"
        assert victim.show_volume(vol.id).status == "available"


def test_non_admins_cannot_create_types_or_set_quotas(cluster: E2ECluster) -> None:
    with SyncClient(cluster.gateway, project="plain",
                    key=cluster.user_key("plain"), timeout=10.0) as c:
        with pytest.raises(Forbidden):
            c.create_type("mine")
        with pytest.raises(Forbidden):
            c.set_quota("plain", volumes=1000)
        with pytest.raises(Forbidden):
            c.show_quota("someone-else")
        with pytest.raises(NotFound):
            c.show_volume(str(uuid.uuid4()))

"""The one place where bytes become messages and back.

An envelope is a msgpack array, so new fields can only be appended:

    [version, kind, msg_id, corr_id, op, context, body, error]

- version: int, ``PROTOCOL_VERSION``; a peer refuses versions it does not speak.
- kind: "req" (wants a reply), "rep" (answers ``corr_id``), "cast" (no reply),
  "evt" (an event, published or pushed).
- msg_id: int, unique per sender; corr_id: the msg_id a reply answers, else None.
- op: str, e.g. "volume.create".
- context: map {project_id, user_id, roles, request_id} or None.
- body: map or None.  error: {code, message, details} on a failed reply, else None.

A frame carries one envelope, or a batch: a msgpack array of 2 to ``MAX_BATCH`` bin
items, each one envelope exactly as it would travel alone (what one loop turn sends
to one peer; ``protocol/wire/batching.py``). An envelope's first field is an integer,
a batch's a bin, so the two never look alike. ``decode_frame`` reads either and says
each envelope's own size, which is what the byte bounds count.

Decoding is a trust boundary. Frames larger than ``MAX_FRAME`` are refused
before msgpack sees them (sockets also set ZMQ_MAXMSGSIZE), the unpacker has
explicit length limits and ``strict_map_key``, ext types are refused, and every
field is type-checked. Anything wrong raises ``MalformedMessage`` saying what.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20  # 1 MiB: no control-plane message is anywhere near this
MAX_BATCH = 64  # envelopes one frame may carry
BATCH_ITEM_OVERHEAD = 5  # msgpack's header of a bin (and of the batch's array), at most
KINDS = frozenset({"req", "rep", "cast", "evt"})

_UNPACK_LIMITS: dict[str, Any] = {
    "raw": False,
    "strict_map_key": True,
    "use_list": True,
    "max_str_len": MAX_FRAME,
    "max_bin_len": MAX_FRAME,
    "max_array_len": 100_000,
    "max_map_len": 100_000,
    "max_ext_len": 0,
}


class MalformedMessage(ValueError):
    """Bytes from a peer that are not a valid envelope; the text says why."""

    def __init__(self, problem: str, msg_id: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.msg_id = msg_id  # known when the envelope was readable enough


@dataclass(frozen=True, slots=True)
class Context:
    """Who is asking: Cinder's request context, trimmed to what is used."""

    project_id: str = "demo"
    user_id: str = "demo"
    roles: tuple[str, ...] = ("member",)
    request_id: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def to_wire(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "user_id": self.user_id,
            "roles": list(self.roles),
            "request_id": self.request_id,
        }


SYSTEM_CONTEXT = Context(project_id="", user_id="cinderblock", roles=("admin",))


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: str
    msg_id: int
    op: str
    body: Any = None
    context: Context | None = None
    corr_id: int | None = None
    error: dict[str, Any] | None = None
    version: int = PROTOCOL_VERSION
    extra: tuple[Any, ...] = field(default=())


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_ids = itertools.count(secrets.randbits(48))  # not a guessable 1, 2, 3 per process


def next_id() -> int:
    return next(_ids)


def encode(env: Envelope) -> bytes:
    ctx = env.context.to_wire() if env.context is not None else None
    frame: bytes = _packer.pack(
        [env.version, env.kind, env.msg_id, env.corr_id, env.op, ctx, env.body, env.error]
    )
    return frame


def pack(value: Any) -> bytes:
    """Encode a plain value (used for published events and stats)."""
    data: bytes = _packer.pack(value)
    return data


def unpack(frame: bytes) -> Any:
    """Decode a plain value with the same limits as envelopes."""
    if len(frame) > MAX_FRAME:
        raise MalformedMessage(f"frame of {len(frame)} bytes exceeds the {MAX_FRAME} limit")
    try:
        return msgpack.unpackb(frame, **_UNPACK_LIMITS)
    except Exception as exc:  # msgpack raises several unrelated types
        detail = str(exc) or type(exc).__name__  # StackError (too deep) has no text
        raise MalformedMessage(f"not valid msgpack: {detail}") from exc


def decode(frame: bytes) -> Envelope:
    return _envelope(unpack(frame))


def pack_batch(payloads: list[bytes]) -> bytes:
    """Encoded envelopes as one frame (a batch); at most ``MAX_BATCH`` of them."""
    frame: bytes = _packer.pack(payloads)
    return frame


Decoded = tuple[Envelope | MalformedMessage, int]  # an envelope (or why not) and its bytes


def decode_frame(frame: bytes) -> list[Decoded]:
    """The envelopes a frame carries (one, or a batch), each with its size in bytes.
    A frame that cannot be read at all raises ``MalformedMessage``; in a batch, an
    envelope that is malformed stands as its ``MalformedMessage``, and the others
    are read as if they had come alone."""
    raw = unpack(frame)
    if type(raw) is list and raw and type(raw[0]) is bytes:
        if len(raw) > MAX_BATCH:
            raise MalformedMessage(f"a batch carries at most {MAX_BATCH} envelopes, "
                                   f"not {len(raw)}")
        return [_batched(item) for item in raw]
    return [(_envelope(raw), len(frame))]


def _batched(item: Any) -> Decoded:
    if type(item) is not bytes:
        return MalformedMessage("a batch holds each envelope as bin"), 0
    try:
        return _envelope(unpack(item)), len(item)
    except MalformedMessage as exc:
        return exc, len(item)


def _envelope(raw: Any) -> Envelope:
    if type(raw) is not list or len(raw) < 8:
        raise MalformedMessage("envelope must be an array of at least 8 fields")
    version, kind, msg_id, corr_id, op, ctx, body, error = raw[:8]
    if type(msg_id) is not int:
        raise MalformedMessage("msg_id must be an integer")
    if version != PROTOCOL_VERSION:
        raise MalformedMessage(f"protocol version {version!r} is not supported", msg_id)
    if type(kind) is not str or kind not in KINDS:  # a list or map is unhashable
        raise MalformedMessage(f"kind must be one of {sorted(KINDS)}, got {kind!r}", msg_id)
    if corr_id is not None and type(corr_id) is not int:
        raise MalformedMessage("corr_id must be an integer or nil", msg_id)
    if type(op) is not str or not op or len(op) > 64:
        raise MalformedMessage("op must be a non-empty string of at most 64 characters", msg_id)
    if error is not None and type(error) is not dict:
        raise MalformedMessage("error must be a map or nil", msg_id)
    context = _decode_context(ctx, msg_id)
    return Envelope(kind, msg_id, op, body, context, corr_id, error, version, tuple(raw[8:]))


def _decode_context(ctx: Any, msg_id: int) -> Context | None:
    if ctx is None:
        return None
    if type(ctx) is not dict:
        raise MalformedMessage("context must be a map or nil", msg_id)
    project = ctx.get("project_id", "")
    user = ctx.get("user_id", "")
    roles = ctx.get("roles", [])
    request_id = ctx.get("request_id", "")
    if not (type(project) is str and type(user) is str and type(request_id) is str):
        raise MalformedMessage("context project_id, user_id and request_id must be strings", msg_id)
    if type(roles) is not list or not all(type(r) is str for r in roles):
        raise MalformedMessage("context roles must be a list of strings", msg_id)
    if len(project) > 255 or len(user) > 255 or len(request_id) > 255 or len(roles) > 32:
        raise MalformedMessage("context fields are too long", msg_id)
    return Context(project, user, tuple(roles), request_id)

"""Errors that cross the wire, with Cinder's meanings.

Every failure a peer can see is one of these codes, carried as
``{code, message, details}`` in a reply; never a pickle or a traceback.
Inside Python each code is an exception class, so callers catch what they mean:

    CinderblockError            (any error reply)
    ├── InvalidInput            invalid_input   400  the request itself is wrong
    ├── NotFound                not_found       404  no such volume / type / zone
    ├── OverQuota               over_quota      413  a quota limit would be exceeded
    ├── InvalidState            invalid_state   409  not allowed in the object's status
    ├── NoValidHost             no_valid_host   --   no backend can take the volume
    ├── Forbidden               forbidden       403  the caller's roles do not allow it
    ├── Timeout                 timeout         504  no answer before the deadline
    └── Unavailable             unavailable     503  the peer is gone or not ready
        ├── PeerGone            peer_gone       503  the peer is not connected: it went
        │                                            away (or has not come yet); theirs
        └── Closed              closed          503  we closed the channel, client or
                                                     actor ourselves; ours, not the peer's

Whose fault, as h11's Local vs Remote errors: ``PeerGone`` says the other side is
not there (asking again later may work); ``Closed`` says this side shut the door
(asking again through it never will). Both are ``Unavailable``, so code that only
cares that the call failed catches that.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CinderblockError(Exception):
    """An error with a wire code, a human message and machine-readable details."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.details!r})"


class InvalidInput(CinderblockError):
    code = "invalid_input"
    http_status = 400


class NotFound(CinderblockError):
    code = "not_found"
    http_status = 404


class OverQuota(CinderblockError):
    code = "over_quota"
    http_status = 413


class InvalidState(CinderblockError):
    code = "invalid_state"
    http_status = 409


class NoValidHost(CinderblockError):
    code = "no_valid_host"
    http_status = 500


class Forbidden(CinderblockError):
    code = "forbidden"
    http_status = 403


class Timeout(CinderblockError):
    code = "timeout"
    http_status = 504


class Unavailable(CinderblockError):
    code = "unavailable"
    http_status = 503


class PeerGone(Unavailable):
    """The addressed peer is not connected (``details["peer"]`` names it)."""

    code = "peer_gone"


class Closed(Unavailable):
    """Our own channel, client or actor was closed (or is stopping)."""

    code = "closed"


class InternalError(CinderblockError):
    code = "internal"
    http_status = 500


ERROR_CLASSES: dict[str, type[CinderblockError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        NotFound,
        OverQuota,
        InvalidState,
        NoValidHost,
        Forbidden,
        Timeout,
        Unavailable,
        PeerGone,
        Closed,
        InternalError,
    )
}


def error_from_wire(raw: object) -> CinderblockError:
    """Rebuild the exception a peer sent; an unrecognisable error is still an error."""
    if not isinstance(raw, dict):
        return InternalError(f"malformed error reply: {raw!r:.200}")
    code = raw.get("code")
    message = raw.get("message")
    details = raw.get("details")
    cls = ERROR_CLASSES.get(code, InternalError) if isinstance(code, str) else InternalError
    text = message if isinstance(message, str) else f"error {code!r}"
    return cls(text, details if isinstance(details, dict) else {})

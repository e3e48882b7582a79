"""The NBD wire protocol (newstyle, fixed handshake): constants, packing, parsing. No I/O.

Theory (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md):

    server                                  client
    NBDMAGIC IHAVEOPT handshake-flags  -->
                                       <--  client-flags
                                       <--  IHAVEOPT option length data      (repeat)
    REPLY_MAGIC option reply-type len data -->                               (0..n each)
    ... until NBD_OPT_GO (ACK) or NBD_OPT_EXPORT_NAME (size, flags) ...
                                       <--  REQUEST_MAGIC flags type cookie offset length [data]
    SIMPLE_REPLY_MAGIC error cookie [data]  -->
    STRUCTURED_REPLY_MAGIC flags type cookie length payload  -->   (once negotiated)

Everything the network sends is hostile. Parsers raise `ProtocolError` when the peer broke
framing (the connection must close: there is no resynchronising), and `OptionError` when
one option is malformed (the server replies with its code and haggling goes on).
`Negotiation` answers options; `check_request` is the whole policy for a transmission
request (the NBD errno to reply with, or None).

Structured replies are served when a client negotiates them (NBD_OPT_STRUCTURED_REPLY),
for one reason: the `base:allocation` metadata context (NBD_OPT_SET_META_CONTEXT), so
that NBD_CMD_BLOCK_STATUS tells a client such as nbdcopy or qemu-img which extents of a
sparse volume are holes, and it need not read them. With structured replies a READ is
answered by one OFFSET_DATA chunk (or an ERROR chunk), as the spec requires; the other
commands keep simple replies, which the spec allows.

TLS is mandatory (the spec's "forced TLS" mode): before NBD_OPT_STARTTLS succeeds, every
option but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME (which
cannot be refused) closes the connection. After the upgrade the caller says `secured()`.
Exports never enumerate: NBD_OPT_LIST answers an empty list. Which exports a client
may open is the caller's `lookup` (it knows the client's certificate).
"""

from __future__ import annotations

import enum
import errno
import struct
from collections.abc import Callable
from dataclasses import dataclass

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPTION_REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF
ALLOCATION_CONTEXT = "base:allocation"  # the one metadata context served
ALLOCATION_CONTEXT_ID = 1
MAX_META_QUERIES = 16  # queries one meta context option may carry
MAX_EXTENTS = 1024  # descriptors one block status reply gives (fewer: the client asks on)

MAX_NAME_BYTES = 4096  # the spec's limit on export names and strings
CLIENT_FLAGS_SIZE = 4
OPTION_HEADER_SIZE = 16
REQUEST_SIZE = 28
EXPORT_NAME_PADDING = 124  # zero bytes after NBD_OPT_EXPORT_NAME's reply unless NO_ZEROES


class HandshakeFlag(enum.IntFlag):
    FIXED_NEWSTYLE = 1 << 0
    NO_ZEROES = 1 << 1


class ClientFlag(enum.IntFlag):
    FIXED_NEWSTYLE = 1 << 0
    NO_ZEROES = 1 << 1


class Option(enum.IntEnum):
    EXPORT_NAME = 1
    ABORT = 2
    LIST = 3
    PEEK_EXPORT = 4
    STARTTLS = 5
    INFO = 6
    GO = 7
    STRUCTURED_REPLY = 8
    LIST_META_CONTEXT = 9
    SET_META_CONTEXT = 10
    EXTENDED_HEADERS = 11


_ERR = 1 << 31


class Reply(enum.IntEnum):
    ACK = 1
    SERVER = 2
    INFO = 3
    META_CONTEXT = 4
    ERR_UNSUP = _ERR | 1
    ERR_POLICY = _ERR | 2
    ERR_INVALID = _ERR | 3
    ERR_PLATFORM = _ERR | 4
    ERR_TLS_REQD = _ERR | 5
    ERR_UNKNOWN = _ERR | 6
    ERR_SHUTDOWN = _ERR | 7
    ERR_BLOCK_SIZE_REQD = _ERR | 8
    ERR_TOO_BIG = _ERR | 9


class Info(enum.IntEnum):
    EXPORT = 0
    NAME = 1
    DESCRIPTION = 2
    BLOCK_SIZE = 3


class TransmissionFlag(enum.IntFlag):
    HAS_FLAGS = 1 << 0
    READ_ONLY = 1 << 1
    SEND_FLUSH = 1 << 2
    SEND_FUA = 1 << 3
    ROTATIONAL = 1 << 4
    SEND_TRIM = 1 << 5
    SEND_WRITE_ZEROES = 1 << 6
    SEND_DF = 1 << 7
    CAN_MULTI_CONN = 1 << 8


class Command(enum.IntEnum):
    READ = 0
    WRITE = 1
    DISC = 2
    FLUSH = 3
    TRIM = 4
    CACHE = 5
    WRITE_ZEROES = 6
    BLOCK_STATUS = 7


class ReplyType(enum.IntEnum):
    """Structured reply chunk types (those sent here)."""

    NONE = 0
    OFFSET_DATA = 1
    BLOCK_STATUS = 5
    ERROR = (1 << 15) | 1


REPLY_FLAG_DONE = 1


class BlockState(enum.IntFlag):
    """`base:allocation`'s status flags."""

    HOLE = 1 << 0
    ZERO = 1 << 1


class CommandFlag(enum.IntFlag):
    FUA = 1 << 0
    NO_HOLE = 1 << 1
    DF = 1 << 2
    REQ_ONE = 1 << 3
    FAST_ZERO = 1 << 4


class Errno(enum.IntEnum):
    """Error values on the wire; fixed by the protocol, not the host's errno numbers."""

    EPERM = 1
    EIO = 5
    ENOMEM = 12
    EINVAL = 22
    ENOSPC = 28
    EOVERFLOW = 75
    ENOTSUP = 95
    ESHUTDOWN = 108


SERVER_HANDSHAKE_FLAGS = HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES
_TRANSMISSION_FLAGS = (
    TransmissionFlag.HAS_FLAGS
    | TransmissionFlag.SEND_FLUSH
    | TransmissionFlag.SEND_FUA
    | TransmissionFlag.SEND_TRIM
    | TransmissionFlag.SEND_WRITE_ZEROES
    | TransmissionFlag.CAN_MULTI_CONN
)
# Plain ints: `~` on an IntFlag only spans its named members, unknown bits would slip by.
_KNOWN_CLIENT_FLAGS = int(ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES)
_SUPPORTED_COMMAND_FLAGS = int(CommandFlag.FUA | CommandFlag.NO_HOLE)
_BLOCK_STATUS_FLAGS = int(CommandFlag.REQ_ONE)
_WRITING_COMMANDS = frozenset({Command.WRITE, Command.TRIM, Command.WRITE_ZEROES})
_GROWING_COMMANDS = frozenset({Command.WRITE, Command.WRITE_ZEROES})  # ENOSPC past the end

_GREETING = struct.Struct(">QQH")
_CLIENT_FLAGS = struct.Struct(">I")
_OPTION_HEADER = struct.Struct(">QII")
_OPTION_REPLY = struct.Struct(">QIII")
_REQUEST = struct.Struct(">IHHQQI")
_SIMPLE_REPLY = struct.Struct(">IIQ")
_EXPORT_INFO = struct.Struct(">QH")
_INFO_EXPORT = struct.Struct(">HQH")
_INFO_BLOCK_SIZE = struct.Struct(">HIII")
_STRUCTURED_REPLY = struct.Struct(">IHHQI")
_U32 = struct.Struct(">I")
_EXTENT = struct.Struct(">II")
_ERROR_CHUNK = struct.Struct(">IH")


class ProtocolError(Exception):
    """The remote peer broke the protocol's framing; the connection must be closed."""


class OptionError(Exception):
    """One option's payload is malformed; reply with `reply` and keep negotiating."""

    def __init__(self, reply: Reply, message: str) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class OptionHeader:
    option: int
    length: int


@dataclass(frozen=True, slots=True)
class InfoRequest:
    """The payload of NBD_OPT_INFO and NBD_OPT_GO."""

    name: str
    info_types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Request:
    flags: int
    command: int
    cookie: int
    offset: int
    length: int

    @property
    def carries_payload(self) -> bool:
        return self.command == Command.WRITE


def server_greeting() -> bytes:
    return _GREETING.pack(NBDMAGIC, IHAVEOPT, SERVER_HANDSHAKE_FLAGS)


def parse_client_flags(data: bytes) -> ClientFlag:
    (flags,) = _CLIENT_FLAGS.unpack(data)
    if flags & ~_KNOWN_CLIENT_FLAGS:
        raise ProtocolError(f"unknown client flags {flags:#x}")
    return ClientFlag(flags)


def parse_option_header(data: bytes) -> OptionHeader:
    magic, option, length = _OPTION_HEADER.unpack(data)
    if magic != IHAVEOPT:
        raise ProtocolError(f"bad option magic {magic:#x}")
    return OptionHeader(option, length)


def parse_export_name(data: bytes) -> str:
    if len(data) > MAX_NAME_BYTES:
        raise OptionError(Reply.ERR_TOO_BIG, "export name longer than 4096 bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OptionError(Reply.ERR_INVALID, "export name is not UTF-8") from exc


def parse_info_request(data: bytes) -> InfoRequest:
    """Parse `u32 name length, name, u16 count, count * u16 info type`."""
    if len(data) < 6:
        raise OptionError(Reply.ERR_INVALID, "option payload shorter than 6 bytes")
    (name_length,) = struct.unpack_from(">I", data)
    if name_length > len(data) - 6:
        raise OptionError(Reply.ERR_INVALID, "export name length overruns the option")
    name = parse_export_name(data[4 : 4 + name_length])
    (count,) = struct.unpack_from(">H", data, 4 + name_length)
    rest = data[6 + name_length :]
    if len(rest) != 2 * count:
        raise OptionError(Reply.ERR_INVALID, "information request count mismatch")
    return InfoRequest(name, struct.unpack(f">{count}H", rest))


def parse_meta_context_request(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Parse `u32 name length, name, u32 count, count * (u32 length, query)`."""
    if len(data) < 8:
        raise OptionError(Reply.ERR_INVALID, "option payload shorter than 8 bytes")
    (name_length,) = _U32.unpack_from(data)
    if name_length > len(data) - 8:
        raise OptionError(Reply.ERR_INVALID, "export name length overruns the option")
    name = parse_export_name(data[4 : 4 + name_length])
    at = 4 + name_length
    (count,) = _U32.unpack_from(data, at)
    if count > MAX_META_QUERIES:
        raise OptionError(Reply.ERR_TOO_BIG, f"more than {MAX_META_QUERIES} queries")
    at += 4
    queries = []
    for _ in range(count):
        if at + 4 > len(data):
            raise OptionError(Reply.ERR_INVALID, "query count overruns the option")
        (length,) = _U32.unpack_from(data, at)
        if at + 4 + length > len(data):
            raise OptionError(Reply.ERR_INVALID, "query length overruns the option")
        try:
            queries.append(data[at + 4 : at + 4 + length].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise OptionError(Reply.ERR_INVALID, "query is not UTF-8") from exc
        at += 4 + length
    if at != len(data):
        raise OptionError(Reply.ERR_INVALID, "bytes after the last query")
    return name, tuple(queries)


def option_reply(option: int, reply: Reply, data: bytes = b"") -> bytes:
    return _OPTION_REPLY.pack(OPTION_REPLY_MAGIC, option, reply, len(data)) + data


def export_name_reply(size: int, flags: TransmissionFlag, no_zeroes: bool) -> bytes:
    padding = b"" if no_zeroes else bytes(EXPORT_NAME_PADDING)
    return _EXPORT_INFO.pack(size, flags) + padding


def transmission_flags(readonly: bool) -> TransmissionFlag:
    return _TRANSMISSION_FLAGS | TransmissionFlag.READ_ONLY if readonly else _TRANSMISSION_FLAGS


@dataclass(frozen=True, slots=True)
class ExportInfo:
    name: str
    size: int
    readonly: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """Bytes to send for one option, then: transmit on `export`, close, start TLS, or keep
    haggling."""

    reply: bytes
    export: ExportInfo | None = None
    close: bool = False
    starttls: bool = False  # after sending `reply`, upgrade the connection to TLS


class Negotiation:
    """The server's side of option haggling for one connection: options in, `Answer`s out.

    `lookup` finds an export this client may open (None if unknown or not its own); it is
    the caller's, so this class does no I/O and can be driven directly in tests.
    """

    def __init__(
        self, lookup: Callable[[str], ExportInfo | None], block_sizes: tuple[int, int, int]
    ) -> None:
        self._lookup = lookup
        self._block_sizes = block_sizes  # minimum, preferred, maximum
        self.no_zeroes = False
        self.tls = False
        self.structured = False  # NBD_OPT_STRUCTURED_REPLY negotiated
        self._allocation_for: str | None = None  # the export base:allocation was set for

    def allocation_context(self, export_name: str) -> int | None:
        """The context id of `base:allocation` if the last NBD_OPT_SET_META_CONTEXT
        selected it for this export (then NBD_CMD_BLOCK_STATUS may be sent), else None."""
        return ALLOCATION_CONTEXT_ID if self._allocation_for == export_name else None

    def secured(self) -> None:
        """The connection now runs over TLS: options other than STARTTLS are answered."""
        self.tls = True

    def client_flags(self, data: bytes) -> None:
        self.no_zeroes = ClientFlag.NO_ZEROES in parse_client_flags(data)

    def answer(self, option: int, data: bytes) -> Answer:
        try:
            return self._answer(option, data)
        except OptionError as exc:
            return self.refuse(option, exc)

    def refuse(self, option: int, error: OptionError) -> Answer:
        if option == Option.EXPORT_NAME:
            return Answer(b"", close=True)  # the one option with no way to say no
        return Answer(option_reply(option, error.reply, str(error)[:256].encode()))

    def _answer(self, option: int, data: bytes) -> Answer:
        if not self.tls:
            return self._before_tls(option, data)
        match option:
            case Option.EXPORT_NAME:
                export = self._find(parse_export_name(data))
                flags = transmission_flags(export.readonly)
                return Answer(export_name_reply(export.size, flags, self.no_zeroes), export)
            case Option.INFO | Option.GO:
                export = self._find(parse_info_request(data).name)
                return Answer(self._info(option, export), export if option == Option.GO else None)
            case Option.LIST:
                if data:
                    raise OptionError(Reply.ERR_INVALID, "NBD_OPT_LIST takes no data")
                return Answer(option_reply(option, Reply.ACK))  # exports do not enumerate
            case Option.STARTTLS:
                raise OptionError(Reply.ERR_INVALID, "TLS is already negotiated")
            case Option.ABORT:
                return Answer(option_reply(option, Reply.ACK), close=True)
            case Option.STRUCTURED_REPLY:
                if data:
                    raise OptionError(Reply.ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data")
                self.structured = True
                return Answer(option_reply(option, Reply.ACK))
            case Option.LIST_META_CONTEXT | Option.SET_META_CONTEXT:
                return Answer(self._meta_context(option, data))
            case _:
                return Answer(option_reply(option, Reply.ERR_UNSUP, b"option not supported"))

    def _meta_context(self, option: int, data: bytes) -> bytes:
        """`base:allocation` listed or selected when a query names it (a listing also for
        `base:` or no query); queries of other namespaces select nothing."""
        setting = option == Option.SET_META_CONTEXT
        if setting:
            self._allocation_for = None  # a set replaces the last, even when it fails
        if not self.structured:
            raise OptionError(Reply.ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first")
        name, queries = parse_meta_context_request(data)
        self._find(name)
        wanted = {ALLOCATION_CONTEXT} | (set() if setting else {"base:"})
        if not (wanted & set(queries) or (not queries and not setting)):
            return option_reply(option, Reply.ACK)
        if setting:
            self._allocation_for = name
        context_id = ALLOCATION_CONTEXT_ID if setting else 0  # a listing's ids are 0
        described = _U32.pack(context_id) + ALLOCATION_CONTEXT.encode()
        return option_reply(option, Reply.META_CONTEXT, described) + option_reply(
            option, Reply.ACK)

    def _before_tls(self, option: int, data: bytes) -> Answer:
        match option:
            case Option.STARTTLS:
                if data:
                    raise OptionError(Reply.ERR_INVALID, "NBD_OPT_STARTTLS takes no data")
                return Answer(option_reply(option, Reply.ACK), starttls=True)
            case Option.ABORT:
                return Answer(option_reply(option, Reply.ACK), close=True)
            case _:  # NBD_OPT_EXPORT_NAME included: `refuse` closes the connection
                raise OptionError(Reply.ERR_TLS_REQD, "TLS is required: NBD_OPT_STARTTLS first")

    def _find(self, name: str) -> ExportInfo:
        export = self._lookup(name)
        if export is None:
            raise OptionError(Reply.ERR_UNKNOWN, f"no export named {name!r}")
        return export

    def _info(self, option: int, export: ExportInfo) -> bytes:
        flags = transmission_flags(export.readonly)
        return b"".join(
            (
                option_reply(
                    option, Reply.INFO, _INFO_EXPORT.pack(Info.EXPORT, export.size, flags)
                ),
                option_reply(
                    option, Reply.INFO, _INFO_BLOCK_SIZE.pack(Info.BLOCK_SIZE, *self._block_sizes)
                ),
                option_reply(option, Reply.ACK),
            )
        )


def parse_request(data: bytes) -> Request:
    magic, flags, command, cookie, offset, length = _REQUEST.unpack(data)
    if magic != REQUEST_MAGIC:
        raise ProtocolError(f"bad request magic {magic:#x}")
    return Request(flags, command, cookie, offset, length)


def simple_reply(cookie: int, error: int = 0) -> bytes:
    return _SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, cookie)


def done_chunk(cookie: int) -> bytes:
    """A final NONE chunk: success, nothing to carry (a READ of no bytes: an OFFSET_DATA
    chunk must carry at least one)."""
    return _STRUCTURED_REPLY.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, ReplyType.NONE,
                                  cookie, 0)


def data_chunk_header(cookie: int, offset: int, length: int) -> bytes:
    """The header of a final OFFSET_DATA chunk whose `length` bytes follow it."""
    return _STRUCTURED_REPLY.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE,
                                  ReplyType.OFFSET_DATA, cookie, 8 + length) + offset.to_bytes(
        8, "big")


def error_chunk(cookie: int, error: int, message: str = "") -> bytes:
    """A final ERROR chunk (the request failed with `error`, an NBD errno)."""
    text = message.encode()[:MAX_NAME_BYTES]
    payload = _ERROR_CHUNK.pack(error, len(text)) + text
    return _STRUCTURED_REPLY.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, ReplyType.ERROR,
                                  cookie, len(payload)) + payload


def block_status_chunk(cookie: int, context_id: int,
                       extents: list[tuple[int, BlockState]]) -> bytes:
    """A final BLOCK_STATUS chunk: consecutive (length, state) descriptors."""
    payload = _U32.pack(context_id) + b"".join(_EXTENT.pack(n, state) for n, state in extents)
    return _STRUCTURED_REPLY.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE,
                                  ReplyType.BLOCK_STATUS, cookie, len(payload)) + payload


def check_request(
    request: Request, export_size: int, readonly: bool, max_length: int,
    block_status: bool = False,
) -> Errno | None:
    """Return the errno refusing `request`, or None if it may run.

    READ/WRITE longer than `max_length` are refused (the payload would be held in memory);
    TRIM and WRITE_ZEROES carry no payload and may span the whole export. Past the end of
    the export, a write is ENOSPC and a read, trim or block status EINVAL, as the spec
    asks. BLOCK_STATUS only once `base:allocation` was selected (`block_status`).
    """
    command = request.command
    if command == Command.BLOCK_STATUS:  # a zero length would need a reply of no extent
        if not block_status or request.flags & ~_BLOCK_STATUS_FLAGS or not request.length:
            return Errno.EINVAL
        return Errno.EINVAL if request.offset + request.length > export_size else None
    if command not in (Command.READ, Command.FLUSH, *_WRITING_COMMANDS):
        return Errno.EINVAL
    if request.flags & ~_SUPPORTED_COMMAND_FLAGS:
        return Errno.EINVAL
    if command in (Command.READ, Command.WRITE) and request.length > max_length:
        return Errno.EINVAL
    if command in _WRITING_COMMANDS and readonly:
        return Errno.EPERM
    if command != Command.FLUSH and request.offset + request.length > export_size:
        return Errno.ENOSPC if command in _GROWING_COMMANDS else Errno.EINVAL
    return None


_HOST_ERRNO = {
    errno.EPERM: Errno.EPERM,
    errno.EACCES: Errno.EPERM,
    errno.EROFS: Errno.EPERM,
    errno.ENOSPC: Errno.ENOSPC,
    errno.EDQUOT: Errno.ENOSPC,
    errno.EFBIG: Errno.ENOSPC,
    errno.EINVAL: Errno.EINVAL,
    errno.ENOMEM: Errno.ENOMEM,
}


def nbd_errno(host_errno: int | None) -> Errno:
    """The wire error for a failed file operation (EIO unless the spec names a better one)."""
    return _HOST_ERRNO.get(host_errno or errno.EIO, Errno.EIO)

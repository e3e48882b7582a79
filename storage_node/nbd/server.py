"""An NBD server (newstyle, fixed handshake, TLS only) exporting raw files from the node.

Design:
- `NbdServer` owns the listener, the export table, a thread pool for file I/O and one
  `_Connection` per client. The wire format lives in `nbd_protocol`, which does no I/O.
- A connection negotiates (within HANDSHAKE_TIMEOUT, options up to MAX_OPTION_LENGTH),
  which first means NBD_OPT_STARTTLS: the connection is upgraded in place
  (`StreamWriter.start_tls`, i.e. `loop.start_tls`) with a context that demands a client
  certificate signed by the node's CA. Each export names the SHA-256 fingerprint of the
  one certificate allowed to open it; a certificate whose fingerprint opens no export
  (never issued, or its export removed: revoked) is dropped right after the handshake,
  and one that does may open only that export (others look unknown: nothing is
  disclosed). Bytes a client sends in clear after STARTTLS, before the handshake, close
  the connection (they would otherwise be read as if TLS had carried them).
- Then it serves requests: the reader loop parses one request at a time and starts a task
  per request in the connection's TaskGroup, so requests overlap in I/O threads. A reply
  is written whole (header then data, no await between), so replies never interleave.
- Memory per connection is bounded by `_Budget`: a request's bytes (at least a floor) are
  reserved before its payload is read and released after its reply is drained, so a client
  that sends without reading stalls itself and nothing else. READ/WRITE longer than
  MAX_REQUEST_LENGTH get EINVAL without any allocation; the payload of an oversize WRITE
  cannot be skipped cheaply, so that connection is closed after the error reply.
- Closing (remove_export, stop, a dead client) aborts the transport (remove_export also
  closes the connections whose certificate opens that export and which are still
  negotiating): the reader sees EOF, the TaskGroup waits for in-flight requests, and
  `_BlockFile.aclose` closes the descriptor only once every I/O thread using it has
  returned, since a closed fd number can be reused by another open() while a thread
  still writes through it.
- Structured replies, when the client negotiates them, serve one thing: BLOCK_STATUS in
  the `base:allocation` context, from the file's SEEK_DATA/SEEK_HOLE (a hole reads as
  zeros), so that a client copying a sparse volume (nbdcopy, qemu-img: a migration's
  copy) skips its holes. A READ is then answered by one OFFSET_DATA chunk, or an ERROR
  chunk; other commands keep simple replies.
- TRIM punches a hole (fallocate PUNCH_HOLE|KEEP_SIZE through ctypes); WRITE_ZEROES
  punches too unless NO_HOLE is set, or writes zeros in 1 MiB chunks where punching is
  not possible. FUA is an fdatasync after the write; FLUSH is fsync.
- An export may carry its volume's back-end QoS (`throttle.Throttle`: IOPS and bytes a
  second): the reader loop waits out a request's cost before it reads the next one (and
  a write's payload), so a client over its limits is slowed, never refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import errno
import logging
import os
import pathlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from cinderblock.storage_node.nbd import protocol as proto
from cinderblock.storage_node.nbd.certificates import der_fingerprint
from cinderblock.storage_node.nbd.throttle import IoLimits, Throttle
from cinderblock.storage_node.nbd.write_gate import WriteGate, WriteGates

log = logging.getLogger(__name__)

MAX_REQUEST_LENGTH = 32 * 1024 * 1024
MAX_OPTION_LENGTH = 16 * 1024
PREFERRED_BLOCK_SIZE = 4096
IN_FLIGHT_BYTES = 64 * 1024 * 1024
REQUEST_COST_FLOOR = 64 * 1024  # the least a request holds: bounds their number too
INLINE_IO_BYTES = 64 * 1024  # smaller reads and writes run on the event loop
HANDSHAKE_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
IO_THREADS = 8

_P = ParamSpec("_P")
_T = TypeVar("_T")
_BLOCK_SIZES = (1, PREFERRED_BLOCK_SIZE, MAX_REQUEST_LENGTH)  # minimum, preferred, maximum
_FINGERPRINT_LENGTH = 64  # SHA-256 in hex
NO_LIMITS = IoLimits()
# the commands a back-end QoS counts (a flush moves no data of the client's)
_THROTTLED = frozenset({proto.Command.READ, proto.Command.WRITE, proto.Command.TRIM,
                        proto.Command.WRITE_ZEROES})
# the commands whose errors are structured once structured replies are negotiated
_STRUCTURED_COMMANDS = frozenset({proto.Command.READ, proto.Command.BLOCK_STATUS})


class CertificateRefused(Exception):
    """A client's certificate, though signed by the node's CA, opens no export (now)."""


_CONNECTION_ENDED = (
    ConnectionError, asyncio.IncompleteReadError, proto.ProtocolError, ssl.SSLError,
    CertificateRefused,
)
_ZERO_CHUNK = bytes(1024 * 1024)
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


@dataclass(frozen=True, slots=True)
class NbdStatistics:
    """Live connections, bytes served by READ and taken by WRITE, requests, connections ever."""

    connections: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    requests: int = 0
    connections_total: int = 0
    throttled: int = 0  # requests a back-end QoS held back since the server started
    throttled_s: float = 0.0  # and for how long, in all


@dataclass(slots=True)
class _Counters:
    connections: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    requests: int = 0
    connections_total: int = 0
    throttled: int = 0  # of the throttles no export holds any more
    throttled_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Export:
    name: str
    path: pathlib.Path
    readonly: bool
    client_fingerprint: str  # of the one client certificate that may open it
    client_name: str  # that certificate's CN (the attachment it was issued for)
    throttle: Throttle | None = None  # its volume's back-end QoS (shared by its exports)


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every connection reads from its server; the dicts are the server's own."""

    exports: dict[str, _Export]
    by_fingerprint: dict[str, str]  # client certificate fingerprint -> export name
    tls: ssl.SSLContext
    executor: concurrent.futures.ThreadPoolExecutor
    counters: _Counters
    gates: WriteGates  # each file's writes, held while a group snapshot is taken


def _load_fallocate() -> Any:
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    return fallocate


_FALLOCATE = _load_fallocate()


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a range so it reads back as zeros; False where the filesystem cannot."""
    if _FALLOCATE is None:
        return False
    if _FALLOCATE(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
        return False
    raise OSError(err, os.strerror(err))


def _pread_exactly(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)  # short only at end of file, for a regular file
    if len(data) != length:
        raise OSError(errno.EIO, "the export's file is shorter than the export")
    return data


def _pwrite_all(fd: int, data: bytes, offset: int, fua: bool) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    if fua:
        os.fdatasync(fd)


def _zero(fd: int, offset: int, length: int, punch: bool, fua: bool) -> None:
    if length and not (punch and _punch_hole(fd, offset, length)):
        for start in range(offset, offset + length, len(_ZERO_CHUNK)):
            size = min(len(_ZERO_CHUNK), offset + length - start)
            _pwrite_all(fd, _ZERO_CHUNK[:size], start, fua=False)
    if fua:
        os.fdatasync(fd)


def allocation_extents(fd: int, offset: int, length: int, size: int, limit: int
                       ) -> list[tuple[int, proto.BlockState]]:
    """`base:allocation` for [offset, offset + length) of the file: consecutive (length,
    state) extents, at most `limit`, holes HOLE|ZERO and data 0. A file system without
    SEEK_DATA answers all data, which is true (if slower for the client)."""
    end, pos = min(offset + length, size), offset
    extents: list[tuple[int, proto.BlockState]] = []
    hole = proto.BlockState.HOLE | proto.BlockState.ZERO
    while pos < end and len(extents) < limit:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no data from pos to the end
                raise
            data = end
        if data > pos:
            extents.append((min(data, end) - pos, hole))
            pos = min(data, end)
            continue
        try:
            data_end = os.lseek(fd, pos, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            data_end = end
        extents.append((min(data_end, end) - pos, proto.BlockState(0)))
        pos = min(data_end, end)
    return extents


def _close_when_idle(fd: int, pending: list[concurrent.futures.Future[Any]]) -> None:
    concurrent.futures.wait(pending)
    os.close(fd)


class _BlockFile:
    """A raw file opened for one connection. I/O above INLINE_IO_BYTES runs in threads."""

    def __init__(self, export: _Export, executor: concurrent.futures.ThreadPoolExecutor,
                 gate: WriteGate) -> None:
        flags = (os.O_RDONLY if export.readonly else os.O_RDWR) | os.O_CLOEXEC
        self.gate = gate  # its file's writes (shared with the file's other exports)
        self._fd = os.open(export.path, flags)
        self.size = os.fstat(self._fd).st_size
        self.readonly = export.readonly
        self._executor = executor
        self._pending: set[concurrent.futures.Future[Any]] = set()

    async def read(self, offset: int, length: int) -> bytes:
        return await self._run(length <= INLINE_IO_BYTES, _pread_exactly, self._fd, length, offset)

    async def write(self, offset: int, data: bytes, fua: bool) -> None:
        inline = len(data) <= INLINE_IO_BYTES and not fua
        await self._run(inline, _pwrite_all, self._fd, data, offset, fua)

    async def flush(self) -> None:
        await self._run(False, os.fsync, self._fd)

    async def zero(self, offset: int, length: int, punch: bool, fua: bool) -> None:
        await self._run(False, _zero, self._fd, offset, length, punch, fua)

    async def extents(self, offset: int, length: int, one: bool
                      ) -> list[tuple[int, proto.BlockState]]:
        limit = 1 if one else proto.MAX_EXTENTS
        return await self._run(False, allocation_extents, self._fd, offset, length,
                               self.size, limit)

    async def aclose(self) -> None:
        pending = list(self._pending)
        if pending:
            await asyncio.to_thread(_close_when_idle, self._fd, pending)
        else:
            os.close(self._fd)

    async def _run(self, inline: bool, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> _T:
        if inline:
            return fn(*args, **kw)
        future = self._executor.submit(fn, *args, **kw)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return await asyncio.wrap_future(future)


class _Budget:
    """Bytes of requests one connection may hold at once; one acquirer (the reader loop)."""

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._released = asyncio.Event()

    async def acquire(self, amount: int) -> None:
        while self._free < amount:
            self._released.clear()
            await self._released.wait()
        self._free -= amount

    def release(self, amount: int) -> None:
        self._free += amount
        self._released.set()


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    while length:
        chunk = await reader.read(min(length, 64 * 1024))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(chunk)


class _Connection:
    """One client: handshake, then transmission; `run` never raises."""

    def __init__(
        self, shared: _Shared, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._shared = shared
        self._reader = reader
        self._writer = writer
        self._budget = _Budget(IN_FLIGHT_BYTES)
        self.export_name: str | None = None  # the one its certificate opens, once known
        self._throttle: Throttle | None = None  # the export's back-end QoS, if it has one
        self._fingerprint: str | None = None  # of its certificate, after the TLS handshake
        self._structured = False  # structured replies negotiated
        self._allocation: int | None = None  # base:allocation's context id, if selected
        self.closed = asyncio.Event()
        self._aborted = asyncio.Event()  # abort() was called: stop waiting on a throttle
        self.peer = writer.get_extra_info("peername")

    def abort(self) -> None:
        self._aborted.set()
        self._writer.transport.abort()

    async def run(self) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                disk = await self._negotiate()
            if disk is not None:
                await self._transmit(disk)
        except (*_CONNECTION_ENDED, TimeoutError) as exc:
            log.info("nbd %s: connection ended: %r", self.peer, exc)
        except Exception:
            log.exception("nbd %s: connection failed", self.peer)
        finally:
            await self._close()

    async def _close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        self._writer.transport.abort()

    # -- handshake ---------------------------------------------------------------------

    async def _negotiate(self) -> _BlockFile | None:
        haggle = proto.Negotiation(self._export_info, _BLOCK_SIZES)
        self._writer.write(proto.server_greeting())
        haggle.client_flags(await self._reader.readexactly(proto.CLIENT_FLAGS_SIZE))
        while True:
            header = await self._reader.readexactly(proto.OPTION_HEADER_SIZE)
            answer = await self._answer(haggle, proto.parse_option_header(header))
            disk = self._attach(answer.export) if answer.export is not None else None
            self._writer.write(answer.reply)
            if disk is not None and answer.export is not None:
                self._structured = haggle.structured
                self._allocation = haggle.allocation_context(answer.export.name)
            if disk is not None or answer.close:
                return disk
            await self._writer.drain()
            if answer.starttls:
                await self._start_tls()
                haggle.secured()

    async def _start_tls(self) -> None:
        """Upgrade to TLS; the client's certificate decides the one export it may open."""
        if self._reader._buffer:  # type: ignore[attr-defined]  # sent in clear, read as TLS
            raise proto.ProtocolError("data sent after NBD_OPT_STARTTLS, before TLS")
        await self._writer.start_tls(self._shared.tls)
        tls: ssl.SSLObject = self._writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)  # CERT_REQUIRED: present and verified
        assert der is not None
        fingerprint = der_fingerprint(der)
        name = self._shared.by_fingerprint.get(fingerprint)
        export = self._shared.exports.get(name) if name is not None else None
        if export is None or _common_name(tls.getpeercert()) != export.client_name:
            raise CertificateRefused(f"certificate {fingerprint[:16]}... opens no export")
        self.export_name, self._fingerprint = export.name, fingerprint

    async def _answer(self, haggle: proto.Negotiation, header: proto.OptionHeader) -> proto.Answer:
        if header.length <= MAX_OPTION_LENGTH:
            return haggle.answer(header.option, await self._reader.readexactly(header.length))
        await _discard(self._reader, header.length)
        too_big = proto.OptionError(proto.Reply.ERR_TOO_BIG, "option too long")
        return haggle.refuse(header.option, too_big)

    def _export_info(self, name: str) -> proto.ExportInfo | None:
        """The export `name` if this client's certificate opens it; else None (unknown)."""
        export = self._shared.exports.get(name)
        if export is None or export.client_fingerprint != self._fingerprint:
            return None
        try:
            return proto.ExportInfo(name, export.path.stat().st_size, export.readonly)
        except OSError:
            return None

    def _attach(self, info: proto.ExportInfo) -> _BlockFile:
        """Open the chosen export; from now on remove_export(name) closes this connection.

        No await since `_export_info` found it, so it is still exported to this client's
        certificate. An OSError here (the file vanished) is ours, not the client's, and is
        logged as a failure.
        """
        export = self._shared.exports[info.name]
        disk = _BlockFile(export, self._shared.executor, self._shared.gates.of(export.path))
        self.export_name, self._throttle = info.name, export.throttle
        return disk

    # -- transmission ------------------------------------------------------------------

    async def _transmit(self, disk: _BlockFile) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                try:
                    while await self._serve_one(disk, tasks):
                        pass
                except _CONNECTION_ENDED as exc:
                    log.info("nbd %s: transmission ended: %r", self.peer, exc)
        finally:
            await disk.aclose()

    async def _serve_one(self, disk: _BlockFile, tasks: asyncio.TaskGroup) -> bool:
        """Read one request and start it; False once the client disconnects politely."""
        request = proto.parse_request(await self._reader.readexactly(proto.REQUEST_SIZE))
        self._shared.counters.requests += 1
        if request.command == proto.Command.DISC:
            return False
        error = proto.check_request(request, disk.size, disk.readonly, MAX_REQUEST_LENGTH,
                                    block_status=self._allocation is not None)
        if error is not None:
            await self._refuse(request, error)
            return True
        buffered = request.command in (proto.Command.READ, proto.Command.WRITE)
        if self._throttle is not None and request.command in _THROTTLED:
            # before the payload is read: a throttled writer's bytes wait in TCP
            await self._wait(self._throttle.delay(request.command == proto.Command.READ,
                                                  request.length if buffered else 0))
        held = max(REQUEST_COST_FLOOR, request.length if buffered else 0)
        await self._budget.acquire(held)
        payload = await self._reader.readexactly(request.length) if request.carries_payload else b""
        tasks.create_task(self._execute(disk, request, payload, held))
        return True

    async def _wait(self, seconds: float) -> None:
        """Wait out a back-end QoS's delay, or until the connection is aborted (an
        unexport or a stop must not wait for a slow client's debt)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._aborted.wait()
        if self._aborted.is_set():
            raise ConnectionAbortedError("the connection was closed while it was throttled")

    def _error_reply(self, request: proto.Request, error: proto.Errno, why: str) -> bytes:
        """A READ's error is a structured chunk once those are negotiated (the spec
        forbids a simple reply to a READ then); any other's a simple reply."""
        if self._structured and request.command in _STRUCTURED_COMMANDS:
            return proto.error_chunk(request.cookie, error, why)
        return proto.simple_reply(request.cookie, error)

    async def _refuse(self, request: proto.Request, error: proto.Errno) -> None:
        self._send(self._error_reply(request, error, f"request refused: {error.name}"))
        if request.carries_payload and request.length > MAX_REQUEST_LENGTH:
            raise proto.ProtocolError(f"write of {request.length} bytes is too long")
        if request.carries_payload:
            await _discard(self._reader, request.length)
        await self._drain()

    async def _execute(
        self, disk: _BlockFile, request: proto.Request, payload: bytes, held: int
    ) -> None:
        try:
            try:
                data = await self._perform(disk, request, payload)
                if request.command == proto.Command.BLOCK_STATUS:
                    self._send(data)  # the whole chunk
                elif self._structured and request.command == proto.Command.READ and data:
                    self._send(proto.data_chunk_header(request.cookie, request.offset,
                                                       len(data)), data)
                elif self._structured and request.command == proto.Command.READ:
                    self._send(proto.done_chunk(request.cookie))  # a read of no bytes
                else:
                    self._send(proto.simple_reply(request.cookie), data)
            except OSError as exc:
                log.warning("nbd %s: %r failed: %s", self.peer, request, exc)
                error = proto.nbd_errno(exc.errno)
                self._send(self._error_reply(request, error, exc.strerror or str(exc)))
            await self._drain()
        finally:
            self._budget.release(held)

    async def _perform(self, disk: _BlockFile, request: proto.Request, payload: bytes) -> bytes:
        fua = bool(request.flags & proto.CommandFlag.FUA)
        counters = self._shared.counters
        match request.command:
            case proto.Command.READ:
                data = await disk.read(request.offset, request.length)
                counters.bytes_read += len(data)
                return data
            case proto.Command.WRITE:
                async with disk.gate.writing():
                    await disk.write(request.offset, payload, fua)
                counters.bytes_written += len(payload)
            case proto.Command.FLUSH:
                await disk.flush()
            case proto.Command.TRIM:
                async with disk.gate.writing():
                    await disk.zero(request.offset, request.length, punch=True, fua=fua)
            case proto.Command.WRITE_ZEROES:
                punch = not request.flags & proto.CommandFlag.NO_HOLE
                async with disk.gate.writing():
                    await disk.zero(request.offset, request.length, punch=punch, fua=fua)
            case proto.Command.BLOCK_STATUS:
                assert self._allocation is not None  # check_request let it through
                one = bool(request.flags & proto.CommandFlag.REQ_ONE)
                extents = await disk.extents(request.offset, request.length, one)
                return proto.block_status_chunk(request.cookie, self._allocation, extents)
        return b""

    def _send(self, header: bytes, data: bytes = b"") -> None:
        if self._writer.is_closing():
            return
        self._writer.write(header)
        if data:
            self._writer.write(data)

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()


def _common_name(cert: Any) -> str | None:
    """The subject's CN of a certificate as `SSLObject.getpeercert()` gives it."""
    for rdn in cert.get("subject", ()) if isinstance(cert, dict) else ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class NbdServer:
    """Serves raw files as NBD exports on one TCP listener, over TLS only.

    `tls` is a server context that requires client certificates (the node's CA makes
    it); each export is opened by the one client certificate whose fingerprint and CN it
    names.
    """

    def __init__(self, tls: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0) -> None:
        if tls.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the NBD server's TLS context must require client certificates")
        self._tls = tls
        self._host = host
        self._port = port
        self._exports: dict[str, _Export] = {}
        self._by_fingerprint: dict[str, str] = {}
        self._connections: set[_Connection] = set()
        self._counters = _Counters()
        self._server: asyncio.Server | None = None
        self._shared: _Shared | None = None
        self._closing = False
        # ``gates.held(paths)``: a snapshot's or a clone's instant, a group snapshot's
        self.gates = WriteGates(
            lambda path: any(e.path == path for e in self._exports.values()))

    async def __aenter__(self) -> NbdServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("NbdServer already started")
        executor = concurrent.futures.ThreadPoolExecutor(IO_THREADS, thread_name_prefix="nbd-io")
        self._shared = _Shared(
            self._exports, self._by_fingerprint, self._tls, executor, self._counters,
            self.gates)
        self._closing = False
        self._server = await asyncio.start_server(self._on_connect, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    @property
    def port(self) -> int:
        return self._port

    def add_export(
        self, name: str, path: pathlib.Path, readonly: bool, client_fingerprint: str,
        client_name: str, limits: IoLimits = NO_LIMITS,
    ) -> None:
        """Export `path` as `name` to the one client certificate with this SHA-256
        fingerprint and this CN, its I/O held to `limits` (shared with the other exports
        of the same file that have the same limits: a volume's back-end QoS)."""
        if len(name.encode("utf-8")) > proto.MAX_NAME_BYTES:
            raise ValueError(f"export name longer than {proto.MAX_NAME_BYTES} bytes")
        if name in self._exports:
            raise ValueError(f"export {name!r} already exists")
        fingerprint = client_fingerprint.lower()
        if len(fingerprint) != _FINGERPRINT_LENGTH or fingerprint.strip("0123456789abcdef"):
            raise ValueError(f"{client_fingerprint[:80]!r} is not a SHA-256 fingerprint in hex")
        if fingerprint in self._by_fingerprint:
            opened = self._by_fingerprint[fingerprint]
            raise ValueError(f"that certificate already opens export {opened!r}")
        path = pathlib.Path(path)
        throttle = None
        if limits:
            throttle = next((e.throttle for e in self._exports.values() if e.path == path
                             and e.throttle is not None and e.throttle.limits == limits),
                            None) or Throttle(limits)
        self._exports[name] = _Export(name, path, readonly, fingerprint, client_name, throttle)
        self._by_fingerprint[fingerprint] = name

    async def remove_export(self, name: str) -> None:
        """Refuse new clients for `name`, revoke its certificate and close its live
        connections (negotiating or transmitting); idempotent."""
        export = self._exports.pop(name, None)
        if export is not None:
            del self._by_fingerprint[export.client_fingerprint]
        doomed = [c for c in self._connections if c.export_name == name]
        await self._close_connections(doomed)
        if export is not None and all(e.path != export.path for e in self._exports.values()):
            self.gates.forget(export.path)
        throttle = export.throttle if export is not None else None
        if throttle is not None and all(e.throttle is not throttle
                                        for e in self._exports.values()):
            self._counters.throttled += throttle.delayed  # its last export: keep its counts
            self._counters.throttled_s += throttle.waited_s

    def exports(self) -> dict[str, tuple[pathlib.Path, bool]]:
        return {name: (e.path, e.readonly) for name, e in self._exports.items()}

    def limits(self, name: str) -> IoLimits:
        """The export's back-end QoS (none: ``NO_LIMITS``)."""
        throttle = self._exports[name].throttle
        return NO_LIMITS if throttle is None else throttle.limits

    async def stop(self) -> None:
        if self._server is None or self._shared is None:
            return
        self._closing = True
        self._server.close()
        await self._close_connections(list(self._connections))
        await self._server.wait_closed()
        await asyncio.to_thread(self._shared.executor.shutdown, wait=True)
        self._server = None

    def statistics(self) -> NbdStatistics:
        throttles = {id(e.throttle): e.throttle for e in self._exports.values()
                     if e.throttle is not None}.values()
        counters = dataclasses.asdict(self._counters)
        counters["throttled"] += sum(t.delayed for t in throttles)
        counters["throttled_s"] += sum(t.waited_s for t in throttles)
        return NbdStatistics(**counters)

    async def _close_connections(self, connections: list[_Connection]) -> None:
        for connection in connections:
            connection.abort()
        await asyncio.gather(*(c.closed.wait() for c in connections))

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing or self._shared is None:
            writer.transport.abort()
            return
        connection = _Connection(self._shared, reader, writer)
        self._connections.add(connection)
        self._counters.connections += 1
        self._counters.connections_total += 1
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            self._counters.connections -= 1
            connection.closed.set()

"""The NBD server against real clients (nbdinfo, nbdcopy, qemu-io, qemu-img) and a raw socket.

The server runs in the test's event loop; clients are subprocesses started with
asyncio.create_subprocess_exec so the loop keeps serving while they run. It speaks only
TLS: each export gets a client certificate of its own from a CA made (by openssl) once
for the module, written as real clients read it (`Exports.credentials`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import ssl
import struct
from collections.abc import AsyncIterator, Iterator

import pytest

from cinderblock.storage_node.nbd import protocol as proto
from cinderblock.storage_node.nbd import server as nbd
from cinderblock.storage_node.nbd.certificates import KeyPair, NodeAuthority
from cinderblock.storage_node.nbd.server import MAX_REQUEST_LENGTH, NbdServer, allocation_extents
from tests.conftest import Completed
from tests.conftest import run_process as run
from tests.nbd_tls import (
    client_context,
    nbds_uri,
    plain_uri,
    qemu_tls,
    requires,
    write_credentials,
)

MiB = 1024 * 1024
DISK_SIZE = 64 * MiB
pytestmark = requires("openssl")


async def run_ok(*argv: str) -> Completed:
    completed = await run(*argv)
    assert completed.returncode == 0, f"{argv} failed: {completed.stderr}{completed.stdout}"
    return completed


def sparse_file(path: pathlib.Path, size: int = DISK_SIZE) -> pathlib.Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


class Exports:
    """The server under test with the CA that issues its clients' certificates."""

    def __init__(self, server: NbdServer, authority: NodeAuthority, tmp: pathlib.Path) -> None:
        self.server = server
        self.authority = authority
        self.tmp = tmp

    async def add(self, name: str, path: pathlib.Path, readonly: bool) -> KeyPair:
        """Export `path` to a new certificate, written to `credentials(name)`."""
        client = await self.authority.issue_client(name)
        self.server.add_export(name, path, readonly, client.fingerprint, name)
        write_credentials(self.credentials(name), self.authority.ca_cert, client)
        return client

    def credentials(self, name: str) -> pathlib.Path:
        return self.tmp / "credentials" / name

    def uri(self, export: str, credentials: str | None = None) -> str:
        """nbds:// to `export` with the certificate of `credentials` (default: its own)."""
        return nbds_uri("127.0.0.1", self.server.port, export,
                        self.credentials(credentials or export))

    def qemu(self, export: str, credentials: str | None = None) -> list[str]:
        return qemu_tls("127.0.0.1", self.server.port, export,
                        self.credentials(credentials or export))

    def tls(self, name: str) -> ssl.SSLContext:
        return client_context(self.credentials(name))


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeAuthority]:
    """One CA and server certificate for the module (made outside any test's loop)."""

    async def make() -> NodeAuthority:
        made = await NodeAuthority.open(tmp_path_factory.mktemp("tls"), "test-node")
        await made.issue_server("127.0.0.1")
        return made

    yield asyncio.run(make())


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def server(authority: NodeAuthority) -> AsyncIterator[NbdServer]:
    async with NbdServer(authority.server_context()) as nbd:
        yield nbd


@pytest.fixture
def exports(server: NbdServer, authority: NodeAuthority, tmp_path: pathlib.Path) -> Exports:
    return Exports(server, authority, tmp_path)


@pytest.fixture
async def disk(tmp_path: pathlib.Path, exports: Exports) -> pathlib.Path:
    path = sparse_file(tmp_path / "volume.raw")
    await exports.add("volume", path, readonly=False)
    return path


class RawClient:
    """Just enough of an NBD client to say things real clients never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, handshake: bool = True, no_zeroes: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> RawClient:
        """Connect; with `tls`, negotiate NBD_OPT_STARTTLS and upgrade as real clients do."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if handshake:
            greeting = await reader.readexactly(18)
            expected = (proto.NBDMAGIC, proto.IHAVEOPT, proto.SERVER_HANDSHAKE_FLAGS)
            assert struct.unpack(">QQH", greeting) == expected
            flags = proto.ClientFlag.FIXED_NEWSTYLE | (proto.ClientFlag.NO_ZEROES * no_zeroes)
            writer.write(struct.pack(">I", flags))
        if tls is not None:
            assert (await client.option(proto.Option.STARTTLS)) == [(proto.Reply.ACK, b"")]
            await writer.start_tls(tls, server_hostname="127.0.0.1")
        return client

    async def option(self, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
        self.writer.write(struct.pack(">QII", proto.IHAVEOPT, option, len(data)) + data)
        replies = []
        while True:
            magic, _, kind, length = struct.unpack(">QIII", await self.reader.readexactly(20))
            assert magic == proto.OPTION_REPLY_MAGIC
            replies.append((kind, await self.reader.readexactly(length)))
            if kind != proto.Reply.INFO and kind != proto.Reply.SERVER:
                return replies

    async def go(self, name: str) -> tuple[int, int]:
        encoded = name.encode()
        payload = struct.pack(">I", len(encoded)) + encoded + struct.pack(">H", 0)
        replies = await self.option(proto.Option.GO, payload)
        assert replies[-1][0] == proto.Reply.ACK, replies
        export = next(data for kind, data in replies if data[:2] == b"\0\0")
        _, size, flags = struct.unpack(">HQH", export)
        return size, flags

    def send_request(self, command: int, offset: int, length: int, payload: bytes = b"") -> None:
        header = struct.pack(">IHHQQI", proto.REQUEST_MAGIC, 0, command, 7, offset, length)
        self.writer.write(header + payload)

    async def request(
        self, command: int, offset: int, length: int, payload: bytes = b""
    ) -> tuple[int, bytes]:
        self.send_request(command, offset, length, payload)
        magic, error, cookie = struct.unpack(">IIQ", await self.reader.readexactly(16))
        assert (magic, cookie) == (proto.SIMPLE_REPLY_MAGIC, 7)
        reads = command == proto.Command.READ and error == 0
        return error, await self.reader.readexactly(length) if reads else b""

    async def closed_by_server(self) -> bool:
        """Wait for the server to close (EOF or reset); a TimeoutError if it never does."""
        try:
            async with asyncio.timeout(10):
                await self.reader.read()  # everything until end of stream
        except ConnectionResetError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


# -- real clients, with the export's credentials ----------------------------------------


@requires("nbdinfo")
async def test_nbdinfo_reports_size_and_read_only_flag(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    await exports.add("writable", sparse_file(tmp_path / "a.raw", 3 * MiB), readonly=False)
    await exports.add("frozen", sparse_file(tmp_path / "b.raw", 5 * MiB), readonly=True)
    for name, size, readonly in [("writable", 3 * MiB, False), ("frozen", 5 * MiB, True)]:
        info = json.loads((await run_ok("nbdinfo", "--json", exports.uri(name))).stdout)
        (export,) = info["exports"]
        assert info["protocol"] == "newstyle-fixed" and info["TLS"] is True
        assert (export["export-size"], export["is_read_only"]) == (size, readonly)
        assert export["can_flush"] and export["can_trim"] and export["can_zero"]
        assert export["can_multi_conn"] and export["can_fua"]


@requires("nbdinfo")
async def test_nbdinfo_list_shows_no_export_with_or_without_credentials(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    for name in ("one", "two"):
        await exports.add(name, sparse_file(tmp_path / name), readonly=False)
    listing = await run_ok("nbdinfo", "--list", "--json", exports.uri("one"))
    assert json.loads(listing.stdout)["exports"] == []
    plain = await run("nbdinfo", "--list", "--json", f"nbd://127.0.0.1:{exports.server.port}")
    assert plain.returncode != 0 and "one" not in plain.stdout + plain.stderr


@requires("qemu-io")
async def test_qemu_io_writes_a_pattern_that_lands_in_the_file(
    exports: Exports, disk: pathlib.Path
) -> None:
    await run_ok("qemu-io", *exports.qemu("volume"), "-c", "write -P 0xab 0 1M")
    await run_ok("qemu-io", *exports.qemu("volume"), "-c", "read -P 0xab 0 1M")
    with disk.open("rb") as file:
        assert file.read(MiB + 1) == b"\xab" * MiB + b"\0"
    assert exports.server.statistics().bytes_written >= MiB
    assert exports.server.statistics().bytes_read >= MiB


@requires("qemu-io")
async def test_qemu_io_flush_write_zeroes_and_discard(
    exports: Exports, disk: pathlib.Path
) -> None:
    commands = ["write -P 0x11 0 8M", "flush", "write -z 1M 1M", "discard 4M 2M", "write -P 7 0 1k"]
    await run_ok("qemu-io", *exports.qemu("volume"), *[f"-c{c}" for c in commands])
    data = disk.read_bytes()
    assert data[:1024] == b"\x07" * 1024 and data[1024:MiB] == b"\x11" * (MiB - 1024)
    assert data[MiB : 2 * MiB] == bytes(MiB) and data[4 * MiB : 6 * MiB] == bytes(2 * MiB)
    assert data[2 * MiB : 4 * MiB] == b"\x11" * 2 * MiB
    assert data[6 * MiB : 8 * MiB] == b"\x11" * 2 * MiB
    assert disk.stat().st_blocks * 512 <= 6 * MiB, "discard and write -z should punch holes"


@requires("nbdcopy")
async def test_nbdcopy_copies_out_of_and_into_an_export(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    disk.write_bytes(os.urandom(DISK_SIZE))
    copy = tmp_path / "copy.raw"
    await run_ok("nbdcopy", exports.uri("volume"), str(copy))
    assert copy.read_bytes() == disk.read_bytes()
    source = tmp_path / "source.raw"
    source.write_bytes(os.urandom(DISK_SIZE))
    await run_ok("nbdcopy", str(source), exports.uri("volume"))
    assert disk.read_bytes() == source.read_bytes()


@requires("qemu-img")
async def test_qemu_img_info_and_convert_both_ways(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    volume = exports.qemu("volume")
    info = await run_ok("qemu-img", "info", "--output=json", *volume)
    assert json.loads(info.stdout)["virtual-size"] == DISK_SIZE
    disk.write_bytes(os.urandom(DISK_SIZE))
    qcow2 = tmp_path / "image.qcow2"
    await run_ok("qemu-img", "convert", *volume, "-O", "qcow2", str(qcow2))
    await run_ok("qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(disk), str(qcow2))
    other = sparse_file(tmp_path / "other.raw")
    with other.open("r+b") as file:
        file.write(os.urandom(DISK_SIZE // 2))  # the second half stays a hole
    tls_object, target = volume[:2], volume[-1]
    await run_ok("qemu-img", "convert", *tls_object, "-n", "-f", "raw",
                 "--target-image-opts", str(other), target)
    assert disk.read_bytes() == other.read_bytes()


@requires("qemu-io")
async def test_several_clients_write_at_once(exports: Exports, disk: pathlib.Path) -> None:
    writes = [
        run_ok("qemu-io", *exports.qemu("volume"), "-c", f"write -P {n} {n * 8}M 8M")
        for n in range(1, 7)
    ]
    await asyncio.gather(*writes)
    data = disk.read_bytes()
    for n in range(1, 7):
        assert data[n * 8 * MiB : (n + 1) * 8 * MiB] == bytes([n]) * 8 * MiB
    assert exports.server.statistics().connections_total >= 6


# -- refusals --------------------------------------------------------------------------------


@requires("qemu-io", "nbdcopy")
async def test_writing_to_a_readonly_export_fails(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    frozen = sparse_file(tmp_path / "frozen.raw")
    await exports.add("frozen", frozen, readonly=True)
    source = tmp_path / "source.raw"
    source.write_bytes(b"\x55" * DISK_SIZE)
    qemu = await run("qemu-io", *exports.qemu("frozen"), "-c", "write -P 0xab 0 1M")
    nbdcopy = await run("nbdcopy", str(source), exports.uri("frozen"))
    assert qemu.returncode != 0 and nbdcopy.returncode != 0
    client = await RawClient.connect(exports.server.port, tls=exports.tls("frozen"))
    _, flags = await client.go("frozen")
    assert flags & proto.TransmissionFlag.READ_ONLY
    for command, payload in [(proto.Command.WRITE, b"x" * 512), (proto.Command.TRIM, b"")]:
        assert (await client.request(command, 0, 512, payload))[0] == proto.Errno.EPERM
    assert (await client.request(proto.Command.READ, 0, 512))[0] == 0
    await client.close()
    assert frozen.read_bytes() == bytes(DISK_SIZE)


@requires("nbdinfo", "qemu-io")
async def test_an_unknown_export_is_refused(exports: Exports, disk: pathlib.Path) -> None:
    assert (await run("nbdinfo", exports.uri("missing", "volume"))).returncode != 0
    qemu = await run("qemu-io", *exports.qemu("missing", "volume"), "-c", "read 0 1")
    assert qemu.returncode != 0
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    replies = await client.option(proto.Option.GO, struct.pack(">I", 7) + b"missing\0\0")
    assert replies[-1][0] == proto.Reply.ERR_UNKNOWN
    client.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.EXPORT_NAME, 3) + b"nop")
    assert await client.closed_by_server()


async def test_unknown_options_are_unsupported_and_negotiation_goes_on(
    exports: Exports, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    for option in (proto.Option.EXTENDED_HEADERS, 0xDEAD):
        assert (await client.option(option))[-1][0] == proto.Reply.ERR_UNSUP
    assert (await client.option(proto.Option.STARTTLS))[-1][0] == proto.Reply.ERR_INVALID
    assert (await client.option(proto.Option.LIST, b"junk"))[-1][0] == proto.Reply.ERR_INVALID
    truncated_name = b"\0\0\0\x09abc"
    assert (await client.option(proto.Option.INFO, truncated_name))[0][0] == proto.Reply.ERR_INVALID
    assert await client.go("volume") == (DISK_SIZE, proto.transmission_flags(readonly=False))
    assert (await client.request(proto.Command.CACHE, 0, 512))[0] == proto.Errno.EINVAL
    await client.close()


@pytest.mark.parametrize("no_zeroes", [True, False])
async def test_export_name_enters_transmission_for_old_clients(
    exports: Exports, disk: pathlib.Path, no_zeroes: bool
) -> None:
    disk.write_bytes(b"\x5a" * DISK_SIZE)
    client = await RawClient.connect(
        exports.server.port, no_zeroes=no_zeroes, tls=exports.tls("volume"))
    client.writer.write(
        struct.pack(">QII", proto.IHAVEOPT, proto.Option.EXPORT_NAME, 6) + b"volume"
    )
    size, flags = struct.unpack(">QH", await client.reader.readexactly(10))
    assert (size, flags) == (DISK_SIZE, proto.transmission_flags(readonly=False))
    if not no_zeroes:
        assert await client.reader.readexactly(124) == bytes(124)
    assert await client.request(proto.Command.READ, 4096, 3) == (0, b"\x5a\x5a\x5a")
    client.send_request(proto.Command.DISC, 0, 0)
    assert await client.closed_by_server()


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    server: NbdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nbd, "HANDSHAKE_TIMEOUT", 0.2)
    silent = await RawClient.connect(server.port, handshake=False)
    assert await silent.closed_by_server()


async def test_requests_out_of_bounds_or_too_long_get_einval(
    exports: Exports, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    await client.go("volume")
    assert (await client.request(proto.Command.READ, DISK_SIZE - 1, 2))[0] == proto.Errno.EINVAL
    write_past_end = await client.request(proto.Command.WRITE, DISK_SIZE, 1, b"x")
    assert write_past_end[0] == proto.Errno.ENOSPC
    too_long = MAX_REQUEST_LENGTH + 1
    assert (await client.request(proto.Command.READ, 0, too_long))[0] == proto.Errno.EINVAL
    assert (await client.request(proto.Command.READ, 2**64 - 1, 1))[0] == proto.Errno.EINVAL
    client.send_request(proto.Command.WRITE, 0, 2**32 - 1)  # never sends the 4 GiB
    assert (await client.reader.readexactly(16))[4:8] == struct.pack(">I", proto.Errno.EINVAL)
    assert await client.closed_by_server()
    assert disk.read_bytes() == bytes(DISK_SIZE)


# -- TLS and who may open what ------------------------------------------------------------


async def test_before_starttls_every_option_but_abort_needs_tls_and_export_name_closes(
    exports: Exports, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(exports.server.port)
    go_volume = struct.pack(">I", 6) + b"volume\0\0"
    for option, data in [(proto.Option.GO, go_volume), (proto.Option.INFO, go_volume),
                         (proto.Option.LIST, b""), (proto.Option.STRUCTURED_REPLY, b""),
                         (0xDEAD, b"")]:
        assert (await client.option(option, data))[-1][0] == proto.Reply.ERR_TLS_REQD
    assert (await client.option(proto.Option.STARTTLS, b"x"))[-1][0] == proto.Reply.ERR_INVALID
    client.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.EXPORT_NAME, 6)
                        + b"volume")
    assert await client.closed_by_server()
    aborting = await RawClient.connect(exports.server.port)
    assert await aborting.option(proto.Option.ABORT) == [(proto.Reply.ACK, b"")]
    assert await aborting.closed_by_server()
    assert exports.server.statistics().requests == 0


@requires("nbdinfo", "qemu-io", "nbdcopy")
async def test_real_clients_without_the_exports_certificate_read_and_write_nothing(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    disk.write_bytes(b"\x5a" * DISK_SIZE)
    await exports.add("other", sparse_file(tmp_path / "other.raw"), readonly=False)
    port = exports.server.port
    ca_only = write_credentials(tmp_path / "ca-only", exports.authority.ca_cert, None)
    attempts = [
        ["nbdinfo", plain_uri("127.0.0.1", port, "volume")],
        ["nbdinfo", nbds_uri("127.0.0.1", port, "volume", ca_only)],
        ["nbdinfo", exports.uri("volume", "other")],
        ["nbdcopy", str(sparse_file(tmp_path / "zeros.raw")), exports.uri("volume", "other")],
        ["qemu-io", "-f", "raw", "-c", "write -P 1 0 1M", plain_uri("127.0.0.1", port, "volume")],
        ["qemu-io", *exports.qemu("volume", "other"), "-c", "write -P 1 0 1M"],
        ["qemu-io", *qemu_tls("127.0.0.1", port, "volume", ca_only), "-c", "write -P 1 0 1M"],
    ]
    for argv in attempts:
        assert (await run(*argv)).returncode != 0, argv
    assert disk.read_bytes() == b"\x5a" * DISK_SIZE
    assert exports.server.statistics().bytes_read == 0


async def test_a_certificate_opens_its_own_export_only_and_others_look_unknown(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    await exports.add("other", sparse_file(tmp_path / "other.raw"), readonly=False)
    client = await RawClient.connect(exports.server.port, tls=exports.tls("other"))
    for option in (proto.Option.INFO, proto.Option.GO):
        replies = await client.option(option, struct.pack(">I", 6) + b"volume\0\0")
        assert replies[-1][0] == proto.Reply.ERR_UNKNOWN
    assert (await client.option(proto.Option.LIST)) == [(proto.Reply.ACK, b"")]
    assert await client.go("other") == (DISK_SIZE, proto.transmission_flags(readonly=False))
    await client.close()


async def test_a_client_without_a_certificate_or_with_a_foreign_one_fails_the_handshake(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    stranger = await NodeAuthority.open(tmp_path / "stranger-ca", "stranger")
    foreign = await stranger.issue_client("volume")  # the right name, the wrong CA
    mixed = write_credentials(tmp_path / "mixed", exports.authority.ca_cert, foreign)
    for context in (client_context(exports.credentials("volume"), with_certificate=False),
                    client_context(mixed)):
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            client = await RawClient.connect(exports.server.port, tls=context)
            assert await client.closed_by_server()  # TLS 1.3: the alert comes after
    assert exports.server.statistics().requests == 0


async def test_a_certificate_whose_cn_is_not_the_one_the_export_names_is_refused(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    client = await exports.authority.issue_client("someone-else")
    exports.server.add_export("named", sparse_file(tmp_path / "n.raw"), False,
                              client.fingerprint, "named")
    creds = write_credentials(exports.credentials("named"), exports.authority.ca_cert, client)
    raw = await RawClient.connect(exports.server.port, tls=client_context(creds))
    assert await raw.closed_by_server()


async def test_bytes_sent_in_clear_after_starttls_close_the_connection(
    exports: Exports, disk: pathlib.Path
) -> None:
    """What a man in the middle would inject behind a client's STARTTLS is never read as
    if TLS had carried it: the server hangs up before the handshake."""
    client = await RawClient.connect(exports.server.port)
    injected = struct.pack(">QII", proto.IHAVEOPT, proto.Option.GO, 12) + b"\0\0\0\6volume\0\0"
    client.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.STARTTLS, 0) + injected)
    ack = struct.unpack(">QIII", await client.reader.readexactly(20))
    assert ack == (proto.OPTION_REPLY_MAGIC, proto.Option.STARTTLS, proto.Reply.ACK, 0)
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        await client.writer.start_tls(exports.tls("volume"), server_hostname="127.0.0.1")
        assert await client.closed_by_server()  # and no answer to the injected GO
    await wait_for(lambda: exports.server.statistics().connections == 0)


async def test_a_removed_exports_certificate_is_refused_even_for_a_new_export_of_that_name(
    exports: Exports, disk: pathlib.Path
) -> None:
    revoked = exports.tls("volume")
    await exports.server.remove_export("volume")
    await exports.add("volume", disk, readonly=False)  # a new certificate for the name
    client = await RawClient.connect(exports.server.port, tls=revoked)
    assert await client.closed_by_server()
    fresh = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    assert (await fresh.go("volume"))[0] == DISK_SIZE
    await fresh.close()


async def test_removing_an_export_closes_connections_still_negotiating_with_its_certificate(
    exports: Exports, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    await exports.server.remove_export("volume")
    assert await client.closed_by_server()
    await wait_for(lambda: exports.server.statistics().connections == 0)


# -- connection lifecycle -------------------------------------------------------------------


@requires("qemu-io")
async def test_remove_export_closes_a_live_connection(
    exports: Exports, disk: pathlib.Path
) -> None:
    server = exports.server
    client = await RawClient.connect(server.port, tls=exports.tls("volume"))
    await client.go("volume")
    commands = ["-cread 0 4k", "-csleep 3000", "-cread 0 4k"]
    qemu = asyncio.create_task(run("qemu-io", *exports.qemu("volume"), *commands))
    await wait_for(lambda: server.statistics().connections == 2)
    await wait_for(lambda: server.statistics().requests >= 1)
    await server.remove_export("volume")
    assert await client.closed_by_server()
    assert server.statistics().connections == 0 and "volume" not in server.exports()
    completed = await qemu
    assert completed.returncode != 0 and "read failed" in completed.stdout + completed.stderr
    refused = await RawClient.connect(server.port, tls=exports.tls("volume"))
    assert await refused.closed_by_server()  # its certificate opens nothing any more


async def test_stop_closes_every_connection(
    authority: NodeAuthority, tmp_path: pathlib.Path
) -> None:
    nbd_server = NbdServer(authority.server_context())
    await nbd_server.start()
    exports = Exports(nbd_server, authority, tmp_path)
    await exports.add("volume", sparse_file(tmp_path / "v.raw"), readonly=False)
    handshaking = await RawClient.connect(nbd_server.port)
    serving = await RawClient.connect(nbd_server.port, tls=exports.tls("volume"))
    await serving.go("volume")
    await nbd_server.stop()
    assert await handshaking.closed_by_server() and await serving.closed_by_server()
    assert nbd_server.statistics().connections == 0


async def _kill_mid_transfer(server: NbdServer, counter: str, *argv: str) -> None:
    before = getattr(server.statistics(), counter)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await wait_for(lambda: getattr(server.statistics(), counter) > before + 64 * MiB, 30)
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL, "the transfer ended before the kill"
    await wait_for(lambda: server.statistics().connections == 0)


@requires("nbdcopy", "qemu-io")
async def test_a_client_killed_mid_transfer_leaves_the_server_serving(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    server = exports.server
    big = sparse_file(tmp_path / "big.raw", 8 * 1024 * MiB)
    await exports.add("big", big, readonly=False)
    # --no-extents: the file is all hole, which block status would let nbdcopy skip
    await _kill_mid_transfer(server, "bytes_read", "nbdcopy", "--no-extents", exports.uri("big"),
                             "null:")
    writes = [f"-cwrite -P 0xcd {n * 512}M 512M" for n in range(16)]
    writer = ["qemu-io", *exports.qemu("big"), *writes]
    await _kill_mid_transfer(server, "bytes_written", *writer)
    await run_ok("qemu-io", *exports.qemu("big"), "-c", "write -P 0x42 1G 1M")
    await run_ok("qemu-io", *exports.qemu("big"), "-c", "read -P 0x42 1G 1M")


@requires("nbdinfo")
async def test_garbage_on_the_port_does_not_crash_the_server(
    exports: Exports, disk: pathlib.Path
) -> None:
    server = exports.server
    garbage = os.urandom(4096)
    rude = await RawClient.connect(server.port, handshake=False)
    rude.writer.write(garbage)
    assert await rude.closed_by_server()
    bad_flags = await RawClient.connect(server.port, handshake=False)
    await bad_flags.reader.readexactly(18)
    bad_flags.writer.write(b"\xff\xff\xff\xff" + garbage)
    assert await bad_flags.closed_by_server()
    bad_option = await RawClient.connect(server.port)
    bad_option.writer.write(garbage)
    assert await bad_option.closed_by_server()
    bad_handshake = await RawClient.connect(server.port)
    assert (await bad_handshake.option(proto.Option.STARTTLS)) == [(proto.Reply.ACK, b"")]
    bad_handshake.writer.write(garbage)  # not a TLS record
    assert await bad_handshake.closed_by_server()
    huge_option = await RawClient.connect(server.port, tls=exports.tls("volume"))
    huge_option.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.GO, 2**32 - 1))
    await huge_option.close()
    bad_request = await RawClient.connect(server.port, tls=exports.tls("volume"))
    await bad_request.go("volume")
    bad_request.writer.write(garbage)
    assert await bad_request.closed_by_server()
    await run_ok("nbdinfo", exports.uri("volume"))
    await wait_for(lambda: server.statistics().connections == 0)


# -- the protocol core, in memory ---------------------------------------------------------


def test_client_flags_with_unknown_bits_break_the_protocol() -> None:
    assert proto.parse_client_flags(b"\0\0\0\3") == 3
    for bad in (b"\0\0\0\4", b"\xff\xff\xff\xff", b"\x80\0\0\1"):
        with pytest.raises(proto.ProtocolError):
            proto.parse_client_flags(bad)


def test_info_requests_parse_and_malformed_ones_are_invalid() -> None:
    parsed = proto.parse_info_request(b"\0\0\0\3vol\0\2\0\3\0\1")
    assert parsed == proto.InfoRequest("vol", (proto.Info.BLOCK_SIZE, proto.Info.NAME))
    for bad in [b"", b"\0\0\0\xffvol\0\0", b"\0\0\0\3vol\0\1", b"\0\0\0\2\xff\xfe\0\0"]:
        with pytest.raises(proto.OptionError) as raised:
            proto.parse_info_request(bad)
        assert raised.value.reply == proto.Reply.ERR_INVALID


@pytest.mark.parametrize(
    ("offset", "length", "flags", "selected", "expected"),
    [
        (0, 8192, 0, True, None),
        (0, 1, proto.CommandFlag.REQ_ONE, True, None),
        (0, 8192, 0, False, proto.Errno.EINVAL),  # base:allocation not selected
        (8191, 2, 0, True, proto.Errno.EINVAL),  # past the end
        (0, 1, proto.CommandFlag.FUA, True, proto.Errno.EINVAL),
        (0, 0, 0, True, proto.Errno.EINVAL),  # its reply would hold no extent
        (8192, 0, 0, True, proto.Errno.EINVAL),
    ],
)
def test_block_status_is_served_only_once_its_context_is_selected(
    offset: int, length: int, flags: int, selected: bool, expected: object
) -> None:
    request = proto.Request(flags, proto.Command.BLOCK_STATUS, 1, offset, length)
    assert proto.check_request(request, 8192, True, 4096, block_status=selected) == expected


@pytest.mark.parametrize(
    ("command", "offset", "length", "flags", "readonly", "expected"),
    [
        (proto.Command.READ, 0, 4096, 0, True, None),
        (proto.Command.READ, 8192, 1, 0, False, proto.Errno.EINVAL),
        (proto.Command.READ, 0, 4097, 0, False, proto.Errno.EINVAL),
        (proto.Command.WRITE, 0, 4096, proto.CommandFlag.FUA, False, None),
        (proto.Command.WRITE, 0, 1, 0, True, proto.Errno.EPERM),
        (proto.Command.WRITE, 8191, 2, 0, False, proto.Errno.ENOSPC),
        (proto.Command.WRITE_ZEROES, 0, 8192, proto.CommandFlag.NO_HOLE, False, None),
        (proto.Command.TRIM, 8191, 2, 0, False, proto.Errno.EINVAL),
        (proto.Command.TRIM, 0, 4096, 0, True, proto.Errno.EPERM),
        (proto.Command.FLUSH, 0, 0, 0, False, None),
        (proto.Command.READ, 0, 1, proto.CommandFlag.DF, False, proto.Errno.EINVAL),
        (proto.Command.READ, 0, 1, 1 << 15, False, proto.Errno.EINVAL),
        (proto.Command.BLOCK_STATUS, 0, 1, 0, False, proto.Errno.EINVAL),
        (99, 0, 1, 0, False, proto.Errno.EINVAL),
    ],
)
def test_check_request_is_the_whole_transmission_policy(
    command: int, offset: int, length: int, flags: int, readonly: bool, expected: object
) -> None:
    request = proto.Request(flags, command, 1, offset, length)
    assert proto.check_request(request, 8192, readonly, max_length=4096) == expected


def _negotiation(*exports: proto.ExportInfo, secured: bool = True) -> proto.Negotiation:
    table = {export.name: export for export in exports}
    haggle = proto.Negotiation(table.get, (1, 4096, 32 * MiB))
    if secured:
        haggle.secured()
    return haggle


def _option_replies(data: bytes) -> list[tuple[int, int, bytes]]:
    replies = []
    while data:
        magic, option, kind, length = struct.unpack_from(">QIII", data)
        assert magic == proto.OPTION_REPLY_MAGIC
        replies.append((option, kind, data[20 : 20 + length]))
        data = data[20 + length :]
    return replies


def test_negotiation_go_answers_export_and_block_size_then_enters_transmission() -> None:
    volume = proto.ExportInfo("volume", 5 * MiB, readonly=True)
    answer = _negotiation(volume).answer(proto.Option.GO, b"\0\0\0\6volume\0\0")
    assert answer.export == volume and not answer.close
    flags = proto.transmission_flags(readonly=True)
    assert _option_replies(answer.reply) == [
        (proto.Option.GO, proto.Reply.INFO, struct.pack(">HQH", 0, 5 * MiB, flags)),
        (proto.Option.GO, proto.Reply.INFO, struct.pack(">HIII", 3, 1, 4096, 32 * MiB)),
        (proto.Option.GO, proto.Reply.ACK, b""),
    ]
    info = _negotiation(volume).answer(proto.Option.INFO, b"\0\0\0\6volume\0\0")
    assert info.export is None
    assert [r[1:] for r in _option_replies(info.reply)] == [
        r[1:] for r in _option_replies(answer.reply)
    ]


def test_negotiation_refusals_keep_haggling_except_for_export_name() -> None:
    haggle = _negotiation(proto.ExportInfo("volume", MiB, readonly=False))
    unknown = haggle.answer(proto.Option.GO, b"\0\0\0\4nope\0\0")
    assert _option_replies(unknown.reply)[0][1] == proto.Reply.ERR_UNKNOWN
    assert unknown.export is None and not unknown.close
    assert haggle.answer(proto.Option.EXPORT_NAME, b"nope") == proto.Answer(b"", close=True)
    assert haggle.answer(proto.Option.ABORT, b"").close
    for option in (proto.Option.EXTENDED_HEADERS, 1234):
        assert _option_replies(haggle.answer(option, b"").reply)[0][1] == proto.Reply.ERR_UNSUP
    # a meta context needs structured replies first (the spec's ERR_INVALID)
    query = _meta_query("volume", "base:allocation")
    refused = haggle.answer(proto.Option.SET_META_CONTEXT, query)
    assert _option_replies(refused.reply)[0][1] == proto.Reply.ERR_INVALID


def _meta_query(name: str, *queries: str) -> bytes:
    encoded = name.encode()
    body = struct.pack(">I", len(encoded)) + encoded + struct.pack(">I", len(queries))
    return body + b"".join(struct.pack(">I", len(q.encode())) + q.encode() for q in queries)


def test_negotiation_selects_base_allocation_after_structured_replies() -> None:
    haggle = _negotiation(proto.ExportInfo("volume", MiB, readonly=False),
                          proto.ExportInfo("other", MiB, readonly=False))
    assert _option_replies(haggle.answer(proto.Option.STRUCTURED_REPLY, b"x").reply)[0][1] \
        == proto.Reply.ERR_INVALID
    assert haggle.answer(proto.Option.STRUCTURED_REPLY, b"").reply == proto.option_reply(
        proto.Option.STRUCTURED_REPLY, proto.Reply.ACK)
    described = struct.pack(">I", proto.ALLOCATION_CONTEXT_ID) + b"base:allocation"
    listed = struct.pack(">I", 0) + b"base:allocation"
    for query, option, replies in [
        (("base:allocation",), proto.Option.SET_META_CONTEXT, [described]),
        (("x-other:thing", "base:allocation"), proto.Option.SET_META_CONTEXT, [described]),
        (("qemu:dirty-bitmap:b",), proto.Option.SET_META_CONTEXT, []),
        ((), proto.Option.SET_META_CONTEXT, []),
        ((), proto.Option.LIST_META_CONTEXT, [listed]),
        (("base:",), proto.Option.LIST_META_CONTEXT, [listed]),
    ]:
        answer = _option_replies(haggle.answer(option, _meta_query("volume", *query)).reply)
        assert [data for _, kind, data in answer if kind == proto.Reply.META_CONTEXT] == replies
        assert answer[-1][1] == proto.Reply.ACK
    haggle.answer(proto.Option.SET_META_CONTEXT, _meta_query("volume", "base:allocation"))
    assert haggle.allocation_context("volume") == proto.ALLOCATION_CONTEXT_ID
    assert haggle.allocation_context("other") is None  # set for another export
    unknown = haggle.answer(proto.Option.SET_META_CONTEXT, _meta_query("nope", "base:allocation"))
    assert _option_replies(unknown.reply)[0][1] == proto.Reply.ERR_UNKNOWN
    assert haggle.allocation_context("volume") is None  # a failed set clears the last
    for broken in (b"\0\0\0\x09volume", _meta_query("volume", "base:allocation")[:-3],
                   _meta_query("volume", "base:allocation") + b"!",
                   _meta_query("volume", *["base:allocation"] * 17)):
        kind = _option_replies(haggle.answer(proto.Option.SET_META_CONTEXT, broken).reply)[0][1]
        assert kind in (proto.Reply.ERR_INVALID, proto.Reply.ERR_TOO_BIG)


def test_allocation_extents_follow_the_file_s_holes_and_data(tmp_path: pathlib.Path) -> None:
    path = sparse_file(tmp_path / "sparse.raw", 8 * MiB)
    with path.open("r+b") as file:
        file.seek(2 * MiB)
        file.write(b"d" * MiB)
    hole = proto.BlockState.HOLE | proto.BlockState.ZERO
    fd = os.open(path, os.O_RDONLY)
    try:
        whole = allocation_extents(fd, 0, 8 * MiB, 8 * MiB, 1024)
        assert whole == [(2 * MiB, hole), (MiB, proto.BlockState(0)), (5 * MiB, hole)]
        assert allocation_extents(fd, MiB, MiB + 4096, 8 * MiB, 1024) == [
            (MiB, hole), (4096, proto.BlockState(0))]
        assert allocation_extents(fd, 0, 8 * MiB, 8 * MiB, 1) == [(2 * MiB, hole)]
        assert allocation_extents(fd, 7 * MiB, 2 * MiB, 8 * MiB, 1024) == [(MiB, hole)]
    finally:
        os.close(fd)


@requires("nbdinfo", "nbdcopy")
async def test_real_clients_see_the_holes_of_a_sparse_export_and_copy_it_sparse(
    exports: Exports, tmp_path: pathlib.Path
) -> None:
    """nbdinfo --map reads base:allocation; nbdcopy skips the holes (the server's
    bytes_read counts only the data) and reads the data through structured replies."""
    path = sparse_file(tmp_path / "big.raw", 64 * MiB)
    with path.open("r+b") as file:
        file.seek(10 * MiB)
        file.write(os.urandom(MiB))
    await exports.add("big", path, readonly=True)
    mapped = (await run_ok("nbdinfo", "--map", exports.uri("big", "big"))).stdout
    rows = [line.split() for line in mapped.splitlines() if line.strip()]
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [
        (0, 10 * MiB, 3), (10 * MiB, MiB, 0), (11 * MiB, 53 * MiB, 3)], mapped
    before = exports.server.statistics().bytes_read
    copy = tmp_path / "copy.raw"
    await run_ok("nbdcopy", exports.uri("big", "big"), str(copy))
    assert copy.read_bytes() == path.read_bytes()
    assert exports.server.statistics().bytes_read - before <= 2 * MiB


async def test_with_structured_replies_reads_and_errors_come_as_chunks(
    exports: Exports, disk: pathlib.Path
) -> None:
    """The spec's rule once structured replies are negotiated: no simple reply to a READ
    (data, an empty read, a refusal); BLOCK_STATUS answers the holes once selected."""
    with disk.open("r+b") as file:  # data in the first 4 KiB, a hole after
        file.truncate(0)
        file.truncate(DISK_SIZE)
        file.write(b"\xab" * 4096)
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    assert await client.option(proto.Option.STRUCTURED_REPLY) == [(proto.Reply.ACK, b"")]
    selected = await client.option(proto.Option.SET_META_CONTEXT,
                                   _meta_query("volume", "base:allocation"))
    assert selected[0] == (proto.Reply.META_CONTEXT,
                           struct.pack(">I", proto.ALLOCATION_CONTEXT_ID) + b"base:allocation")
    _, _, kind, _ = struct.unpack(">QIII", await client.reader.readexactly(20))
    assert kind == proto.Reply.ACK  # the context's reply is followed by the option's ACK
    await client.go("volume")

    async def chunk(command: int, offset: int, length: int) -> tuple[int, int, bytes]:
        client.send_request(command, offset, length)
        magic, flags, kind, cookie, size = struct.unpack(
            ">IHHQI", await client.reader.readexactly(20))
        assert (magic, flags & proto.REPLY_FLAG_DONE, cookie) == (
            proto.STRUCTURED_REPLY_MAGIC, proto.REPLY_FLAG_DONE, 7)
        return kind, size, await client.reader.readexactly(size)

    kind, size, payload = await chunk(proto.Command.READ, 0, 4096)
    assert (kind, size, payload) == (proto.ReplyType.OFFSET_DATA, 8 + 4096,
                                     bytes(8) + b"\xab" * 4096)
    assert await chunk(proto.Command.READ, 0, 0) == (proto.ReplyType.NONE, 0, b"")
    kind, _, payload = await chunk(proto.Command.READ, DISK_SIZE, 1)
    assert kind == proto.ReplyType.ERROR
    assert struct.unpack_from(">I", payload)[0] == proto.Errno.EINVAL
    kind, _, payload = await chunk(proto.Command.BLOCK_STATUS, 0, DISK_SIZE)
    assert kind == proto.ReplyType.BLOCK_STATUS
    context, *pairs = struct.unpack(f">I{(len(payload) - 4) // 4}I", payload)
    extents = list(zip(pairs[::2], pairs[1::2], strict=True))
    assert context == proto.ALLOCATION_CONTEXT_ID
    assert extents == [(4096, 0), (DISK_SIZE - 4096, proto.BlockState.HOLE | proto.BlockState.ZERO)]
    await client.close()


def test_negotiation_lists_no_export_and_pads_export_name_unless_no_zeroes() -> None:
    exports = [proto.ExportInfo(name, MiB, readonly=False) for name in ("a", "bc")]
    haggle = _negotiation(*exports)
    listing = _option_replies(haggle.answer(proto.Option.LIST, b"").reply)
    assert listing == [(proto.Option.LIST, proto.Reply.ACK, b"")]
    assert len(haggle.answer(proto.Option.EXPORT_NAME, b"a").reply) == 8 + 2 + 124
    haggle.client_flags(struct.pack(">I", 3))
    assert len(haggle.answer(proto.Option.EXPORT_NAME, b"a").reply) == 8 + 2


def test_before_tls_only_starttls_and_abort_are_answered() -> None:
    haggle = _negotiation(proto.ExportInfo("volume", MiB, readonly=False), secured=False)
    for option in (proto.Option.GO, proto.Option.INFO, proto.Option.LIST, 1234):
        answer = haggle.answer(option, b"\0\0\0\6volume\0\0")
        assert _option_replies(answer.reply)[0][1] == proto.Reply.ERR_TLS_REQD
        assert answer.export is None and not answer.close and not answer.starttls
    assert haggle.answer(proto.Option.EXPORT_NAME, b"volume") == proto.Answer(b"", close=True)
    assert haggle.answer(proto.Option.ABORT, b"").close
    bad = haggle.answer(proto.Option.STARTTLS, b"x")
    assert _option_replies(bad.reply)[0][1] == proto.Reply.ERR_INVALID and not bad.starttls
    start = haggle.answer(proto.Option.STARTTLS, b"")
    assert start.starttls and _option_replies(start.reply) == [
        (proto.Option.STARTTLS, proto.Reply.ACK, b"")]
    haggle.secured()
    assert haggle.answer(proto.Option.GO, b"\0\0\0\6volume\0\0").export is not None
    again = haggle.answer(proto.Option.STARTTLS, b"")
    assert _option_replies(again.reply)[0][1] == proto.Reply.ERR_INVALID and not again.starttls


async def test_exports_and_statistics_are_snapshots(
    authority: NodeAuthority, tmp_path: pathlib.Path
) -> None:
    nbd_server = NbdServer(authority.server_context())
    path = sparse_file(tmp_path / "v.raw")
    one, two = "a" * 64, "b" * 64
    nbd_server.add_export("v", path, True, client_fingerprint=one, client_name="v")
    with pytest.raises(ValueError, match="already exists"):
        nbd_server.add_export("v", path, False, client_fingerprint=two, client_name="v")
    with pytest.raises(ValueError, match="already opens export 'v'"):
        nbd_server.add_export("w", path, False, client_fingerprint=one, client_name="w")
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        nbd_server.add_export("w", path, False, client_fingerprint="xyz", client_name="w")
    assert nbd_server.exports() == {"v": (path, True)}
    assert nbd_server.statistics() == nbd.NbdStatistics()
    await nbd_server.remove_export("v")
    await nbd_server.remove_export("v")  # idempotent
    assert nbd_server.exports() == {}
    nbd_server.add_export("w", path, False, client_fingerprint=one, client_name="w")  # freed


def test_a_server_context_that_does_not_demand_client_certificates_is_refused(
    authority: NodeAuthority,
) -> None:
    lax = authority.server_context()
    lax.verify_mode = ssl.CERT_OPTIONAL
    with pytest.raises(ValueError, match="must require client certificates"):
        NbdServer(lax)


async def test_held_writes_wait_unanswered_while_reads_go_on(
    exports: Exports, disk: pathlib.Path
) -> None:
    """A group snapshot's instant (``gates.held``): a write sent while the file's writes
    are held gets no answer and does not reach the file until they are let go; a read
    is answered meanwhile; a write already answered is in the file before the hold
    yields."""
    client = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
    await client.go("volume")
    assert await client.request(proto.Command.WRITE, 0, 4, b"old!") == (0, b"")
    async with exports.server.gates.held([disk]):
        assert disk.read_bytes()[:4] == b"old!"  # answered before: in the file
        client.send_request(proto.Command.WRITE, 0, 4, b"new!")
        with pytest.raises(TimeoutError):  # held: no answer
            async with asyncio.timeout(0.5):
                await client.reader.readexactly(16)
        assert disk.read_bytes()[:4] == b"old!"
        reader = await RawClient.connect(exports.server.port, tls=exports.tls("volume"))
        await reader.go("volume")
        assert await reader.request(proto.Command.READ, 0, 4) == (0, b"old!")
        await reader.close()
    magic, error, cookie = struct.unpack(">IIQ", await client.reader.readexactly(16))
    assert (magic, error, cookie) == (proto.SIMPLE_REPLY_MAGIC, 0, 7)  # let go: answered
    assert disk.read_bytes()[:4] == b"new!"
    await client.close()


async def test_a_hold_keeps_the_gates_of_exported_files_only(
    exports: Exports, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """A snapshot of a volume no export serves holds a gate for it (an export added
    meanwhile waits too); once let go, that gate goes, and an exported file's stays."""
    other = sparse_file(tmp_path / "other.raw")
    gates = exports.server.gates
    async with gates.held([disk, other]):
        assert disk in gates and other in gates
    assert disk in gates and other not in gates
    await exports.server.remove_export("volume")
    assert disk not in gates

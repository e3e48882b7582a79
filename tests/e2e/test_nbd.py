"""The NBD server against real clients (nbdinfo, nbdcopy, qemu-io, qemu-img) and a raw socket.

The server runs in the test's event loop; clients are subprocesses started with
asyncio.create_subprocess_exec so the loop keeps serving while they run.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import signal
import struct
from collections.abc import AsyncIterator

import pytest

from cinderblock.storage_node.nbd import protocol as proto
from cinderblock.storage_node.nbd import server as nbd
from cinderblock.storage_node.nbd.server import MAX_REQUEST_LENGTH, NbdServer
from tests.conftest import Completed
from tests.conftest import run_process as run

MiB = 1024 * 1024
DISK_SIZE = 64 * MiB


def requires(*tools: str) -> pytest.MarkDecorator:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} on PATH")


async def run_ok(*argv: str) -> Completed:
    completed = await run(*argv)
    assert completed.returncode == 0, f"{argv} failed: {completed.stderr}{completed.stdout}"
    return completed


def sparse_file(path: pathlib.Path, size: int = DISK_SIZE) -> pathlib.Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


def uri(server: NbdServer, export: str) -> str:
    return f"nbd://127.0.0.1:{server.port}/{export}"


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def server() -> AsyncIterator[NbdServer]:
    async with NbdServer() as nbd:
        yield nbd


@pytest.fixture
def disk(tmp_path: pathlib.Path, server: NbdServer) -> pathlib.Path:
    path = sparse_file(tmp_path / "volume.raw")
    server.add_export("volume", path, readonly=False)
    return path


class RawClient:
    """Just enough of an NBD client to say things real clients never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, handshake: bool = True, no_zeroes: bool = True) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if handshake:
            greeting = await reader.readexactly(18)
            expected = (proto.NBDMAGIC, proto.IHAVEOPT, proto.SERVER_HANDSHAKE_FLAGS)
            assert struct.unpack(">QQH", greeting) == expected
            flags = proto.ClientFlag.FIXED_NEWSTYLE | (proto.ClientFlag.NO_ZEROES * no_zeroes)
            writer.write(struct.pack(">I", flags))
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


# -- real clients --------------------------------------------------------------------------


@requires("nbdinfo")
async def test_nbdinfo_reports_size_and_read_only_flag(
    server: NbdServer, tmp_path: pathlib.Path
) -> None:
    server.add_export("writable", sparse_file(tmp_path / "a.raw", 3 * MiB), readonly=False)
    server.add_export("frozen", sparse_file(tmp_path / "b.raw", 5 * MiB), readonly=True)
    for name, size, readonly in [("writable", 3 * MiB, False), ("frozen", 5 * MiB, True)]:
        info = json.loads((await run_ok("nbdinfo", "--json", uri(server, name))).stdout)
        (export,) = info["exports"]
        assert info["protocol"] == "newstyle-fixed"
        assert (export["export-size"], export["is_read_only"]) == (size, readonly)
        assert export["can_flush"] and export["can_trim"] and export["can_zero"]
        assert export["can_multi_conn"] and export["can_fua"]


@requires("nbdinfo")
async def test_nbdinfo_lists_every_export(server: NbdServer, tmp_path: pathlib.Path) -> None:
    for name in ("one", "two"):
        server.add_export(name, sparse_file(tmp_path / name), readonly=False)
    listing = await run_ok("nbdinfo", "--list", "--json", f"nbd://127.0.0.1:{server.port}")
    assert {e["export-name"] for e in json.loads(listing.stdout)["exports"]} == {"one", "two"}


@requires("qemu-io")
async def test_qemu_io_writes_a_pattern_that_lands_in_the_file(
    server: NbdServer, disk: pathlib.Path
) -> None:
    await run_ok("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", uri(server, "volume"))
    await run_ok("qemu-io", "-f", "raw", "-c", "read -P 0xab 0 1M", uri(server, "volume"))
    with disk.open("rb") as file:
        assert file.read(MiB + 1) == b"\xab" * MiB + b"\0"
    assert server.statistics().bytes_written >= MiB
    assert server.statistics().bytes_read >= MiB


@requires("qemu-io")
async def test_qemu_io_flush_write_zeroes_and_discard(
    server: NbdServer, disk: pathlib.Path
) -> None:
    commands = ["write -P 0x11 0 8M", "flush", "write -z 1M 1M", "discard 4M 2M", "write -P 7 0 1k"]
    await run_ok("qemu-io", "-f", "raw", *[f"-c{c}" for c in commands], uri(server, "volume"))
    data = disk.read_bytes()
    assert data[:1024] == b"\x07" * 1024 and data[1024:MiB] == b"\x11" * (MiB - 1024)
    assert data[MiB : 2 * MiB] == bytes(MiB) and data[4 * MiB : 6 * MiB] == bytes(2 * MiB)
    assert data[2 * MiB : 4 * MiB] == b"\x11" * 2 * MiB
    assert data[6 * MiB : 8 * MiB] == b"\x11" * 2 * MiB
    assert disk.stat().st_blocks * 512 <= 6 * MiB, "discard and write -z should punch holes"


@requires("nbdcopy")
async def test_nbdcopy_copies_out_of_and_into_an_export(
    server: NbdServer, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    disk.write_bytes(os.urandom(DISK_SIZE))
    copy = tmp_path / "copy.raw"
    await run_ok("nbdcopy", uri(server, "volume"), str(copy))
    assert copy.read_bytes() == disk.read_bytes()
    source = tmp_path / "source.raw"
    source.write_bytes(os.urandom(DISK_SIZE))
    await run_ok("nbdcopy", str(source), uri(server, "volume"))
    assert disk.read_bytes() == source.read_bytes()


@requires("qemu-img")
async def test_qemu_img_info_and_convert_both_ways(
    server: NbdServer, disk: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    info = await run_ok("qemu-img", "info", "--output=json", "-f", "raw", uri(server, "volume"))
    assert json.loads(info.stdout)["virtual-size"] == DISK_SIZE
    disk.write_bytes(os.urandom(DISK_SIZE))
    qcow2 = tmp_path / "image.qcow2"
    source = uri(server, "volume")
    await run_ok("qemu-img", "convert", "-f", "raw", "-O", "qcow2", source, str(qcow2))
    await run_ok("qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(disk), str(qcow2))
    other = sparse_file(tmp_path / "other.raw")
    with other.open("r+b") as file:
        file.write(os.urandom(DISK_SIZE // 2))  # the second half stays a hole
    target = uri(server, "volume")
    await run_ok("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(other), target)
    assert disk.read_bytes() == other.read_bytes()


@requires("qemu-io")
async def test_several_clients_write_at_once(server: NbdServer, disk: pathlib.Path) -> None:
    writes = [
        run_ok("qemu-io", "-f", "raw", "-c", f"write -P {n} {n * 8}M 8M", uri(server, "volume"))
        for n in range(1, 7)
    ]
    await asyncio.gather(*writes)
    data = disk.read_bytes()
    for n in range(1, 7):
        assert data[n * 8 * MiB : (n + 1) * 8 * MiB] == bytes([n]) * 8 * MiB
    assert server.statistics().connections_total >= 6


# -- refusals --------------------------------------------------------------------------------


@requires("qemu-io", "nbdcopy")
async def test_writing_to_a_readonly_export_fails(
    server: NbdServer, tmp_path: pathlib.Path
) -> None:
    frozen = sparse_file(tmp_path / "frozen.raw")
    server.add_export("frozen", frozen, readonly=True)
    source = tmp_path / "source.raw"
    source.write_bytes(b"\x55" * DISK_SIZE)
    qemu = await run("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", uri(server, "frozen"))
    nbdcopy = await run("nbdcopy", str(source), uri(server, "frozen"))
    assert qemu.returncode != 0 and nbdcopy.returncode != 0
    client = await RawClient.connect(server.port)
    _, flags = await client.go("frozen")
    assert flags & proto.TransmissionFlag.READ_ONLY
    for command, payload in [(proto.Command.WRITE, b"x" * 512), (proto.Command.TRIM, b"")]:
        assert (await client.request(command, 0, 512, payload))[0] == proto.Errno.EPERM
    assert (await client.request(proto.Command.READ, 0, 512))[0] == 0
    await client.close()
    assert frozen.read_bytes() == bytes(DISK_SIZE)


@requires("nbdinfo", "qemu-io")
async def test_an_unknown_export_is_refused(server: NbdServer, disk: pathlib.Path) -> None:
    assert (await run("nbdinfo", uri(server, "missing"))).returncode != 0
    assert (await run("qemu-io", "-f", "raw", "-c", "read 0 1", uri(server, "missing"))).returncode
    client = await RawClient.connect(server.port)
    replies = await client.option(proto.Option.GO, struct.pack(">I", 7) + b"missing\0\0")
    assert replies[-1][0] == proto.Reply.ERR_UNKNOWN
    client.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.EXPORT_NAME, 3) + b"nop")
    assert await client.closed_by_server()


async def test_unknown_options_are_unsupported_and_negotiation_goes_on(
    server: NbdServer, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(server.port)
    for option in (proto.Option.STRUCTURED_REPLY, proto.Option.STARTTLS, 0xDEAD):
        assert (await client.option(option))[-1][0] == proto.Reply.ERR_UNSUP
    assert (await client.option(proto.Option.LIST, b"junk"))[-1][0] == proto.Reply.ERR_INVALID
    truncated_name = b"\0\0\0\x09abc"
    assert (await client.option(proto.Option.INFO, truncated_name))[0][0] == proto.Reply.ERR_INVALID
    assert await client.go("volume") == (DISK_SIZE, proto.transmission_flags(readonly=False))
    assert (await client.request(proto.Command.CACHE, 0, 512))[0] == proto.Errno.EINVAL
    await client.close()


@pytest.mark.parametrize("no_zeroes", [True, False])
async def test_export_name_enters_transmission_for_old_clients(
    server: NbdServer, disk: pathlib.Path, no_zeroes: bool
) -> None:
    disk.write_bytes(b"\x5a" * DISK_SIZE)
    client = await RawClient.connect(server.port, no_zeroes=no_zeroes)
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
    server: NbdServer, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(server.port)
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


# -- connection lifecycle -------------------------------------------------------------------


@requires("qemu-io")
async def test_remove_export_closes_a_live_connection(
    server: NbdServer, disk: pathlib.Path
) -> None:
    client = await RawClient.connect(server.port)
    await client.go("volume")
    commands = ["-cread 0 4k", "-csleep 3000", "-cread 0 4k"]
    qemu = asyncio.create_task(run("qemu-io", "-f", "raw", *commands, uri(server, "volume")))
    await wait_for(lambda: server.statistics().connections == 2)
    await wait_for(lambda: server.statistics().requests >= 1)
    await server.remove_export("volume")
    assert await client.closed_by_server()
    assert server.statistics().connections == 0 and "volume" not in server.exports()
    completed = await qemu
    assert completed.returncode != 0 and "read failed" in completed.stdout + completed.stderr
    refused = await RawClient.connect(server.port)
    assert (await refused.option(proto.Option.GO, b"\0\0\0\6volume\0\0"))[-1][0] > 2**31
    await refused.close()


async def test_stop_closes_every_connection(tmp_path: pathlib.Path) -> None:
    nbd = NbdServer()
    await nbd.start()
    nbd.add_export("volume", sparse_file(tmp_path / "v.raw"), readonly=False)
    handshaking = await RawClient.connect(nbd.port)
    serving = await RawClient.connect(nbd.port)
    await serving.go("volume")
    await nbd.stop()
    assert await handshaking.closed_by_server() and await serving.closed_by_server()
    assert nbd.statistics().connections == 0


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
    server: NbdServer, tmp_path: pathlib.Path
) -> None:
    big = sparse_file(tmp_path / "big.raw", 8 * 1024 * MiB)
    server.add_export("big", big, readonly=False)
    await _kill_mid_transfer(server, "bytes_read", "nbdcopy", uri(server, "big"), "null:")
    writes = [f"-cwrite -P 0xcd {n * 512}M 512M" for n in range(16)]
    writer = ["qemu-io", "-f", "raw", *writes, uri(server, "big")]
    await _kill_mid_transfer(server, "bytes_written", *writer)
    await run_ok("qemu-io", "-f", "raw", "-c", "write -P 0x42 1G 1M", uri(server, "big"))
    await run_ok("qemu-io", "-f", "raw", "-c", "read -P 0x42 1G 1M", uri(server, "big"))


@requires("nbdinfo")
async def test_garbage_on_the_port_does_not_crash_the_server(
    server: NbdServer, disk: pathlib.Path
) -> None:
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
    huge_option = await RawClient.connect(server.port)
    huge_option.writer.write(struct.pack(">QII", proto.IHAVEOPT, proto.Option.GO, 2**32 - 1))
    await huge_option.close()
    bad_request = await RawClient.connect(server.port)
    await bad_request.go("volume")
    bad_request.writer.write(garbage)
    assert await bad_request.closed_by_server()
    await run_ok("nbdinfo", uri(server, "volume"))
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


def _negotiation(*exports: proto.ExportInfo) -> proto.Negotiation:
    table = {export.name: export for export in exports}
    return proto.Negotiation(table.get, table.keys, (1, 4096, 32 * MiB))


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
    for option in (proto.Option.STRUCTURED_REPLY, proto.Option.SET_META_CONTEXT, 1234):
        assert _option_replies(haggle.answer(option, b"").reply)[0][1] == proto.Reply.ERR_UNSUP


def test_negotiation_lists_exports_and_pads_export_name_unless_no_zeroes() -> None:
    exports = [proto.ExportInfo(name, MiB, readonly=False) for name in ("a", "bc")]
    haggle = _negotiation(*exports)
    listing = _option_replies(haggle.answer(proto.Option.LIST, b"").reply)
    assert [data for _, _, data in listing] == [b"\0\0\0\1a", b"\0\0\0\2bc", b""]
    assert len(haggle.answer(proto.Option.EXPORT_NAME, b"a").reply) == 8 + 2 + 124
    haggle.client_flags(struct.pack(">I", 3))
    assert len(haggle.answer(proto.Option.EXPORT_NAME, b"a").reply) == 8 + 2


async def test_exports_and_statistics_are_snapshots(tmp_path: pathlib.Path) -> None:
    nbd_server = NbdServer()
    path = sparse_file(tmp_path / "v.raw")
    nbd_server.add_export("v", path, readonly=True)
    with pytest.raises(ValueError, match="already exists"):
        nbd_server.add_export("v", path, readonly=False)
    assert nbd_server.exports() == {"v": (path, True)}
    assert nbd_server.statistics() == nbd.NbdStatistics()
    await nbd_server.remove_export("v")
    await nbd_server.remove_export("v")  # idempotent
    assert nbd_server.exports() == {}

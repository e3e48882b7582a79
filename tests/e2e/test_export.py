"""The storage node's export manager over a real file backend, a real NBD server
and real NBD clients (nbdinfo, qemu-io, nbdcopy), in this test's event loop."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import (
    NodeExportInfo,
    NodeExportList,
    NodeExportsRequest,
)
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.storage_node.backends import FileDriver, NullDriver
from cinderblock.storage_node.nbd.certificates import KeyPair
from cinderblock.storage_node.nbd.exports import ExportManager
from cinderblock.storage_node.nbd.throttle import IoLimits
from tests.conftest import run_tool as run
from tests.nbd_tls import NBD_TOOLS, nbds_uri, qemu_tls, requires, write_credentials

GIB = 1 << 30
pytestmark = requires(*NBD_TOOLS)


def credentials(info: NodeExportInfo, directory: Path) -> Path:
    """The credentials of `info` written where qemu and libnbd read them."""
    client = KeyPair(info.client_cert, info.client_key)
    return write_credentials(directory / info.export_name, info.ca_cert, client)


def uri(info: NodeExportInfo, directory: Path) -> str:
    return nbds_uri(info.host, info.port, info.export_name, credentials(info, directory))


def qemu(info: NodeExportInfo, directory: Path) -> list[str]:
    return qemu_tls(info.host, info.port, info.export_name, credentials(info, directory))


async def nbdinfo(info: NodeExportInfo, directory: Path) -> dict[str, object] | None:
    code, out = await run("nbdinfo", "--json", uri(info, directory))
    if code != 0:
        return None
    export: dict[str, object] = json.loads(out)["exports"][0]
    return export


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.driver = FileDriver(tmp_path / "node-1", None)
        self.state = tmp_path / "node-1.exports.json"
        self.tls = tmp_path / "node-1.tls"
        self.notified: list[tuple[str, str]] = []

    def manager(self, port: int = 0) -> ExportManager:
        return ExportManager(self.driver, "127.0.0.1", port, self.state, self.tls,
                             lambda vid, event: self.notified.append((vid, event)))


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(tmp_path)
    await n.driver.create_volume("vol-1", 1)
    await n.driver.create_volume("vol-2", 10)
    yield n


@pytest.fixture
async def exports(node: Node) -> AsyncIterator[ExportManager]:
    manager = node.manager()
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


async def test_an_exported_volume_is_served_read_write_and_stops_when_unexported(
    node: Node, exports: ExportManager, tmp_path: Path
) -> None:
    info = await exports.export("vol-1", "att-1", readonly=False)
    assert (info.host, info.port, info.export_name) == (
        "127.0.0.1", exports.port, "volume-vol-1.att-1")

    shown = await nbdinfo(info, tmp_path)
    assert shown is not None and (shown["export-size"], shown["is_read_only"]) == (GIB, False)
    code, out = await run("qemu-io", *qemu(info, tmp_path), "-c", "write -P 0xab 0 1M")
    assert code == 0, out

    await exports.unexport("vol-1", "att-1")

    assert await nbdinfo(info, tmp_path) is None
    with node.driver.volume_path("vol-1").open("rb") as f:
        assert f.read(1 << 20) == b"\xab" * (1 << 20)
    assert node.notified == [("vol-1", "volume.export"), ("vol-1", "volume.unexport")]


async def test_a_read_only_export_refuses_writes(exports: ExportManager, tmp_path: Path) -> None:
    info = await exports.export("vol-1", "att-ro", readonly=True)

    shown = await nbdinfo(info, tmp_path)
    assert shown is not None and shown["is_read_only"] is True
    code, _ = await run("qemu-io", *qemu(info, tmp_path), "-c", "write -P 1 0 4k")
    assert code != 0


async def test_exports_are_not_listed_and_each_opens_to_its_own_credentials_only(
    exports: ExportManager, tmp_path: Path
) -> None:
    one = await exports.export("vol-1", "att-1", readonly=False)
    two = await exports.export("vol-2", "att-2", readonly=True)
    assert len({one.client_cert, two.client_cert}) == 2 and one.ca_cert == two.ca_cert

    code, out = await run("nbdinfo", "--list", "--json", uri(two, tmp_path))
    assert code == 0, out
    assert json.loads(out)["exports"] == []
    code, _ = await run("nbdinfo", "--list", f"nbd://127.0.0.1:{exports.port}")
    assert code != 0
    crossed = nbds_uri(two.host, two.port, one.export_name, credentials(two, tmp_path))
    assert (await run("nbdinfo", crossed))[0] != 0
    assert await nbdinfo(one, tmp_path) is not None


async def test_export_and_unexport_are_idempotent_but_a_mode_change_is_refused(
    exports: ExportManager,
) -> None:
    first = await exports.export("vol-1", "att-1", readonly=False)
    assert await exports.export("vol-1", "att-1", readonly=False) == first
    with pytest.raises(InvalidState, match="another mode"):
        await exports.export("vol-1", "att-1", readonly=True)
    await exports.unexport("vol-1", "att-1")
    await exports.unexport("vol-1", "att-1")
    assert exports.exported() == {}


async def test_concurrent_repeats_of_an_export_issue_one_certificate(
    exports: ExportManager,
) -> None:
    answers = await asyncio.gather(
        *(exports.export("vol-1", "att-1", readonly=False) for _ in range(4)))
    assert len(set(answers)) == 1


async def test_unknown_volumes_and_bad_ids_are_refused(exports: ExportManager) -> None:
    with pytest.raises(NotFound, match="not on this node"):
        await exports.export("vol-9", "att-1", readonly=False)
    for vid, aid in (("../etc", "att-1"), ("vol-1", "a/b"), ("vol-1", "x" * 65)):
        with pytest.raises(InvalidInput, match="is not a valid id"):
            await exports.export(vid, aid, readonly=False)
    assert exports.exported() == {}


async def test_unexport_cuts_a_client_in_the_middle_of_a_transfer(
    exports: ExportManager, tmp_path: Path
) -> None:
    info = await exports.export("vol-2", "att-2", readonly=False)  # 10 GiB, sparse
    copy = await asyncio.create_subprocess_exec(  # --no-extents: read the holes too
        "nbdcopy", "--no-extents", uri(info, tmp_path), "null:", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(10):
            while exports.statistics()["nbd_bytes_read"] < 1 << 20:
                await asyncio.sleep(0.01)
        await exports.unexport("vol-2", "att-2")
        async with asyncio.timeout(10):
            assert await copy.wait() != 0
    finally:
        if copy.returncode is None:
            copy.kill()
            await copy.wait()
    assert exports.statistics()["nbd_connections"] == 0
    assert await nbdinfo(info, tmp_path) is None, "the certificate is revoked"


async def test_a_restarted_node_serves_the_same_exports_on_the_same_port_to_the_same_keys(
    node: Node, tmp_path: Path
) -> None:
    before = node.manager()
    await before.start()
    info = await before.export("vol-1", "att-1", readonly=True)
    await before.stop()

    after = node.manager()
    await after.start()
    try:
        assert after.port == info.port
        assert await after.export("vol-1", "att-1", readonly=True) == info
        shown = await nbdinfo(info, tmp_path)
        assert shown is not None and shown["is_read_only"] is True
    finally:
        await after.stop()


async def test_an_export_s_back_end_qos_is_kept_and_shared_by_the_volume_s_exports(
    node: Node,
) -> None:
    """The limits ``node.export`` names are in the table, restored with the export after
    a restart, and two exports of one volume with the same limits draw on one budget
    (a volume's QoS, not an attachment's); the first limits an export was given stay."""
    limits = IoLimits(total_iops_sec=300, read_bytes_sec=1 << 20)
    before = node.manager()
    await before.start()
    info = await before.export("vol-1", "att-1", readonly=False, limits=limits)
    again = await before.export("vol-1", "att-1", readonly=False, limits=IoLimits())
    assert again == info
    await before.export("vol-1", "att-2", readonly=True, limits=limits)
    await before.stop()
    table = json.loads(node.state.read_text())["exports"]
    assert table[info.export_name]["limits"] == {"total_iops_sec": 300,
                                                 "read_bytes_sec": 1 << 20}

    after = node.manager()
    await after.start()
    try:
        server = after.server
        assert server is not None and server.limits(info.export_name) == limits
        exports = server._exports.values()
        assert len({id(e.throttle) for e in exports}) == 1, "one budget for the volume"
        await after.export("vol-2", "att-3", readonly=False)
        assert not server.limits("volume-vol-2.att-3")
    finally:
        await after.stop()


async def test_an_unexport_does_not_wait_for_a_throttled_client_s_debt(
    exports: ExportManager, tmp_path: Path,
) -> None:
    """A read that owes its limit a week waits for it, but detaching the volume closes
    the connection at once: the wait ends with the connection."""
    info = await exports.export("vol-1", "att-1", readonly=False,
                                limits=IoLimits(total_bytes_sec=16))
    reader = asyncio.create_task(run("qemu-io", *qemu(info, tmp_path), "-c", "read 0 8M",
                                     timeout=120.0))
    for _ in range(200):  # the read has come in and is held
        if exports.statistics()["nbd_throttled"]:
            break
        await asyncio.sleep(0.05)
    assert exports.statistics()["nbd_throttled"] >= 1, "the read was never held"
    assert not reader.done()
    async with asyncio.timeout(10):
        await exports.unexport("vol-1", "att-1")
        code, _ = await reader
    assert code != 0 and exports.statistics()["nbd_connections"] == 0
    assert exports.statistics()["nbd_throttled"] >= 1, "the count outlives the export"


async def test_the_ca_key_server_key_and_export_table_are_private_to_the_node(
    node: Node, exports: ExportManager
) -> None:
    info = await exports.export("vol-1", "att-1", readonly=False)
    assert stat.S_IMODE(node.tls.stat().st_mode) == 0o700
    for private in (node.tls / "ca-key.pem", node.tls / "server-key.pem", node.state):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    table = json.loads(node.state.read_text())["exports"]
    assert table[info.export_name]["client_key"] == info.client_key  # a repeat answers it
    assert info.client_key not in (node.tls / "ca-key.pem").read_text()
    assert sorted(p.name for p in node.tls.iterdir()) == [
        "ca-cert.pem", "ca-key.pem", "server-cert.pem", "server-key.pem"]


async def test_the_client_certificate_names_the_attachment_and_chains_to_the_node_ca(
    node: Node, exports: ExportManager, tmp_path: Path
) -> None:
    info = await exports.export("vol-1", "att-1", readonly=False)
    cert = tmp_path / "client.pem"
    cert.write_text(info.client_cert)
    code, out = await run("openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext",
                          "extendedKeyUsage")
    assert code == 0 and "CN = att-1" in out and "TLS Web Client Authentication" in out, out
    code, out = await run("openssl", "verify", "-CAfile", str(node.tls / "ca-cert.pem"),
                          "-purpose", "sslclient", str(cert))
    assert code == 0, out


async def test_a_ca_certificate_without_its_key_stops_the_start_with_a_clear_error(
    node: Node,
) -> None:
    first = node.manager()
    await first.start()
    await first.stop()
    (node.tls / "ca-key.pem").unlink()
    with pytest.raises(Exception, match=r"ca-key.pem does not: restore the key"):
        await node.manager().start()


async def test_exports_of_volumes_gone_while_the_node_was_down_are_not_restored(
    node: Node,
) -> None:
    before = node.manager()
    await before.start()
    await before.export("vol-1", "att-1", readonly=False)
    await before.export("vol-2", "att-2", readonly=False)
    await before.stop()
    await node.driver.delete_volume("vol-2")

    after = node.manager()
    await after.start()
    try:
        assert list(after.exported()) == ["volume-vol-1.att-1"]
        assert json.loads(node.state.read_text())["exports"].keys() == {"volume-vol-1.att-1"}
    finally:
        await after.stop()


async def test_an_export_table_from_before_credentials_is_not_restored(node: Node) -> None:
    node.state.write_text(json.dumps(
        {"port": 0, "exports": {"volume-vol-1.att-1": {"volume_id": "vol-1", "readonly": False}}}))
    manager = node.manager()
    await manager.start()
    try:
        assert manager.exported() == {}
        fresh = await manager.export("vol-1", "att-1", readonly=False)
        assert fresh.client_cert.startswith("-----BEGIN CERTIFICATE-----")
    finally:
        await manager.stop()


async def test_a_backend_without_files_cannot_export(tmp_path: Path) -> None:
    driver = NullDriver()
    await driver.create_volume("vol-1", 1)
    manager = ExportManager(driver, "127.0.0.1", 0, tmp_path / "x.json", tmp_path / "x.tls",
                            lambda v, e: None)
    await manager.start()
    try:
        with pytest.raises(InvalidState, match="no file to export"):
            await manager.export("vol-1", "att-1", readonly=False)
    finally:
        await manager.stop()


async def test_the_exports_are_listed_a_page_at_a_time_by_attachment_id(
    exports: ExportManager,
) -> None:
    """``node.exports``, which the gateway's sweep reads: every export served, by
    attachment id, a page at a time."""
    for attachment_id in ("att-c", "att-a", "att-b"):
        await exports.export("vol-1", attachment_id, readonly=False)

    def ask(**body: Any) -> NodeExportList:
        env = Envelope("req", 1, "node.exports", None, Context("admin", "gateway"))
        return exports.on_exports(Request(env, NodeExportsRequest(**body), cast(Any, None), b""))

    first = ask(limit=2)
    assert [e.attachment_id for e in first.exports] == ["att-a", "att-b"]
    assert first.next_after == "att-b"
    rest = ask(after=first.next_after, limit=2)
    assert [(e.volume_id, e.attachment_id) for e in rest.exports] == [("vol-1", "att-c")]
    assert rest.next_after is None
    with pytest.raises(InvalidInput, match="limit must be"):
        ask(limit=0)

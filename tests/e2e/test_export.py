"""The storage node's export manager over a real file backend, a real NBD server
and real NBD clients (nbdinfo, qemu-io, nbdcopy), in this test's event loop."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cinderblock.protocol.messages.attachments import NodeExportInfo
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.storage_node.backends import FileDriver, NullDriver
from cinderblock.storage_node.nbd.exports import ExportManager
from tests.conftest import run_tool as run

GIB = 1 << 30
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("nbdinfo", "qemu-io", "nbdcopy")),
    reason="needs nbdinfo, qemu-io and nbdcopy",
)


def uri(info: NodeExportInfo) -> str:
    return f"nbd://{info.host}:{info.port}/{info.export_name}"


async def nbdinfo(info: NodeExportInfo) -> dict[str, object] | None:
    code, out = await run("nbdinfo", "--json", uri(info))
    if code != 0:
        return None
    export: dict[str, object] = json.loads(out)["exports"][0]
    return export


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.driver = FileDriver(tmp_path / "node-1", None)
        self.state = tmp_path / "node-1.exports.json"
        self.notified: list[tuple[str, str]] = []

    def manager(self, port: int = 0) -> ExportManager:
        return ExportManager(self.driver, "127.0.0.1", port, self.state,
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
    node: Node, exports: ExportManager
) -> None:
    info = exports.export("vol-1", "att-1", readonly=False)
    assert (info.host, info.port, info.export_name) == (
        "127.0.0.1", exports.port, "volume-vol-1.att-1")

    shown = await nbdinfo(info)
    assert shown is not None and (shown["export-size"], shown["is_read_only"]) == (GIB, False)
    code, out = await run("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", uri(info))
    assert code == 0, out

    await exports.unexport("vol-1", "att-1")

    assert await nbdinfo(info) is None
    with node.driver.volume_path("vol-1").open("rb") as f:
        assert f.read(1 << 20) == b"\xab" * (1 << 20)
    assert node.notified == [("vol-1", "volume.export"), ("vol-1", "volume.unexport")]


async def test_a_read_only_export_refuses_writes(exports: ExportManager) -> None:
    info = exports.export("vol-1", "att-ro", readonly=True)

    shown = await nbdinfo(info)
    assert shown is not None and shown["is_read_only"] is True
    code, _ = await run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4k", uri(info))
    assert code != 0


async def test_only_exported_attachments_are_listed(exports: ExportManager) -> None:
    exports.export("vol-1", "att-1", readonly=False)
    exports.export("vol-2", "att-2", readonly=True)
    await exports.unexport("vol-1", "att-1")

    code, out = await run("nbdinfo", "--list", "--json", f"nbd://127.0.0.1:{exports.port}")
    assert code == 0, out
    assert [e["export-name"] for e in json.loads(out)["exports"]] == ["volume-vol-2.att-2"]


async def test_export_and_unexport_are_idempotent_but_a_mode_change_is_refused(
    exports: ExportManager,
) -> None:
    first = exports.export("vol-1", "att-1", readonly=False)
    assert exports.export("vol-1", "att-1", readonly=False) == first
    with pytest.raises(InvalidState, match="another mode"):
        exports.export("vol-1", "att-1", readonly=True)
    await exports.unexport("vol-1", "att-1")
    await exports.unexport("vol-1", "att-1")
    assert exports.exported() == {}


async def test_unknown_volumes_and_bad_ids_are_refused(exports: ExportManager) -> None:
    with pytest.raises(NotFound, match="not on this node"):
        exports.export("vol-9", "att-1", readonly=False)
    for vid, aid in (("../etc", "att-1"), ("vol-1", "a/b"), ("vol-1", "x" * 65)):
        with pytest.raises(InvalidInput, match="is not a valid id"):
            exports.export(vid, aid, readonly=False)
    assert exports.exported() == {}


async def test_unexport_cuts_a_client_in_the_middle_of_a_transfer(
    exports: ExportManager,
) -> None:
    info = exports.export("vol-2", "att-2", readonly=False)  # 10 GiB, sparse
    copy = await asyncio.create_subprocess_exec(
        "nbdcopy", uri(info), "null:", stdout=asyncio.subprocess.DEVNULL,
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


async def test_a_restarted_node_serves_the_same_exports_on_the_same_port(
    node: Node,
) -> None:
    before = node.manager()
    await before.start()
    info = before.export("vol-1", "att-1", readonly=True)
    await before.stop()

    after = node.manager()
    await after.start()
    try:
        assert after.port == info.port
        shown = await nbdinfo(info)
        assert shown is not None and shown["is_read_only"] is True
    finally:
        await after.stop()


async def test_exports_of_volumes_gone_while_the_node_was_down_are_not_restored(
    node: Node,
) -> None:
    before = node.manager()
    await before.start()
    before.export("vol-1", "att-1", readonly=False)
    before.export("vol-2", "att-2", readonly=False)
    await before.stop()
    await node.driver.delete_volume("vol-2")

    after = node.manager()
    await after.start()
    try:
        assert list(after.exported()) == ["volume-vol-1.att-1"]
        assert json.loads(node.state.read_text())["exports"].keys() == {"volume-vol-1.att-1"}
    finally:
        await after.stop()


async def test_a_backend_without_files_cannot_export(tmp_path: Path) -> None:
    driver = NullDriver()
    await driver.create_volume("vol-1", 1)
    manager = ExportManager(driver, "127.0.0.1", 0, tmp_path / "x.json", lambda v, e: None)
    await manager.start()
    try:
        with pytest.raises(InvalidState, match="no file to export"):
            manager.export("vol-1", "att-1", readonly=False)
    finally:
        await manager.stop()

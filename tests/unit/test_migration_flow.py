"""The migration flow and the destination's report, driven in memory over a real store
(the nodes and the scheduler faked): the volume ``maintenance`` and its row
``migrating`` in one transaction; a report moves it, or gives it back where it was with
the reason; only the destination may report; a late report ends nothing, and drops a
copy only where the volume neither lives nor is going; the reconciler finishes a
migration whose report was lost and asks again for a copy that was cut short (twice,
then fails it)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.gateway.migration import MAX_RESENDS, GatewayMigrations
from cinderblock.actors.gateway.migration_store import MIGRATION_TABLE_V18, MigrationStatus
from cinderblock.actors.gateway.volume_request import TypeCatalog
from cinderblock.actors.gateway.volume_store import SCHEMA_VERSION, GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Link, Request
from cinderblock.protocol.messages.attachments import NodeExportInfo
from cinderblock.protocol.messages.migration import VolumeMigrate, VolumeReceived
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import Forbidden, PeerGone
from tests.conftest import EventRecorder, open_gateway_store

V, M = VolumeStatus, MigrationStatus
ADMIN = Context("admin", "admin", ("admin",), request_id="req-1")
PLAIN = VolumeType("t-plain", "__DEFAULT__")
NODE_1 = Backend("node-1@file", "node-1", "nova", 100.0, 90.0, 10.0, 10.0,
                 capabilities={"volume_backend_name": "file"})
NODE_2 = Backend("node-2@file", "node-2", "nova", 100.0, 90.0, 10.0, 10.0,
                 capabilities={"volume_backend_name": "file"})
EXPORT = NodeExportInfo("127.0.0.1", 10809, "volume-vol-1.m", "ca", "cert", "key")


class FakeGateway:
    """MigrationServices over a real store; what is sent to nodes is kept."""

    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.types = TypeCatalog()
        self.types.add(PLAIN)
        self.router = cast(Link, object())
        self.node_hosts = frozenset({"node-1", "node-2"})
        self.events = EventRecorder()
        self.sent: list[tuple[str, str, Any]] = []  # (node or backend, op, body)
        self.calls: list[tuple[str, str, Any]] = []
        self.node_down = False

    async def backends_seen(self, ctx: Context) -> list[Backend]:
        return [NODE_1, NODE_2]

    def publish(self, rec: VolumeRecord, push: bool = True) -> None:
        pass

    def cast_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.sent.append((host, op, body))

    async def send_to_node(self, host: str, op: str, body: object, ctx: Context) -> None:
        self.sent.append((host, op, body))

    async def node_call(self, host: str, op: str, body: object, ctx: Context
                        ) -> dict[str, Any]:
        self.calls.append((host, op, body))
        if self.node_down:
            raise PeerGone(f"peer {host!r} is not connected")
        return {"host": EXPORT.host, "port": EXPORT.port, "export_name": EXPORT.export_name,
                "ca_cert": "ca", "client_cert": "cert", "client_key": "key"} \
            if op == "node.export" else {}

    async def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                       ) -> None:
        await flow.run(c, self.events, volume_id)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[FakeGateway]:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        gw = FakeGateway(store)
        await store.add_volume(VolumeRecord(
            id="vol-1", project_id="demo", user_id="demo", size=1, status=V.AVAILABLE,
            volume_type=PLAIN, availability_zone="nova", host="node-1@file"))
        yield gw


def request(gw: FakeGateway, op: str, body: Any, peer: str = "admin",
            ctx: Context = ADMIN) -> Request:
    link = gw.router if peer.startswith("node-") else cast(Link, object())
    return Request(Envelope("req", 1, op, None, ctx), body, link, b"", peer)


async def row(gw: FakeGateway) -> tuple[Any, ...]:
    rows = await gw.store.db.fetchall(
        "SELECT v.status, v.host, m.status FROM volumes v "
        "LEFT JOIN volume_migrations m ON m.volume_id = v.id WHERE v.id='vol-1'")
    return tuple(rows[0])


async def migrate(gw: FakeGateway, g: GatewayMigrations) -> str:
    await g.on_migrate(request(gw, "volume.migrate", VolumeMigrate("vol-1", "node-2@file")))
    migration = gw.store.migrations.of_volume("vol-1")
    assert migration is not None
    return migration.migration_id


async def test_a_migration_marks_exports_casts_and_the_report_moves_the_volume(
    gw: FakeGateway,
) -> None:
    g = GatewayMigrations(gw)
    mid = await migrate(gw, g)
    assert await row(gw) == ("maintenance", "node-1@file", "migrating")
    assert [(h, op) for h, op, _ in gw.calls] == [("node-1", "node.export")]
    ((dest, op, body),) = gw.sent
    assert (dest, op, body.volume_id, body.migration_id, body.size, body.source) == (
        "node-2@file", "node.receive_volume", "vol-1", mid, 1, EXPORT)
    with pytest.raises(Forbidden, match="about a migration to node-2@file"):
        await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", mid),
                                    peer="node-1"))
    await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", mid),
                                peer="node-2"))
    assert await row(gw) == ("available", "node-2@file", "success")
    assert [(h, op) for h, op, _ in gw.calls][-1] == ("node-1", "node.drop_volume")
    vol = gw.store.volumes.get("vol-1")
    assert vol is not None and vol.migration_status == "success" and vol.reason is None


async def test_a_failed_copy_leaves_the_volume_where_it_was_with_the_reason(
    gw: FakeGateway,
) -> None:
    g = GatewayMigrations(gw)
    mid = await migrate(gw, g)
    await g.on_received(request(gw, "volume.received",
                                VolumeReceived("vol-1", mid, "disk full"), peer="node-2"))
    assert await row(gw) == ("available", "node-1@file", "error")
    vol = gw.store.volumes.get("vol-1")
    assert vol is not None and vol.reason == "migration to node-2@file failed: disk full"
    assert gw.sent[-1][:2] == ("node-1@file", "node.unexport")


async def test_a_source_that_cannot_export_ends_the_migration_before_any_copy(
    gw: FakeGateway,
) -> None:
    gw.node_down = True
    with pytest.raises(PeerGone):
        await migrate(gw, GatewayMigrations(gw))
    assert await row(gw) == ("available", "node-1@file", "error")
    assert not [op for _, op, _ in gw.sent if op == "node.receive_volume"]
    assert gw.store.claims == {}


async def test_a_late_report_ends_nothing_and_drops_a_copy_only_where_nothing_lives(
    gw: FakeGateway,
) -> None:
    g = GatewayMigrations(gw)
    first = await migrate(gw, g)
    await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", first),
                                peer="node-2"))
    sent = len(gw.sent)
    # the same report again: the volume lives on node-2, nothing is dropped
    await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", first),
                                peer="node-2"))
    assert len(gw.sent) == sent and await row(gw) == ("available", "node-2@file", "success")
    # a report from node-1 of a copy no migration asked for: dropped there
    await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", "old"),
                                peer="node-1"))
    assert gw.sent[-1][:2] == ("node-1", "node.drop_volume")
    # back to node-1, running: a late report from node-1 keeps the copy it is receiving
    gw.sent.clear()
    await migrate_back(gw, g)
    await g.on_received(request(gw, "volume.received", VolumeReceived("vol-1", first),
                                peer="node-1"))
    assert [op for _, op, _ in gw.sent] == ["node.receive_volume"]


async def migrate_back(gw: FakeGateway, g: GatewayMigrations) -> None:
    await g.on_migrate(request(gw, "volume.migrate", VolumeMigrate("vol-1", "node-1@file")))


async def test_the_reconciler_finishes_a_lost_report_and_asks_again_for_a_cut_copy(
    gw: FakeGateway,
) -> None:
    g = GatewayMigrations(gw)
    await migrate(gw, g)
    answers: dict[str, tuple[bool, bool] | None] = {"node-2": (True, False)}

    async def probe(node: str, volume_id: str) -> tuple[bool, bool] | None:
        return answers[node]

    later = 1e12
    assert await g.mend(later, probe) == []  # still copying: it may yet report
    answers["node-2"] = None
    assert await g.mend(later, probe) == []  # not answering: nothing decided
    answers["node-2"] = (False, True)  # whole there, its report lost
    assert await g.mend(later, probe) == ["vol-1"]
    assert await row(gw) == ("available", "node-2@file", "success")
    await migrate_back(gw, g)
    answers["node-1"] = (False, False)  # the copy cut short: nothing there
    for _ in range(MAX_RESENDS):  # asked again: the source's export, then the cast
        gw.sent.clear()
        gw.calls.clear()
        assert await g.mend(later, probe) == ["vol-1"]
        assert await row(gw) == ("maintenance", "node-2@file", "migrating")
        assert [(h, op) for h, op, _ in gw.calls] == [("node-2", "node.export")]
        assert [(h, op) for h, op, _ in gw.sent] == [("node-1@file", "node.receive_volume")]
    assert await g.mend(later, probe) == ["vol-1"]  # then it fails
    assert await row(gw) == ("available", "node-2@file", "error")


@pytest.mark.parametrize("version", [17, 18])
async def test_a_file_from_before_retype_migrations_is_brought_up_to_date(
    tmp_path: Path, version: int,
) -> None:
    """gateway.db 17 (no migrations) and 18 (migrations without a retype's terms) gain
    the terms' columns; a migration row of 18 reads as no retype's."""
    path = tmp_path / "gateway.db"
    async with open_gateway_store(path):
        pass
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE volume_migrations;")
    if version == 18:
        conn.executescript(MIGRATION_TABLE_V18)
        conn.execute("INSERT INTO volume_migrations VALUES "
                     "('vol-1', 'm-1', 'success', 'node-1@file', 'node-2@file', NULL, 1.0)")
    conn.execute(f"PRAGMA user_version={version}")
    conn.commit()
    conn.close()
    async with open_gateway_store(path) as store:
        await store.migrations.load()
        columns = [r[1] for r in await store.db.fetchall("PRAGMA table_info(volume_migrations)")]
        found = store.migrations.of_volume("vol-1")
        (now,) = (await store.db.fetchall("PRAGMA user_version"))[0]
    assert columns[-3:] == ["new_type_id", "reservation_id", "released"]
    assert now == SCHEMA_VERSION
    if version == 18:
        assert found is not None and (found.status, found.retype) == (M.SUCCESS, None)
    else:
        assert found is None

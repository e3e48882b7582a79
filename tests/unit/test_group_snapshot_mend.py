"""The round's mend of a group snapshot whose delete a crash cut short after its mark
(``GatewayGroupSnapshots.mend``), over a real store: each of its snapshots is asked to
be deleted, as the cut-short request would have; one refused now (its node away) hands
the group snapshot back, no longer ``deleting``, for its owner to ask again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.group_snapshots import (
    GatewayGroupSnapshots,
    GroupSnapshotServices,
    status_of,
)
from cinderblock.actors.gateway.group_store import GroupSnapshotRecord
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.protocol.states import SnapshotStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import Unavailable
from tests.conftest import EventRecorder, open_gateway_store

MARKED_AT = time.time() - 100.0  # when the snapshots were taken


class Services:
    """What the mend uses of the gateway: the store, and the snapshot delete flow's
    runs (recorded; those named in ``refused`` fail as a node away fails them)."""

    def __init__(self, store: GatewayStore, refused: set[str]) -> None:
        self.store = store
        self.events = EventRecorder()
        self.refused = refused
        self.asked: list[str] = []

    async def run_flow(self, flow: Any, c: Any, volume_id: str, ctx: Context) -> None:
        self.asked.append(c.snapshot_id)
        assert ctx.project_id == "demo"  # under the owner's project, as the request was
        if c.snapshot_id in self.refused:
            raise Unavailable("node-1 did not answer", {"node": "node-1"})

    def snapshot_delete_flow(self) -> Any:
        return None

    def publish_snapshot(self, rec: SnapshotRecord) -> None:
        pass


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[GatewayStore]:
    """A group snapshot of two snapshots, marked ``deleting`` by a delete a crash cut
    short before its snapshots were asked."""
    async with open_gateway_store(tmp_path / "gateway.db") as opened:
        marked = GroupSnapshotRecord("gs-1", "demo", "demo", "group-1", "gtype-1", "nightly",
                                     None, True, MARKED_AT, MARKED_AT)
        snapshots = [SnapshotRecord(f"snap-{i}", "demo", "demo", f"vol-{i}", 1,
                                    SnapshotStatus.AVAILABLE, host="node-1@file",
                                    volume_type_id="type-1", created_at=MARKED_AT,
                                    group_snapshot_id="gs-1") for i in (1, 2)]
        await opened.snapshots.add_group(snapshots, marked, "res-1", {})
        yield opened


def mender(services: Services) -> GatewayGroupSnapshots:
    return GatewayGroupSnapshots(cast(GroupSnapshotServices, services))


async def test_a_cut_short_delete_is_finished_by_asking_each_snapshot(
    store: GatewayStore,
) -> None:
    services = Services(store, refused=set())
    assert await mender(services).mend(time.time() + 1.0) == ["gs-1"]
    assert services.asked == ["snap-1", "snap-2"]
    assert store.group_snapshots.by_id["gs-1"].deleting  # it goes with its last snapshot


async def test_a_refused_snapshot_hands_the_group_snapshot_back_no_longer_deleting(
    store: GatewayStore,
) -> None:
    services = Services(store, refused={"snap-2"})
    ops = mender(services)
    assert await ops.mend(time.time() + 1.0) == ["gs-1"]
    assert services.asked == ["snap-1", "snap-2"]  # the others are still asked
    rec = store.group_snapshots.by_id["gs-1"]
    assert not rec.deleting and status_of(rec, ops.members(rec)) == "available"
    await store.db.settled()
    assert await store.db.fetchall("SELECT deleting FROM group_snapshots") == [(0,)]
    assert await ops.mend(time.time() + 1.0) == []  # handed back: not the round's again


async def test_a_group_snapshot_marked_after_the_rounds_before_is_left(
    store: GatewayStore,
) -> None:
    services = Services(store, refused=set())
    marked = store.group_snapshots.by_id["gs-1"].updated_at
    assert await mender(services).mend(marked - 1.0) == []  # the round's ``before``
    assert services.asked == []

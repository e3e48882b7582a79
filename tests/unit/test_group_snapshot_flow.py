"""The node's group snapshot flow, driven directly: which writes are held while each
snapshot is taken (a consistent group type: all of them, at once; else each volume's
while its own is taken), and what a failure leaves (nothing, every member ``error``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import cast

import pytest

from cinderblock.actors.gateway.group_snapshots import (
    GroupSnapshotCastTask,
    GroupSnapshotContext,
    GroupSnapshotServices,
)
from cinderblock.actors.gateway.group_store import GroupRecord, GroupSnapshotRecord
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.protocol.messages.groups import (
    GroupSnapshotCreate,
    GroupSnapshotMember,
    GroupType,
    NodeCreateGroupSnapshot,
)
from cinderblock.protocol.messages.lifecycle import SnapshotUpdate
from cinderblock.protocol.states import GroupStatus, SnapshotStatus
from cinderblock.protocol.wire.codec import Context
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.group_snapshot_flows import (
    GroupSnapshotOpContext,
    group_snapshot_create_manager,
)
from tests.conftest import EventRecorder

MEMBERS = tuple(GroupSnapshotMember(f"vol-{n}", f"snap-{n}") for n in range(3))


class Driver3:
    """A driver of three volumes whose snapshots record which writes were held."""

    def __init__(self, node: Node, fail_on: str | None = None) -> None:
        self.node = node
        self.fail_on = fail_on
        self.deleted: list[str] = []

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        if snapshot_id == self.fail_on:
            raise DriverError(f"injected fault: {snapshot_id}")
        self.node.steps.append(("snapshot", snapshot_id, frozenset(self.node.held)))

    async def delete_snapshot(self, snapshot_id: str) -> None:
        self.deleted.append(snapshot_id)


class Node:
    """The services the flow uses: holds recorded, reports to the gateway listed."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.held: set[str] = set()
        self.steps: list[tuple[str, str, frozenset[str]]] = []
        self.told: list[SnapshotUpdate] = []
        self._driver = Driver3(self, fail_on)

    @property
    def driver(self) -> Driver:
        return cast(Driver, self._driver)

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        @contextlib.asynccontextmanager
        async def hold(ids: frozenset[str]) -> AsyncIterator[None]:
            self.held |= ids
            self.steps.append(("held", ",".join(sorted(ids)), frozenset(self.held)))
            try:
                yield
            finally:
                self.held -= ids

        return hold(frozenset(volume_ids))

    def tell_gateway(self, op: str, body: object, ctx: Context) -> None:
        assert op == "snapshot.update" and isinstance(body, SnapshotUpdate)
        self.told.append(body)

    def changed(self) -> None:
        pass


async def take(node: Node, consistent: bool) -> None:
    c = GroupSnapshotOpContext(Context(project_id="p"), "gs-1", MEMBERS, consistent)
    await group_snapshot_create_manager(node).run(c, EventRecorder("node-1"))


async def test_a_consistent_group_s_snapshots_are_all_taken_while_every_write_is_held() -> None:
    node = Node()
    await take(node, consistent=True)
    every = frozenset(m.volume_id for m in MEMBERS)
    assert node.steps == [("held", "vol-0,vol-1,vol-2", every),
                          *(("snapshot", m.snapshot_id, every) for m in MEMBERS)]
    assert [(u.snapshot_id, u.status) for u in node.told] == [
        (m.snapshot_id, SnapshotStatus.AVAILABLE) for m in MEMBERS]


async def test_another_group_s_snapshots_are_taken_one_by_one_each_holding_its_volume() -> None:
    node = Node()
    await take(node, consistent=False)
    assert node.steps == [step for m in MEMBERS for step in (
        ("held", m.volume_id, frozenset({m.volume_id})),
        ("snapshot", m.snapshot_id, frozenset({m.volume_id})))]
    assert node.held == set()


@pytest.mark.parametrize("consistent", [True, False])
async def test_one_failed_snapshot_leaves_none_and_every_member_in_error(
    consistent: bool,
) -> None:
    node = Node(fail_on="snap-2")
    with pytest.raises(DriverError, match="injected fault: snap-2"):
        await take(node, consistent)
    assert node._driver.deleted == ["snap-0", "snap-1"]
    assert {(u.snapshot_id, u.status) for u in node.told} == {
        (m.snapshot_id, SnapshotStatus.ERROR) for m in MEMBERS}
    assert node.held == set()


@pytest.mark.parametrize(("specs", "consistent"), [
    ({"consistent_group_snapshot_enabled": "<is> True"}, True),
    ({"consistent_group_snapshot_enabled": "<is> False"}, False),
    ({}, False),
])
async def test_the_gateway_asks_for_one_instant_when_the_group_s_type_says_so(
    specs: dict[str, str], consistent: bool,
) -> None:
    """Cinder's ``is_group_a_cg_snapshot_type``: only ``<is> True`` is consistent."""
    sent: list[tuple[str, str, object]] = []

    async def send_to_node(host: str, op: str, body: object, ctx: Context) -> None:
        sent.append((host, op, body))

    gtype = GroupType("gt-1", "cg", group_specs=specs)
    store = SimpleNamespace(group_types=SimpleNamespace(by_id={"gt-1": gtype}))
    group = GroupRecord("g-1", "p", "u", None, None, GroupStatus.AVAILABLE, "gt-1", ("vt",),
                        "nova", "node-1@file", 0.0, 0.0)
    snapshots = [SnapshotRecord(m.snapshot_id, "p", "u", m.volume_id, 1, SnapshotStatus.CREATING)
                 for m in MEMBERS]
    c = GroupSnapshotContext(GroupSnapshotCreate("g-1"), Context(project_id="p"), group=group,
                             snapshots=snapshots)
    c.record = GroupSnapshotRecord("gs-1", "p", "u", "g-1", "gt-1", None, None, False, 0.0, 0.0)
    services = SimpleNamespace(store=store, send_to_node=send_to_node)
    await GroupSnapshotCastTask(cast(GroupSnapshotServices, services)).execute(c)
    assert sent == [("node-1@file", "node.create_group_snapshot",
                     NodeCreateGroupSnapshot("gs-1", MEMBERS, consistent))]

"""Volume transfers (Cinder's ``volume-transfers``; ``cinder/transfer/api.py``): a
project offers one of its volumes; whoever presents the transfer's id and its auth key
accepts the volume, and by default its snapshots, into their own project.

    transfer_create_api  ExtractTransferRequestTask → TransferEntryCreateTask
    transfer_accept_api  ExtractAcceptRequestTask → QuotaReserveTask → AcceptTransferTask

The rules are Cinder's: the volume must be available (and, unless ``no_snapshots``,
each of its snapshots); while offered it is ``awaiting-transfer``, so nothing else
changes it (attach, extend, snapshot, delete and the rest want it available); the
donor may delete the offer (the volume is available again). An accept checks the key
(HMAC, constant time: ``transfer_store``), reserves the volume and its snapshots in the
accepting project's quota (``volumes`` 1, ``snapshots`` their count, ``gigabytes``
the volume's size and theirs; the volume's size against ``per_volume_gigabytes``), then
in one transaction: the volume (and its snapshots) now the accepting project's and
user's, available; the offer gone; the reservation's commit owed, and the release of
the same amounts from the donor's usage (``quota_journal.py``, once, by the transfer's
id). Nothing is half-moved: a failed write leaves the volume offered and the
reservation rolled back; a gateway that dies between the reserve and that transaction
leaves a reservation its next start rolls back (the journal's sweep). No node is told:
a volume's bytes do not depend on its project.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    check_group_member,
    claim_volume,
    release_claim,
    visible_volume,
)
from cinderblock.actors.gateway.lifecycle_flows import LifecycleServices, QuotaReserveTask
from cinderblock.actors.gateway.paging import in_listing_order, page, sort_direction
from cinderblock.actors.gateway.services import GatewayServices
from cinderblock.actors.gateway.snapshot_store import SnapshotRecord
from cinderblock.actors.gateway.transfer_store import TransferRecord, new_key, transfer_bytes
from cinderblock.actors.gateway.volume_request import check_text
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.messages.quota import add_amounts, snapshot_amounts, volume_amounts
from cinderblock.protocol.messages.transfers import (
    Transfer,
    TransferAccept,
    TransferCreate,
    TransferList,
    TransferListRequest,
    TransferRef,
)
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.states import SnapshotStatus as P
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.states import check_volume_move
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound

TRANSFER_ENTRY_BEFORE_COMMIT = declare("gateway.transfer_create.entry.before_commit")
TRANSFER_ENTRY_AFTER_COMMIT = declare("gateway.transfer_create.entry.after_commit")
ACCEPT_RESERVE = (declare("gateway.transfer_accept.reserve.before_send"),
                  declare("gateway.transfer_accept.reserve.after_reply"))
ACCEPT_MOVE_BEFORE_COMMIT = declare("gateway.transfer_accept.move.before_commit")
ACCEPT_MOVE_AFTER_COMMIT = declare("gateway.transfer_accept.move.after_commit")


def check_offerable(volume: VolumeRecord, snapshot_statuses: dict[str, P],
                    no_snapshots: bool) -> None:
    """Whether ``volume`` may be offered (Cinder's words): available, and so is each of
    its snapshots (``snapshot_statuses``: id -> status) unless they stay behind."""
    if volume.status is not V.AVAILABLE:
        raise InvalidState(f"Invalid volume: status must be available (volume {volume.id} "
                           f"is {volume.status.value})", {"status": volume.status.value})
    if not no_snapshots:
        for snapshot_id, status in sorted(snapshot_statuses.items()):
            if status is not P.AVAILABLE:
                raise InvalidState(f"Invalid snapshot: snapshot: {snapshot_id} status must "
                                   f"be available (it is {status.value})",
                                   {"snapshot_id": snapshot_id, "status": status.value})


def moved_amounts(volume: VolumeRecord, snapshots: Iterable[SnapshotRecord]
                  ) -> dict[str, int]:
    """What a transfer takes out of the donor's usage and into the acceptor's: the
    volume and the snapshots that go with it, each as its volume type's too."""
    return add_amounts([volume_amounts(volume.size, volume.volume_type.id),
                        *(snapshot_amounts(s.size, s.volume_type_id) for s in snapshots)])


class TransferServices(Protocol):
    store: GatewayStore

    def publish_volume(self, rec: VolumeRecord) -> None: ...


@dataclass(slots=True)
class CreateContext:
    body: TransferCreate
    ctx: Context
    volume: VolumeRecord | None = None
    record: TransferRecord | None = None
    auth_key: str = ""
    claimed: str | None = None


@dataclass(slots=True)
class AcceptContext:
    body: TransferAccept
    ctx: Context
    project: str = ""  # the accepting project: its quota is reserved
    deltas: dict[str, int] = field(default_factory=dict)
    volume_size: int = 0
    reservation_id: str | None = None
    committed: bool = False
    transfer: TransferRecord | None = None
    volume: VolumeRecord | None = None
    snapshot_ids: tuple[str, ...] = ()  # the snapshots the reservation counts
    claimed: str | None = None


C = TypeVar("C")


class _Task(Task[C]):
    def __init__(self, services: TransferServices) -> None:
        self.s = services


class ExtractTransferRequestTask(_Task[CreateContext]):
    requires = ("body",)
    provides = ("volume",)

    async def execute(self, c: CreateContext) -> None:
        volume = visible_volume(self.s.store, c.body.volume_id, c.ctx)
        check_text("name", c.body.name)
        check_group_member(self.s.store, volume, "transferred")  # the group is its project's
        check_offerable(volume, _snapshot_statuses(self.s.store, volume.id),
                        c.body.no_snapshots)
        standing = self.s.store.transfers.of_volume(volume.id)
        if standing is not None:  # an admin reset the volume's status meanwhile
            raise InvalidState(f"Invalid volume: volume {volume.id} is already offered by "
                               f"transfer {standing.id}: delete that transfer first",
                               {"transfer_id": standing.id})
        c.claimed = claim_volume(self.s.store, volume, "offered for transfer")
        c.volume = volume


class TransferEntryCreateTask(_Task[CreateContext]):
    requires = ("volume",)
    provides = ("record",)

    async def execute(self, c: CreateContext) -> None:
        volume = c.volume
        assert volume is not None
        check_volume_move(volume.status, V.AWAITING_TRANSFER)
        key, salt, hashed = new_key()
        record = TransferRecord(str(uuid.uuid4()), volume.id, volume.project_id,
                                check_text("name", c.body.name), salt, hashed,
                                c.body.no_snapshots, time.time())
        volume.status = V.AWAITING_TRANSFER
        TRANSFER_ENTRY_BEFORE_COMMIT()
        status = self.s.store.queue_status(volume)
        entry = self.s.store.transfers.queue_add(record)
        await status
        await entry
        TRANSFER_ENTRY_AFTER_COMMIT()
        c.record, c.auth_key = record, key
        self.s.publish_volume(volume)


def transfer_create_api(services: TransferServices) -> LinearFlow[CreateContext]:
    return LinearFlow("transfer_create_api",
                      [ExtractTransferRequestTask(services), TransferEntryCreateTask(services)],
                      given=("body", "ctx"))


class ExtractAcceptRequestTask(_Task[AcceptContext]):
    requires = ("body",)
    provides = ("transfer", "volume", "deltas")

    async def execute(self, c: AcceptContext) -> None:
        transfer = self.s.store.transfers.by_id.get(c.body.transfer_id)
        if transfer is None:
            raise NotFound(f"Transfer {c.body.transfer_id} could not be found.",
                           {"transfer_id": c.body.transfer_id})
        if not transfer.opens_with(c.body.auth_key):
            raise InvalidInput(f"Invalid auth key: Attempt to transfer {transfer.id} with "
                               "invalid auth key.", {"transfer_id": transfer.id})
        volume = _offered(self.s.store, transfer)
        c.claimed = claim_volume(self.s.store, volume, "accepted from a transfer")
        snapshots = _moving_snapshots(self.s.store, transfer)
        c.transfer, c.volume, c.project = transfer, volume, c.ctx.project_id
        c.snapshot_ids = tuple(sorted(s.id for s in snapshots))
        c.deltas = moved_amounts(volume, snapshots)
        c.volume_size = volume.size


class AcceptTransferTask(_Task[AcceptContext]):
    requires = ("transfer", "volume", "reservation_id")

    async def execute(self, c: AcceptContext) -> None:
        transfer, volume, reservation_id = c.transfer, c.volume, c.reservation_id
        assert transfer is not None and volume is not None and reservation_id is not None
        if self.s.store.transfers.by_id.get(transfer.id) is not transfer:
            raise NotFound(f"Transfer {transfer.id} could not be found.",
                           {"transfer_id": transfer.id})
        _offered(self.s.store, transfer)
        donor = volume.project_id
        snapshots = _moving_snapshots(self.s.store, transfer)
        if tuple(sorted(s.id for s in snapshots)) != c.snapshot_ids:
            raise InvalidState(f"the snapshots of volume {volume.id} changed while the "
                               "transfer was accepted: accept it again",
                               {"volume_id": volume.id})
        check_volume_move(volume.status, V.AVAILABLE)
        volume.project_id, volume.user_id, volume.status = c.project, c.ctx.user_id, \
            V.AVAILABLE
        for snapshot in snapshots:
            snapshot.project_id, snapshot.user_id = c.project, c.ctx.user_id
        journal = self.s.store.journal
        ACCEPT_MOVE_BEFORE_COMMIT()
        written = [self.s.store.queue_owner(volume),
                   *(self.s.store.snapshots.queue_owner(s) for s in snapshots),
                   self.s.store.transfers.queue_remove(transfer),
                   journal.owe_commit(reservation_id, c.project),
                   journal.owe_release(f"transfer-{transfer.id}", donor, c.deltas)]
        for write in written:
            await write
        ACCEPT_MOVE_AFTER_COMMIT()
        c.committed = True
        self.s.publish_volume(volume)


def transfer_accept_api(services: LifecycleServices) -> LinearFlow[AcceptContext]:
    """The reserve is the lifecycle flows' own task, so these services are theirs."""
    return LinearFlow("transfer_accept_api",
                      [ExtractAcceptRequestTask(services),
                       QuotaReserveTask[AcceptContext](services, ACCEPT_RESERVE),
                       AcceptTransferTask(services)],
                      given=("body", "ctx"))


def _offered(store: GatewayStore, transfer: TransferRecord) -> VolumeRecord:
    """The volume ``transfer`` offers, still awaiting it."""
    volume = store.volumes.get(transfer.volume_id)
    if volume is None:
        raise NotFound(f"volume {transfer.volume_id} could not be found",
                       {"volume_id": transfer.volume_id})
    if volume.status is not V.AWAITING_TRANSFER:
        raise InvalidState(f"volume {volume.id} is {volume.status.value}, not awaiting "
                           "transfer", {"status": volume.status.value})
    return volume


def _moving_snapshots(store: GatewayStore, transfer: TransferRecord) -> list[SnapshotRecord]:
    """The snapshots that go with the volume (none when they stay behind)."""
    return [] if transfer.no_snapshots else store.snapshots.of_volume(transfer.volume_id)


def _snapshot_statuses(store: GatewayStore, volume_id: str) -> dict[str, P]:
    return {s.id: s.status for s in store.snapshots.of_volume(volume_id)}


class VolumeTransfers:
    """The handlers: create, list, show, delete and accept a transfer."""

    def __init__(self, gw: GatewayServices, lifecycle: LifecycleServices) -> None:
        self.gw = gw
        self.store = gw.store
        self.create_flow = transfer_create_api(lifecycle)
        self.accept_flow = transfer_accept_api(lifecycle)

    def handlers(self) -> dict[str, Handler]:
        return {"transfer.create": self.on_create, "transfer.list": self.on_list,
                "transfer.show": self.on_show, "transfer.delete": self.on_delete,
                "transfer.accept": self.on_accept}

    async def on_create(self, req: Request) -> Transfer:
        c = CreateContext(req.body, req.ctx)
        await self._run(self.create_flow, c, req.body.volume_id)
        assert c.record is not None
        return c.record.view(c.auth_key)

    async def on_accept(self, req: Request) -> Transfer:
        body: TransferAccept = req.body
        c = AcceptContext(body, req.ctx)
        offered = self.store.transfers.by_id.get(body.transfer_id)
        await self._run(self.accept_flow, c, offered.volume_id if offered else "")
        assert c.transfer is not None
        return Transfer(c.transfer.id, c.transfer.volume_id, c.transfer.project_id,
                        c.transfer.name, c.transfer.created_at, c.transfer.no_snapshots,
                        destination_project_id=c.project, accepted=True)

    def on_list(self, req: Request) -> TransferList:
        """A page of the offers the caller may see (``limit``, ``marker``, at most 1000 and
        about 512 KB a page: an admin's of every project had been one reply, which past
        about 2,000 offers with long names exceeded a frame), newest first or oldest
        first (``sort_dir`` "asc"); only those of ``volume_id`` and ``name`` if given."""
        body: TransferListRequest = req.body
        project = None if body.all_projects and req.ctx.is_admin else req.ctx.project_id
        oldest_first = sort_direction(body.sort_dir, "transfers")
        held = self.store.transfers.by_id
        theirs = [t for t in held.values() if project is None or t.project_id == project]

        def passes(t: TransferRecord) -> bool:
            return body.volume_id in (None, t.volume_id) and body.name in (None, t.name)

        found, next_marker = page(held.get, partial(in_listing_order, theirs, oldest_first),
                                  project, passes, body.marker, body.limit, transfer_bytes)
        return TransferList(tuple(t.view() for t in found), next_marker)

    def on_show(self, req: Request) -> Transfer:
        return self._visible(req.body.transfer_id, req.ctx).view()

    async def on_delete(self, req: Request) -> Empty:
        """The offer withdrawn: the volume is available again, in the same transaction."""
        body: TransferRef = req.body
        transfer = self._visible(body.transfer_id, req.ctx)
        volume = self.store.volumes.get(transfer.volume_id)
        claimed = None
        if volume is not None and volume.status is V.AWAITING_TRANSFER:
            claimed = claim_volume(self.store, volume, "taken back from a transfer")
        try:
            written = [self.store.transfers.queue_remove(transfer)]
            if claimed is not None and volume is not None:
                volume.status = V.AVAILABLE
                written.append(self.store.queue_status(volume))
            for write in written:
                await write
        finally:
            release_claim(self.store, claimed)
        if claimed is not None and volume is not None:
            self.gw.publish(volume)
        return Empty()

    def _visible(self, transfer_id: str, ctx: Context) -> TransferRecord:
        transfer = self.store.transfers.by_id.get(transfer_id)
        if transfer is None or (transfer.project_id != ctx.project_id and not ctx.is_admin):
            raise NotFound(f"Transfer {transfer_id} could not be found.",
                           {"transfer_id": transfer_id})
        return transfer

    async def _run(self, flow: LinearFlow[Any], c: CreateContext | AcceptContext,
                   volume_id: str) -> None:
        try:
            await self.gw.run_flow(flow, c, volume_id, c.ctx)
        finally:
            release_claim(self.store, c.claimed)


__all__ = ["VolumeTransfers", "check_offerable", "moved_amounts"]

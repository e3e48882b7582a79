"""The storage node's side of a volume's migration to another backend.

    volume_receive_manager  OnFailureReportTask(volume.received, with the reason)
                              → NotifyActionTask(volume.migrate.start) → ReceiveVolumeTask
                              → ReceiveVolumeOnFinishTask(volume.migrate.end)

The destination node copies the volume from its source node's NBD export (read-only,
opened by the client certificate issued for this migration alone, which the gateway
passes on) with ``nbdcopy`` into a new file, which the driver makes a volume only once
written whole (``Driver.receive_volume``); a copy that fails is made again a few times
over some 15 s (a source node restarted serves its exports again). It reports
``volume.received``: the copy is whole, or why not (nothing of it is left). A source
that holds no bytes (the null backend) exports nothing, and the new volume is all zeros.

The source node, once the gateway has moved the volume, drops its old copy and the
export (``node.drop_volume``, a call: the gateway waits for it and asks again after a
crash; dropping what is not here is done).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cinderblock.actors.flow.engine import Events, LinearFlow, Task, failure_text
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.runtime.failpoints import declare
from cinderblock.protocol.client.attachments import CREDENTIAL_FILES, nbds_uri
from cinderblock.protocol.messages.attachments import NodeExportInfo
from cinderblock.protocol.messages.migration import (
    NodeDropVolume,
    NodeReceiveVolume,
    VolumeReceived,
)
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.backends.base import is_valid_id
from cinderblock.storage_node.nbd.certificates import write_private

log = logging.getLogger(__name__)
RECEIVE_BEFORE_REPORT = declare("node.receive_volume.before_report")
RECEIVE_AFTER_REPORT = declare("node.receive_volume.after_report")
DROP_BEFORE_DELETE = declare("node.drop_volume.before_delete")
STDERR_KEPT = 500  # characters of nbdcopy's complaint a failure report carries
# between copies of a volume that failed: a source restarted by its supervisor is back
# within a second or two; one down for longer fails the migration some 15 s later
RETRY_WAITS_S = (1.0, 2.0, 4.0, 8.0)


class GatewayLink(Protocol):
    def cast(self, op: str, body: Any, ctx: Context | None = None) -> None: ...


class Exports(Protocol):
    async def unexport(self, volume_id: str, attachment_id: str) -> None: ...


class MigrationNode(Protocol):
    """What the migration's flows use of their storage node (``StorageNode`` is one)."""

    @property
    def backend_id(self) -> str: ...
    @property
    def driver(self) -> Driver: ...
    @property
    def gateway(self) -> GatewayLink: ...
    @property
    def events(self) -> Events: ...
    @property
    def exports(self) -> Exports: ...

    def recount_volumes(self) -> None: ...
    def working(self, *ids: str) -> AbstractContextManager[None]: ...
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]: ...


@dataclass(slots=True)
class ReceiveContext:
    ctx: Context
    volume_id: str
    migration_id: str
    size: int
    source: NodeExportInfo | None


def copy_from_export(source: NodeExportInfo, scratch: Path,
                     waits_s: Sequence[float] = RETRY_WAITS_S) -> Callable[[int], None]:
    """A ``fill`` that copies the export into the file it is given (``nbdcopy``; the
    file is all zeros at first, so the zeros it reads are not written). The client
    certificate and key that open the export are written in a directory of their own
    under ``scratch`` (the node's, swept at its start: a node killed mid-copy leaves
    them there, not in the machine's temporary directory), removed after. A copy that
    fails is made again, whole, after each of ``waits_s``: a source node killed and
    started again serves its exports again (their table is on its disk), so a copy
    cut short by its restart ends whole. The source is read-only while it is copied,
    so what a failed copy wrote is what the next writes; the next writes the zeros
    too all the same."""

    def fill(fd: int) -> None:
        with tempfile.TemporaryDirectory(prefix="copy-", dir=scratch) as directory:
            certificates = Path(directory)
            for key, name in CREDENTIAL_FILES.items():
                write_private(certificates / name, getattr(source, key))
            uri = nbds_uri(source.host, source.port, source.export_name, certificates)
            complaint = ""
            for attempt, wait in enumerate((0.0, *waits_s)):
                time.sleep(wait)
                zero = ["--destination-is-zero"] if attempt == 0 else []
                argv = ["nbdcopy", *zero, "--flush", uri, f"/dev/fd/{fd}"]
                done = subprocess.run(argv, pass_fds=(fd,), capture_output=True, text=True,
                                      check=False)
                if done.returncode == 0:
                    return
                complaint = done.stderr.strip()[-STDERR_KEPT:] or \
                    f"exit status {done.returncode}"
                log.warning("copy %d of %s from %s:%d failed: %s", attempt + 1,
                            source.export_name, source.host, source.port, complaint)
        raise OSError(f"nbdcopy from {source.host}:{source.port} failed "
                      f"{len(waits_s) + 1} times: {complaint}")

    return fill


class _Task(Task[ReceiveContext]):
    def __init__(self, services: NodeMigrations) -> None:
        self.s = services


class OnFailureReportTask(_Task):
    async def execute(self, c: ReceiveContext) -> None:
        """The work is in revert."""

    async def revert(self, c: ReceiveContext, failure: BaseException) -> None:
        self.s.report(c, failure_text(failure))


class NotifyStartTask(_Task):
    async def execute(self, c: ReceiveContext) -> None:
        self.s.notify(c, "volume.migrate.start")


class ReceiveVolumeTask(_Task):
    async def execute(self, c: ReceiveContext) -> None:
        fill = _nothing if c.source is None else copy_from_export(c.source, self.s.scratch)
        await self.s.node.driver.receive_volume(c.volume_id, c.size, fill)

    async def revert(self, c: ReceiveContext, failure: BaseException) -> None:
        """Only if a later task failed: the copy is whole here, and unwanted."""
        if not isinstance(failure, DriverError) and self.s.node.driver.holds("volume",
                                                                              c.volume_id):
            await self.s.node.driver.delete_volume(c.volume_id)


class ReceiveVolumeOnFinishTask(_Task):
    async def execute(self, c: ReceiveContext) -> None:
        self.s.node.recount_volumes()
        RECEIVE_BEFORE_REPORT()
        self.s.report(c, None)
        RECEIVE_AFTER_REPORT()
        self.s.notify(c, "volume.migrate.end")


def _nothing(fd: int) -> None:
    """The source holds no bytes: the new volume stays all zeros."""


def volume_receive_manager(s: NodeMigrations) -> LinearFlow[ReceiveContext]:
    return LinearFlow("volume_receive_manager", [
        OnFailureReportTask(s), NotifyStartTask(s), ReceiveVolumeTask(s),
        ReceiveVolumeOnFinishTask(s)])


class NodeMigrations:
    """A node's two migration ops: receive a volume, drop a moved one."""

    def __init__(self, node: MigrationNode, scratch: Path) -> None:
        self.node = node
        self.scratch = scratch  # the copies' credentials, each in a directory of its own
        self.receive = volume_receive_manager(self)

    def sweep_scratch(self) -> None:
        """At the node's start: what copies cut short by a kill left (the credentials
        of their source's export) removed, the directory made again, the owner's only."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(mode=0o700, parents=True)

    def handlers(self) -> dict[str, Handler]:
        return {"node.receive_volume": self.on_receive_volume,
                "node.drop_volume": self.on_drop_volume}

    def report(self, c: ReceiveContext, reason: str | None) -> None:
        self.node.gateway.cast("volume.received",
                               VolumeReceived(c.volume_id, c.migration_id, reason), c.ctx)

    def notify(self, c: ReceiveContext, event: str) -> None:
        self.node.events.emit("notify", volume_id=c.volume_id, event=event,
                              host=self.node.backend_id, migration_id=c.migration_id)

    async def on_receive_volume(self, req: Request) -> None:
        b: NodeReceiveVolume = req.body
        _check_ids(b.volume_id, b.migration_id)
        c = ReceiveContext(req.ctx, b.volume_id, b.migration_id, b.size, b.source)
        try:
            with self.node.working(b.volume_id):
                await self.node.run_flow(self.receive, c, b.volume_id, req.ctx)
        except DriverError as exc:  # already reported to the gateway
            log.warning("receiving volume %s failed: %s", b.volume_id, exc)

    async def on_drop_volume(self, req: Request) -> Empty:
        b: NodeDropVolume = req.body
        _check_ids(b.volume_id, b.migration_id)
        with self.node.working(b.volume_id):
            await self.node.exports.unexport(b.volume_id, b.migration_id)
            DROP_BEFORE_DELETE()
            try:
                await self.node.driver.delete_volume(b.volume_id)  # a missing one is fine
            except DriverError as exc:
                raise InvalidState(f"dropping volume {b.volume_id} failed: {exc}",
                                   {"volume_id": b.volume_id}) from None
        self.node.recount_volumes()
        return Empty()


def _check_ids(*ids: str) -> None:
    for value in ids:
        if not is_valid_id(value):
            raise InvalidInput(f"{value[:80]!r} is not a valid id", {"id": value[:80]})

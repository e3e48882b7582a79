"""The storage node's backup flows and its create from a backup, driven in memory: a real
FileDriver and backup repository in tmp_path, the gateway a list of the casts it got.

What is checked is what the gateway hears (``backup.made`` / ``backup.deleted`` /
``backup.restored`` or the volume's status), what the node notifies, and what the files
hold after: a failure leaves the volume's bytes, and no backup or volume half made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.backups import (
    BackupDeleted,
    BackupMade,
    BackupRestored,
    CheckedBackup,
    NodeCheckBackup,
    NodeCreateBackup,
    NodeDeleteBackup,
    NodeRestoreBackup,
)
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.storage_node.backends import Driver, FaultyDriver, FileDriver, NullDriver
from cinderblock.storage_node.backends.base import GIB, DriverError
from cinderblock.storage_node.backup_flows import backup_handlers
from cinderblock.storage_node.backup_repository import CHUNK_SIZE, BackupRepository, chunk_name
from cinderblock.storage_node.create_flow import ManagerContext, volume_create_manager
from tests.conftest import EventRecorder
from tests.lifecycle_helpers import holds_bytes, same_bytes, volume_holding, write_pattern

ME = Context("demo", "demo", request_id="req-1")
BACKEND = "node-1@file"
PATTERN = [(0, b"boot sector"), (3 * CHUNK_SIZE + 17, b"middle"), (GIB - 4, b"end!")]
OTHER = [(0, b"OTHER BYTES"), (9 * CHUNK_SIZE, b"elsewhere")]


class GatewayCasts:
    """The node's link to the gateway: what it was told, in order."""

    def __init__(self) -> None:
        self.casts: list[tuple[str, object]] = []

    def cast(self, op: str, body: Any, ctx: Context | None = None) -> None:
        self.casts.append((op, body))


class Node:
    """The services a storage node gives its backup flows and its create flow, over a
    real driver and repository; the gateway and the scheduler are lists of casts."""

    def __init__(self, driver: Driver, backups: BackupRepository) -> None:
        self.backend_id = BACKEND
        self.driver = driver
        self.backups = backups
        self.gateway = GatewayCasts()
        self.events = EventRecorder("node-1")
        self.busy: Counter[str] = Counter()
        self.reports: list[tuple[str, VolumeStatus, str | None]] = []
        self.rescheduled: list[ScheduleRequest] = []
        self.inflight: dict[str, int] = {}
        self.stats_reports = 0

    # BackupServices
    def stats_changed(self) -> None:
        self.stats_reports += 1

    @contextmanager
    def working(self, *ids: str) -> Iterator[None]:
        self.busy.update(ids)
        try:
            yield
        finally:
            self.busy.subtract(ids)
            self.busy += Counter()  # drop the zeros

    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]:
        return flow.run(c, self.events, volume_id, project_id=ctx.project_id)

    # NodeServices (the create flow)
    def begin_create(self, volume_id: str, size: int, epoch: str, seq: int) -> None:
        self.inflight[volume_id] = size

    def end_create(self, volume_id: str) -> None:
        self.inflight.pop(volume_id, None)

    def reschedule(self, request: ScheduleRequest, ctx: Context) -> None:
        self.rescheduled.append(request)

    def report(self, volume_id: str, status: VolumeStatus, reason: str | None, ctx: Context
               ) -> None:
        self.reports.append((volume_id, status, reason))

    def notify(self, volume_id: str, event: str) -> None:
        self.events.emit("notify", volume_id=volume_id, event=event, host=BACKEND)

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        return nullcontext()  # nothing exported here

    def guest_writes(self, volume_id: str) -> None:
        return None  # no guest writes here

    # driving it
    async def cast(self, op: str, body: object) -> None:
        env = Envelope("cast", 1, op, None, ME)
        await backup_handlers(self)[op](Request(env, body, cast(Any, None), b""))

    def notified(self) -> list[tuple[str, str]]:
        return [(e["event"], e.get("backup_id", "")) for e in self.events.events
                if e["kind"] == "notify"]

    def reverted(self, flow: str) -> list[str]:
        return [task for task, state in self.events.tasks(flow) if state == "REVERTED"]


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return tmp_path / "pool"


@pytest.fixture
def repo(tmp_path: Path) -> BackupRepository:
    repository = BackupRepository(tmp_path / "backups", "node-1")
    repository.prepare()
    return repository


def node_with(pool: Path, repo: BackupRepository, *faults: str) -> Node:
    driver: Driver = FileDriver(pool, clone_method="copy")
    return Node(FaultyDriver(driver, frozenset(faults)) if faults else driver, repo)


@pytest.fixture
def node(pool: Path, repo: BackupRepository) -> Node:
    return node_with(pool, repo)


def create_from_backup(volume_id: str, backup_id: str, size: int = 1) -> ManagerContext:
    request = ScheduleRequest(volume_id, "demo", size, backup_id=backup_id)
    return ManagerContext(NodeCreateVolume(request, BACKEND, "epoch-1", 7), ME)


# ---- create -------------------------------------------------------------------------


async def test_a_backup_is_made_reported_with_its_object_count_and_notified(
    node: Node, repo: BackupRepository
) -> None:
    await volume_holding(node.driver, "vol-1", PATTERN)

    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))

    assert node.gateway.casts == [("backup.made", BackupMade("b1", 3))]
    assert node.notified() == [("backup.create.start", "b1"), ("backup.create.end", "b1")]
    assert repo.holds("b1") and node.busy == Counter()
    assert [s for _, s in node.events.tasks("backup_create_manager")].count("SUCCESS") == 4


async def test_a_backup_of_a_snapshot_holds_the_snapshots_bytes_not_the_volumes(
    node: Node,
) -> None:
    volume = await volume_holding(node.driver, "vol-1", PATTERN)
    await node.driver.create_snapshot("snap-1", "vol-1")
    write_pattern(volume, OTHER)

    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1, "snap-1"))
    await volume_holding(node.driver, "vol-2", [])
    await node.cast("node.restore_backup", NodeRestoreBackup("b1", "vol-2"))

    restored = node.driver.volume_path("vol-2")
    assert restored is not None and holds_bytes(restored, PATTERN)
    assert not holds_bytes(restored, OTHER[:1])
    events = {e["event"]: e for e in node.events.events if e["kind"] == "notify"}
    assert events["backup.create.end"]["snapshot_id"] == "snap-1"


@pytest.mark.parametrize(("faults", "volume_id", "reason"), [
    (("backup_source",), "vol-1", "injected fault: backup_source"),
    ((), "vol-9", "volume vol-9 does not exist"),
])
async def test_a_backup_that_fails_is_reported_with_the_reason_and_leaves_nothing(
    pool: Path, repo: BackupRepository, faults: tuple[str, ...], volume_id: str, reason: str
) -> None:
    node = node_with(pool, repo, *faults)
    await volume_holding(node.driver, "vol-1", PATTERN)

    await node.cast("node.create_backup", NodeCreateBackup("b1", volume_id, 1))

    assert node.gateway.casts == [("backup.made", BackupMade("b1", 0, reason))]
    assert not repo.holds("b1") and list(repo.root.iterdir()) == []
    assert node.reverted("backup_create_manager") == [
        "CreateBackupTask", "NotifyActionTask", "OnFailureReportTask"]
    assert node.busy == Counter()


async def test_a_backup_sent_again_is_made_once_and_reported_alike(
    node: Node, repo: BackupRepository
) -> None:
    await volume_holding(node.driver, "vol-1", PATTERN)

    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))

    assert node.gateway.casts == [("backup.made", BackupMade("b1", 3))] * 2
    assert [p.name for p in repo.root.iterdir()] == ["b1"]


# ---- delete -------------------------------------------------------------------------


async def test_a_delete_is_reported_and_a_second_one_too(
    node: Node, repo: BackupRepository
) -> None:
    await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    node.gateway.casts.clear()

    await node.cast("node.delete_backup", NodeDeleteBackup("b1"))
    await node.cast("node.delete_backup", NodeDeleteBackup("b1"))

    assert node.gateway.casts == [("backup.deleted", BackupDeleted("b1"))] * 2
    assert list(repo.root.iterdir()) == []
    assert ("backup.delete.end", "b1") in node.notified()
    delete_runs = [e for e in node.events.events
                   if e["kind"] == "flow" and e["flow"] == "backup_delete_manager"]
    assert {e["volume_id"] for e in delete_runs} == {"b1"}, "a delete runs under the backup"


async def test_a_delete_that_fails_is_reported_with_the_reason(
    pool: Path, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "not-a-directory"
    not_a_directory.write_text("a repository that is not mounted, say")
    node = node_with(pool, BackupRepository(not_a_directory, "node-1"))

    await node.cast("node.delete_backup", NodeDeleteBackup("b1"))

    ((op, body),) = node.gateway.casts
    assert op == "backup.deleted" and isinstance(body, BackupDeleted)
    assert body.reason is not None and "deleting backup b1 from the backup repository" \
        in body.reason
    assert node.reverted("backup_delete_manager")[-1] == "OnFailureReportTask"


# ---- restore ------------------------------------------------------------------------


async def test_a_restore_replaces_the_volumes_data_with_the_backups(node: Node) -> None:
    source = await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    target = await volume_holding(node.driver, "vol-2", OTHER)

    await node.cast("node.restore_backup", NodeRestoreBackup("b1", "vol-2"))

    assert node.gateway.casts[-1] == ("backup.restored", BackupRestored("b1", "vol-2"))
    assert same_bytes(source, target)
    assert node.notified()[-2:] == [("backup.restore.start", "b1"), ("backup.restore.end", "b1")]
    assert node.stats_reports == 1 and node.busy == Counter()


async def test_a_restore_the_driver_fails_is_reported_and_leaves_the_volumes_bytes(
    pool: Path, repo: BackupRepository
) -> None:
    node = node_with(pool, repo, "restore_volume")
    await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    target = await volume_holding(node.driver, "vol-2", OTHER)

    await node.cast("node.restore_backup", NodeRestoreBackup("b1", "vol-2"))

    assert node.gateway.casts[-1] == (
        "backup.restored", BackupRestored("b1", "vol-2", "injected fault: restore_volume"))
    assert holds_bytes(target, OTHER)
    assert node.reverted("backup_restore_manager") == [
        "RestoreBackupTask", "NotifyActionTask", "OnFailureReportTask"]


async def test_a_restore_of_a_damaged_backup_names_it_and_leaves_the_volumes_bytes(
    node: Node, repo: BackupRepository, pool: Path
) -> None:
    await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    target = await volume_holding(node.driver, "vol-2", OTHER)
    (repo.root / "b1" / chunk_name(3)).write_bytes(b"not what was stored")

    await node.cast("node.restore_backup", NodeRestoreBackup("b1", "vol-2"))

    op, body = node.gateway.casts[-1]
    assert op == "backup.restored" and isinstance(body, BackupRestored)
    assert body.reason is not None and "backup b1" in body.reason
    assert "chunk-00000003" in body.reason
    assert holds_bytes(target, OTHER)
    assert sorted(p.name for p in pool.iterdir()) == ["volume-vol-1", "volume-vol-2"]


async def test_a_restore_of_a_backup_that_is_not_there_is_reported(node: Node) -> None:
    await volume_holding(node.driver, "vol-2", OTHER)

    await node.cast("node.restore_backup", NodeRestoreBackup("b9", "vol-2"))

    op, body = node.gateway.casts[-1]
    assert op == "backup.restored" and isinstance(body, BackupRestored)
    assert body.reason is not None and body.reason.startswith(
        "backup b9 is not in the backup repository at ")


async def test_the_null_backend_makes_and_restores_backups_of_no_bytes(
    repo: BackupRepository,
) -> None:
    node = Node(NullDriver(), repo)
    await node.driver.create_volume("vol-1", 1)

    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    await node.cast("node.restore_backup", NodeRestoreBackup("b1", "vol-1"))

    assert node.gateway.casts == [("backup.made", BackupMade("b1", 0)),
                                  ("backup.restored", BackupRestored("b1", "vol-1"))]


# ---- a volume created from a backup ------------------------------------------------


async def test_a_volume_created_from_a_backup_holds_the_backups_bytes(node: Node) -> None:
    source = await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))

    await volume_create_manager(node).run(create_from_backup("vol-3", "b1"), node.events)

    assert node.reports == [("vol-3", VolumeStatus.AVAILABLE, None)]
    made = node.driver.volume_path("vol-3")
    assert made is not None and same_bytes(source, made)
    assert node.inflight == {}


@pytest.mark.parametrize("damage", ["a damaged chunk", "no such backup", "a driver fault"])
async def test_a_failed_create_from_a_backup_leaves_no_volume_and_reports_error(
    pool: Path, repo: BackupRepository, damage: str
) -> None:
    node = node_with(pool, repo, *(("receive_volume",) if damage == "a driver fault" else ()))
    await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    if damage == "a damaged chunk":
        (repo.root / "b1" / chunk_name(0)).unlink()
    backup_id = "b9" if damage == "no such backup" else "b1"

    with pytest.raises(DriverError, match=r"backup b|injected fault"):
        await volume_create_manager(node).run(create_from_backup("vol-3", backup_id),
                                              node.events)

    ((volume_id, status, reason),) = node.reports
    assert (volume_id, status, node.rescheduled) == ("vol-3", VolumeStatus.ERROR, [])
    assert reason is not None and reason.startswith(f"{BACKEND}: ")
    assert not node.driver.holds("volume", "vol-3")
    assert sorted(p.name for p in pool.iterdir()) == ["volume-vol-1"]
    assert node.inflight == {}


async def test_a_volume_smaller_than_its_backup_is_not_made(
    node: Node, repo: BackupRepository, pool: Path
) -> None:
    await node.driver.create_volume("vol-1", 2)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 2))

    with pytest.raises(DriverError, match="does not fit a volume of 1 GiB"):
        await volume_create_manager(node).run(create_from_backup("vol-3", "b1", size=1),
                                              node.events)

    assert node.reports[0][1] is VolumeStatus.ERROR
    assert sorted(p.name for p in pool.iterdir()) == ["volume-vol-1"]


# ---- an import's check --------------------------------------------------------------


async def test_an_import_s_check_answers_only_for_a_whole_backup_of_that_volume_and_size(
    node: Node, repo: BackupRepository
) -> None:
    await volume_holding(node.driver, "vol-1", PATTERN)
    await node.cast("node.create_backup", NodeCreateBackup("b1", "vol-1", 1))
    env = Envelope("req", 1, "node.check_backup", None, ME)

    async def check(body: NodeCheckBackup) -> Any:
        handler = backup_handlers(node)["node.check_backup"]
        return await handler(Request(env, body, cast(Any, None), b""))

    assert await check(NodeCheckBackup("b1", "vol-1", 1)) == CheckedBackup(3)
    for body, words in ((NodeCheckBackup("b2", "vol-1", 1), "backup b2 is not in"),
                        (NodeCheckBackup("b1", "vol-9", 1), "is of volume vol-1, 1 GiB; the "
                                                            "record says volume vol-9, 1 GiB"),
                        (NodeCheckBackup("b1", "vol-1", 2), "the record says volume vol-1, "
                                                            "2 GiB"),
                        (NodeCheckBackup("../pool", "vol-1", 1), "invalid backup id")):
        with pytest.raises(InvalidInput, match=words):
            await check(body)
    (repo.root / "b1" / "manifest.json").write_text("{}")
    with pytest.raises(InvalidInput, match=r"backup b1 .* is damaged"):
        await check(NodeCheckBackup("b1", "vol-1", 1))

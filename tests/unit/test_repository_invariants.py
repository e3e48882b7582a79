"""The settled-cluster check of backup repositories (``bench.invariants``), on real
repositories in a temp directory: an orphan backup, a backup the gateway lists as whole
that is not, and work left in progress are each named; a repository that agrees is not."""

from __future__ import annotations

import uuid
from pathlib import Path

from cinderblock.actors.runtime.config import embedded
from cinderblock.bench.invariants import repository_names, repository_violations
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.states import BackupStatus
from cinderblock.storage_node.backup_repository import BackupRepository, temp_prefix

B = BackupStatus


def backup(backup_id: str, status: BackupStatus = B.AVAILABLE) -> Backup:
    return Backup(backup_id, "p", str(uuid.uuid4()), status, 1)


async def test_a_repository_that_agrees_with_the_gateway_has_no_violations(
    tmp_path: Path,
) -> None:
    cfg = embedded(tmp_path, nodes=2)
    repo = BackupRepository(cfg.backup_root(cfg.nodes[0]), cfg.nodes[0].host)
    repo.prepare()
    kept, restoring = str(uuid.uuid4()), str(uuid.uuid4())
    for backup_id in (kept, restoring):
        await repo.write(backup_id, str(uuid.uuid4()), 1, None)
    listed = [backup(kept), backup(restoring, B.RESTORING),
              backup(str(uuid.uuid4()), B.ERROR)]  # a failed backup holds nothing
    assert repository_violations(listed, repository_names(cfg)) == []


async def test_orphans_missing_backups_and_work_in_progress_are_each_named(
    tmp_path: Path,
) -> None:
    cfg = embedded(tmp_path, nodes=2)
    node = cfg.nodes[1]
    repo = BackupRepository(cfg.backup_root(node), node.host)
    repo.prepare()
    orphan, whole, half = (str(uuid.uuid4()) for _ in range(3))
    await repo.write(orphan, str(uuid.uuid4()), 1, None)
    await repo.write(whole, str(uuid.uuid4()), 1, None)
    root = cfg.backup_root(node)
    (root / half).mkdir()  # a directory without its manifest is not a whole backup
    leftover = f"{temp_prefix(node.host)}{uuid.uuid4()}-0a1b2c3d"
    (root / leftover).mkdir()
    gone = str(uuid.uuid4())

    problems = repository_violations(
        [backup(whole), backup(half), backup(gone, B.AVAILABLE)], repository_names(cfg))

    assert problems == [
        f"backup repository: {leftover} is left over (work in progress)",
        f"backup repository: orphan backup {orphan} (the gateway has no such backup)",
        f"backup {half} is available but not whole in its repository",
        f"backup {gone} is available but not whole in its repository",
    ]


def test_a_repository_not_made_yet_holds_nothing(tmp_path: Path) -> None:
    cfg = embedded(tmp_path / "never-started", nodes=2)
    assert repository_names(cfg) == set()
    assert repository_violations([backup(str(uuid.uuid4()), B.ERROR)], set()) == []

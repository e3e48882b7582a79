"""The client library's calls for volume backups, mixed into ``Client`` and
``SyncClient``:

    backup = await c.create_backup(vol.id, name="nightly", wait=True)   # available
    info = await c.restore_backup(backup.id, volume_id=other.id)        # its data replaced
    info = await c.restore_backup(backup.id)                            # into a new volume
    await c.delete_backup(backup.id, wait=True)

A backup is made by its volume's node into the backup repository; while it is made the
volume is ``backing-up`` (an in-use one needs ``force``), and while one is restored the
volume written is ``restoring-backup``. Backups have no watchers: ``wait`` polls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.messages.backups import (
    Backup,
    BackupCreate,
    BackupList,
    BackupListRequest,
    BackupModify,
    BackupRef,
    BackupResetState,
    BackupRestore,
    BackupRestoreInfo,
    ExportedBackup,
)
from cinderblock.protocol.states import BACKUP_ERRORS, BackupStatus
from cinderblock.protocol.wire.errors import CinderblockError, InternalError, NotFound, Timeout
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")
POLL_S = (0.05, 1.0)  # the first and the longest pause between two looks at a backup
WAIT_S = 600.0  # the longest a wait lasts unless told otherwise (a large volume's copy)


class BackupFailed(CinderblockError):
    """A backup waited for ended in an error status; ``details`` holds its fail reason."""

    code = "backup_error"


class BackupMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def create_backup(
        self, volume_id: str, *, name: str | None = None, description: str | None = None,
        force: bool = False, snapshot_id: str | None = None, container: str | None = None,
        metadata: dict[str, str] | None = None, incremental: bool = False,
        availability_zone: str | None = None, request_id: str | None = None,
        wait: bool = False, timeout: float | None = None,
    ) -> Backup:
        """Back the volume up (or its snapshot ``snapshot_id``); with ``wait``, until the
        backup is available (``BackupFailed`` if it ends in error). Sent again with the
        same ``request_id`` (after a timeout or a lost connection), it answers the backup
        the first made, for a day, never a second one."""
        body = BackupCreate(volume_id, name, description, force, incremental, snapshot_id,
                            container, metadata or {}, availability_zone)
        backup = parse(Backup, await self.call("backup.create", body, request_id),
                       strict=False)
        return await self.wait_for_backup(backup.id, timeout=timeout) if wait else backup

    async def show_backup(self, backup_id: str) -> Backup:
        return parse(Backup, await self.call("backup.show", BackupRef(backup_id)), strict=False)

    async def list_backups(self, all_projects: bool = False, project_id: str | None = None,
                           status: str | None = None, volume_id: str | None = None,
                           name: str | None = None, limit: int | None = None,
                           marker: str | None = None) -> list[Backup]:
        """This project's backups (an admin's ``all_projects``: every project's, or
        ``project_id``'s), newest first: all of them, page by page, or the first
        ``limit`` after ``marker``; only those with ``status``, of ``volume_id`` and
        named ``name`` if given."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[Backup, ...], str | None]:
            body = BackupListRequest(all_projects, project_id, status, volume_id, name, left,
                                     after)
            reply = parse(BackupList, await self.call("backup.list", body), strict=False)
            return reply.backups, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def count_backups(self, all_projects: bool = False, project_id: str | None = None,
                            status: str | None = None, volume_id: str | None = None,
                            name: str | None = None) -> int:
        """How many backups ``list_backups`` with these filters lists in all (Cinder's
        ``with_count``), counted by the gateway without a page."""
        body = BackupListRequest(all_projects, project_id, status, volume_id, name, limit=0,
                                 with_count=True)
        reply = parse(BackupList, await self.call("backup.list", body), strict=False)
        if reply.count is None:
            raise InternalError("the gateway answered a backup count without one")
        return reply.count

    async def update_backup(self, backup_id: str, *, name: str | None = None,
                            description: str | None = None,
                            metadata: dict[str, str] | None = None,
                            clear: Iterable[str] = ()) -> Backup:
        """Change what is given: the name, the description, the metadata (replaced);
        ``clear`` names the text fields (``name``, ``description``) to make none."""
        body = BackupModify(backup_id, name, description, metadata, tuple(clear))
        return parse(Backup, await self.call("backup.update", body), strict=False)

    async def delete_backup(self, backup_id: str, wait: bool = False,
                            timeout: float | None = None) -> Backup:
        """Delete the backup (available or in error); with ``wait``, until it is gone."""
        backup = parse(Backup, await self.call("backup.delete", BackupRef(backup_id)),
                       strict=False)
        if wait:
            await self._poll_backup(backup_id, frozenset(), timeout, gone_ok=True)
        return backup

    async def restore_backup(self, backup_id: str, volume_id: str | None = None,
                             name: str | None = None, wait: bool = False,
                             timeout: float | None = None, *, request_id: str | None = None
                             ) -> BackupRestoreInfo:
        """Write the backup's data into ``volume_id`` (available, at least the backup's
        size; its data is replaced), or into a new volume (named ``name``); with
        ``wait``, until the backup is available again (``BackupFailed`` with the reason
        if the restore failed: the volume then keeps its own data). A restore into a new
        volume sent again under its ``request_id`` answers the volume the first made; one
        into ``volume_id`` sent again is refused while the first runs, and restores the
        same data again once it has ended."""
        raw = await self.call("backup.restore", BackupRestore(backup_id, volume_id, name),
                              request_id)
        info = parse(BackupRestoreInfo, raw, strict=False)
        if wait:  # a restore's end sets the reason, or clears it
            backup = await self.wait_for_backup(backup_id, timeout=timeout)
            if backup.fail_reason:
                raise BackupFailed(backup.fail_reason, {"backup_id": backup_id,
                                                        "volume_id": info.volume_id})
        return info

    async def reset_backup_state(self, backup_id: str, status: str) -> Backup:
        """Admin: move a stuck backup to ``available`` or ``error``."""
        raw = await self.call("backup.reset_state", BackupResetState(backup_id, status))
        return parse(Backup, raw, strict=False)

    async def export_backup_record(self, backup_id: str) -> ExportedBackup:
        """Admin: the record of an available backup, for ``import_backup_record`` on a
        cluster whose nodes read the same backup repository (Cinder's export_record)."""
        raw = await self.call("backup.export_record", BackupRef(backup_id))
        return parse(ExportedBackup, raw, strict=False)

    async def import_backup_record(self, backup_service: str, backup_url: str) -> Backup:
        """Admin: know again the backup a record describes (in this admin's project),
        once the node it names finds it whole in its repository (Cinder's
        import_record); it is ``available`` when this returns."""
        raw = await self.call("backup.import_record", ExportedBackup(backup_service,
                                                                     backup_url))
        return parse(Backup, raw, strict=False)

    async def wait_for_backup(self, backup_id: str, status: str = BackupStatus.AVAILABLE,
                              timeout: float | None = None) -> Backup:
        """Wait until the backup has ``status`` (``BackupFailed`` if it reaches an error
        status instead, ``Timeout`` if neither happens in time)."""
        found = await self._poll_backup(backup_id, frozenset({BackupStatus(status)}), timeout)
        assert found is not None
        return found

    async def _poll_backup(self, backup_id: str, wanted: frozenset[BackupStatus],
                           timeout: float | None, gone_ok: bool = False) -> Backup | None:
        deadline = time.monotonic() + (timeout or WAIT_S)
        pause = POLL_S[0]
        while True:
            try:
                backup = await self.show_backup(backup_id)
            except NotFound:
                if gone_ok:
                    return None
                raise
            if backup.status in wanted:
                return backup
            if backup.status in BACKUP_ERRORS:
                raise BackupFailed(
                    f"backup {backup_id} is {backup.status.value}: "
                    f"{backup.fail_reason or 'no reason given'}",
                    {"backup_id": backup_id, "status": backup.status.value})
            if time.monotonic() + pause > deadline:
                raise Timeout(f"backup {backup_id} is still {backup.status.value}",
                              {"backup_id": backup_id})
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_S[1])


class SyncBackupMethods:
    def _run(self, make: Callable[[BackupMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_backup(self, volume_id: str, **kwargs: Any) -> Backup:
        return self._run(lambda c: c.create_backup(volume_id, **kwargs))

    def show_backup(self, backup_id: str) -> Backup:
        return self._run(lambda c: c.show_backup(backup_id))

    def list_backups(self, **kwargs: Any) -> list[Backup]:
        return self._run(lambda c: c.list_backups(**kwargs))

    def count_backups(self, **kwargs: Any) -> int:
        return self._run(lambda c: c.count_backups(**kwargs))

    def update_backup(self, backup_id: str, **kwargs: Any) -> Backup:
        return self._run(lambda c: c.update_backup(backup_id, **kwargs))

    def delete_backup(self, backup_id: str, **kwargs: Any) -> Backup:
        return self._run(lambda c: c.delete_backup(backup_id, **kwargs))

    def restore_backup(self, backup_id: str, **kwargs: Any) -> BackupRestoreInfo:
        return self._run(lambda c: c.restore_backup(backup_id, **kwargs))

    def reset_backup_state(self, backup_id: str, status: str) -> Backup:
        return self._run(lambda c: c.reset_backup_state(backup_id, status))

    def export_backup_record(self, backup_id: str) -> ExportedBackup:
        return self._run(lambda c: c.export_backup_record(backup_id))

    def import_backup_record(self, backup_service: str, backup_url: str) -> Backup:
        return self._run(lambda c: c.import_backup_record(backup_service, backup_url))

    def wait_for_backup(self, backup_id: str, **kwargs: Any) -> Backup:
        return self._run(lambda c: c.wait_for_backup(backup_id, **kwargs))

"""The volume transfers the gateway keeps (table ``transfers`` of gateway.db).

A transfer is an offer of one volume (``awaiting-transfer`` while it stands) to
whoever presents its id and its auth key. The key is shown once, in the answer to its
create, and never kept: the table holds a random salt and the HMAC-SHA256 of the key
under it (Cinder keeps an HMAC-SHA1 the same way), compared in constant time. At most
one transfer a volume. Transfers are few (one a volume offered), so memory holds them
all: read at start and, after a failed write, read back with the rest of the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from cinderblock.actors.gateway.paging import FIXED_BYTES
from cinderblock.actors.runtime.database import Database
from cinderblock.protocol.messages.transfers import Transfer

TRANSFER_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY, volume_id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
    name TEXT, salt TEXT NOT NULL, crypt_hash TEXT NOT NULL, no_snapshots INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""
_COLUMNS = "id, volume_id, project_id, name, salt, crypt_hash, no_snapshots, created_at"
INSERT_TRANSFER = f"INSERT INTO transfers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
DELETE_TRANSFER = "DELETE FROM transfers WHERE id=?"
KEY_HEX = 16  # Cinder's volume_transfer_key_length: the key a user types


def crypt_hash(salt: str, auth_key: str) -> str:
    return hmac.new(salt.encode(), auth_key.encode(), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh auth key, a salt, and the hash kept of the key under the salt."""
    key, salt = secrets.token_hex(KEY_HEX // 2), secrets.token_hex(16)
    return key, salt, crypt_hash(salt, key)


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: str
    volume_id: str
    project_id: str  # the volume's project when it was offered (the donor)
    name: str | None
    salt: str
    crypt_hash: str
    no_snapshots: bool
    created_at: float

    def opens_with(self, auth_key: str) -> bool:
        return hmac.compare_digest(crypt_hash(self.salt, auth_key), self.crypt_hash)

    def view(self, auth_key: str | None = None) -> Transfer:
        return Transfer(self.id, self.volume_id, self.project_id, self.name, self.created_at,
                        self.no_snapshots, auth_key=auth_key)

    def row(self) -> tuple[object, ...]:
        return (self.id, self.volume_id, self.project_id, self.name, self.salt,
                self.crypt_hash, int(self.no_snapshots), self.created_at)


def transfer_bytes(rec: TransferRecord) -> int:
    """About how many bytes the offer's view takes in a reply (its name is what can be
    long)."""
    return FIXED_BYTES + len((rec.name or "").encode())


class TransferStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.by_id: dict[str, TransferRecord] = {}
        self._by_volume: dict[str, TransferRecord] = {}

    async def load(self) -> None:
        (await self.db.run(self.reread))()

    def reread(self, conn: sqlite3.Connection) -> Callable[[], None]:
        """In the database thread: every transfer (at start, and after a failed write);
        what it returns makes them the ones memory holds."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM transfers").fetchall()
        return partial(self._install, [
            TransferRecord(tid, vid, project, name, salt, hashed, bool(no_snaps), created)
            for tid, vid, project, name, salt, hashed, no_snaps, created in rows])

    def _install(self, records: Iterable[TransferRecord]) -> None:
        self.by_id = {rec.id: rec for rec in records}
        self._by_volume = {rec.volume_id: rec for rec in self.by_id.values()}

    def of_volume(self, volume_id: str) -> TransferRecord | None:
        return self._by_volume.get(volume_id)

    def queue_add(self, rec: TransferRecord) -> asyncio.Future[None]:
        """Queue the transfer's row (in the transaction of what is queued with it); the
        caller has made sure the volume has no other (the table's ``UNIQUE``)."""
        self.by_id[rec.id] = self._by_volume[rec.volume_id] = rec
        return self.db.write(INSERT_TRANSFER, rec.row())

    def queue_remove(self, rec: TransferRecord) -> asyncio.Future[None]:
        self.by_id.pop(rec.id, None)
        self._by_volume.pop(rec.volume_id, None)
        return self.db.write(DELETE_TRANSFER, (rec.id,))

"""Delete requests by request id: memory equal to the file, also after a write that
failed."""

from __future__ import annotations

import asyncio
from typing import Any

from cinderblock.actors.gateway.delete_requests import DeleteRequest, DeleteRequests
from cinderblock.actors.runtime.database import Database, WriteFailed

KEY = ("demo", "req-1")
REQUEST = DeleteRequest("volume", "v-1", "demo", "v-1", 1)


class Batches:
    """``Database.write`` as DeleteRequests uses it: each write its own batch, whose
    outcome the test decides."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, asyncio.Future[None]]] = []

    def write(self, sql: str, params: Any = ()) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writes.append((sql.split()[0], fut))
        return fut


def _requests(batches: Batches) -> DeleteRequests:
    db: Database = batches  # type: ignore[assignment]
    return DeleteRequests(db)


async def test_a_request_whose_row_is_written_is_remembered() -> None:
    batches = Batches()
    requests = _requests(batches)
    requests.remember(KEY, REQUEST)
    batches.writes[-1][1].set_result(None)
    await asyncio.sleep(0)
    assert requests.get(KEY) is REQUEST


async def test_a_request_whose_row_failed_is_not_remembered() -> None:
    batches = Batches()
    requests = _requests(batches)
    written = requests.remember(KEY, REQUEST)
    batches.writes[-1][1].set_exception(WriteFailed("database write failed: disk full"))
    await asyncio.sleep(0)
    assert requests.get(KEY) is None
    assert isinstance(written.exception(), WriteFailed)


async def test_a_forgotten_request_whose_removal_failed_comes_back() -> None:
    batches = Batches()
    requests = _requests(batches)
    requests.remember(KEY, REQUEST)
    batches.writes[-1][1].set_result(None)
    requests.forget(KEY)
    assert requests.get(KEY) is None
    batches.writes[-1][1].set_exception(WriteFailed("database write failed: disk full"))
    await asyncio.sleep(0)
    assert requests.get(KEY) is REQUEST  # its row is still in the file


async def test_a_newer_request_for_the_key_is_kept_when_an_older_write_fails() -> None:
    batches = Batches()
    requests = _requests(batches)
    requests.remember(KEY, REQUEST)
    newer = DeleteRequest("volume", "v-2", "demo", "v-2", 2)
    requests.remember(KEY, newer)
    batches.writes[0][1].set_exception(WriteFailed("database write failed: disk full"))
    await asyncio.sleep(0)
    assert requests.get(KEY) is newer

"""The client library's calls for volume transfers, mixed into ``Client`` and
``SyncClient``:

    offer = await donor.create_transfer(vol.id, name="to ops")   # offer.auth_key: once
    taken = await acceptor.accept_transfer(offer.id, offer.auth_key)
    await donor.delete_transfer(offer.id)              # or withdraw an offer not taken

While offered the volume is ``awaiting-transfer``; once accepted it is the accepting
project's (with its snapshots, unless ``no_snapshots``), and so is its quota.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.messages.transfers import (
    Transfer,
    TransferAccept,
    TransferCreate,
    TransferList,
    TransferListRequest,
    TransferRef,
)
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class TransferMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def create_transfer(self, volume_id: str, name: str | None = None,
                              no_snapshots: bool = False) -> Transfer:
        """Offer the volume to another project; the answer holds the auth key, which
        nothing shows again."""
        raw = await self.call("transfer.create", TransferCreate(volume_id, name, no_snapshots))
        return parse(Transfer, raw, strict=False)

    async def accept_transfer(self, transfer_id: str, auth_key: str) -> Transfer:
        """Take the offered volume into this client's project."""
        raw = await self.call("transfer.accept", TransferAccept(transfer_id, auth_key))
        return parse(Transfer, raw, strict=False)

    async def list_transfers(self, all_projects: bool = False, volume_id: str | None = None,
                             name: str | None = None, limit: int | None = None,
                             marker: str | None = None, sort_dir: str | None = None,
                             ) -> list[Transfer]:
        """This project's offers not yet taken (an admin's: everyone's), newest first, or
        oldest first (``sort_dir`` "asc"): all of them, page by page, or the first
        ``limit`` after ``marker``; only those of ``volume_id`` and ``name`` if given."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[Transfer, ...], str | None]:
            body = TransferListRequest(all_projects, volume_id, name, left, after, sort_dir)
            reply = parse(TransferList, await self.call("transfer.list", body), strict=False)
            return reply.transfers, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def show_transfer(self, transfer_id: str) -> Transfer:
        raw = await self.call("transfer.show", TransferRef(transfer_id))
        return parse(Transfer, raw, strict=False)

    async def delete_transfer(self, transfer_id: str) -> None:
        """Withdraw the offer: the volume is available again."""
        await self.call("transfer.delete", TransferRef(transfer_id))


class SyncTransferMethods:
    def _run(self, make: Callable[[TransferMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_transfer(self, volume_id: str, **kwargs: Any) -> Transfer:
        return self._run(lambda c: c.create_transfer(volume_id, **kwargs))

    def accept_transfer(self, transfer_id: str, auth_key: str) -> Transfer:
        return self._run(lambda c: c.accept_transfer(transfer_id, auth_key))

    def list_transfers(self, **kwargs: Any) -> list[Transfer]:
        return self._run(lambda c: c.list_transfers(**kwargs))

    def show_transfer(self, transfer_id: str) -> Transfer:
        return self._run(lambda c: c.show_transfer(transfer_id))

    def delete_transfer(self, transfer_id: str) -> None:
        self._run(lambda c: c.delete_transfer(transfer_id))

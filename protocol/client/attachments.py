"""The client library's attachment calls (Cinder's v3 attachments), mixed into
``Client`` and ``SyncClient``:

    att = await c.create_attachment(volume.id, instance_id="vm-1")      # reserved
    att = await c.update_attachment(att.id, {"host": "vm-host", "mode": "rw"})
    info = att.connection_info   # {"driver_volume_type": "nbd", "data": {host, port, export_name}}
    await c.complete_attachment(att.id)                                  # volume in-use
    await c.delete_attachment(att.id)                                    # export closed

``nbd_uri(att)`` turns an updated attachment into the URI real NBD clients take.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cinderblock.protocol.messages.attachments import (
    Attachment,
    AttachmentCreate,
    AttachmentList,
    AttachmentListRequest,
    AttachmentRef,
    AttachmentUpdate,
)
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


def nbd_uri(attachment: Attachment) -> str:
    """``nbd://host:port/export`` of an attachment that has its connection_info."""
    data = attachment.connection_info.get("data") or {}
    return f"nbd://{data['host']}:{data['port']}/{data['export_name']}"


class AttachmentMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def _attachment(self, op: str, body: Any) -> Attachment:
        return parse(Attachment, await self.call(op, body), strict=False)

    async def create_attachment(
        self, volume_id: str, instance_id: str | None = None, mode: str | None = None
    ) -> Attachment:
        """Reserve the volume for an instance (the volume goes to ``reserved``)."""
        return await self._attachment(
            "attachment.create", AttachmentCreate(volume_id, instance_id, mode)
        )

    async def update_attachment(self, attachment_id: str, connector: Any) -> Attachment:
        """Give the connector: the node exports the volume; the answer has connection_info."""
        return await self._attachment(
            "attachment.update", AttachmentUpdate(attachment_id, connector)
        )

    async def complete_attachment(self, attachment_id: str) -> Attachment:
        return await self._attachment("attachment.complete", AttachmentRef(attachment_id))

    async def delete_attachment(self, attachment_id: str) -> Attachment:
        return await self._attachment("attachment.delete", AttachmentRef(attachment_id))

    async def show_attachment(self, attachment_id: str) -> Attachment:
        return await self._attachment("attachment.show", AttachmentRef(attachment_id))

    async def list_attachments(
        self, volume_id: str | None = None, all_projects: bool = False
    ) -> list[Attachment]:
        raw = await self.call("attachment.list", AttachmentListRequest(volume_id, all_projects))
        return list(parse(AttachmentList, raw, strict=False).attachments)


class SyncAttachmentMethods:
    def _run(self, make: Callable[[AttachmentMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_attachment(
        self, volume_id: str, instance_id: str | None = None, mode: str | None = None
    ) -> Attachment:
        return self._run(lambda c: c.create_attachment(volume_id, instance_id, mode))

    def update_attachment(self, attachment_id: str, connector: Any) -> Attachment:
        return self._run(lambda c: c.update_attachment(attachment_id, connector))

    def complete_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.complete_attachment(attachment_id))

    def delete_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.delete_attachment(attachment_id))

    def show_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.show_attachment(attachment_id))

    def list_attachments(
        self, volume_id: str | None = None, all_projects: bool = False
    ) -> list[Attachment]:
        return self._run(lambda c: c.list_attachments(volume_id, all_projects))

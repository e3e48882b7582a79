"""The client library's attachment calls (Cinder's v3 attachments), mixed into
``Client`` and ``SyncClient``:

    att = await c.create_attachment(volume.id, instance_id="vm-1")      # reserved
    att = await c.update_attachment(att.id, {"host": "vm-host", "mode": "rw"})
    info = att.connection_info   # {"driver_volume_type": "nbd", "data": {host, port,
                                 #   export_name, tls, ca_cert, client_cert, client_key}}
    await c.complete_attachment(att.id)                                  # volume in-use
    await c.delete_attachment(att.id)                   # export closed, credentials revoked

The export speaks only TLS and opens only to the attachment's own client certificate,
which ``connection_info`` carries (PEM) as Cinder's carries an iSCSI target's CHAP
secret. ``write_credentials(att, DIR)`` writes them as the files qemu's
``tls-creds-x509`` and libnbd's ``tls-certificates`` read (``ca-cert.pem``,
``client-cert.pem``, ``client-key.pem``, 0600); then ``nbd_uri(att, DIR)`` is the
``nbds://`` URI for nbdinfo and nbdcopy, and ``qemu_args(att, DIR)`` the arguments
qemu-io and qemu-img take before their commands.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.messages.attachments import (
    VOLUME_IDS_MAX,
    Attachment,
    AttachmentCreate,
    AttachmentList,
    AttachmentListRequest,
    AttachmentRef,
    AttachmentUpdate,
    VolumeAttach,
    VolumeConnection,
    VolumeDetach,
)
from cinderblock.protocol.messages.volumes import VolumeRef
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


CREDENTIAL_FILES = {  # connection_info key -> the file name qemu and libnbd look for
    "ca_cert": "ca-cert.pem",
    "client_cert": "client-cert.pem",
    "client_key": "client-key.pem",
}


def _data(attachment: Attachment) -> dict[str, Any]:
    data = attachment.connection_info.get("data")
    if not isinstance(data, dict) or not {"host", "port", "export_name"} <= data.keys():
        raise InvalidInput(f"attachment {attachment.id} has no connection_info yet: "
                           f"update it with a connector first", {"field": "connection_info"})
    return data


def nbd_uri(attachment: Attachment, certificates: str | Path | None = None) -> str:
    """``nbds://host:port/export`` of an updated attachment, with
    ``?tls-certificates=DIR`` when given the directory `write_credentials` filled."""
    data = _data(attachment)
    return nbds_uri(data["host"], data["port"], data["export_name"], certificates)


def nbds_uri(host: str, port: int, export_name: str,
             certificates: str | Path | None = None) -> str:
    """``nbds://host:port/export`` (an IPv6 host in brackets), with
    ``?tls-certificates=DIR`` when given a directory of `CREDENTIAL_FILES`."""
    shown = f"[{host}]" if ":" in host else host
    uri = f"nbds://{shown}:{port}/{quote(export_name, safe='')}"
    if certificates is not None:
        uri += f"?tls-certificates={quote(str(certificates), safe='/')}"
    return uri


def qemu_args(attachment: Attachment, certificates: str | Path) -> list[str]:
    """``--object tls-creds-x509,... --image-opts`` and the image options, for qemu-io and
    qemu-img (the image options last: they take the place of the file name)."""
    data = _data(attachment)
    directory = str(certificates).replace(",", ",,")  # qemu's option syntax escapes commas
    return ["--object", f"tls-creds-x509,id=tls0,dir={directory},endpoint=client",
            "--image-opts", f"driver=nbd,host={data['host']},port={data['port']},"
                            f"export={data['export_name']},tls-creds=tls0"]


def write_credentials(attachment: Attachment, directory: str | Path) -> Path:
    """Write the attachment's CA certificate, client certificate and key into
    `directory` (made 0700 if missing) as files of mode 0600; nothing is written unless
    all three are there. Returns the directory."""
    data = _data(attachment)
    pems = {file: data.get(key) for key, file in CREDENTIAL_FILES.items()}
    for file, pem in pems.items():
        if not isinstance(pem, str) or not pem.startswith("-----BEGIN "):
            raise InvalidInput(f"attachment {attachment.id}'s connection_info has no "
                               f"{file.removesuffix('.pem')} (PEM)", {"field": "connection_info"})
    target = Path(directory)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for file, pem in pems.items():
        assert isinstance(pem, str)
        _write_private(target / file, pem)
    return target


def _write_private(path: Path, text: str) -> None:
    """Write `text` atomically to `path`, mode 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)  # an older tmp file keeps its mode through O_CREAT
        file.write(text)
    os.replace(tmp, path)


class AttachmentMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def _attachment(self, op: str, body: Any, request_id: str | None = None
                          ) -> Attachment:
        return parse(Attachment, await self.call(op, body, request_id), strict=False)

    async def create_attachment(
        self, volume_id: str, instance_id: str | None = None, mode: str | None = None,
        request_id: str | None = None,
    ) -> Attachment:
        """Reserve the volume for an instance (the volume goes to ``reserved``). Sent again
        with the same ``request_id`` (after a timeout, or ``peer_gone``), it answers the
        attachment the first made, for a day; a new one is made for each call without."""
        return await self._attachment(
            "attachment.create", AttachmentCreate(volume_id, instance_id, mode), request_id
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

    async def force_delete_attachment(self, attachment_id: str) -> Attachment:
        """Admin: delete an attachment even if its node cannot be reached (Cinder's
        force-detach); its export is then closed once the node answers again."""
        return await self._attachment("attachment.force_delete", AttachmentRef(attachment_id))

    async def show_attachment(self, attachment_id: str) -> Attachment:
        return await self._attachment("attachment.show", AttachmentRef(attachment_id))

    # Cinder's attach actions from before attachments (each made of attachments)
    async def reserve_volume(self, volume_id: str) -> None:
        """The volume ``attaching`` (``os-reserve``), until an attach or an unreserve."""
        await self.call("volume.reserve", VolumeRef(volume_id))

    async def unreserve_volume(self, volume_id: str) -> None:
        await self.call("volume.unreserve", VolumeRef(volume_id))

    async def begin_detaching(self, volume_id: str) -> None:
        """The volume ``detaching`` (``os-begin_detaching``), until a detach or a roll back."""
        await self.call("volume.begin_detaching", VolumeRef(volume_id))

    async def roll_detaching(self, volume_id: str) -> None:
        await self.call("volume.roll_detaching", VolumeRef(volume_id))

    async def initialize_connection(self, volume_id: str, connector: Any) -> Attachment:
        """The host's connection to the volume (``os-initialize_connection``): the
        attachment made for the connector's host, whose ``connection_info`` opens it."""
        return await self._attachment("volume.initialize_connection",
                                      VolumeConnection(volume_id, connector))

    async def terminate_connection(self, volume_id: str, connector: Any) -> None:
        """Close the connector's host's exports of the volume (``os-terminate_connection``)."""
        await self.call("volume.terminate_connection", VolumeConnection(volume_id, connector))

    async def attach_volume(
        self, volume_id: str, mountpoint: str, instance_id: str | None = None,
        host_name: str | None = None, mode: str = "rw",
    ) -> Attachment:
        """``os-attach``: the volume attached to the instance (or host) at ``mountpoint``."""
        return await self._attachment("volume.attach", VolumeAttach(
            volume_id, mountpoint, instance_id, host_name, mode))

    async def detach_volume(self, volume_id: str, attachment_id: str | None = None) -> None:
        """``os-detach``: the attachment named, or the volume's only one, deleted."""
        await self.call("volume.detach", VolumeDetach(volume_id, attachment_id))

    async def list_attachments(
        self, volume_id: str | None = None, all_projects: bool = False,
        volume_ids: Iterable[str] | None = None, limit: int | None = None,
        marker: str | None = None, status: str | None = None, instance_id: str | None = None,
        sort_dir: str | None = None,
    ) -> list[Attachment]:
        """Every attachment the caller may see, newest first (page by page, or the first
        ``limit`` after ``marker``, an attachment id of an earlier listing); or all of
        ``volume_id``'s, or of ``volume_ids``' (asked ``VOLUME_IDS_MAX`` at a time), oldest
        first. ``status`` and ``instance_id``: only the attachments in it, or of it;
        ``sort_dir`` ("asc" or "desc"): by creation that way instead."""
        if volume_id is None and volume_ids is None:
            async def fetch(left: int | None, after: str | None
                            ) -> tuple[tuple[Attachment, ...], str | None]:
                body = AttachmentListRequest(None, all_projects, None, left, after, status,
                                             instance_id, sort_dir)
                reply = parse(AttachmentList, await self.call("attachment.list", body),
                              strict=False)
                return reply.attachments, reply.next_marker

            return await read_pages(fetch, limit, marker)
        if volume_ids is None:
            body = AttachmentListRequest(volume_id, all_projects, None, limit, marker, status,
                                         instance_id, sort_dir)
            raw = await self.call("attachment.list", body)
            return list(parse(AttachmentList, raw, strict=False).attachments)
        ids = tuple(volume_ids)
        found: list[Attachment] = []
        for start in range(0, len(ids), VOLUME_IDS_MAX):
            body = AttachmentListRequest(volume_id, all_projects,
                                         ids[start:start + VOLUME_IDS_MAX], limit, marker,
                                         status, instance_id, sort_dir)
            raw = await self.call("attachment.list", body)
            found += parse(AttachmentList, raw, strict=False).attachments
        if sort_dir is not None:  # each call's are in order, not all of them together
            found.sort(key=lambda a: (a.created_at, a.id), reverse=sort_dir == "desc")
        return found


class SyncAttachmentMethods:
    def _run(self, make: Callable[[AttachmentMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_attachment(
        self, volume_id: str, instance_id: str | None = None, mode: str | None = None,
        request_id: str | None = None,
    ) -> Attachment:
        return self._run(lambda c: c.create_attachment(volume_id, instance_id, mode,
                                                       request_id))

    def update_attachment(self, attachment_id: str, connector: Any) -> Attachment:
        return self._run(lambda c: c.update_attachment(attachment_id, connector))

    def complete_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.complete_attachment(attachment_id))

    def delete_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.delete_attachment(attachment_id))

    def force_delete_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.force_delete_attachment(attachment_id))

    def show_attachment(self, attachment_id: str) -> Attachment:
        return self._run(lambda c: c.show_attachment(attachment_id))

    def reserve_volume(self, volume_id: str) -> None:
        self._run(lambda c: c.reserve_volume(volume_id))

    def unreserve_volume(self, volume_id: str) -> None:
        self._run(lambda c: c.unreserve_volume(volume_id))

    def begin_detaching(self, volume_id: str) -> None:
        self._run(lambda c: c.begin_detaching(volume_id))

    def roll_detaching(self, volume_id: str) -> None:
        self._run(lambda c: c.roll_detaching(volume_id))

    def initialize_connection(self, volume_id: str, connector: Any) -> Attachment:
        return self._run(lambda c: c.initialize_connection(volume_id, connector))

    def terminate_connection(self, volume_id: str, connector: Any) -> None:
        self._run(lambda c: c.terminate_connection(volume_id, connector))

    def attach_volume(
        self, volume_id: str, mountpoint: str, instance_id: str | None = None,
        host_name: str | None = None, mode: str = "rw",
    ) -> Attachment:
        return self._run(lambda c: c.attach_volume(volume_id, mountpoint, instance_id,
                                                   host_name, mode))

    def detach_volume(self, volume_id: str, attachment_id: str | None = None) -> None:
        self._run(lambda c: c.detach_volume(volume_id, attachment_id))

    def list_attachments(
        self, volume_id: str | None = None, all_projects: bool = False,
        volume_ids: Iterable[str] | None = None, limit: int | None = None,
        marker: str | None = None, status: str | None = None, instance_id: str | None = None,
        sort_dir: str | None = None,
    ) -> list[Attachment]:
        return self._run(lambda c: c.list_attachments(volume_id, all_projects, volume_ids,
                                                      limit, marker, status, instance_id,
                                                      sort_dir))

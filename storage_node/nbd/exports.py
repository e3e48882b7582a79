"""The storage node's exports: attached volumes served over NBD.

One ``NbdServer`` per node, listening on the node's ``nbd_address`` (port
``nbd_port``, or any free one). Only an attached volume is exported: the
gateway's ``attachment update`` asks for ``node.export`` and ``attachment
delete`` for ``node.unexport``, which also closes the connections of clients
still using the export. There is one export per attachment, named
``volume-<volume id>.<attachment id>``, read-write or read-only by the
attachment's mode; two attachments of a multiattach volume are two exports of
the same file.

Exports are private, as Cinder's CHAP-protected iSCSI targets are: the server speaks
only TLS, and each export is opened by the one client certificate issued for it by the
node's CA (``certificates.NodeAuthority``, kept in ``<host>.tls`` beside the table),
whose CN is the attachment's id. ``node.export`` answers the CA certificate, the client
certificate and its key with the address, and the gateway hands them out in the
attachment's ``connection_info``. ``node.unexport`` revokes the certificate: the server
forgets its fingerprint, so it opens nothing any more, even though the CA signed it.

An export carries its volume's back-end QoS (the limits ``node.export`` names, which the
gateway works out from the volume type's QoS specs): the server holds the export's reads
and writes to them (``throttle``), kept in the table with the rest.

Both ops are idempotent (the gateway may repeat one after a timeout): a repeated export
answers the same credentials. The table of exports, with each one's client certificate
and key, is written (0600) to a small JSON file beside the node's directory after every
change, with the port; after a restart the node listens on the same port again if it
can and serves the same exports to the same certificates, so the connection_info the
gateway handed out stays true. An entry without credentials (written before exports
were private) is not restored: detach and attach again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import (
    EXPORTS_PAGE_MAX,
    NodeExport,
    NodeExportInfo,
    NodeExportList,
    NodeExportRef,
    NodeExportsRequest,
    NodeUnexport,
)
from cinderblock.protocol.messages.limits import check_range
from cinderblock.protocol.messages.pages import page_after
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.backends.base import is_valid_id
from cinderblock.storage_node.nbd.certificates import KeyPair, NodeAuthority, write_private
from cinderblock.storage_node.nbd.server import NO_LIMITS, NbdServer, NbdStatistics
from cinderblock.storage_node.nbd.throttle import IoLimits

log = logging.getLogger(__name__)


def export_name(volume_id: str, attachment_id: str) -> str:
    return f"volume-{volume_id}.{attachment_id}"


@dataclass(frozen=True, slots=True)
class ExportEntry:
    volume_id: str
    attachment_id: str  # the CN of its client certificate
    readonly: bool
    client: KeyPair  # the one certificate (and its key) that opens this export
    limits: IoLimits = NO_LIMITS  # its volume's back-end QoS


class ExportManager:
    def __init__(
        self, driver: Driver, address: str, port: int, state_path: Path, tls_dir: Path,
        notify: Callable[[str, str], None],
    ) -> None:
        self.driver = driver
        self.address = address
        self._configured_port = port
        self.state_path = state_path
        self.tls_dir = tls_dir
        self._notify = notify
        self._entries: dict[str, ExportEntry] = {}
        self._changing = asyncio.Lock()  # one export or unexport at a time: no double issue
        self.server: NbdServer | None = None
        self._authority: NodeAuthority | None = None

    # ---- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        authority = await NodeAuthority.open(self.tls_dir, self.tls_dir.stem)  # <host>.tls
        await authority.issue_server(self.address)
        tls = authority.server_context()
        self._authority = authority
        saved_port, saved = self._load()
        port = self._configured_port or saved_port
        try:
            self.server = await _listen(tls, self.address, port)
        except OSError as exc:
            if self._configured_port or not port:
                raise
            log.warning("NBD port %d is taken (%s); listening on another one: the exports "
                        "of earlier attachments moved", port, exc)
            self.server = await _listen(tls, self.address, 0)
        for name, entry in saved.items():
            self._restore(name, entry)
        self._save()
        log.info("NBD exports on %s:%d (%d restored)", self.address, self.port, len(saved))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    @property
    def port(self) -> int:
        return self._server.port

    def writable(self, volume_id: str) -> bool:
        """Whether a read-write export of the volume is here (a guest may write it)."""
        return any(e.volume_id == volume_id and not e.readonly for e in self._entries.values())

    def writes_held(self, volume_ids: Iterable[str]) -> AbstractAsyncContextManager[None]:
        """The writes of every export of these volumes held (``write_gate``): a snapshot's,
        a clone's or a group snapshot's instant. A volume without a file (the null
        backend's) has none."""
        paths = [p for v in volume_ids if (p := self.driver.volume_path(v)) is not None]
        return self._server.gates.held(paths) if paths else nullcontext()

    @property
    def _server(self) -> NbdServer:
        assert self.server is not None, "the export manager is not started"
        return self.server

    def handlers(self) -> dict[str, Callable[[Request], Any]]:
        return {"node.export": self.on_export, "node.unexport": self.on_unexport,
                "node.exports": self.on_exports}

    def statistics(self) -> dict[str, Any]:
        nbd = self.server.statistics() if self.server is not None else NbdStatistics()
        return {"exports": len(self._entries), "nbd_connections": nbd.connections,
                "nbd_bytes_read": nbd.bytes_read, "nbd_bytes_written": nbd.bytes_written,
                "nbd_throttled": nbd.throttled, "nbd_throttled_s": round(nbd.throttled_s, 3)}

    @property
    def authority(self) -> NodeAuthority:
        assert self._authority is not None, "the export manager is not started"
        return self._authority

    # ---- handlers ------------------------------------------------------------
    async def on_export(self, req: Request) -> NodeExportInfo:
        body: NodeExport = req.body
        return await self.export(body.volume_id, body.attachment_id, body.readonly,
                                 IoLimits.from_specs(body.limits))

    async def on_unexport(self, req: Request) -> Empty:
        body: NodeUnexport = req.body
        await self.unexport(body.volume_id, body.attachment_id)
        return Empty()

    # ---- operations ----------------------------------------------------------
    async def export(
        self, volume_id: str, attachment_id: str, readonly: bool, limits: IoLimits = NO_LIMITS,
    ) -> NodeExportInfo:
        """Serve the volume for this attachment to a certificate issued for it, its I/O
        held to ``limits`` (again: the same answer, the same credentials, the limits it
        was first given)."""
        name = self._name(volume_id, attachment_id)
        path = self._path(volume_id)
        async with self._changing:
            entry = self._entries.get(name)
            if entry is None:
                client = await self.authority.issue_client(attachment_id)
                self._server.add_export(name, path, readonly, client.fingerprint, attachment_id,
                                        limits)
                entry = ExportEntry(volume_id, attachment_id, readonly, client, limits)
                self._entries[name] = entry
                self._save()
                self._notify(volume_id, "volume.export")
            elif entry.readonly != readonly:
                raise InvalidState(f"export {name} already exists with another mode",
                                   {"export_name": name})
        return NodeExportInfo(self.address, self.port, name, self.authority.ca_cert,
                              entry.client.cert, entry.client.key)

    async def unexport(self, volume_id: str, attachment_id: str) -> None:
        """Stop serving it, revoke its certificate and close its clients' connections
        (none left: fine)."""
        name = self._name(volume_id, attachment_id)
        async with self._changing:
            await self._server.remove_export(name)
            if self._entries.pop(name, None) is not None:
                self._save()
                self._notify(volume_id, "volume.unexport")

    def on_exports(self, req: Request) -> NodeExportList:
        """A page of the exports served, by attachment id (the gateway's sweep closes
        those whose attachment it no longer has)."""
        body: NodeExportsRequest = req.body
        check_range("limit", body.limit, 1, EXPORTS_PAGE_MAX)
        page, next_after = page_after(self._entries.values(), lambda e: e.attachment_id,
                                      body.after, body.limit)
        return NodeExportList(tuple(NodeExportRef(e.volume_id, e.attachment_id) for e in page),
                              next_after)

    def exported(self) -> dict[str, ExportEntry]:
        return dict(self._entries)

    # ---- helpers -------------------------------------------------------------
    def _name(self, volume_id: str, attachment_id: str) -> str:
        for field, value in (("volume_id", volume_id), ("attachment_id", attachment_id)):
            if not is_valid_id(value):
                raise InvalidInput(f"{field} {value[:80]!r} is not a valid id", {"field": field})
        return export_name(volume_id, attachment_id)

    def _path(self, volume_id: str) -> Path:
        try:
            path = self.driver.volume_path(volume_id)
        except DriverError as exc:
            raise NotFound(f"volume {volume_id} is not on this node: {exc}",
                           {"volume_id": volume_id}) from exc
        if path is None:
            raise InvalidState(f"backend {self.driver.backend_name} has no file to export",
                               {"volume_id": volume_id})
        return path

    def _restore(self, name: str, entry: ExportEntry | None) -> None:
        if entry is None:
            log.warning("not restoring export %s: it has no client certificate (made before "
                        "exports were private); detach and attach again", name)
            return
        try:
            path = self._path(entry.volume_id)
            self._server.add_export(name, path, entry.readonly, entry.client.fingerprint,
                                    entry.attachment_id, entry.limits)
        except (NotFound, InvalidState) as exc:
            log.warning("not restoring export %s: %s", name, exc.message)
            return
        except ValueError as exc:  # a certificate that is not one, or opens two exports
            log.warning("not restoring export %s: %s", name, exc)
            return
        self._entries[name] = entry

    def _load(self) -> tuple[int, dict[str, ExportEntry | None]]:
        try:
            raw = json.loads(self.state_path.read_text())
            entries = {name: _entry(e) for name, e in raw["exports"].items()}
            return int(raw["port"]), entries
        except FileNotFoundError:
            return 0, {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable export table %s: %s", self.state_path, exc)
            return 0, {}

    def _save(self) -> None:
        exports = {name: {"volume_id": e.volume_id, "attachment_id": e.attachment_id,
                          "readonly": e.readonly,
                          "client_cert": e.client.cert, "client_key": e.client.key,
                          "limits": e.limits.as_specs()}
                   for name, e in self._entries.items()}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.state_path, json.dumps({"port": self.port, "exports": exports}))


def _entry(raw: dict[str, Any]) -> ExportEntry | None:
    """An entry of the table on disk; None for one written before exports had keys."""
    if "client_cert" not in raw:
        return None
    client = KeyPair(str(raw["client_cert"]), str(raw["client_key"]))
    limits = IoLimits.from_specs(raw.get("limits") or {})  # none before back-end QoS
    return ExportEntry(str(raw["volume_id"]), str(raw["attachment_id"]), bool(raw["readonly"]),
                       client, limits)


async def _listen(tls: ssl.SSLContext, address: str, port: int) -> NbdServer:
    server = NbdServer(tls, address, port)
    await server.start()
    return server

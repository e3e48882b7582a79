"""The storage node's exports: attached volumes served over NBD.

One ``NbdServer`` per node, listening on the node's ``nbd_address`` (port
``nbd_port``, or any free one). Only an attached volume is exported: the
gateway's ``attachment update`` asks for ``node.export`` and ``attachment
delete`` for ``node.unexport``, which also closes the connections of clients
still using the export. There is one export per attachment, named
``volume-<volume id>.<attachment id>``, read-write or read-only by the
attachment's mode; two attachments of a multiattach volume are two exports of
the same file.

Both ops are idempotent (the gateway may repeat one after a timeout). The
table of exports is written to a small JSON file beside the node's directory
after every change, with the port; after a restart the node listens on the
same port again if it can and serves the same exports, so the connection_info
the gateway handed out stays true.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import NodeExport, NodeExportInfo, NodeUnexport
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState, NotFound
from cinderblock.storage_node.backends import Driver, DriverError
from cinderblock.storage_node.backends.base import is_valid_id
from cinderblock.storage_node.nbd.server import NbdServer, NbdStatistics

log = logging.getLogger(__name__)


def export_name(volume_id: str, attachment_id: str) -> str:
    return f"volume-{volume_id}.{attachment_id}"


@dataclass(frozen=True, slots=True)
class ExportEntry:
    volume_id: str
    readonly: bool


class ExportManager:
    def __init__(
        self, driver: Driver, address: str, port: int, state_path: Path,
        notify: Callable[[str, str], None],
    ) -> None:
        self.driver = driver
        self.address = address
        self._configured_port = port
        self.state_path = state_path
        self._notify = notify
        self._entries: dict[str, ExportEntry] = {}
        self.server: NbdServer | None = None

    # ---- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        saved_port, saved = self._load()
        port = self._configured_port or saved_port
        try:
            self.server = await _listen(self.address, port)
        except OSError as exc:
            if self._configured_port or not port:
                raise
            log.warning("NBD port %d is taken (%s); listening on another one: the exports "
                        "of earlier attachments moved", port, exc)
            self.server = await _listen(self.address, 0)
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

    @property
    def _server(self) -> NbdServer:
        assert self.server is not None, "the export manager is not started"
        return self.server

    def handlers(self) -> dict[str, Callable[[Request], Any]]:
        return {"node.export": self.on_export, "node.unexport": self.on_unexport}

    def statistics(self) -> dict[str, Any]:
        nbd = self.server.statistics() if self.server is not None else NbdStatistics()
        return {"exports": len(self._entries), "nbd_connections": nbd.connections,
                "nbd_bytes_read": nbd.bytes_read, "nbd_bytes_written": nbd.bytes_written}

    # ---- handlers ------------------------------------------------------------
    def on_export(self, req: Request) -> NodeExportInfo:
        body: NodeExport = req.body
        return self.export(body.volume_id, body.attachment_id, body.readonly)

    async def on_unexport(self, req: Request) -> Empty:
        body: NodeUnexport = req.body
        await self.unexport(body.volume_id, body.attachment_id)
        return Empty()

    # ---- operations ----------------------------------------------------------
    def export(self, volume_id: str, attachment_id: str, readonly: bool) -> NodeExportInfo:
        """Serve the volume for this attachment (again: the same answer)."""
        name = self._name(volume_id, attachment_id)
        path = self._path(volume_id)
        current = self._entries.get(name)
        if current is None:
            self._server.add_export(name, path, readonly)
            self._entries[name] = ExportEntry(volume_id, readonly)
            self._save()
            self._notify(volume_id, "volume.export")
        elif current.readonly != readonly:
            raise InvalidState(f"export {name} already exists with another mode",
                               {"export_name": name})
        return NodeExportInfo(self.address, self.port, name)

    async def unexport(self, volume_id: str, attachment_id: str) -> None:
        """Stop serving it and close its clients' connections (none left: fine)."""
        name = self._name(volume_id, attachment_id)
        await self._server.remove_export(name)
        if self._entries.pop(name, None) is not None:
            self._save()
            self._notify(volume_id, "volume.unexport")

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

    def _restore(self, name: str, entry: ExportEntry) -> None:
        try:
            self._server.add_export(name, self._path(entry.volume_id), entry.readonly)
        except (NotFound, InvalidState) as exc:
            log.warning("not restoring export %s: %s", name, exc.message)
            return
        self._entries[name] = entry

    def _load(self) -> tuple[int, dict[str, ExportEntry]]:
        try:
            raw = json.loads(self.state_path.read_text())
            entries = {name: ExportEntry(str(e["volume_id"]), bool(e["readonly"]))
                       for name, e in raw["exports"].items()}
            return int(raw["port"]), entries
        except FileNotFoundError:
            return 0, {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable export table %s: %s", self.state_path, exc)
            return 0, {}

    def _save(self) -> None:
        exports = {name: {"volume_id": e.volume_id, "readonly": e.readonly}
                   for name, e in self._entries.items()}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": self.port, "exports": exports}))
        os.replace(tmp, self.state_path)


async def _listen(address: str, port: int) -> NbdServer:
    server = NbdServer(address, port)
    await server.start()
    return server

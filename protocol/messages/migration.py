"""Message bodies of a volume's migration to another backend (Cinder's
``os-migrate_volume``).

Who sends what (every op is listed in ``protocol.messages.ops``)::

    admin   → gateway   volume.migrate
    gateway → node      node.export (the source's, read-only, named by the migration)
                        node.receive_volume (the destination's: copy it over NBD)
                        node.drop_volume (the source's copy, once the volume has moved)
                        node.unexport
    node    → gateway   volume.received (the destination's copy whole, or why not)
"""

from __future__ import annotations

from dataclasses import dataclass

from cinderblock.protocol.messages.attachments import NodeExportInfo
from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class VolumeMigrate:
    """Move an available volume's data to another backend (``host``: ``node@backend``,
    with or without Cinder's ``#pool``). ``force_host_copy`` and ``lock_volume`` are
    Cinder's and accepted: the copy is always the hosts' own (no backend here moves a
    volume by itself), and the volume is always locked (``maintenance``) meanwhile."""

    volume_id: str
    host: str
    force_host_copy: bool = False
    lock_volume: bool = False


@message
@dataclass(frozen=True, slots=True)
class NodeReceiveVolume:
    """To the destination node: make volume ``volume_id`` of ``size`` GiB here holding
    the bytes the source exports (``source``; None: the source holds no bytes, the new
    volume is all zeros). It is known here only once whole."""

    volume_id: str
    migration_id: str
    size: int
    source: NodeExportInfo | None = None


@message
@dataclass(frozen=True, slots=True)
class VolumeReceived:
    """The destination node's report: the copy is whole (``reason`` None), or why not
    (nothing of it is left there)."""

    volume_id: str
    migration_id: str
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class NodeDropVolume:
    """To the source node: its copy of a volume that now lives on another backend goes
    (and the migration's export with it); nothing is reported, the call's answer says
    it is done. Idempotent."""

    volume_id: str
    migration_id: str

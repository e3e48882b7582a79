"""What the gateway asks a storage node when it reconciles stuck work.

    gateway → node   node.probe  (NodeProbe → NodeProbeReply)

A volume or snapshot that stays in a transitional status (``creating``,
``deleting``, ``extending``) past the reconcile delay is asked about: is an
operation on it running on the node right now (``busy``), and is it on the
node's backend? A backup that stays creating, deleting or restoring is asked about
too: is its node working on it (``busy``)? ``actors.reconcile`` decides what to do with the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cinderblock.protocol.wire.schema import message

PROBE_MAX_IDS = 2000  # ids per probe: the request and the reply stay far below 1 MiB


@message
@dataclass(frozen=True, slots=True)
class NodeProbe:
    volume_ids: tuple[str, ...] = ()
    snapshot_ids: tuple[str, ...] = ()
    backup_ids: tuple[str, ...] = ()  # backups being made, deleted or restored (busy only)


@message
@dataclass(frozen=True, slots=True)
class NodeProbeReply:
    busy: tuple[str, ...] = ()  # asked ids that an operation on this node is working on
    volumes: tuple[str, ...] = ()  # asked volume ids that are on this node's backend
    snapshots: tuple[str, ...] = ()  # asked snapshot ids that are on this node's backend

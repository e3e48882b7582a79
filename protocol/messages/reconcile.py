"""What the gateway asks a storage node when it reconciles stuck work.

    gateway → node   node.probe  (NodeProbe → NodeProbeReply)
    gateway → node   node.fence_creates  (NodeFenceCreates → NodeFenceReply)

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


@message
@dataclass(frozen=True, slots=True)
class NodeFenceCreates:
    """Creates whose scheduler died (its connection to the gateway closed) with them
    maybe not yet passed on, or that a gateway's previous process may have died before
    it sent: for each the node neither holds nor works on, it takes from now on only a
    cast that carries ``fence`` (the gateway's resend), so the lost sender's cast,
    should it still be in the node's line, is dropped. Snapshot creates by
    ``snapshot_ids``."""

    volume_ids: tuple[str, ...] = ()
    fence: str = ""
    snapshot_ids: tuple[str, ...] = ()


@message
@dataclass(frozen=True, slots=True)
class NodeFenceReply:
    busy: tuple[str, ...] = ()  # asked ids an operation on this node is working on
    volumes: tuple[str, ...] = ()  # asked volume ids on this node's backend
    fenced: tuple[str, ...] = ()  # the rest: fenced here
    snapshots: tuple[str, ...] = ()  # asked snapshot ids on this node's backend


@message
@dataclass(frozen=True, slots=True)
class WorkCleanup:
    """An admin's ask (Cinder's ``workers/cleanup``) to mend now, not after the
    reconciler's ``reconcile_after_s``, what a crash left in a transitional status: the
    records of these nodes (their host names) and, with ``unplaced``, those no node is
    named for yet (a create the scheduler had), or only the volume or snapshot
    ``resource_id`` among them. Only the verdicts that hold at any age are applied."""

    nodes: tuple[str, ...] = ()
    unplaced: bool = False
    resource_id: str | None = None
    resource_type: str | None = None  # "volume" or "snapshot"; either when None
    every_node: bool = False  # every node the gateway knows, as if each were named


@message
@dataclass(frozen=True, slots=True)
class CleanupAction:
    """What a cleanup did to one record."""

    kind: str  # "volume" or "snapshot"
    id: str
    status: str  # the transitional status it was found in
    action: str  # the reconciler's verdict: available, redo_delete, redo_extend, ...
    node: str | None
    reason: str


@message
@dataclass(frozen=True, slots=True)
class WorkCleaned:
    looked_at: int  # records of those nodes in a transitional status
    mended: tuple[CleanupAction, ...] = ()
    unanswered: tuple[str, ...] = ()  # nodes that did not answer: their records wait
    resource_node: str | None = None  # with resource_id: the node its record names, if one

"""Message bodies for attachments (Cinder's v3 attachments) and the node's exports.

Client → gateway: ``attachment.create|update|complete|delete|show|list``; and Cinder's
attach actions from before attachments, made of them (``actors.gateway.legacy_attach``):
``volume.reserve|unreserve|begin_detaching|roll_detaching`` (a ``VolumeRef``),
``volume.initialize_connection|terminate_connection`` (``VolumeConnection``),
``volume.attach`` (``VolumeAttach``) and ``volume.detach`` (``VolumeDetach``).
Gateway → node:   ``node.export`` (answers ``NodeExportInfo``) and ``node.unexport``.

The connector is carried as an opaque map here: it is input from the outside
and the gateway validates it field by field (``actors.attachment_request``),
so a wrong one is refused with a message that names the key and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cinderblock.protocol.states import AttachmentStatus
from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class AttachmentCreate:
    volume_id: str
    instance_id: str | None = None
    mode: str | None = None  # "rw" (the default) or "ro"


@message
@dataclass(frozen=True, slots=True)
class AttachmentUpdate:
    attachment_id: str
    connector: Any = None


@message
@dataclass(frozen=True, slots=True)
class AttachmentRef:
    attachment_id: str


# The volumes one attachment.list may name. An attachment with its NBD credentials packs to
# about 2 KB, so 200 volumes with one each answer in 400 KB, well inside a frame (1 MiB).
VOLUME_IDS_MAX = 200


@message
@dataclass(frozen=True, slots=True)
class AttachmentListRequest:
    volume_id: str | None = None
    all_projects: bool = False
    # only these volumes' attachments (a page of volumes shown with theirs)
    volume_ids: tuple[str, ...] | None = None
    limit: int | None = None  # without volumes named: a page, newest first, as volumes'
    marker: str | None = None  # the last attachment id of the previous page
    status: str | None = None  # only attachments in this status (Cinder's attach_status)
    instance_id: str | None = None  # only this instance's (Nova asks so)
    # by creation, "asc" or "desc" (ties by id); None: pages newest first, a volume's
    # attachments oldest first
    sort_dir: str | None = None


@message
@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    volume_id: str
    project_id: str
    status: AttachmentStatus
    attach_mode: str | None = None  # decided at update: rw or ro
    instance_id: str | None = None
    host: str | None = None  # the backend serving the export
    connector: dict[str, Any] = field(default_factory=dict)
    connection_info: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    attached_at: float | None = None


@message
@dataclass(frozen=True, slots=True)
class AttachmentList:
    attachments: tuple[Attachment, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class VolumeConnection:
    """A host's connector for a volume (Cinder's ``os-initialize_connection`` answers the
    attachment whose ``connection_info`` it opens; ``os-terminate_connection`` closes it)."""

    volume_id: str
    connector: Any = None


@message
@dataclass(frozen=True, slots=True)
class VolumeAttach:
    """Cinder's ``os-attach``: the volume is attached to an instance, or to a host when no
    instance is named, at ``mountpoint``, in ``mode`` (``rw``, or ``ro``)."""

    volume_id: str
    mountpoint: str
    instance_id: str | None = None
    host_name: str | None = None
    mode: str = "rw"


@message
@dataclass(frozen=True, slots=True)
class VolumeDetach:
    """Cinder's ``os-detach``: the attachment named, or the volume's only one."""

    volume_id: str
    attachment_id: str | None = None


@message
@dataclass(frozen=True, slots=True)
class NodeExport:
    """Serve one attachment of a volume over NBD."""

    volume_id: str
    attachment_id: str
    readonly: bool = False
    # the back-end QoS of the volume's type, worked out for its size (total_iops_sec ...)
    limits: dict[str, int] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class NodeExportInfo:
    """Where the export is, and the credentials that open it (PEM): the node's CA
    certificate, which signed the server's, and the client certificate and key issued
    for this attachment alone."""

    host: str
    port: int
    export_name: str
    ca_cert: str = ""
    client_cert: str = ""
    client_key: str = ""


@message
@dataclass(frozen=True, slots=True)
class NodeUnexport:
    volume_id: str
    attachment_id: str


EXPORTS_PAGE_MAX = 1000  # exports in one answer of node.exports (about 100 KB)


@message
@dataclass(frozen=True, slots=True)
class NodeExportsRequest:
    """A page of a node's exports, by attachment id, those after ``after``."""

    after: str | None = None
    limit: int = EXPORTS_PAGE_MAX


@message
@dataclass(frozen=True, slots=True)
class NodeExportRef:
    volume_id: str
    attachment_id: str


@message
@dataclass(frozen=True, slots=True)
class NodeExportList:
    exports: tuple[NodeExportRef, ...] = ()
    next_after: str | None = None  # more follow this page, after this attachment id

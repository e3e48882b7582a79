"""The op table: each op, and the body type its receiver parses.

One table, assembled here and nowhere else: the message modules define types and
register nothing, so importing one never changes another. Requests are parsed
strictly at the receiving actor (unknown fields are refused); replies leniently at
the client. Dispatch looks an op up here and never inside an untyped map.
"""

from __future__ import annotations

from cinderblock.protocol.messages.attachments import (
    AttachmentCreate,
    AttachmentListRequest,
    AttachmentRef,
    AttachmentUpdate,
    NodeExport,
    NodeUnexport,
)
from cinderblock.protocol.messages.flows import FlowHistoryRequest, FlowRecent
from cinderblock.protocol.messages.lifecycle import (
    NodeCreateSnapshot,
    NodeDeleteSnapshot,
    NodeDeleteVolume,
    NodeExtendVolume,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotListRequest,
    SnapshotModify,
    SnapshotRef,
    SnapshotUpdate,
    SnapshotWatch,
    VolumeDelete,
    VolumeExtend,
    VolumeExtended,
)
from cinderblock.protocol.messages.quota import (
    QuotaRelease,
    QuotaReserve,
    QuotaShow,
    QuotaUpdate,
    ReservationRef,
)
from cinderblock.protocol.messages.quota_sync import QuotaSync, QuotaSyncUsage
from cinderblock.protocol.messages.reconcile import NodeProbe
from cinderblock.protocol.messages.scheduling import NodeCreateVolume, ScheduleRequest
from cinderblock.protocol.messages.user_messages import MessageListRequest, MessageRef
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeAccess,
    TypeCreate,
    TypeRef,
    VolumeCreate,
    VolumeListRequest,
    VolumeModify,
    VolumeRef,
    VolumeResetState,
    VolumeUpdate,
    VolumeWatch,
)

OPS: dict[str, type] = {
    # volumes (client -> gateway; volume.update from the scheduler and nodes)
    "volume.create": VolumeCreate,
    "volume.show": VolumeRef,
    "volume.list": VolumeListRequest,
    "volume.watch": VolumeWatch,
    "volume.update": VolumeUpdate,
    "volume.reset_state": VolumeResetState,
    "volume.modify": VolumeModify,
    "volume.delete": VolumeDelete,
    "volume.extend": VolumeExtend,
    "volume.deleted": VolumeRef,
    "volume.extended": VolumeExtended,
    # snapshots
    "snapshot.create": SnapshotCreate,
    "snapshot.show": SnapshotRef,
    "snapshot.list": SnapshotListRequest,
    "snapshot.watch": SnapshotWatch,
    "snapshot.delete": SnapshotDelete,
    "snapshot.update": SnapshotUpdate,
    "snapshot.modify": SnapshotModify,
    "snapshot.deleted": SnapshotRef,
    # attachments
    "attachment.create": AttachmentCreate,
    "attachment.update": AttachmentUpdate,
    "attachment.complete": AttachmentRef,
    "attachment.delete": AttachmentRef,
    "attachment.show": AttachmentRef,
    "attachment.list": AttachmentListRequest,
    # volume types and zones
    "type.create": TypeCreate,
    "type.list": Empty,
    "type.delete": TypeRef,
    "type.access_list": TypeRef,
    "type.access_add": TypeAccess,
    "type.access_remove": TypeAccess,
    "az.list": Empty,
    # user messages (Cinder's messages API): why a volume went to an error status
    "message.list": MessageListRequest,
    "message.show": MessageRef,
    "message.delete": MessageRef,
    # quota (client -> gateway; reserve/commit/rollback/release gateway -> quota)
    "quota.show": QuotaShow,
    "quota.set": QuotaUpdate,
    "quota.reserve": QuotaReserve,
    "quota.commit": ReservationRef,
    "quota.rollback": ReservationRef,
    "quota.release": QuotaRelease,
    "quota.sync": QuotaSync,
    "quota.sync_usage": QuotaSyncUsage,
    # scheduling
    "backend.list": Empty,
    "schedule.create": ScheduleRequest,
    # gateway or scheduler -> node
    "node.create_volume": NodeCreateVolume,
    "node.delete_volume": NodeDeleteVolume,
    "node.extend_volume": NodeExtendVolume,
    "node.create_snapshot": NodeCreateSnapshot,
    "node.delete_snapshot": NodeDeleteSnapshot,
    "node.export": NodeExport,
    "node.unexport": NodeUnexport,
    "node.probe": NodeProbe,
    # flow history, liveness
    "flow.recent": FlowRecent,
    "flow.history": FlowHistoryRequest,
    "ping": Empty,
}

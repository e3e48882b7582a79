"""The op table: each op, the body type its receiver parses, and who may send it.

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
    NodeExportsRequest,
    NodeUnexport,
    VolumeAttach,
    VolumeConnection,
    VolumeDetach,
)
from cinderblock.protocol.messages.backups import (
    BackupCreate,
    BackupDeleted,
    BackupListRequest,
    BackupMade,
    BackupModify,
    BackupRef,
    BackupResetState,
    BackupRestore,
    BackupRestored,
    ExportedBackup,
    NodeCheckBackup,
    NodeCreateBackup,
    NodeDeleteBackup,
    NodeRestoreBackup,
)
from cinderblock.protocol.messages.flows import FlowHistoryRequest, FlowRecent
from cinderblock.protocol.messages.groups import (
    GroupCreate,
    GroupCreateFromSource,
    GroupDelete,
    GroupListRequest,
    GroupRef,
    GroupResetStatus,
    GroupSnapshotCreate,
    GroupSnapshotListRequest,
    GroupSnapshotRef,
    GroupSnapshotResetStatus,
    GroupTypeCreate,
    GroupTypeRef,
    GroupTypeUpdate,
    GroupUpdate,
    NodeCreateGroupSnapshot,
)
from cinderblock.protocol.messages.lifecycle import (
    NodeCreateSnapshot,
    NodeDeleteSnapshot,
    NodeDeleteVolume,
    NodeExtendVolume,
    NodeRevertVolume,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotListRequest,
    SnapshotModify,
    SnapshotRef,
    SnapshotResetState,
    SnapshotUpdate,
    SnapshotWatch,
    VolumeDelete,
    VolumeExtend,
    VolumeExtended,
    VolumeRetype,
    VolumeRevert,
    VolumeReverted,
)
from cinderblock.protocol.messages.log_levels import (
    LogLevelsAsk,
    LogLevelsSet,
    ServiceLogRequest,
)
from cinderblock.protocol.messages.manage import (
    ManageableRequest,
    NodeManageable,
    SnapshotManage,
    SnapshotUnmanage,
    VolumeManage,
    VolumeUnmanage,
)
from cinderblock.protocol.messages.migration import (
    NodeDropVolume,
    NodeReceiveVolume,
    VolumeMigrate,
    VolumeReceived,
)
from cinderblock.protocol.messages.qos import (
    QosAssociation,
    QosCreate,
    QosDelete,
    QosListRequest,
    QosRef,
    QosUpdate,
)
from cinderblock.protocol.messages.quota import (
    QuotaAbandon,
    QuotaApply,
    QuotaDefaultsUpdate,
    QuotaDelete,
    QuotaReserve,
    QuotaShow,
    QuotaShowMany,
    QuotaUpdate,
)
from cinderblock.protocol.messages.quota_sync import QuotaSync, QuotaSyncUsage
from cinderblock.protocol.messages.reconcile import NodeFenceCreates, NodeProbe, WorkCleanup
from cinderblock.protocol.messages.scheduling import (
    BackendEnable,
    BackendListRequest,
    BackendStatsMsg,
    NodeCreateVolume,
    ScheduleRequest,
)
from cinderblock.protocol.messages.transfers import (
    TransferAccept,
    TransferCreate,
    TransferListRequest,
    TransferRef,
)
from cinderblock.protocol.messages.user_messages import MessageListRequest, MessageRef
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeAccess,
    TypeCreate,
    TypeDefault,
    TypeDefaultListRequest,
    TypeDefaultRef,
    TypeRef,
    TypeUpdate,
    VolumeCreate,
    VolumeListRequest,
    VolumeModify,
    VolumeRef,
    VolumeResetState,
    VolumeSummaryRequest,
    VolumeUpdate,
    VolumeWatch,
)

# Who may send an op: the roles of the sender's key (protocol.wire.access).
# ``front`` (a REST front) may send whatever its users may; the gateway then
# checks the user's own roles, as it does for a user that connects itself.
USERS = frozenset({"member", "admin", "front"})
READERS = USERS | {"monitor"}  # read-only ops: also a metrics exporter's
ADMINS = frozenset({"admin", "front"})  # the handler checks the acting user is an admin
NODES = frozenset({"node"})
GATEWAY = frozenset({"gateway"})
ANYONE = READERS | {"gateway", "quota", "scheduler", "node"}

# op -> (the body type its receiver parses, the roles that may send it)
OP_TABLE: dict[str, tuple[type, frozenset[str]]] = {
    # volumes (client -> gateway; volume.update from the scheduler and nodes)
    "volume.create": (VolumeCreate, USERS),
    "volume.show": (VolumeRef, READERS),
    "volume.list": (VolumeListRequest, READERS),
    "volume.summary": (VolumeSummaryRequest, READERS),
    "volume.watch": (VolumeWatch, READERS),
    "volume.update": (VolumeUpdate, frozenset({"scheduler", "node"})),
    "volume.reset_state": (VolumeResetState, ADMINS),
    "volume.modify": (VolumeModify, USERS),
    "volume.delete": (VolumeDelete, USERS),
    "volume.extend": (VolumeExtend, USERS),
    "volume.deleted": (VolumeRef, NODES),
    "volume.extended": (VolumeExtended, NODES),
    "volume.revert": (VolumeRevert, USERS),
    "volume.reverted": (VolumeReverted, NODES),
    "volume.retype": (VolumeRetype, USERS),
    "volume.manage": (VolumeManage, ADMINS),
    "volume.manageable": (ManageableRequest, ADMINS),
    "volume.unmanage": (VolumeUnmanage, ADMINS),
    "volume.migrate": (VolumeMigrate, ADMINS),
    "volume.received": (VolumeReceived, NODES),
    # snapshots
    "snapshot.create": (SnapshotCreate, USERS),
    "snapshot.manage": (SnapshotManage, ADMINS),
    "snapshot.manageable": (ManageableRequest, ADMINS),
    "snapshot.unmanage": (SnapshotUnmanage, ADMINS),
    "snapshot.show": (SnapshotRef, READERS),
    "snapshot.list": (SnapshotListRequest, READERS),
    "snapshot.watch": (SnapshotWatch, READERS),
    "snapshot.delete": (SnapshotDelete, USERS),
    "snapshot.update": (SnapshotUpdate, NODES),
    "snapshot.modify": (SnapshotModify, USERS),
    "snapshot.reset_state": (SnapshotResetState, ADMINS),
    "snapshot.deleted": (SnapshotRef, NODES),
    # an admin's: mend now what a crash left (Cinder's workers/cleanup)
    "work.cleanup": (WorkCleanup, ADMINS),
    # backups (client -> gateway; backup.made/deleted/restored from the backup's node)
    "backup.create": (BackupCreate, USERS),
    "backup.show": (BackupRef, READERS),
    "backup.list": (BackupListRequest, READERS),
    "backup.update": (BackupModify, USERS),
    "backup.delete": (BackupRef, USERS),
    "backup.restore": (BackupRestore, USERS),
    "backup.reset_state": (BackupResetState, ADMINS),
    "backup.export_record": (BackupRef, ADMINS),
    "backup.import_record": (ExportedBackup, ADMINS),
    "backup.made": (BackupMade, NODES),
    "backup.deleted": (BackupDeleted, NODES),
    "backup.restored": (BackupRestored, NODES),
    # attachments
    "attachment.create": (AttachmentCreate, USERS),
    "attachment.update": (AttachmentUpdate, USERS),
    "attachment.complete": (AttachmentRef, USERS),
    "attachment.delete": (AttachmentRef, USERS),
    "attachment.force_delete": (AttachmentRef, ADMINS),  # its node may be down
    "attachment.show": (AttachmentRef, READERS),
    "attachment.list": (AttachmentListRequest, READERS),
    # Cinder's attach actions from before attachments (made of attachments)
    "volume.reserve": (VolumeRef, USERS),
    "volume.unreserve": (VolumeRef, USERS),
    "volume.begin_detaching": (VolumeRef, USERS),
    "volume.roll_detaching": (VolumeRef, USERS),
    "volume.initialize_connection": (VolumeConnection, USERS),
    "volume.terminate_connection": (VolumeConnection, USERS),
    "volume.attach": (VolumeAttach, USERS),
    "volume.detach": (VolumeDetach, USERS),
    # volume transfers
    "transfer.create": (TransferCreate, USERS),
    "transfer.list": (TransferListRequest, READERS),
    "transfer.show": (TransferRef, READERS),
    "transfer.delete": (TransferRef, USERS),
    "transfer.accept": (TransferAccept, USERS),
    # volume types and zones
    "type.create": (TypeCreate, ADMINS),
    "type.list": (Empty, READERS),
    "type.update": (TypeUpdate, ADMINS),
    "type.delete": (TypeRef, ADMINS),
    "type.access_list": (TypeRef, ADMINS),
    "type.access_add": (TypeAccess, ADMINS),
    "type.access_remove": (TypeAccess, ADMINS),
    "type.default": (Empty, READERS),  # the type a create of the caller's project gets
    "type.default_set": (TypeDefault, ADMINS),
    "type.default_show": (TypeDefaultRef, ADMINS),
    "type.default_list": (TypeDefaultListRequest, ADMINS),
    "type.default_unset": (TypeDefaultRef, ADMINS),
    "az.list": (Empty, READERS),
    # group types (Cinder's 3.11: an admin changes them; anyone lists the public ones)
    "group_type.create": (GroupTypeCreate, ADMINS),
    "group_type.list": (GroupTypeRef, READERS),
    "group_type.show": (GroupTypeRef, READERS),
    "group_type.update": (GroupTypeUpdate, ADMINS),
    "group_type.delete": (GroupTypeRef, ADMINS),
    # generic volume groups (Cinder's 3.13)
    "group.create": (GroupCreate, USERS),
    "group.list": (GroupListRequest, READERS),
    "group.show": (GroupRef, READERS),
    "group.update": (GroupUpdate, USERS),
    "group.delete": (GroupDelete, USERS),
    "group.reset_status": (GroupResetStatus, ADMINS),
    "group.create_from_src": (GroupCreateFromSource, USERS),
    # group snapshots (Cinder's 3.14; the node takes them at one instant)
    "group_snapshot.create": (GroupSnapshotCreate, USERS),
    "group_snapshot.list": (GroupSnapshotListRequest, READERS),
    "group_snapshot.show": (GroupSnapshotRef, READERS),
    "group_snapshot.delete": (GroupSnapshotRef, USERS),
    "group_snapshot.reset_status": (GroupSnapshotResetStatus, ADMINS),
    # QoS specs (Cinder's qos-specs API: an admin's)
    "qos.create": (QosCreate, ADMINS),
    "qos.list": (QosListRequest, ADMINS),
    "qos.show": (QosRef, ADMINS),
    "qos.update": (QosUpdate, ADMINS),
    "qos.delete": (QosDelete, ADMINS),
    "qos.associations": (QosRef, ADMINS),
    "qos.associate": (QosAssociation, ADMINS),
    "qos.disassociate": (QosAssociation, ADMINS),
    "qos.disassociate_all": (QosRef, ADMINS),
    # user messages (Cinder's messages API): why a volume went to an error status
    "message.list": (MessageListRequest, READERS),
    "message.show": (MessageRef, READERS),
    "message.delete": (MessageRef, USERS),
    # quota (client -> gateway, which forwards show/set; the rest gateway -> quota)
    "quota.show": (QuotaShow, READERS | GATEWAY),
    "quota.show_many": (QuotaShowMany, READERS | GATEWAY),
    "quota.set": (QuotaUpdate, ADMINS | GATEWAY),
    "quota.delete": (QuotaDelete, ADMINS | GATEWAY),
    "quota.set_defaults": (QuotaDefaultsUpdate, ADMINS | GATEWAY),
    "quota.reserve": (QuotaReserve, GATEWAY),
    "quota.apply": (QuotaApply, GATEWAY),
    "quota.rollback_abandoned": (QuotaAbandon, GATEWAY),
    "quota.sync": (QuotaSync, ADMINS),
    "quota.sync_usage": (QuotaSyncUsage, GATEWAY),
    # scheduling (backend.list: client -> gateway -> scheduler)
    "backend.list": (BackendListRequest, READERS | GATEWAY),
    "backend.set_enabled": (BackendEnable, ADMINS | GATEWAY),
    "schedule.create": (ScheduleRequest, GATEWAY | NODES),  # a node reschedules
    "node.hello": (BackendStatsMsg, NODES),  # a node process's first report
    # gateway or scheduler -> node
    "node.create_volume": (NodeCreateVolume, frozenset({"scheduler", "gateway"})),
    "node.delete_volume": (NodeDeleteVolume, GATEWAY),
    "node.extend_volume": (NodeExtendVolume, GATEWAY),
    "node.revert_volume": (NodeRevertVolume, GATEWAY),
    "node.create_snapshot": (NodeCreateSnapshot, GATEWAY),
    "node.create_group_snapshot": (NodeCreateGroupSnapshot, GATEWAY),
    "node.delete_snapshot": (NodeDeleteSnapshot, GATEWAY),
    "node.create_backup": (NodeCreateBackup, GATEWAY),
    "node.delete_backup": (NodeDeleteBackup, GATEWAY),
    "node.restore_backup": (NodeRestoreBackup, GATEWAY),
    "node.check_backup": (NodeCheckBackup, GATEWAY),
    "node.receive_volume": (NodeReceiveVolume, GATEWAY),
    "node.drop_volume": (NodeDropVolume, GATEWAY),
    "node.export": (NodeExport, GATEWAY),
    "node.unexport": (NodeUnexport, GATEWAY),
    "node.exports": (NodeExportsRequest, GATEWAY),
    # the gateway's reconciler; the scheduler, for the creates a restarted node's
    # previous process held (did it finish them before it died?)
    "node.probe": (NodeProbe, GATEWAY | frozenset({"scheduler"})),
    # the gateway, for the creates a dead scheduler may have taken with it; the
    # scheduler, for those a node's connection lost before the node dialled it again
    "node.fence_creates": (NodeFenceCreates, GATEWAY | frozenset({"scheduler"})),
    "node.manageable": (NodeManageable, GATEWAY),
    # flow history (clients ask the gateway, which asks every actor), liveness, statistics
    # (stats: every actor's own, ActorStats; cluster.stats: the gateway gathers them)
    "flow.recent": (FlowRecent, READERS | GATEWAY),
    "flow.history": (FlowHistoryRequest, READERS),
    "ping": (Empty, ANYONE),
    "whoami": (Empty, READERS),
    "stats": (Empty, frozenset({"admin", "monitor", "gateway"})),
    "cluster.stats": (Empty, frozenset({"admin", "monitor"})),
    "cluster.counts": (Empty, frozenset({"admin", "monitor"})),
    # log levels (an admin's; log.*: each actor's own, asked by the gateway; service.*:
    # the gateway asks every actor a binary and server name)
    "log.levels": (LogLevelsAsk, ADMINS | GATEWAY),
    "log.set_levels": (LogLevelsSet, ADMINS | GATEWAY),
    "service.log_levels": (ServiceLogRequest, ADMINS),
    "service.set_log_levels": (ServiceLogRequest, ADMINS),
}
OPS: dict[str, type] = {op: body for op, (body, _) in OP_TABLE.items()}
SENDERS: dict[str, frozenset[str]] = {op: roles for op, (_, roles) in OP_TABLE.items()}

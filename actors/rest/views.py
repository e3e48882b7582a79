"""Cinder's v3 body shapes, built from the client library's typed records. Pure code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.backups import Backup, BackupRestoreInfo
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.manage import ManageableVolume
from cinderblock.protocol.messages.qos import QosSpecs
from cinderblock.protocol.messages.quota import QuotaSet, split_typed
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.transfers import Transfer
from cinderblock.protocol.messages.user_messages import UserMessage
from cinderblock.protocol.messages.volumes import TypeDefault, Volume, VolumeType

QUOTA_RESOURCES = ("volumes", "gigabytes", "snapshots", "per_volume_gigabytes", "backups",
                   "backup_gigabytes", "groups")


def iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(base: str, collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/v3/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{item_id}"}]


def volume_summary(v: Volume, base: str) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "links": links(base, "volumes", v.id)}


# Fields a volume's view gains from a microversion on (Cinder's views/volumes.py).
VERSIONED_FIELDS: tuple[tuple[tuple[int, int], str, Any], ...] = (
    ((3, 21), "provider_id", None),
    ((3, 48), "shared_targets", False),
    ((3, 48), "service_uuid", None),
    ((3, 65), "consumes_quota", True),
    ((3, 69), "cluster_name", None),
)


def volume_detail(v: Volume, base: str, admin: bool, attachments: Iterable[Attachment] = (),
                  version: tuple[int, int] = (3, 0)) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": v.id, "status": v.status, "size": v.size, "name": v.name,
        "description": v.description, "volume_type": v.volume_type,
        "volume_type_id": v.volume_type_id, "availability_zone": v.availability_zone,
        "bootable": "true" if v.bootable else "false", "encrypted": False,
        "multiattach": v.multiattach, "attachments": [attachment_brief(a) for a in attachments],
        "metadata": {**v.metadata, **({"readonly": "True"} if v.readonly else {})},
        "snapshot_id": v.snapshot_id, "source_volid": v.source_volid, "user_id": v.user_id,
        "created_at": iso(v.created_at), "updated_at": iso(v.updated_at),
        "replication_status": None, "consistencygroup_id": None, "group_id": v.group_id,
        "migration_status": v.migration_status if admin else None,
        "links": links(base, "volumes", v.id),
    }
    for since, name, value in VERSIONED_FIELDS:
        if version >= since:
            view[name] = value
    view["os-vol-tenant-attr:tenant_id"] = v.project_id  # Cinder's: the project's readers
    if v.image_metadata:  # Cinder's os-vol-image-meta: only a volume that has some
        view["volume_image_metadata"] = dict(v.image_metadata)
    if admin:
        view["os-vol-host-attr:host"] = v.host  # Cinder's: admins only
        view["os-vol-mig-status-attr:migstat"] = v.migration_status
        view["os-vol-mig-status-attr:name_id"] = None  # a volume keeps its id when it moves
    return view


def attachment_brief(a: Attachment) -> dict[str, Any]:
    """An attachment as it appears inside a volume's ``attachments``."""
    return {"id": a.volume_id, "attachment_id": a.id, "volume_id": a.volume_id,
            "server_id": a.instance_id, "host_name": a.connector.get("host"),
            "device": a.connector.get("mountpoint"), "attached_at": iso(a.attached_at)}


def attachment(a: Attachment) -> dict[str, Any]:
    """Cinder's v3 attachment view (3.27), with the NBD connection_info."""
    return {"id": a.id, "status": a.status, "volume_id": a.volume_id,
            "instance": a.instance_id, "attach_mode": a.attach_mode,
            "attached_at": iso(a.attached_at), "detached_at": None,
            "connection_info": a.connection_info or {}}


def snapshot(s: Snapshot) -> dict[str, Any]:
    """Cinder's snapshot view; its extended attributes (progress, project) are for the
    project's readers and admins, who are the only ones shown the snapshot."""
    return {
        "id": s.id, "volume_id": s.volume_id, "status": s.status, "size": s.size,
        "name": s.name, "description": s.description, "metadata": dict(s.metadata),
        "created_at": iso(s.created_at), "updated_at": iso(s.updated_at),
        "user_id": s.user_id, "group_snapshot_id": s.group_snapshot_id,
        "os-extended-snapshot-attributes:progress": "100%" if s.status == "available" else "0%",
        "os-extended-snapshot-attributes:project_id": s.project_id,
    }


def volume_type(t: VolumeType, admin: bool = True) -> dict[str, Any]:
    """Cinder's type view; its QoS specs' id for an admin only (Cinder's
    ``access_types_qos_specs_id`` policy). A project's extra specs come trimmed from the
    gateway (``volume_types.type_as_seen``)."""
    shown = {"id": t.id, "name": t.name, "description": t.description,
             "is_public": t.is_public, "os-volume-type-access:is_public": t.is_public,
             "extra_specs": dict(t.extra_specs)}
    return {**shown, "qos_specs_id": t.qos_specs_id} if admin else shown


def default_type(d: TypeDefault) -> dict[str, Any]:
    return {"project_id": d.project_id, "volume_type_id": d.volume_type_id}


def qos_specs(q: QosSpecs) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs)}


def qos_association(t: VolumeType) -> dict[str, Any]:
    return {"association_type": "volume_type", "name": t.name, "id": t.id}


def quota_set(q: QuotaSet, usage: bool) -> dict[str, Any]:
    """Cinder's quota set: the kept resources and each volume type's own (``volumes_<type
    name>``, as the gateway names them)."""
    out: dict[str, Any] = {"id": q.project}
    typed = sorted(r for r in q.limits if split_typed(r) is not None)
    for res in (*QUOTA_RESOURCES, *typed):
        limit = q.limits.get(res, -1)
        out[res] = ({"limit": limit, "in_use": q.in_use.get(res, 0),
                     "reserved": q.reserved.get(res, 0), "allocated": 0} if usage else limit)
    return out


def absolute_limits(q: QuotaSet) -> dict[str, int]:
    """Cinder's absolute limits (``views/limits.py``) and what is used of them
    (``os-used-limits``): the project's quota."""
    return {
        "maxTotalVolumes": q.limits.get("volumes", -1),
        "maxTotalVolumeGigabytes": q.limits.get("gigabytes", -1),
        "maxTotalSnapshots": q.limits.get("snapshots", -1),
        "maxTotalBackups": q.limits.get("backups", -1),
        "maxTotalBackupGigabytes": q.limits.get("backup_gigabytes", -1),
        "totalVolumesUsed": q.in_use.get("volumes", 0),
        "totalGigabytesUsed": q.in_use.get("gigabytes", 0),
        "totalSnapshotsUsed": q.in_use.get("snapshots", 0),
        "totalBackupsUsed": q.in_use.get("backups", 0),
        "totalBackupGigabytesUsed": q.in_use.get("backup_gigabytes", 0),
    }


def volume_service(b: Backend, now: float, version: tuple[int, int]) -> dict[str, Any]:
    """A storage node's backend as Cinder lists its ``cinder-volume`` service: up while its
    stats keep coming (the scheduler's ``stale_after_s``), updated when they last came."""
    state = "up" if b.up else "down"
    view = {**_service("cinder-volume", b.backend, b.availability_zone, state,
                       now - b.age_s, version),
            "replication_status": "disabled", "active_backend_id": None, "frozen": False}
    if b.disabled:
        view.update(status="disabled", disabled_reason=b.disabled_reason)
    if version >= (3, 49):
        view["backend_state"] = state
    return view


def backup_service(b: Backend, now: float, version: tuple[int, int]) -> dict[str, Any]:
    """A storage node as Cinder lists a ``cinder-backup`` service: its node makes the
    backups of the volumes it holds (there is no backup service of its own), so it is
    named by the node's host and is up, in its zone, as its backend's ``cinder-volume``
    is. It is always enabled: a backend disabled is out of volume placement only, and
    its node still makes, restores and deletes backups."""
    state = "up" if b.up else "down"
    return _service("cinder-backup", b.host, b.availability_zone, state, now - b.age_s,
                    version)


def scheduler_service(zone: str, answered_at: float | None, version: tuple[int, int],
                      ) -> dict[str, Any]:
    """The scheduler as ``cinder-scheduler``: up when it answered just now
    (``answered_at``), down (and not updated) when it did not."""
    state = "up" if answered_at is not None else "down"
    return _service("cinder-scheduler", "scheduler", zone, state, answered_at, version)


def _service(binary: str, host: str, zone: str, state: str, updated_at: float | None,
             version: tuple[int, int]) -> dict[str, Any]:
    view: dict[str, Any] = {"binary": binary, "host": host, "zone": zone,
                            "status": "enabled", "state": state,
                            "updated_at": iso(updated_at), "disabled_reason": None}
    if version >= (3, 7):
        view["cluster"] = None
    return view


def manageable(m: ManageableVolume, detail: bool, snapshot: bool = False) -> dict[str, Any]:
    """Cinder's manageable volume (or snapshot): the summary, or with ``detail`` why it is
    not safe and the volume (snapshot) it already is. A snapshot's ``source_reference``
    (the volume it was taken of) is null: a file does not say."""
    view: dict[str, Any] = {"reference": {"source-name": m.reference}, "size": m.size,
                            "safe_to_manage": m.safe_to_manage}
    if snapshot:
        view["source_reference"] = None
    if detail:
        view.update(reason_not_safe=m.reason_not_safe, cinder_id=m.cinder_id, extra_info=None)
    return view


def pool(b: Backend, detail: bool) -> dict[str, Any]:
    name = f"{b.backend}#{b.backend.partition('@')[2] or b.backend}"
    if not detail:
        return {"name": name}
    caps: dict[str, Any] = {
        **b.capabilities, "total_capacity_gb": b.total_capacity_gb,
        "free_capacity_gb": b.free_capacity_gb,
        "allocated_capacity_gb": b.allocated_capacity_gb,
        "provisioned_capacity_gb": b.provisioned_capacity_gb,
        "reserved_percentage": b.reserved_percentage,
        "thin_provisioning_support": b.thin_provisioning_support,
        "max_over_subscription_ratio": b.max_over_subscription_ratio,
        "availability_zone": b.availability_zone, "storage_protocol": "nbd",
        "volume_backend_name": b.capabilities.get("volume_backend_name", b.backend),
    }
    return {"name": name, "capabilities": caps}


# The capabilities an extra spec can name, as Cinder's drivers describe theirs
# (``_init_standard_capabilities``: a title, a description and a JSON type).
_PROPERTY_TEXT = {
    "thin_provisioning_support": ("Thin Provisioning",
                                  "Volumes take space as they are written."),
    "thick_provisioning_support": ("Thick Provisioning",
                                   "Volumes take their whole size when they are made."),
    "multiattach": ("Multiattach", "A volume may be attached to several hosts at once."),
    "clone_method": ("Clone Method", "How a copy of a volume or a snapshot is made on the "
                                     "backend (reflink, copy, or none for a backend without "
                                     "bytes)."),
    "sparse_copy": ("Sparse Copy", "A copy skips what was never written."),
}
_SHOWN_APART = frozenset({"volume_backend_name", "storage_protocol"})


def _json_type(value: object) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else None


def backend_capabilities(b: Backend, driver_version: str) -> dict[str, Any]:
    """Cinder's capabilities view of one backend (``/capabilities/{host}``): what its node
    reports, the keys an extra spec can name (``capabilities:<key>``) as ``properties``."""
    properties: dict[str, dict[str, str]] = {}
    for key, value in sorted(b.capabilities.items()):
        kind = _json_type(value)
        if key in _SHOWN_APART or kind is None:
            continue
        title, text = _PROPERTY_TEXT.get(key, (key.replace("_", " ").title(),
                                               f"The backend's {key}."))
        properties[key] = {"title": title, "description": text, "type": kind}
    return {
        "namespace": f"OS::Storage::Capabilities::{b.backend}",
        "vendor_name": "cinderblock",
        "volume_backend_name": b.capabilities.get("volume_backend_name", b.backend),
        "pool_name": b.backend.partition("@")[2] or b.backend,
        "driver_version": driver_version,
        "storage_protocol": b.capabilities.get("storage_protocol", "nbd"),
        "display_name": None, "description": None, "visibility": None,
        "replication_targets": [],
        "properties": properties,
    }


def transfer(t: Transfer, base: str, version: tuple[int, int], detail: bool = True
             ) -> dict[str, Any]:
    """Cinder's transfer views (``views/transfers.py``): the summary (a list, an
    accept's answer), the detail (with ``no_snapshots`` from 3.55 and the history from
    3.57), and, at its create, the auth key."""
    view: dict[str, Any] = {"id": t.id, "volume_id": t.volume_id, "name": t.name,
                            "links": links(base, "os-volume-transfer", t.id)}
    if not detail:
        return view
    view["created_at"] = iso(t.created_at)
    if t.auth_key is not None:
        view["auth_key"] = t.auth_key
    if version >= (3, 55):
        view["no_snapshots"] = t.no_snapshots
    if version >= (3, 57):
        view.update(destination_project_id=t.destination_project_id,
                    source_project_id=t.source_project_id, accepted=t.accepted)
    return view


def backup_summary(b: Backup, base: str) -> dict[str, Any]:
    """Cinder's backup summary: a list's item, and a create's and an update's answer."""
    return {"id": b.id, "name": b.name, "links": links(base, "backups", b.id)}


def backup_detail(b: Backup, base: str, admin: bool, version: tuple[int, int]
                  ) -> dict[str, Any]:
    """Cinder's backup detail (``views/backups.py`` and v3's): its metadata from 3.43;
    whose it is for an admin only (Cinder's ``BACKUP_ATTRIBUTES_POLICY``), the project
    from 3.18 and the user from 3.56. No backup here is encrypted: no
    ``encryption_key_id``."""
    view: dict[str, Any] = {
        "id": b.id, "status": b.status, "size": b.size, "object_count": b.object_count,
        "availability_zone": b.availability_zone, "container": b.container,
        "created_at": iso(b.created_at), "updated_at": iso(b.updated_at), "name": b.name,
        "description": b.description, "fail_reason": b.fail_reason,
        "volume_id": b.volume_id, "links": links(base, "backups", b.id),
        "is_incremental": b.is_incremental, "has_dependent_backups": b.has_dependent_backups,
        "snapshot_id": b.snapshot_id, "data_timestamp": iso(b.data_timestamp),
    }
    if version >= (3, 43):
        view["metadata"] = dict(b.metadata)
    if admin and version >= (3, 18):
        view["os-backup-project-attr:project_id"] = b.project_id
    if admin and version >= (3, 56):
        view["user_id"] = b.user_id
    return view


def backup_restore(r: BackupRestoreInfo) -> dict[str, Any]:
    """Cinder's restore summary: the backup and the volume it is written into."""
    return {"backup_id": r.backup_id, "volume_id": r.volume_id, "volume_name": r.volume_name}


def user_message(m: UserMessage, base: str) -> dict[str, Any]:
    """Cinder's user message view (3.3)."""
    return {
        "id": m.id, "resource_type": m.resource_type, "resource_uuid": m.resource_uuid,
        "event_id": m.event_id, "message_level": m.message_level,
        "user_message": m.user_message, "request_id": m.request_id,
        "created_at": iso(m.created_at), "guaranteed_until": iso(m.expires_at),
        "links": links(base, "messages", m.id),
    }


# Cinder's API extensions this front serves, by alias: (Cinder's name, when Cinder's
# was last updated, what of it is served here). ``GET /extensions`` lists them.
EXTENSIONS: dict[str, tuple[str, str, str]] = {
    "os-admin-actions": ("AdminActions", "2012-08-25T00:00:00+00:00",
                         "os-reset_status of volumes, snapshots and backups; "
                         "os-force_delete as a delete (a volume or backup a node is "
                         "working on is the reconciler's); os-force_detach; "
                         "os-migrate_volume of an available volume without snapshots, "
                         "copied over NBD by its new backend's node (not of an in-use "
                         "one, nor os-migrate_volume_completion: Nova's part)"),
    "backups": ("Backups", "2012-12-12T00:00:00+00:00",
                "volume and snapshot backups, whole or incremental, made by the "
                "volume's node into its backup repository: created, listed, shown, "
                "updated, restored into a volume or a new one, deleted, their "
                "records exported and imported (an admin's)"),
    "os-availability-zone": ("AvailabilityZones", "2013-06-27T00:00:00+00:00",
                             "the availability zones"),
    "capabilities": ("Capabilities", "2015-08-31T00:00:00+00:00",
                     "what a backend reports, as an extra spec can name it"),
    "os-extended-services": ("ExtendedServices", "2014-01-10T00:00:00-00:00",
                             "disable a backend with a reason"),
    "os-extended-snapshot-attributes": ("ExtendedSnapshotAttributes",
                                        "2012-06-19T00:00:00+00:00",
                                        "a snapshot's project and progress"),
    "os-quota-class-sets": ("QuotaClasses", "2012-03-12T00:00:00+00:00",
                            "the default quota class"),
    "qos-specs": ("Qos_specs_manage", "2013-08-02T00:00:00+00:00",
                  "QoS specs and the volume types they are associated with"),
    "os-quota-sets": ("Quotas", "2011-08-08T00:00:00+00:00", "quotas and their usage"),
    "scheduler-stats": ("Scheduler_stats", "2014-09-07T00:00:00+00:00",
                        "the scheduler's pools"),
    "os-services": ("Services", "2012-10-28T00:00:00-00:00",
                    "the scheduler and every backend, enabled or disabled"),
    "os-types-extra-specs": ("TypesExtraSpecs", "2011-08-24T00:00:00+00:00",
                             "a volume type's extra specs"),
    "os-types-manage": ("TypesManage", "2011-08-24T00:00:00+00:00",
                        "volume types created, changed and deleted"),
    "os-used-limits": ("UsedLimits", "2013-10-03T00:00:00+00:00",
                       "what a project uses, in its limits"),
    "os-volume-actions": ("VolumeActions", "2012-05-31T00:00:00+00:00",
                          "extend, bootable, read-only, retype in place, revert, and the "
                          "attach actions from before attachments, made of attachments "
                          "(not upload to an image)"),
    "os-volume-manage": ("VolumeManage", "2014-02-10T00:00:00+00:00",
                         "a file a backend holds becomes a volume; what could be, listed "
                         "(3.8)"),
    "os-snapshot-manage": ("SnapshotManage", "2014-12-31T00:00:00+00:00",
                           "a file on a volume's backend becomes a snapshot of it; what "
                           "could be, listed (3.8)"),
    "os-snapshot-unmanage": ("SnapshotUnmanage", "2014-12-31T00:00:00+00:00",
                             "a snapshot leaves cinderblock, its data kept on its backend"),
    "os-volume-unmanage": ("VolumeUnmanage", "2012-05-31T00:00:00+00:00",
                           "a volume leaves cinderblock, its data kept on its backend"),
    "os-vol-host-attr": ("VolumeHostAttribute", "2011-11-03T00:00:00+00:00",
                         "a volume's backend, for admins"),
    "os-vol-mig-status-attr": ("VolumeMigStatusAttribute", "2013-08-08T00:00:00+00:00",
                               "a volume's migration_status, for admins (name_id: "
                               "none, a volume keeps its id)"),
    "os-vol-tenant-attr": ("VolumeTenantAttribute", "2011-11-03T00:00:00+00:00",
                           "a volume's project"),
    "os-vol-image-meta": ("VolumeImageMetadata", "2012-12-07T00:00:00+00:00",
                          "a volume's image metadata, shown, set and unset; a copy of a "
                          "bootable volume has it"),
    "os-volume-transfer": ("VolumeTransfer", "2013-05-29T00:00:00+00:00",
                           "volume transfers between projects"),
    "os-volume-type-access": ("VolumeTypeAccess", "2014-06-26T00:00:00Z",
                              "private volume types and who may use them"),
}


def extension(alias: str) -> dict[str, Any]:
    name, updated, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": updated,
            "links": []}

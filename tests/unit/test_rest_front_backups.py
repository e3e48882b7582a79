"""The REST front's backups, their pure parts: Cinder's request schemas (what passes
becomes the gateway's message, anything else is a 400 naming the field), the views, the
quota set and limits that now show backups, and the ``cinder-backup`` services."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.rest import views
from cinderblock.actors.rest.app import newest_first_only
from cinderblock.actors.rest.backup_schemas import (
    create_request,
    reset_request,
    restore_request,
    update_request,
)
from cinderblock.actors.rest.errors import HttpFault, over_limit_message
from cinderblock.actors.rest.microversion import Version
from cinderblock.protocol.messages.backups import (
    Backup,
    BackupCreate,
    BackupModify,
    BackupResetState,
    BackupRestore,
    BackupRestoreInfo,
)
from cinderblock.protocol.messages.quota import QuotaSet
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.states import BackupStatus
from cinderblock.protocol.wire.errors import InvalidInput

VOL = "0b6a2f8e-6f5b-4a3e-9d52-1c8f3e1d2a44"
SNAP = "6f0d35a4-4b61-4c0a-8a7e-2f2c7d1e9b10"
V30, V343, V351 = Version(3, 0), Version(3, 43), Version(3, 51)


def refused(call: Any, *args: Any) -> str:
    """The message of the 400 a schema answers (a gateway check's InvalidInput is the
    front's 400 too)."""
    with pytest.raises((HttpFault, InvalidInput)) as err:
        call(*args)
    if isinstance(err.value, HttpFault):
        assert err.value.status == 400
    return str(err.value)


# ---- create ------------------------------------------------------------------------------
def test_a_create_as_cinderclient_sends_it_becomes_the_gateway_s_message() -> None:
    body = {"backup": {"volume_id": VOL, "container": None, "name": "nightly",
                       "description": None, "incremental": False, "force": "True",
                       "snapshot_id": SNAP}}
    assert create_request(body, V30) == BackupCreate(
        VOL, name="nightly", force=True, snapshot_id=SNAP)
    later = {"backup": {"volume_id": VOL, "metadata": {"tier": "gold"},
                        "availability_zone": "nova", "container": "c", "force": "off"}}
    assert create_request(later, V351) == BackupCreate(
        VOL, container="c", metadata={"tier": "gold"}, availability_zone="nova")


@pytest.mark.parametrize(("backup", "version", "says"), [
    ({}, V30, "'volume_id' is a required property"),
    ({"volume_id": None}, V30, "None is not of type 'string'"),
    ({"volume_id": "vol-1"}, V30, "field/attribute volume_id. Value: vol-1. 'vol-1' is not "
                                  "a 'uuid'"),
    ({"volume_id": VOL, "snapshot_id": 7}, V30, "field/attribute snapshot_id"),
    ({"volume_id": VOL, "snapshot_id": "snap"}, V30, "'snap' is not a 'uuid'"),
    ({"volume_id": VOL, "name": "n" * 256}, V30, "field/attribute name"),
    ({"volume_id": VOL, "name": 5}, V30, "5 is not of type 'string', 'null'"),
    ({"volume_id": VOL, "container": ["c"]}, V30, "field/attribute container"),
    ({"volume_id": VOL, "description": "line\nbreak"}, V30, "field/attribute description"),
    ({"volume_id": VOL, "force": "TrUe"}, V30, "field/attribute force"),
    ({"volume_id": VOL, "incremental": 1}, V30, "field/attribute incremental"),
    ({"volume_id": VOL, "force": None}, V30, "field/attribute force"),
    ({"volume_id": VOL, "metadata": {"k": "v"}}, V30, "'metadata' were unexpected"),
    ({"volume_id": VOL, "metadata": {"k": 5}}, V343, "metadata value for 'k'"),
    ({"volume_id": VOL, "metadata": {"bad*key": "v"}}, V343, "metadata key"),
    ({"volume_id": VOL, "metadata": []}, V343, "field/attribute metadata"),
    ({"volume_id": VOL, "availability_zone": "nova"}, V343,
     "'availability_zone' were unexpected"),
    ({"volume_id": VOL, "availability_zone": "z" * 256}, V351,
     "field/attribute availability_zone"),
    ({"volume_id": VOL, "surprise": 1}, V351, "'surprise' were unexpected"),
])
def test_a_create_cinder_s_schema_refuses_is_a_400_naming_the_field(
    backup: dict[str, Any], version: Version, says: str,
) -> None:
    assert says in refused(create_request, {"backup": backup}, version)


def test_a_create_body_must_be_one_backup_object() -> None:
    assert "'backup' is a required property" in refused(create_request, {}, V30)
    assert "is not of type 'object'" in refused(create_request, {"backup": None}, V30)
    assert "'volume' were unexpected" in refused(
        create_request, {"backup": {"volume_id": VOL}, "volume": {}}, V30)


# ---- update, restore, reset -------------------------------------------------------------------
def test_an_update_changes_what_it_names_and_null_clears_a_text() -> None:
    assert update_request("b", {"backup": {"name": "n"}}, Version(3, 9)) == BackupModify(
        "b", name="n")
    assert update_request("b", {"backup": {"description": None, "metadata": {"a": "b"}}},
                          V343) == BackupModify("b", metadata={"a": "b"},
                                                cleared=("description",))
    assert update_request("b", {"backup": None}, V343) == BackupModify("b")
    assert "'metadata' were unexpected" in refused(
        update_request, "b", {"backup": {"metadata": {}}}, Version(3, 42))
    assert "None is not of type 'object'" in refused(
        update_request, "b", {"backup": {"metadata": None}}, V343)
    assert "'size' were unexpected" in refused(update_request, "b", {"backup": {"size": 2}},
                                               V343)


def test_a_restore_names_a_volume_or_a_new_one_s_name() -> None:
    assert restore_request("b", {"restore": {"volume_id": VOL}}) == BackupRestore("b", VOL)
    assert restore_request("b", {"restore": {"name": "again"}}) == BackupRestore(
        "b", None, "again")
    assert restore_request("b", {"restore": None}) == BackupRestore("b")
    assert "'vol' is not a 'uuid'" in refused(restore_request, "b",
                                              {"restore": {"volume_id": "vol"}})
    assert "'size' were unexpected" in refused(restore_request, "b",
                                               {"restore": {"size": 1}})
    assert "'restore' is a required property" in refused(restore_request, "b", {})


def test_a_reset_takes_available_or_error_in_any_case() -> None:
    assert reset_request("b", {"status": "ERROR"}) == BackupResetState("b", "error")
    assert reset_request("b", {"status": "available"}) == BackupResetState("b", "available")
    assert "Backup status: creating is invalid, valid statuses are: ['available', " \
           "'error']" in refused(reset_request, "b", {"status": "creating"})
    assert "'status' is a required property" in refused(reset_request, "b", {})
    assert "'force' were unexpected" in refused(reset_request, "b",
                                                {"status": "error", "force": True})
    assert "is not of type 'object'" in refused(reset_request, "b", None)


# ---- listings ----------------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    {}, {"sort": "created_at"}, {"sort": "created_at:desc"}, {"sort_dir": "desc"},
    {"sort_key": "created_at", "sort_dir": "desc"}, {"sort": "created_at:desc,name:asc"}])
def test_a_backup_listing_takes_newest_first_however_it_is_asked(query: dict[str, str]
                                                                 ) -> None:
    newest_first_only(query, "backups")


@pytest.mark.parametrize("query", [
    {"sort": "created_at:asc"}, {"sort_dir": "asc"}, {"sort": "name"},
    {"sort_key": "size", "sort_dir": "desc"}, {"sort": "created_at:up"}])
def test_any_other_order_of_backups_is_a_400_saying_which_there_is(query: dict[str, str]
                                                                   ) -> None:
    with pytest.raises(HttpFault, match="backups are listed newest first only") as err:
        newest_first_only(query, "backups")
    assert err.value.status == 400


# ---- views -----------------------------------------------------------------------------
BACKUP = Backup("b1", "p1", VOL, BackupStatus.AVAILABLE, 2, object_count=3, user_id="u1",
                name="nightly", container="c", availability_zone="nova",
                metadata={"k": "v"}, created_at=1796083200.0, data_timestamp=1796083200.0)
DETAIL_FIELDS = {"id", "status", "size", "object_count", "availability_zone", "container",
                 "created_at", "updated_at", "name", "description", "fail_reason",
                 "volume_id", "links", "is_incremental", "has_dependent_backups",
                 "snapshot_id", "data_timestamp"}


def test_a_backup_s_detail_grows_with_the_microversion_and_shows_admins_whose_it_is(
) -> None:
    plain = views.backup_detail(BACKUP, "http://h", admin=True, version=(3, 0))
    assert set(plain) == DETAIL_FIELDS
    assert (plain["status"], plain["created_at"], plain["updated_at"]) == (
        "available", "2026-12-01T00:00:00.000000", None)
    assert plain["links"][0] == {"rel": "self", "href": "http://h/v3/backups/b1"}
    newest = views.backup_detail(BACKUP, "http://h", admin=True, version=(3, 71))
    assert set(newest) - DETAIL_FIELDS == {"metadata", "os-backup-project-attr:project_id",
                                           "user_id"}
    assert (newest["metadata"], newest["os-backup-project-attr:project_id"],
            newest["user_id"]) == ({"k": "v"}, "p1", "u1")
    assert set(views.backup_detail(BACKUP, "http://h", admin=True, version=(3, 18))
               ) - DETAIL_FIELDS == {"os-backup-project-attr:project_id"}
    member = views.backup_detail(BACKUP, "http://h", admin=False, version=(3, 71))
    assert set(member) - DETAIL_FIELDS == {"metadata"}


def test_a_backup_s_summary_and_a_restore_s_answer_are_cinder_s() -> None:
    assert views.backup_summary(BACKUP, "http://h") == {
        "id": "b1", "name": "nightly", "links": views.links("http://h", "backups", "b1")}
    assert views.backup_restore(BackupRestoreInfo("b1", "v2", "restored")) == {
        "backup_id": "b1", "volume_id": "v2", "volume_name": "restored"}


# ---- quota, limits, services ------------------------------------------------------------
QUOTA = QuotaSet("p1", limits={"volumes": 10, "gigabytes": 1000, "snapshots": 10,
                               "per_volume_gigabytes": -1, "backups": 4,
                               "backup_gigabytes": 100},
                 in_use={"backups": 2, "backup_gigabytes": 3},
                 reserved={"backup_gigabytes": 1})


def test_quota_sets_show_backups_and_groups_as_kept() -> None:
    shown = views.quota_set(QUOTA, usage=True)
    assert shown["backups"] == {"limit": 4, "in_use": 2, "reserved": 0, "allocated": 0}
    assert shown["backup_gigabytes"] == {"limit": 100, "in_use": 3, "reserved": 1,
                                         "allocated": 0}
    assert shown["groups"] == {"limit": -1, "in_use": 0, "reserved": 0, "allocated": 0}
    assert views.quota_set(QUOTA, usage=False)["backups"] == 4


def test_absolute_limits_give_the_backups_limits_and_use() -> None:
    limits = views.absolute_limits(QUOTA)
    assert (limits["maxTotalBackups"], limits["maxTotalBackupGigabytes"],
            limits["totalBackupsUsed"], limits["totalBackupGigabytesUsed"]) == (4, 100, 2, 3)


def test_a_backup_over_quota_is_said_in_cinder_s_words() -> None:
    assert over_limit_message({"resource": "backups", "limit": 1, "requested": 1,
                               "in_use": 1, "reserved": 0}, "x") == (
        "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded")
    assert over_limit_message({"resource": "backup_gigabytes", "limit": 10,
                               "requested": 8, "in_use": 5, "reserved": 1}, "x") == (
        "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup "
        "gigabytes quota. Requested 8G, quota is 10G and 6G has been consumed.")


def test_each_node_is_a_cinder_backup_service_up_as_its_backend_and_always_enabled() -> None:
    backend = Backend("node-1@file", "node-1", "zone-a", 10, 5, 5, 5, age_s=2.0, up=False,
                      disabled=True, disabled_reason="disk swap")
    service = views.backup_service(backend, now=1796083202.0, version=(3, 49))
    assert service == {"binary": "cinder-backup", "host": "node-1", "zone": "zone-a",
                       "status": "enabled", "state": "down",
                       "updated_at": "2026-12-01T00:00:00.000000", "disabled_reason": None,
                       "cluster": None}

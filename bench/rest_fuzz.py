"""Hostile HTTP on the REST front: Cinder's own requests, each with one thing wrong (or
nothing), sent at every route, and what they leave behind.

A request is one of Cinder's (create, snapshot, clone, extend, revert, retype, reset, delete,
attach, the attach actions from before attachments, transfer, quota, type, service,
metadata, backup create, restore, update, reset, delete and listing, a create from a
backup) on an id the run has seen or made up,
and with probability ``MUTATE`` one leaf of its body replaced by a value of another
shape (``None``, a huge number, a float, a long string, a list, a nested map, an id
of something else), dropped, or joined by a stray key; one request in four is
shapeless instead (any route, any body, any query string, any microversion). Tokens
are a member's, another project's and the admin's. The rules every reply must keep:

* it is an answer: a status below 500, within ``SLOW_S``;
* an error is Cinder's fault body, ``{name: {"code": status, "message": text}}``, whose
  name is Cinder's for that status.

Afterwards the run deletes the attachments it made (one left ``attaching`` waits for
its client's ``os-complete``, as Cinder's do), unreserves the volumes it reserved
(each waits for its client's ``os-unreserve``) and deletes the backups it made (each
once its node is done with it), and the cluster must settle exact
(``bench.invariants``: nothing stuck, quota equal to what exists, node files equal
to the records; ``bench.fuzzing.backup_violations``: no backup left).

    python -m cinderblock.bench.rest_fuzz [--requests N] [--clients C] [--seed S] [--json]

starts its own cluster (``cinderblock up`` with a REST front on a free loopback
port); the suite runs a short version against its test cluster
(``tests/e2e/test_e2e_rest_fuzz.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from cinderblock.actors.rest.errors import FAULT_NAMES
from cinderblock.actors.runtime.config import free_port, rest_url
from cinderblock.bench.fuzzing import FuzzReport, fuzz_command, settle
from cinderblock.bench.up_cluster import UpCluster

MUTATE = 0.4  # a Cinder request gets one thing wrong this often
SHAPELESS = 0.25  # of all requests: any route, any body
SLOW_S = 5.0  # an answer later than this is a problem
KEEP = 40  # ids of each kind the run remembers
PROJECT = "fuzz"
OTHER = "fuzz-other"
CONNECTOR = {"host": "fuzz-host", "initiator": "iqn.2026-12.fuzz", "ip": "127.0.0.1",
             "platform": "x86_64", "os_type": "linux", "multipath": False}
KEYS = ("size", "name", "description", "volume_id", "snapshot_id", "source_volid",
        "volume_type", "availability_zone", "metadata", "new_size", "status", "bootable",
        "readonly", "force", "instance_uuid", "connector", "mode", "auth_key", "extra_specs",
        "mountpoint", "host_name", "attachment_id",
        "is_public", "volumes", "gigabytes", "snapshots", "host", "binary", "disabled_reason",
        "no_snapshots", "multiattach", "display_name", "backup_id", "imageRef", "group_id",
        "scheduler_hints", "volume_uuid", "project", "consumer", "keys", "total_iops_sec",
        "read_bytes_sec_per_gb", "container", "incremental", "backups", "backup_gigabytes",
        "backup_service", "backup_url")
ENTITIES = ("volume", "snapshot", "volume_type", "attachment", "transfer", "quota_set",
            "quota_class_set", "metadata", "meta", "extra_specs", "os-extend",
            "os-reset_status", "revert", "os-set_bootable", "os-update_readonly_flag",
            "os-set_image_metadata", "os-unset_image_metadata",
            "accept", "addProjectAccess", "removeProjectAccess", "os-complete", "qos_specs",
            "default_type", "backup", "restore", "backup-record", "os-force_delete")
ROUTES = (
    "POST /volumes", "GET /volumes", "GET /volumes/detail", "GET /volumes/summary",
    "GET /volumes/{id}", "PUT /volumes/{id}", "DELETE /volumes/{id}",
    "POST /volumes/{id}/action", "GET /volumes/{id}/metadata", "POST /volumes/{id}/metadata",
    "PUT /volumes/{id}/metadata", "GET /volumes/{id}/metadata/{key}",
    "PUT /volumes/{id}/metadata/{key}", "DELETE /volumes/{id}/metadata/{key}",
    "POST /snapshots", "GET /snapshots", "GET /snapshots/detail", "GET /snapshots/{id}",
    "PUT /snapshots/{id}", "DELETE /snapshots/{id}", "POST /snapshots/{id}/action",
    "GET /snapshots/{id}/metadata", "PUT /snapshots/{id}/metadata/{key}",
    "GET /types", "POST /types", "GET /types/{id}", "PUT /types/{id}", "DELETE /types/{id}",
    "GET /types/{id}/extra_specs", "POST /types/{id}/extra_specs",
    "PUT /types/{id}/extra_specs/{key}", "DELETE /types/{id}/extra_specs/{key}",
    "GET /types/{id}/os-volume-type-access", "POST /types/{id}/action",
    "GET /os-quota-sets/{id}", "PUT /os-quota-sets/{id}", "DELETE /os-quota-sets/{id}",
    "GET /os-quota-sets/{id}/defaults", "GET /os-quota-class-sets/{id}",
    "PUT /os-quota-class-sets/{id}", "GET /limits", "GET /os-availability-zone",
    "GET /scheduler-stats/get_pools", "GET /os-services", "PUT /os-services/{key}",
    "GET /capabilities/{id}", "GET /messages", "GET /messages/{id}", "DELETE /messages/{id}",
    "POST /volume-transfers", "GET /volume-transfers", "GET /volume-transfers/{id}",
    "DELETE /volume-transfers/{id}", "POST /volume-transfers/{id}/accept",
    "POST /os-volume-transfer", "POST /attachments", "GET /attachments",
    "GET /attachments/{id}", "PUT /attachments/{id}", "DELETE /attachments/{id}",
    "POST /attachments/{id}/action", "GET /qos-specs", "POST /qos-specs",
    "GET /qos-specs/{id}", "PUT /qos-specs/{id}", "DELETE /qos-specs/{id}",
    "PUT /qos-specs/{id}/delete_keys", "GET /qos-specs/{id}/associations",
    "GET /qos-specs/{id}/associate", "GET /qos-specs/{id}/disassociate",
    "GET /qos-specs/{id}/disassociate_all", "GET /default-types", "GET /default-types/{id}",
    "PUT /default-types/{id}", "DELETE /default-types/{id}", "GET /nothing-here",
    "POST /os-volume-manage", "GET /os-volume-manage", "GET /manageable_volumes/detail",
    "POST /manageable_volumes", "POST /os-snapshot-manage", "GET /manageable_snapshots",
    "GET /resource_filters",
    "POST /manageable_snapshots",
    "GET /group_types", "POST /group_types", "GET /group_types/{id}", "PUT /group_types/{id}",
    "DELETE /group_types/{id}", "GET /group_types/{id}/group_specs",
    "POST /group_types/{id}/group_specs", "PUT /group_types/{id}/group_specs/{key}",
    "DELETE /group_types/{id}/group_specs/{key}", "POST /groups", "GET /groups",
    "GET /groups/detail", "GET /groups/{id}", "PUT /groups/{id}", "POST /groups/{id}/action",
    "POST /groups/action", "POST /group_snapshots", "GET /group_snapshots",
    "GET /group_snapshots/detail",
    "GET /group_snapshots/{id}", "DELETE /group_snapshots/{id}",
    "POST /group_snapshots/{id}/action",
    "POST /backups", "GET /backups", "GET /backups/detail", "GET /backups/{id}",
    "PUT /backups/{id}", "DELETE /backups/{id}", "POST /backups/{id}/restore",
    "POST /backups/{id}/action", "GET /backups/{id}/export_record",
    "POST /backups/import_record",
    "PATCH /volumes", "POST /workers/cleanup",
)
QUERY_KEYS = ("limit", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "project_id",
              "status", "name", "metadata", "offset", "with_count", "cascade", "volume_id",
              "binary", "host", "force", "vol_type_id")
VERSIONS = (None, None, "3.0", "3.9", "3.27", "3.40", "3.42", "3.43", "3.44", "3.51", "3.55",
            "3.57", "3.60", "3.71", "3.9999", "4.0", "3.x", "latest", "")


@dataclass(frozen=True, slots=True)
class Sent:
    method: str
    path: str  # under /v3
    body: Any  # JSON; None: no body
    version: str | None  # OpenStack-API-Version's volume microversion
    token: str
    raw: bytes | None = None  # sent instead of the body: bytes JSON cannot say

    def describe(self) -> str:
        body = (repr(self.raw[:80]) if self.raw is not None
                else json.dumps(self.body)[:300] if self.body is not None else "-")
        return f"{self.method} {self.path} [{self.version}] as {self.token}: {body}"


MADE_KINDS = frozenset({"volume", "snapshot", "attachment", "backup", "transfer", "group",
                        "group_snapshot", "group_type"})  # counted in the report


@dataclass(slots=True)
class Known:
    """What the run made and may name again (the newest ``KEEP`` of each)."""
    volume: list[str] = field(default_factory=list)
    snapshot: list[str] = field(default_factory=list)
    attachment: list[str] = field(default_factory=list)
    volume_type: list[str] = field(default_factory=list)
    transfer: list[tuple[str, str]] = field(default_factory=list)  # (id, auth_key)
    qos_specs: list[str] = field(default_factory=list)
    backup: list[str] = field(default_factory=list)
    group_type: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    group_snapshot: list[str] = field(default_factory=list)

    def learn(self, reply: Any) -> None:
        if not isinstance(reply, dict):
            return
        for kind, item in reply.items():
            if kind == "restore" and isinstance(item, dict) \
                    and isinstance(item.get("volume_id"), str):  # a new volume, maybe
                self.volume = [*self.volume, item["volume_id"]][-KEEP:]
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            if kind == "transfer" and isinstance(item.get("auth_key"), str):
                self.transfer = [*self.transfer, (item["id"], item["auth_key"])][-KEEP:]
            elif kind in ("volume", "snapshot", "attachment", "volume_type", "qos_specs",
                          "backup", "group_type", "group", "group_snapshot"):
                setattr(self, kind, [*getattr(self, kind), item["id"]][-KEEP:])


class Requests:
    """The request generator: plain code over a seeded ``random.Random``."""

    def __init__(self, rng: random.Random, known: Known) -> None:
        self.rng = rng
        self.known = known

    def next(self) -> Sent:
        if self.rng.random() < SHAPELESS:
            return self.shapeless()
        method, path, body, version, admin = self.rng.choice(self.cinder_requests())
        token = self.token(admin)
        return Sent(method, path, self.mutated(body), version, token)

    def token(self, admin: bool) -> str:
        if admin and self.rng.random() < 0.85:
            return "admin:admin"
        return self.rng.choice([f"{PROJECT}:{PROJECT}"] * 6 + [f"{OTHER}:{OTHER}"])

    def pick(self, ids: list[str]) -> str:
        return self.rng.choice(ids) if ids and self.rng.random() < 0.9 else str(uuid.uuid4())

    def cinder_requests(self) -> list[tuple[str, str, Any, str | None, bool]]:
        """(method, path, body, microversion, an admin's) of each request Cinder takes."""
        r, k = self.rng, self.known
        v, s, a, t = (self.pick(k.volume), self.pick(k.snapshot), self.pick(k.attachment),
                      self.pick(k.volume_type))
        transfer, key = r.choice(k.transfer) if k.transfer else (str(uuid.uuid4()), "k")
        q, b = self.pick(k.qos_specs), self.pick(k.backup)
        return [
            ("POST", "/volumes", {"volume": {"size": r.randrange(1, 3), "name": "n"}}, "3.60",
             False),
            ("POST", "/volumes", {"volume": {"size": 1}, "OS-SCH-HNT:scheduler_hints": {
                r.choice(["same_host", "different_host"]): r.choice([v, [v, self.pick(k.volume)]])
            }}, "3.60", False),
            ("POST", "/volumes", {"volume": {"snapshot_id": s}}, "3.60", False),
            ("POST", "/volumes", {"volume": {"source_volid": v}}, "3.60", False),
            ("POST", "/snapshots", {"snapshot": {"volume_id": v, "force": r.random() < 0.3}},
             "3.60", False),
            ("POST", f"/volumes/{v}/action", {"os-extend": {"new_size": r.randrange(1, 5)}},
             r.choice(["3.0", "3.42"]), False),
            ("POST", f"/volumes/{v}/action", {"revert": {"snapshot_id": s}}, "3.40", False),
            ("POST", f"/volumes/{v}/action", {"os-set_image_metadata": {"metadata": {
                "hw_disk_bus": r.choice(["scsi", "virtio"])}}}, "3.60", False),
            ("POST", f"/volumes/{v}/action",
             {"os-unset_image_metadata": {"key": "hw_disk_bus"}}, "3.60", False),
            ("POST", f"/volumes/{v}/action",
             {"os-retype": {"new_type": t, "migration_policy": r.choice(["never",
                                                                         "on-demand"])}},
             "3.60", False),
            ("POST", f"/volumes/{v}/action",
             {"os-reset_status": {"status": r.choice(["error", "available", "in-use"])}},
             "3.60", True),
            ("POST", f"/volumes/{v}/action", {"os-migrate_volume": {
                "host": r.choice(["node-1@file", "node-2@file#file", "node-9@file", "node-2",
                                  ""]),
                "force_host_copy": r.choice([True, False, "yes"]),
                "lock_volume": r.choice([True, False])}}, "3.60", r.random() < 0.9),
            ("POST", f"/snapshots/{s}/action", {"os-reset_status": {"status": "error"}},
             "3.60", True),
            ("DELETE", f"/volumes/{v}", None, "3.60", False),
            ("DELETE", f"/volumes/{v}?cascade=true", None, "3.60", False),
            ("DELETE", f"/snapshots/{s}", None, "3.60", False),
            ("PUT", f"/volumes/{v}", {"volume": {"name": "m", "metadata": {"a": "b"}}}, "3.60",
             False),
            ("POST", f"/volumes/{v}/metadata", {"metadata": {"k": "v"}}, "3.60", False),
            ("POST", "/attachments",
             {"attachment": {"volume_uuid": v, "instance_uuid": str(uuid.uuid4())}}, "3.54",
             False),
            ("POST", "/attachments",
             {"attachment": {"volume_uuid": v, "connector": CONNECTOR, "mode": "rw"}}, "3.54",
             False),
            ("PUT", f"/attachments/{a}", {"attachment": {"connector": CONNECTOR}}, "3.54",
             False),
            ("POST", f"/attachments/{a}/action", {"os-complete": None}, "3.44", False),
            ("DELETE", f"/attachments/{a}", None, "3.54", False),
            # the attach actions from before attachments (Ironic's, Nova's old ones)
            ("POST", f"/volumes/{v}/action", {r.choice([
                "os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching"]):
                r.choice([None, {}])}, r.choice(["3.0", "3.60"]), False),
            ("POST", f"/volumes/{v}/action",
             {r.choice(["os-initialize_connection", "os-terminate_connection"]): {
                 "connector": CONNECTOR}}, "3.60", False),
            ("POST", f"/volumes/{v}/action", {"os-attach": r.choice([
                {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb",
                 "mode": r.choice(["rw", "ro"])},
                {"host_name": CONNECTOR["host"], "mountpoint": "/dev/vdc"}])}, "3.60", False),
            ("POST", f"/volumes/{v}/action",
             {"os-detach": r.choice([None, {"attachment_id": a}])}, "3.60", False),
            ("POST", "/volume-transfers",
             {"transfer": {"volume_id": v, "name": "t", "no_snapshots": r.random() < 0.5}},
             "3.55", False),
            ("POST", f"/volume-transfers/{transfer}/accept", {"accept": {"auth_key": key}},
             "3.57", False),
            ("DELETE", f"/volume-transfers/{transfer}", None, "3.57", False),
            ("PUT", f"/os-quota-sets/{PROJECT}",
             {"quota_set": {"volumes": r.randrange(5, 40), "gigabytes": r.randrange(10, 80)}},
             "3.60", True),
            ("PUT", f"/os-quota-sets/{PROJECT}",  # a volume type's own (by its id here)
             {"quota_set": {f"volumes_{t}": r.randrange(-1, 8),
                            f"gigabytes_{t}": r.randrange(-1, 30)}}, "3.60", True),
            ("POST", "/types", {"volume_type": {  # "fast": node-2's in the suite's run
                "name": f"fuzz-{r.randrange(5)}",
                "extra_specs": {"volume_backend_name": r.choice(["file", "fast", "none"])}}},
             "3.60", True),
            ("PUT", f"/types/{t}", {"volume_type": {"name": f"fuzz-r{r.randrange(5)}"}},
             "3.60", True),
            ("DELETE", f"/types/{t}", None, "3.60", True),
            ("POST", "/qos-specs", {"qos_specs": {
                "name": f"fuzz-q{r.randrange(5)}", "consumer": r.choice(["front-end", "both"]),
                "total_iops_sec_per_gb": str(r.randrange(1, 50)),
                "total_iops_sec_max": str(r.randrange(50, 500))}}, "3.60", True),
            ("PUT", f"/qos-specs/{q}", {"qos_specs": {"read_bytes_sec": "1048576"}}, "3.60",
             True),
            ("PUT", f"/qos-specs/{q}/delete_keys", {"keys": ["read_bytes_sec"]}, "3.60", True),
            ("GET", f"/qos-specs/{q}/{r.choice(['associate', 'disassociate'])}?vol_type_id={t}",
             None, "3.60", True),
            ("DELETE", f"/qos-specs/{q}?force={r.choice(['true', 'false'])}", None, "3.60",
             True),
            ("PUT", f"/default-types/{r.choice([PROJECT, OTHER])}",
             {"default_type": {"volume_type": t}}, "3.62", True),
            ("DELETE", f"/default-types/{r.choice([PROJECT, OTHER])}", None, "3.62", True),
            ("GET", f"/manageable_volumes/detail?host={r.choice(['node-1', 'node-2@file'])}",
             None, "3.8", True),
            ("POST", f"/volumes/{v}/action", {"os-unmanage": None}, "3.60", True),
            ("POST", "/os-volume-manage", {"volume": {  # a volume unmanaged before, back
                "host": r.choice(["node-1", "node-2@file#file"]),
                "ref": {"source-name": f"unmanaged-volume-{v}"}}}, "3.60", True),
            ("GET", f"/manageable_snapshots/detail?host={r.choice(['node-1', 'node-2'])}",
             None, "3.8", True),
            ("POST", f"/snapshots/{s}/action", {"os-unmanage": None}, "3.60", True),
            ("POST", "/os-snapshot-manage", {"snapshot": {  # a snapshot unmanaged before,
                "volume_id": v, "ref": {"source-name": f"unmanaged-snapshot-{s}"}}},  # back
             "3.60", True),
            ("PUT", f"/os-services/{r.choice(['disable', 'enable'])}",
             {"host": r.choice(["node-1@file", "node-2@file", "node-1@null"]),
              "binary": "cinder-volume"}, "3.60", True),
            ("POST", "/workers/cleanup", r.choice([  # what a crash left, mended now
                None, {"is_up": "true"}, {"is_up": True, "host": "node-1"},
                {"is_up": True, "resource_id": v},
                {"is_up": True, "resource_id": s, "resource_type": "snapshot"}]), "3.24", True),
            *self.backup_requests(v, s, b),
            *self.group_requests(v, t),
        ]

    def group_requests(self, v: str, t: str) -> list[tuple[str, str, Any, str | None, bool]]:
        """Cinder's generic volume group requests (3.11 types, 3.13 groups, 3.14 group
        snapshots, their actions) with volume ``v`` and volume type ``t``."""
        r, k = self.rng, self.known
        gt, g, gs = self.pick(k.group_type), self.pick(k.group), self.pick(k.group_snapshot)
        return [
            ("POST", "/group_types", {"group_type": {"name": f"fuzz-cg-{r.randrange(3)}"}},
             "3.11", True),
            ("POST", "/groups", {"group": {"group_type": gt, "name": "g", "volume_types": [
                r.choice([t, "__DEFAULT__"])]}}, "3.13", False),
            ("POST", "/volumes", {"volume": {"size": 1, "group_id": g, "volume_type": r.choice(
                [t, "__DEFAULT__"])}}, "3.13", False),
            ("PUT", f"/groups/{g}", {"group": {r.choice(["add_volumes", "remove_volumes"]): v}},
             "3.13", False),
            ("POST", f"/groups/{g}/action", {"delete": {"delete-volumes": r.random() < 0.7}},
             "3.13", False),
            ("POST", f"/groups/{g}/action", {"reset_status": {"status": r.choice(
                ["available", "error", "creating"])}}, "3.20", True),
            ("POST", "/group_snapshots", {"group_snapshot": {"group_id": g, "name": "gs"}},
             "3.14", False),
            ("DELETE", f"/group_snapshots/{gs}", None, "3.14", False),
            ("POST", f"/group_snapshots/{gs}/action", {"reset_status": {"status": r.choice(
                ["available", "error", "deleting"])}}, "3.19", True),
            ("POST", "/groups/action", {"create-from-src": r.choice([
                {"group_snapshot_id": gs}, {"source_group_id": g}])}, "3.14", False),
        ]

    def backup_requests(self, v: str, s: str, b: str
                        ) -> list[tuple[str, str, Any, str | None, bool]]:
        """Cinder's backup requests (the backups extension, its admin actions, a create
        from a backup) on volume ``v``, snapshot ``s`` and backup ``b``."""
        r = self.rng
        return [
            ("POST", "/backups", {"backup": {
                "volume_id": v, "name": "b", "force": r.choice([False, True, "true"]),
                "incremental": r.choice([False, True]), "container": None}}, "3.51", False),
            ("POST", "/backups", {"backup": {"volume_id": v, "snapshot_id": s,
                                             "metadata": {"k": "v"}}}, "3.43", False),
            ("POST", f"/backups/{b}/restore", {"restore": r.choice([
                {"volume_id": v}, {"name": "restored"}, None])}, "3.60", False),
            ("POST", "/volumes", {"volume": {"backup_id": b, "size": r.randrange(1, 3)}},
             "3.47", False),
            ("PUT", f"/backups/{b}", {"backup": {"name": "renamed", "metadata": {"a": "b"}}},
             "3.43", False),
            ("DELETE", f"/backups/{b}", None, "3.60", False),
            ("GET", f"/backups/detail?volume_id={v}&with_count=true", None, "3.45", False),
            ("GET", f"/backups/{b}", None, "3.71", False),
            ("POST", f"/backups/{b}/action",
             {"os-reset_status": {"status": r.choice(["available", "error"])}}, "3.60", True),
            ("POST", f"/backups/{b}/action", {"os-force_delete": {}}, "3.60", True),
            ("GET", f"/backups/{b}/export_record", None, "3.60", r.random() < 0.7),
            ("POST", "/backups/import_record", {"backup-record": {
                "backup_service": "cinderblock.storage_node.backup_repository",
                "backup_url": base64.b64encode(json.dumps({
                    "id": r.choice([b, str(uuid.uuid4())]), "size": r.randrange(1, 3),
                    "host": r.choice(["node-1@file", "node-2@file"]), "volume_id": v,
                    "name": "imported"}).encode()).decode()}}, "3.60", True),
        ]

    def mutated(self, body: Any) -> Any:
        """``body`` with one leaf replaced, dropped or joined by a stray key (or as is)."""
        if body is None or self.rng.random() >= MUTATE:
            return body
        body = copy.deepcopy(body)
        paths = [p for p in _leaf_paths(body) if p]
        if not paths:
            return self.value()
        path = self.rng.choice(paths)
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        roll = self.rng.random()
        if roll < 0.6:
            parent[path[-1]] = self.value()
        elif roll < 0.8:
            del parent[path[-1]]
        else:
            parent[self.rng.choice(KEYS)] = self.value()
        return body

    def shapeless(self) -> Sent:
        r = self.rng
        method, template = r.choice(ROUTES).split(" ")
        ids = [*self.known.volume, *self.known.snapshot, *self.known.attachment,
               *self.known.volume_type, *self.known.qos_specs, *self.known.backup]
        some_id = r.choice(ids) if ids and r.random() < 0.6 else r.choice(
            [str(uuid.uuid4()), "x", "default", "__DEFAULT__", "node-1@file", PROJECT, "..",
             "%00", "%2F", "a" * 300, "enable", "disable", "disable-log-reason"])
        path = template.replace("{id}", some_id).replace(
            "{key}", r.choice(["k", "x", "disable", "disable-log-reason", "a" * 300, "%25"]))
        if r.random() < 0.3:
            path = f"/{PROJECT}{path}"
        body: Any = None
        raw = None
        if method in ("POST", "PUT", "PATCH"):
            body = r.choice([None, [], "x", 1, {}, self.entity_body()])
            if r.random() < 0.05:  # nested deeper than a parser's stack, or cut short
                raw = r.choice([b"[" * 100_000, b'{"a": ' * 20_000 + b"1", b"\xff\xfe{"])
        return Sent(method, path + self.query(), body, r.choice(VERSIONS), self.token(False),
                    raw)

    def entity_body(self) -> dict[str, Any]:
        r = self.rng
        return {r.choice(ENTITIES): ({r.choice(KEYS): self.value() for _ in range(r.randrange(5))}
                                     if r.random() < 0.85 else self.value())
                for _ in range(r.choice([1, 1, 1, 2]))}

    def query(self) -> str:
        r = self.rng
        if r.random() < 0.5:
            return ""
        pairs = [f"{r.choice(QUERY_KEYS)}={quote(str(self.value()))}"
                 for _ in range(r.randrange(1, 4))]
        if r.random() < 0.03:  # nested past json's stack (one such value: the request
            pairs[0] = f"{r.choice(QUERY_KEYS)}={quote('[' * 2000)}"  # line stays in 8 KiB)
        return "?" + "&".join(pairs)

    def value(self, depth: int = 0) -> Any:
        """A JSON value of any shape (the ids the run knows among them)."""
        r = self.rng
        kind = r.randrange(12)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([0, 1, -1, 2**31, 2**63, -(2**63), 2**64, 10**30])
        if kind == 2:
            return r.choice([0.5, -1.5, 1e308, 1e-9])
        if kind == 3:
            return r.choice(["", "1", "x" * 300, "\u0000", "é", "true", "available", "error",
                             "in-use", "ro", "rw", " 2 ", "-1", "1.5", "__DEFAULT__",
                             "node-1@file", "nova", "name:asc,size:desc", "x:y:z"])
        if kind == 4:
            return r.choice([True, False])
        if kind == 5 and depth < 3:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        if kind == 6 and depth < 3:
            return {r.choice(KEYS): self.value(depth + 1) for _ in range(r.randrange(4))}
        if kind in (7, 8):
            return self.pick([*self.known.volume, *self.known.snapshot, *self.known.backup])
        if kind == 9:
            return dict(CONNECTOR)
        return r.randrange(1, 5)


def _leaf_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaf_paths(inner, (*path, key))
    yield path


def judge(status: int, raw: bytes, seconds: float) -> str | None:
    """What is wrong with a reply (None: nothing): see the module doc's rules."""
    if status >= 500:
        return f"answered {status}: {raw[:300]!r}"
    if seconds > SLOW_S:
        return f"answered after {seconds:.1f} s"
    if status < 400:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return f"a {status} whose body is not JSON: {raw[:300]!r}"
    name = FAULT_NAMES.get(status, "computeFault")  # Cinder names only the statuses it lists
    fault = body.get(name) if isinstance(body, dict) and len(body) == 1 else None
    if (not isinstance(fault, dict) or fault.get("code") != status
            or not isinstance(fault.get("message"), str) or not fault["message"]):
        return f"a {status} that is not Cinder's {name} fault: {raw[:300]!r}"
    return None


async def fuzz(url: str, requests: int, seed: int, clients: int = 4) -> FuzzReport:
    """Send ``requests`` requests from ``clients`` concurrent senders to the front at
    ``url`` (its ``/v3``); every reply judged. Each sender has its own seeded stream."""
    report, base = FuzzReport(), url.rstrip("/").removesuffix("/v3")
    left = iter(range(requests))
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=SLOW_S * 6)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async def sender(index: int) -> None:
            gen = Requests(random.Random(seed * 1000 + index), Known())
            for _ in left:
                sent = gen.next()
                problem, status, raw = await _send(http, base, sent)
                report.requests += 1
                report.outcomes[str(status)] += 1
                if problem is not None:
                    report.problems.append(f"{sent.describe()}: {problem}")
                elif status in (200, 202):
                    with contextlib.suppress(ValueError):
                        reply = json.loads(raw)
                        gen.known.learn(reply)
                        if sent.method == "POST" and isinstance(reply, dict):
                            report.made.update(k for k in reply if k in MADE_KINDS)

        await asyncio.gather(*(sender(i) for i in range(clients)))
    report.seconds = time.monotonic() - started
    return report


async def _send(http: aiohttp.ClientSession, base: str, sent: Sent,
                ) -> tuple[str | None, int, bytes]:
    headers = {"X-Auth-Token": sent.token, "Content-Type": "application/json"}
    if sent.version is not None:
        headers["OpenStack-API-Version"] = f"volume {sent.version}"
    data = sent.raw if sent.raw is not None else (
        json.dumps(sent.body).encode() if sent.body is not None else None)
    began = time.monotonic()
    try:
        async with http.request(sent.method, base + "/v3" + sent.path, data=data,
                                headers=headers) as resp:
            raw = await resp.read()
            return judge(resp.status, raw, time.monotonic() - began), resp.status, raw
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"no answer: {exc!r}", 0, b""


async def _run(cluster: UpCluster, args: argparse.Namespace) -> FuzzReport:
    report = await fuzz(rest_url(cluster.cfg.rest[0]), args.requests, args.seed,
                        args.clients)
    async with cluster.client("admin", timeout=30.0) as admin:
        report.unsettled = await settle(admin, cluster.node_files, (PROJECT, OTHER),
                                       cluster.backup_files)
    return report


if __name__ == "__main__":
    fuzz_command(__doc__ or "", 20_000, _run, lambda: ("--api-port", str(free_port())))

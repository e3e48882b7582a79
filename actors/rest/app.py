"""The HTTP side of the REST front: Cinder's Block Storage API v3 on aiohttp.

Every route turns a request into one or a few calls of the client library
(``cinderblock.protocol.client.Client``), made for the caller over the front's
one long-lived connection (``Client.acting_for``), and the typed answer into
Cinder's body shape (``actors.rest.views``). Validation, quota and state are the
gateway's: a refusal comes back as a ``CinderblockError`` and leaves as Cinder's
error body (``actors.rest.errors``).

Every route is served with and without ``/{project_id}`` after ``/v3`` (3.67).
The middleware, in order: the body size limit (413 before anything is read),
version negotiation (406), authentication, then the handler; every answer carries
``OpenStack-API-Version`` and ``Vary``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from aiohttp import web

from cinderblock import __version__
from cinderblock.actors.gateway.volume_request import FALSE_WORDS, TRUE_WORDS
from cinderblock.actors.rest import backup_schemas, group_schemas, views, workers
from cinderblock.actors.rest.access_log import CALLER, REQUEST_ID
from cinderblock.actors.rest.auth import Authenticator, Caller
from cinderblock.actors.rest.body import boolean_word, entity
from cinderblock.actors.rest.errors import (
    HttpFault,
    bad_request,
    fault,
    from_gateway,
    not_found,
    only,
)
from cinderblock.actors.rest.filters import (
    ORDER,
    PAGING,
    WHOSE,
    check_query,
    resource_filters,
)
from cinderblock.actors.rest.group_schemas import (
    GROUP_SNAPSHOT_VERSION,
    GROUP_TYPE_VERSION,
    GROUP_VERSION,
)
from cinderblock.actors.rest.microversion import (
    HEADER,
    LEGACY_HEADER,
    MAX,
    MIN,
    Version,
    negotiate,
    response_headers,
    version_document,
)
from cinderblock.actors.runtime.config import DEFAULT_ZONE
from cinderblock.actors.runtime.log_levels import check_level, check_prefix, levels, set_levels
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.backups import Backup
from cinderblock.protocol.messages.groups import GroupDelete
from cinderblock.protocol.messages.log_levels import API_BINARY
from cinderblock.protocol.messages.manage import SnapshotManage, VolumeManage
from cinderblock.protocol.messages.qos import QosSpecs
from cinderblock.protocol.messages.quota import split_typed
from cinderblock.protocol.messages.volumes import Volume, VolumeCreate, VolumeType, time_comparisons
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidState,
    NotFound,
    Timeout,
    Unavailable,
)

log = logging.getLogger(__name__)
VERSION = web.RequestKey("version", Version)  # the microversion a request was served at
CLIENT = web.RequestKey("client", Client)  # the front's client acting for the caller
# the fields of each volume action (Cinder's schemas: additionalProperties false)
ACTION_FIELDS = {
    "os-extend": {"new_size"}, "os-set_bootable": {"bootable"},
    "os-update_readonly_flag": {"readonly"}, "revert": {"snapshot_id"},
    "os-set_image_metadata": {"metadata"}, "os-unset_image_metadata": {"key"},
}
# Cinder's words for a fault of its own (webob's HTTPInternalServerError, FaultWrapper)
SERVER_ERRED = ("The server has either erred or is incapable of performing the requested "
                "operation.")
MAX_LIMIT = 1000  # Cinder's osapi_max_limit: the most items a listing's page holds
# What Cinder's clusters listing filters by (3.7), and from 3.26 its replication's too
CLUSTER_FILTERS = frozenset({"name", "binary", "is_up", "disabled", "num_hosts",
                             "num_down_hosts"})
CLUSTER_REPLICATION_FILTERS = frozenset({"replication_status", "frozen", "active_backend_id"})
# Cinder's attach actions from before attachments (os-volume-actions), made of attachments
LEGACY_ATTACH_ACTIONS = frozenset({
    "os-reserve", "os-unreserve", "os-begin_detaching", "os-roll_detaching",
    "os-initialize_connection", "os-terminate_connection", "os-attach", "os-detach"})
# Cinder's os-vol-image-meta extension's volume actions
IMAGE_METADATA_ACTIONS = frozenset({"os-set_image_metadata", "os-unset_image_metadata",
                                    "os-show_image_metadata"})

MAX_BODY = 114_688  # Cinder's osapi max_request_body_size (112 KiB)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCESS_IS_PUBLIC = "os-volume-type-access:is_public"  # a type's is_public, as created
ADMIN_ROLES = ("admin", "member")
MEMBER_ROLES = ("member",)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def read_body(request: web.Request) -> Any:
    """The request's JSON (None for no body), or Cinder's 400 when it is not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # (nested past the stack)
        raise bad_request("Malformed request body") from None


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or Cinder's 400 for anything else."""
    body = await read_body(request)
    if not isinstance(body, dict):
        raise bad_request("Malformed request body: a JSON object is expected")
    return body


def request_id(request: web.Request) -> str:
    """The id the front gave this HTTP request (its answer's ``x-openstack-request-id``)."""
    return request[REQUEST_ID]


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


class Front:
    """One front process's state: its connection to the gateway and who may call."""

    def __init__(self, client: Client, auth: Authenticator, max_body: int = MAX_BODY,
                 name: str = "rest") -> None:
        self.client = client
        self.auth = auth
        self.max_body = max_body
        self.name = name  # its ``cinder-api`` host in get-log: the address it listens on

    # ---- per request ------------------------------------------------------
    def caller(self, request: web.Request) -> Caller:
        return request[CALLER]

    def _admin(self, request: web.Request, policy: str) -> None:
        """Cinder's 403 for an API its policy gives to admins only."""
        if not self.caller(request).admin:
            raise HttpFault(403, f"Policy doesn't allow {policy} to be performed.")

    def client_for(self, request: web.Request) -> Client:
        """The front's client acting for the caller, one for the whole HTTP request:
        its calls carry the request's id (``x-openstack-request-id``), the first as it
        is and the rest numbered."""
        view = request.get(CLIENT)
        if view is None:
            caller = self.caller(request)
            view = request[CLIENT] = self.client.acting_for(
                caller.project, caller.user, ADMIN_ROLES if caller.admin else MEMBER_ROLES,
                request_id=request_id(request))
        return view

    def version(self, request: web.Request) -> Version:
        return request[VERSION]

    def _pair(self, request: web.Request) -> tuple[int, int]:
        version = self.version(request)
        return version.major, version.minor

    def base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    # ---- middleware -------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = f"req-{uuid.uuid4()}"  # Cinder's: made here, never taken
        version = MIN
        try:
            if (request.content_length or 0) > self.max_body:
                raise HttpFault(413, "Request is too large.")
            version = negotiate(request.headers.get(HEADER), request.headers.get(LEGACY_HEADER))
            request[VERSION] = version
            if request.path.rstrip("/") not in ("", "/v3"):
                request[CALLER] = self._authenticate(request)
            response = await handler(request)
        except HttpFault as exc:
            response = fault(exc.status, exc.message, exc.headers)
        except CinderblockError as exc:
            response = from_gateway(exc)
        except web.HTTPRequestEntityTooLarge:
            response = fault(413, "Request is too large.")
        except web.HTTPException as exc:
            response = fault(exc.status, exc.reason)
        except Exception:  # a bug of the front's: logged whole, answered as Cinder does
            log.exception("%s %s failed [%s]", request.method, request.path,
                          request_id(request))
            response = fault(500, SERVER_ERRED)
        response.headers.update(response_headers(version))
        response.headers["x-openstack-request-id"] = request_id(request)
        return response

    def _authenticate(self, request: web.Request) -> Caller:
        caller = self.auth.identify(request.headers.get("X-Auth-Token"))
        project = request.match_info.get("project_id")
        if project is not None and project != caller.project and not caller.admin:
            raise HttpFault(403, f"Policy doesn't allow project {caller.project} to act "
                            f"in project {project}.")
        return caller

    # ---- discovery ----------------------------------------------------------
    async def versions(self, request: web.Request) -> web.Response:
        return json_response({"versions": [version_document(self.base(request))]}, 300)

    async def v3_root(self, request: web.Request) -> web.Response:
        return json_response({"versions": [version_document(self.base(request))]})

    # ---- volumes --------------------------------------------------------------
    async def volume_create(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        vol = entity(body, "volume")
        only(body, {"volume", HINTS})
        if self.version(request).at_least("3.53"):  # before, Cinder's schema took any key
            only(vol, CREATE_FIELDS)
        hints = scheduler_hints(body.get(HINTS))
        volume = await self.client_for(request).submit_create(create_body(vol, hints))
        return json_response({"volume": await self._detail(request, volume, fresh=True)}, 202)

    async def _detail(self, request: web.Request, volume: Volume,
                      fresh: bool = False) -> dict[str, Any]:
        client = self.client_for(request)
        attachments = [] if fresh else await client.list_attachments(volume.id)
        return views.volume_detail(volume, self.base(request), self.caller(request).admin,
                                   [a for a in attachments if a.status != "deleted"],
                                   version=self._pair(request))

    async def volume_show(self, request: web.Request) -> web.Response:
        volume = await self.client_for(request).show_volume(request.match_info["id"])
        return json_response({"volume": await self._detail(request, volume)})

    async def volume_list(self, request: web.Request) -> web.Response:
        (volumes, count), admin = await self._listed(request), self.caller(request).admin
        links = next_links(request, "volumes", volumes)
        base = self.base(request)
        if request.path.endswith("/detail"):
            atts = await self.client_for(request).list_attachments(
                all_projects=admin, volume_ids=[v.id for v in volumes]) if volumes else []
            by_volume: dict[str, list[Any]] = {}
            for a in atts:
                by_volume.setdefault(a.volume_id, []).append(a)
            pair = self._pair(request)
            out = [views.volume_detail(v, base, admin, by_volume.get(v.id, ()), version=pair)
                   for v in volumes]
        else:
            out = [views.volume_summary(v, base) for v in volumes]
        counted = {} if count is None else {"count": count}
        return json_response({"volumes": out, **counted, **links})

    async def volume_summary(self, request: web.Request) -> web.Response:
        """3.12: how many volumes and GiB (an admin's ``all_tenants``: every project's, or
        ``project_id``'s); from 3.36 with each metadata key's values."""
        self._need(request, "3.12", "volume summaries")
        q = request.query
        check_query(q, None, WHOSE)
        everyone, project = projects_asked(q, self.caller(request))
        summary = await self.client_for(request).volume_summary(everyone, project)
        out: dict[str, Any] = {"total_size": summary.total_size,
                               "total_count": summary.total_count}
        if self.version(request).at_least("3.36"):
            out["metadata"] = {k: list(v) for k, v in summary.metadata.items()}
        return json_response({"volume-summary": out})

    async def _listed(self, request: web.Request) -> tuple[list[Volume], int | None]:
        """The gateway filters (status, name, metadata, bootable, zone, size, migration
        status, from 3.10 group, an admin's project) and pages, by creation newest or oldest first
        (Horizon sorts every page by ``created_at``, either way) or by another of
        Cinder's sort keys (the first one given). ``bootable`` is read as Cinder reads
        it from 3.2 on: a boolean's word, anything else a 400. From 3.45 ``with_count``
        asks the gateway how many the listing has in all too (the committed rows',
        counted apart from the page)."""
        q = request.query
        check_query(q, "volume", PAGING | ORDER | WHOSE | {"with_count"})
        with_count = self._with_count(request)
        sort = sort_asked(q)
        everyone, project = projects_asked(q, self.caller(request))
        order = by_creation(sort, q.get("sort_dir"))
        other = None if order is not None else other_sort(sort, q.get("sort_dir"))
        client = self.client_for(request)
        filters: dict[str, Any] = dict(
            all_projects=everyone, status=q.get("status"), project_id=project,
            name=q.get("name") or q.get("display_name"),
            metadata=_dict_param(q, "metadata") if "metadata" in q else None,
            bootable=boolean_word(q["bootable"], "bootable") if "bootable" in q else None,
            availability_zone=q.get("availability_zone"),
            size=_size_filter(q["size"]) if "size" in q else None,
            migration_status=q.get("migration_status"),
            group_id=self._group_filter(request),
            **{name: self._times(request, name) for name in ("created_at", "updated_at")
               if name in q})
        if not consumes_quota(q):  # after every other parameter was checked
            return [], 0 if with_count else None
        count = await client.count_volumes(**filters) if with_count else None
        volumes = await client.list_volumes(
            limit=page_limit(q), marker=q.get("marker"), oldest_first=order == "asc",
            sort=other, **filters)
        return volumes, count

    async def volume_update(self, request: web.Request) -> web.Response:
        vol = entity(await read_json(request), "volume")
        allowed = {"name", "description", "display_name", "display_description", "metadata"}
        only(vol, allowed)
        if self.version(request).at_least("3.53") and not set(vol) & allowed - {"metadata"}:
            raise bad_request("Invalid input: one of name or description is required")
        change: dict[str, Any] = {}
        for field in ("name", "description"):
            if field in vol or f"display_{field}" in vol:
                change[field] = vol.get(field, vol.get(f"display_{field}"))
        if "metadata" in vol:
            change.update(metadata=vol["metadata"], replace_metadata=True)
        volume = await self.client_for(request).modify_volume(request.match_info["id"],
                                                              **change)
        return json_response({"volume": await self._detail(request, volume)})

    async def volume_delete(self, request: web.Request) -> web.Response:
        if flag(request.query.get("cascade")):
            await self._delete_snapshots(request, request.match_info["id"])
        await self.client_for(request).delete_volume(request.match_info["id"])
        return web.Response(status=202)

    async def volume_action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if len(body) != 1:
            raise bad_request("Invalid request body: exactly one action is expected")
        (action, args), = body.items()
        volume_id = request.match_info["id"]
        if action in ACTION_FIELDS:  # Cinder's schemas: nothing else in the action
            only(entity(body, action), ACTION_FIELDS[action], action)
        client = self.client_for(request)
        if action == "os-extend":
            in_use = self.version(request).at_least("3.42")
            await client.extend_volume(volume_id, _new_size(args), in_use=in_use)
        elif action == "os-reset_status":
            await client.reset_volume_state(volume_id, _reset_status(entity(body, action)))
        elif action == "os-set_bootable":
            await client.modify_volume(volume_id, bootable=entity(body, action).get("bootable"))
        elif action == "os-update_readonly_flag":
            await client.modify_volume(volume_id, readonly=entity(body, action).get("readonly"))
        elif action == "revert" and self.version(request).at_least("3.40"):
            await self._revert(client, volume_id, entity(body, action))
        elif action == "os-retype":
            await _retype(client, volume_id, entity(body, action))
        elif action == "os-migrate_volume":
            self._admin(request, "volume_extension:volume_admin_actions:migrate_volume")
            await _migrate(client, volume_id, entity(body, action))
        elif action == "os-force_delete":
            self._admin(request, "volume_extension:volume_admin_actions:force_delete")
            await client.delete_volume(volume_id)
        elif action == "os-force_detach":
            self._admin(request, "volume_extension:volume_admin_actions:force_detach")
            await self._force_detach(client, volume_id, entity(body, action))
        elif action in LEGACY_ATTACH_ACTIONS:
            connection = await _legacy_attach_action(client, volume_id, body, action)
            if connection is not None:  # os-initialize_connection's answer (200)
                return json_response(connection)
            return web.Response(status=202)
        elif action in IMAGE_METADATA_ACTIONS:
            shown = await _image_metadata_action(client, volume_id, body, action)
            return web.Response(status=200) if shown is None else json_response(shown)
        elif action == "os-unmanage":
            self._admin(request, "volume_extension:volume_unmanage")
            _no_arguments(body, "os-unmanage")
            await client.unmanage_volume(volume_id)
        else:
            raise bad_request(f"There is no such action: {action}")
        return web.Response(status=202 if action in ("os-extend", "os-reset_status", "revert",
                                                     "os-retype", "os-force_delete",
                                                     "os-migrate_volume",
                                                     "os-force_detach", "os-unmanage")
                            else 200)

    async def _force_detach(self, client: Client, volume_id: str, args: dict[str, Any]) -> None:
        """Cinder's ``os-force_detach``: the attachment named (or, none named, every one
        of the volume's) is deleted, its export closed, or, if its node cannot be reached,
        closed by the gateway's sweep once it can; the connector is not needed."""
        only(args, {"attachment_id", "connector"}, "os-force_detach")
        wanted = args.get("attachment_id")
        if wanted is not None and not isinstance(wanted, str):
            raise bad_request("Invalid input for field/attribute attachment_id: a string or "
                              "null is required")
        attached = [a.id for a in await client.list_attachments(volume_id=volume_id,
                                                                all_projects=True)]
        if wanted is not None and wanted not in attached:
            raise bad_request(f"Error force detaching volume - VolumeAttachmentNotFound: "
                              f"volume {volume_id} has no attachment {wanted}")
        for attachment_id in [wanted] if wanted is not None else attached:
            await client.force_delete_attachment(attachment_id)

    async def _revert(self, client: Client, volume_id: str, args: dict[str, Any]) -> None:
        """3.40: revert the volume to its latest snapshot. As Cinder's, a status that
        forbids it now (the volume's or the snapshot's) is 409, a wrong snapshot 400."""
        snapshot_id = args.get("snapshot_id")
        if not isinstance(snapshot_id, str):
            raise bad_request("Invalid input for field/attribute snapshot_id: 'snapshot_id' "
                              "is a required property of type 'string'")
        try:
            await client.revert_volume(volume_id, snapshot_id)
        except InvalidState as exc:
            raise HttpFault(409, exc.message) from exc

    async def _delete_snapshots(self, request: web.Request, volume_id: str) -> None:
        """``cascade``: the volume's snapshots are deleted first, and waited for."""
        client = self.client_for(request)
        await client.show_volume(volume_id)  # 404 for a volume the caller cannot see
        for snap in await client.list_snapshots(volume_id=volume_id):
            if snap.status != "deleting":
                await client.delete_snapshot(snap.id)
            with contextlib.suppress(NotFound):  # gone already
                await client.wait_for_snapshot_status(snap.id, "deleted")

    # ---- manage (an admin's): what a backend holds becomes a volume ----------
    async def volume_manage(self, request: web.Request) -> web.Response:
        """Cinder's ``POST /os-volume-manage``: ``host`` a pool, backend or node, ``ref``
        ``{"source-name": NAME}`` (or NAME), the rest as a create's; 202 and the new
        volume, ``creating`` until its node has adopted the data."""
        self._admin(request, "volume_extension:volume_manage")
        body = await read_json(request)
        only(body, {"volume"})
        vol = entity(body, "volume")
        only(vol, MANAGE_FIELDS | ({"cluster"} if self.version(request).at_least("3.16")
                                   else set()), "volume")
        volume = await self.client_for(request).submit_manage(VolumeManage(
            _host_asked(vol), _source_name(vol.get("ref")), vol.get("name"),
            vol.get("description"), vol.get("volume_type") or None,
            vol.get("availability_zone") or None,
            {} if vol.get("metadata") is None else vol["metadata"],
            boolean_word(vol.get("bootable") or False, "bootable")))  # openstacksdk sends null
        return json_response({"volume": await self._detail(request, volume, fresh=True)}, 202)

    async def snapshot_manage(self, request: web.Request) -> web.Response:
        """Cinder's ``POST /os-snapshot-manage``: ``volume_id`` the volume, ``ref``
        ``{"source-name": NAME}`` (or NAME) on its node; 202 and the new snapshot,
        ``creating`` until its node has adopted the data."""
        self._admin(request, "snapshot_extension:snapshot_manage")
        body = await read_json(request)
        only(body, {"snapshot"})
        snap = entity(body, "snapshot")
        only(snap, {"volume_id", "ref", "name", "description", "metadata"}, "snapshot")
        volume_id = snap.get("volume_id")
        if not isinstance(volume_id, str):
            raise bad_request("Invalid input for field/attribute volume_id: 'volume_id' is a "
                              "required property of type 'string'")
        if "ref" not in snap:
            raise bad_request("Invalid input for field/attribute snapshot: 'ref' is a "
                              "required property")
        snapshot = await self.client_for(request).submit_snapshot_manage(SnapshotManage(
            volume_id, _source_name(snap["ref"]), snap.get("name"), snap.get("description"),
            {} if snap.get("metadata") is None else snap["metadata"]))
        return json_response({"snapshot": views.snapshot(snapshot)}, 202)

    async def manageable_list(self, request: web.Request) -> web.Response:
        """3.8: what a backend (``host``) holds that could be managed as volumes (or, on
        the snapshots' paths, as snapshots), by reference (ascending: the order the
        node lists names in), a page by ``limit`` and ``marker`` (a reference's
        source-name); ``/detail`` says why one is not safe."""
        snapshots = "snapshot" in request.path
        what = "snapshots" if snapshots else "volumes"
        self._need(request, "3.8", f"manageable {what} listings")
        self._admin(request, "snapshot_extension:list_manageable" if snapshots
                    else "volume_extension:list_manageable")
        q = request.query
        host = _host_asked(q)
        if "offset" in q:
            raise bad_request("offset is not supported here: page with marker and limit")
        sort = q.get("sort") or q.get("sort_key")
        if sort not in (None, "reference", "reference:asc") or \
                q.get("sort_dir", "asc") != "asc":
            raise bad_request(f"Invalid sort: manageable {what} are listed by reference, "
                              "ascending, only")
        found = await self.client_for(request).list_manageable(
            host, limit=page_limit(q), marker=q.get("marker"), snapshots=snapshots)
        detail = request.path.endswith("/detail")
        return json_response({f"manageable-{what}": [
            views.manageable(m, detail, snapshots) for m in found]})

    # ---- metadata of a volume or a snapshot ----------------------------------
    async def _metadata(self, request: web.Request, kind: str) -> dict[str, str]:
        client, item = self.client_for(request), request.match_info["id"]
        found = (await client.show_snapshot(item) if kind == "snapshot"
                 else await client.show_volume(item))
        return dict(found.metadata)

    async def _change_metadata(self, request: web.Request, kind: str,
                               **change: Any) -> dict[str, str]:
        client, item = self.client_for(request), request.match_info["id"]
        changed = (await client.modify_snapshot(item, **change) if kind == "snapshot"
                   else await client.modify_volume(item, **change))
        return dict(changed.metadata)

    async def metadata_show(self, request: web.Request, kind: str = "volume") -> web.Response:
        metadata = await self._metadata(request, kind)
        key = request.match_info.get("key")
        if key is None:
            return json_response({"metadata": metadata})
        if key not in metadata:
            raise not_found(f"Metadata item was not found for key {key!r}.")
        return json_response({"meta": {key: metadata[key]}})

    async def metadata_set(self, request: web.Request, kind: str = "volume") -> web.Response:
        """POST merges, PUT replaces all; PUT .../metadata/{key} sets one key."""
        body = await read_json(request)
        key = request.match_info.get("key")
        if key is not None:
            meta = entity(body, "meta")
            if list(meta) != [key]:
                raise bad_request("Request body and URI mismatch")
            change: dict[str, Any] = {"metadata": meta}
        else:
            change = {"metadata": entity(body, "metadata"),
                      "replace_metadata": request.method == "PUT"}
        metadata = await self._change_metadata(request, kind, **change)
        if key is not None:
            return json_response({"meta": {key: metadata.get(key)}})
        return json_response({"metadata": metadata})

    async def metadata_delete(self, request: web.Request, kind: str = "volume") -> web.Response:
        """A missing key is 404, from the gateway, which checks it with the change."""
        await self._change_metadata(request, kind, delete_metadata=[request.match_info["key"]])
        return web.Response(status=200)

    # ---- snapshots ----------------------------------------------------------
    async def snapshot_create(self, request: web.Request) -> web.Response:
        snap = entity(await read_json(request), "snapshot")
        only(snap, {"name", "display_name", "description", "display_description", "volume_id",
                    "force", "metadata"}, "snapshot")
        volume_id = snap.get("volume_id")
        if not isinstance(volume_id, str):
            raise bad_request("Invalid input for field/attribute volume_id: "
                              "'volume_id' is a required property")
        name = snap.get("name", snap.get("display_name"))
        description = snap.get("description", snap.get("display_description"))
        snapshot = await self.client_for(request).create_snapshot(
            volume_id, name=name.strip() if isinstance(name, str) else name,
            description=description.strip() if isinstance(description, str) else description,
            force=boolean_word(snap.get("force", False), "force"),
            metadata=snap.get("metadata") or {})
        view = views.snapshot(snapshot)
        return json_response({"snapshot": view}, 202)

    async def snapshot_show(self, request: web.Request) -> web.Response:
        snap = await self.client_for(request).show_snapshot(request.match_info["id"])
        return json_response({"snapshot": views.snapshot(snap)})

    async def snapshot_list(self, request: web.Request) -> web.Response:
        q = request.query
        check_query(q, "snapshot", PAGING | ORDER | WHOSE | {"with_count"})
        with_count = self._with_count(request)
        everyone, project = projects_asked(q, self.caller(request))
        sort = sort_asked(q)
        newest = by_creation(sort, q.get("sort_dir")) == "desc"  # the gateway's listing order
        other = None if newest else other_sort(sort, q.get("sort_dir"))
        client = self.client_for(request)
        filters: dict[str, Any] = dict(
            all_projects=everyone, volume_id=q.get("volume_id"), status=q.get("status"),
            name=q.get("name") or q.get("display_name"), project_id=project,
            metadata=_dict_param(q, "metadata") if "metadata" in q else None,
            availability_zone=q.get("availability_zone"))
        if not consumes_quota(q):  # after every other parameter was checked
            return json_response({"snapshots": [], **({"count": 0} if with_count else {})})
        counted = {"count": await client.count_snapshots(**filters)} if with_count else {}
        snaps = await client.list_snapshots(
            limit=page_limit(q), marker=q.get("marker"), sort=other, **filters)
        return json_response({"snapshots": [views.snapshot(s) for s in snaps], **counted,
                              **next_links(request, "snapshots", snaps)})

    async def snapshot_update(self, request: web.Request) -> web.Response:
        snap = entity(await read_json(request), "snapshot")
        only(snap, {"name", "description", "display_name", "display_description", "metadata"})
        change: dict[str, Any] = {}
        for field in ("name", "description"):
            if field in snap or f"display_{field}" in snap:
                change[field] = snap.get(field, snap.get(f"display_{field}"))
        if "metadata" in snap:
            change.update(metadata=snap["metadata"], replace_metadata=True)
        updated = await self.client_for(request).modify_snapshot(request.match_info["id"],
                                                                 **change)
        return json_response({"snapshot": views.snapshot(updated)})

    async def snapshot_action(self, request: web.Request) -> web.Response:
        """``os-reset_status``, ``os-force_delete`` and ``os-unmanage`` (an admin's), as
        ``cinder snapshot-reset-state``, ``openstack volume snapshot delete --force`` and
        ``--remote`` send them."""
        body = await read_json(request)
        if list(body) == ["os-force_delete"]:
            self._admin(request, "volume_extension:snapshot_admin_actions:force_delete")
            await self.client_for(request).delete_snapshot(request.match_info["id"])
            return web.Response(status=202)
        if list(body) == ["os-unmanage"]:  # Cinder's snapshot unmanage (an admin's)
            self._admin(request, "snapshot_extension:snapshot_unmanage")
            _no_arguments(body, "os-unmanage")
            await self.client_for(request).unmanage_snapshot(request.match_info["id"])
            return web.Response(status=202)
        if list(body) != ["os-reset_status"]:
            raise bad_request(f"There is no such action: {', '.join(body) or 'none'}")
        status = _reset_status(entity(body, "os-reset_status"), volume=False)
        await self.client_for(request).reset_snapshot_state(request.match_info["id"], status)
        return web.Response(status=202)

    async def snapshot_delete(self, request: web.Request) -> web.Response:
        await self.client_for(request).delete_snapshot(request.match_info["id"])
        return web.Response(status=202)

    # ---- backups (Cinder's backups extension) ------------------------------------------
    async def backup_create(self, request: web.Request) -> web.Response:
        """202 and the new backup's summary (``creating``: its node makes it). The body
        is Cinder's schema (``backup_schemas``); the gateway judges the volume (or its
        snapshot), the zone (the volume's own: its node makes the backup) and quota
        (``backups``, ``backup_gigabytes``: 413)."""
        create = backup_schemas.create_request(await read_json(request),
                                               self.version(request))
        made = await self.client_for(request).create_backup(
            create.volume_id, name=create.name, description=create.description,
            force=create.force, incremental=create.incremental,
            snapshot_id=create.snapshot_id, container=create.container,
            metadata=create.metadata, availability_zone=create.availability_zone)
        return json_response({"backup": views.backup_summary(made, self.base(request))}, 202)

    async def backup_show(self, request: web.Request) -> web.Response:
        backup = await self.client_for(request).show_backup(request.match_info["id"])
        return json_response({"backup": self._backup_detail(request, backup)})

    def _backup_detail(self, request: web.Request, backup: Backup) -> dict[str, Any]:
        return views.backup_detail(backup, self.base(request), self.caller(request).admin,
                                   self._pair(request))

    async def backup_list(self, request: web.Request) -> web.Response:
        """Cinder's backup listing, summary or detail: filtered by name, status and volume
        (and an admin's project), a page by ``limit`` and ``marker``, newest first only
        (the gateway's order: another sort is refused, not passed over), and from 3.45
        counted with ``with_count``."""
        q = request.query
        check_query(q, "backup", PAGING | ORDER | WHOSE | {"with_count"})
        with_count = self._with_count(request)
        newest_first_only(q, "backups")
        everyone, project = projects_asked(q, self.caller(request))
        filters: dict[str, Any] = dict(
            all_projects=everyone, project_id=project, status=q.get("status"),
            volume_id=q.get("volume_id"), name=q.get("name") or q.get("display_name"))
        client = self.client_for(request)
        counted = {"count": await client.count_backups(**filters)} if with_count else {}
        found = await client.list_backups(limit=page_limit(q), marker=q.get("marker"),
                                          **filters)
        if request.path.endswith("/detail"):
            shown = [self._backup_detail(request, b) for b in found]
        else:
            shown = [views.backup_summary(b, self.base(request)) for b in found]
        return json_response({"backups": shown, **counted,
                              **next_links(request, "backups", found)})

    async def backup_update(self, request: web.Request) -> web.Response:
        """3.9: name and description, from 3.43 metadata (replaced); the summary back."""
        self._need(request, "3.9", "backup updates")
        change = backup_schemas.update_request(request.match_info["id"],
                                               await read_json(request), self.version(request))
        updated = await self.client_for(request).update_backup(
            change.backup_id, name=change.name, description=change.description,
            metadata=change.metadata, clear=change.cleared)
        return json_response({"backup": views.backup_summary(updated, self.base(request))})

    async def backup_delete(self, request: web.Request) -> web.Response:
        """202: the backup is ``deleting`` until its node has removed it (one available
        or in error; another is the gateway's 400, as Cinder's InvalidBackup)."""
        await self.client_for(request).delete_backup(request.match_info["id"])
        return web.Response(status=202)

    async def backup_restore(self, request: web.Request) -> web.Response:
        """202 and the volume written: ``volume_id``'s (available, at least the backup's
        size: its data replaced), or a new volume's, the backup's size, named ``name``
        (quota: 413, as Cinder's restore)."""
        restore = backup_schemas.restore_request(request.match_info["id"],
                                                 await read_json(request))
        info = await self.client_for(request).restore_backup(
            restore.backup_id, volume_id=restore.volume_id, name=restore.name)
        return json_response({"restore": views.backup_restore(info)}, 202)

    async def backup_action(self, request: web.Request) -> web.Response:
        """An admin's ``os-reset_status`` (to available or error) and ``os-force_delete``
        (``cinder backup-reset-state``, ``cinder backup-delete --force``). The force
        delete is the delete: Cinder's skips the status check, and the statuses it would
        add are of work a node is doing (creating, restoring, deleting), which the
        reconciler ends; they are refused with the delete's words."""
        body, backup_id = await read_json(request), request.match_info["id"]
        client = self.client_for(request)
        if list(body) == ["os-force_delete"]:
            self._admin(request, "volume_extension:backup_admin_actions:force_delete")
            await client.delete_backup(backup_id)
        elif list(body) == ["os-reset_status"]:
            self._admin(request, "volume_extension:backup_admin_actions:reset_status")
            reset = backup_schemas.reset_request(backup_id, body["os-reset_status"])
            await client.reset_backup_state(reset.backup_id, reset.status)
        else:
            raise bad_request(f"There is no such action: {', '.join(body) or 'none'}")
        return web.Response(status=202)

    async def backup_export(self, request: web.Request) -> web.Response:
        """An admin's ``export_record``: the record another cluster imports the backup
        by (``cinder backup-export``, ``openstack volume backup record export``)."""
        self._admin(request, "backup:export-import")
        record = await self.client_for(request).export_backup_record(
            request.match_info["id"])
        return json_response({"backup-record": {"backup_service": record.backup_service,
                                                "backup_url": record.backup_url}})

    async def backup_import(self, request: web.Request) -> web.Response:
        """An admin's ``import_record``: 201 and the summary of the backup, available once
        its node found it in the repository it reads (``cinder backup-import``)."""
        self._admin(request, "backup:backup-import")
        record = backup_schemas.import_request(await read_json(request))
        made = await self.client_for(request).import_backup_record(record.backup_service,
                                                                   record.backup_url)
        return json_response({"backup": views.backup_summary(made, self.base(request))}, 201)

    # ---- volume types ---------------------------------------------------------
    async def type_list(self, request: web.Request) -> web.Response:
        """The types the caller may use; an admin's ``is_public`` (true, false, or
        none: every type, the default) picks public or private ones, as Cinder's; from
        3.52 ``extra_specs`` (a dict, as ``cinder type-list --filters`` sends it) keeps
        those that have each of its specs. A project sees, and so filters by, only the
        specs users are shown (the gateway's ``type_as_seen``): by another, none match,
        as Cinder answers."""
        q = request.query
        check_query(q, "volume_type", ())
        if "extra_specs" in q and not self.version(request).at_least("3.52"):
            raise bad_request("Invalid filters extra_specs are found in query options: "
                              "volume types are filtered by extra_specs from microversion 3.52")
        wanted = extra_specs_filter(q["extra_specs"]) if "extra_specs" in q else {}
        types = await self.client_for(request).list_types()
        admin = self.caller(request).admin
        public = _is_public(q.get("is_public")) if admin else None
        return json_response({"volume_types": [
            views.volume_type(t, admin) for t in types
            if (public is None or t.is_public is public)
            and all(t.extra_specs.get(k) == v for k, v in wanted.items())]})

    async def type_show(self, request: web.Request) -> web.Response:
        wanted, admin = request.match_info["id"], self.caller(request).admin
        if wanted == "default":  # the caller's project's (its own, or the cluster's)
            shown = await self.client_for(request).default_type()
            return json_response({"volume_type": views.volume_type(shown, admin)})
        types = await self.client_for(request).list_types()
        return json_response({"volume_type": views.volume_type(_named_type(types, wanted),
                                                               admin)})

    async def type_create(self, request: web.Request) -> web.Response:
        vt = entity(await read_json(request), "volume_type")
        # Cinder's schema (an ``is_public`` here had been dropped: a type asked to be
        # private was made public)
        only(vt, {"name", "description", "extra_specs", ACCESS_IS_PUBLIC}, "volume_type")
        name = vt.get("name")
        if not isinstance(name, str):
            raise bad_request("Invalid input for field/attribute name: a string is required")
        created = await self.client_for(request).create_type(
            name, extra_specs=vt.get("extra_specs") or {}, description=vt.get("description"),
            is_public=boolean_word(vt.get(ACCESS_IS_PUBLIC, True), "is_public"))
        return json_response({"volume_type": views.volume_type(created)})

    async def type_update(self, request: web.Request) -> web.Response:
        """Cinder's type update: name, description, is_public (at least one).
        ``os-volume-type-access:is_public``, the create's name for it, is taken too:
        openstacksdk (``openstack volume type set --private``) sends that."""
        vt = entity(await read_json(request), "volume_type")
        only(vt, {"name", "description", "is_public", ACCESS_IS_PUBLIC})
        name, description = vt.get("name"), vt.get("description")
        public = vt.get("is_public", vt.get(ACCESS_IS_PUBLIC))
        for field, value in (("name", name), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise bad_request(f"Invalid input for field/attribute {field}. "
                                  f"Value: {value}. {value!r} is not of type 'string', 'null'")
        if name is not None and not name.strip():
            raise bad_request("Volume type name can not be empty.")
        if name is None and description is None and public is None:
            raise bad_request("Specify volume type name, description, is_public or a "
                              "combination thereof.")
        updated = await self.client_for(request).update_type(
            request.match_info["id"], name=name, description=description,
            is_public=None if public is None else boolean_word(public, "is_public"))
        return json_response({"volume_type": views.volume_type(updated)})

    async def type_delete(self, request: web.Request) -> web.Response:
        await self.client_for(request).delete_type(request.match_info["id"])
        return web.Response(status=202)

    async def type_access(self, request: web.Request) -> web.Response:
        type_id = request.match_info["id"]
        projects = await self.client_for(request).type_access(type_id)
        return json_response({"volume_type_access": [
            {"volume_type_id": type_id, "project_id": p} for p in projects]})

    async def type_action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        for action, allowed in (("addProjectAccess", True), ("removeProjectAccess", False)):
            if action in body:
                only(body, {action})
                only(entity(body, action), {"project"}, action)
                project = entity(body, action).get("project")
                if not isinstance(project, str):
                    raise bad_request(f"Invalid input for field/attribute project: "
                                      f"{action} needs a project")
                await self.client_for(request).set_type_access(
                    request.match_info["id"], project, allowed)
                return web.Response(status=202)
        raise bad_request(f"There is no such action: {', '.join(body)}")

    async def type_extra_specs(self, request: web.Request) -> web.Response:
        """A type's extra specs, or (``.../extra_specs/{key}``) one of them."""
        types = await self.client_for(request).list_types()
        wanted, key = request.match_info["id"], request.match_info.get("key")
        for t in types:
            if wanted in (t.id, t.name):
                if key is None:
                    return json_response({"extra_specs": dict(t.extra_specs)})
                if key not in t.extra_specs:
                    raise not_found(f"Volume Type {t.id} has no extra specs with key {key}.")
                return json_response({key: t.extra_specs[key]})
        raise not_found(f"Volume type {wanted} could not be found.")

    async def type_extra_specs_set(self, request: web.Request) -> web.Response:
        """POST ``{"extra_specs": {...}}`` merges; PUT ``.../extra_specs/{key}`` with
        ``{key: value}`` sets one. Cinder answers with the body it was given."""
        body = await read_json(request)
        key = request.match_info.get("key")
        if key is None:
            specs = entity(body, "extra_specs")
            only(body, {"extra_specs"})
        else:
            if len(body) != 1:
                raise bad_request("Invalid input: exactly one extra spec is expected")
            if key not in body:
                raise bad_request("Request body and URI mismatch")
            specs = body
        await self.client_for(request).update_type(request.match_info["id"], extra_specs=specs)
        return json_response(body)

    async def type_extra_spec_delete(self, request: web.Request) -> web.Response:
        await self.client_for(request).update_type(request.match_info["id"],
                                                   delete_specs=[request.match_info["key"]])
        return web.Response(status=202)

    # ---- group types (3.11) ---------------------------------------------------------
    async def group_type_list(self, request: web.Request) -> web.Response:
        """The group types the caller may use; an admin's ``is_public`` (true, false,
        or none: every one) picks public or private ones, as Cinder's; ``name`` keeps
        the one of that name (cinderclient finds a type by name so, with
        ``all_tenants``, which changes nothing here)."""
        self._need(request, GROUP_TYPE_VERSION, "group types")
        q = request.query
        check_query(q, None, {"is_public", "name", "all_tenants"} | PAGING | ORDER)
        admin = self.caller(request).admin
        public = _is_public(q.get("is_public")) if admin else None
        types = await self.client_for(request).list_group_types()
        return json_response({"group_types": [
            group_schemas.group_type_view(t, admin) for t in types
            if (public is None or t.is_public is public)
            and ("name" not in q or t.name == q["name"])]})

    async def group_type_show(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_TYPE_VERSION, "group types")
        shown = await self.client_for(request).show_group_type(request.match_info["id"])
        return json_response({"group_type": group_schemas.group_type_view(
            shown, self.caller(request).admin)})

    async def group_type_create(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_TYPE_VERSION, "group types")
        self._admin(request, "group:group_types:create")
        body = group_schemas.group_type_create(await read_json(request))
        made = await self.client_for(request).create_group_type(
            body.name, description=body.description, is_public=body.is_public,
            group_specs=body.group_specs)
        return json_response({"group_type": group_schemas.group_type_view(made, True)},
                             status=202)

    async def group_type_update(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_TYPE_VERSION, "group types")
        self._admin(request, "group:group_types:update")
        body = group_schemas.group_type_update(request.match_info["id"],
                                               await read_json(request))
        updated = await self.client_for(request).update_group_type(
            body.type_id, name=body.name, description=body.description,
            is_public=body.is_public)
        return json_response({"group_type": group_schemas.group_type_view(updated, True)})

    async def group_type_delete(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_TYPE_VERSION, "group types")
        self._admin(request, "group:group_types:delete")
        await self.client_for(request).delete_group_type(request.match_info["id"])
        return web.Response(status=202)

    async def group_specs_show(self, request: web.Request) -> web.Response:
        """A group type's specs, or (``.../group_specs/{key}``) one of them: an admin's."""
        self._need(request, GROUP_TYPE_VERSION, "group specs")
        self._admin(request, "group:group_types_specs:get_all")
        shown = await self.client_for(request).show_group_type(request.match_info["id"])
        key = request.match_info.get("key")
        if key is None:
            return json_response({"group_specs": dict(shown.group_specs)})
        if key not in shown.group_specs:
            raise not_found(f"Group Type {shown.id} has no specs with key {key}.")
        return json_response({key: shown.group_specs[key]})

    async def group_specs_set(self, request: web.Request) -> web.Response:
        """POST merges ``{"group_specs": {...}}`` (Cinder's 202), PUT sets one key (200);
        Cinder answers with the body it was given."""
        self._need(request, GROUP_TYPE_VERSION, "group specs")
        self._admin(request, "group:group_types_specs:create")
        body = await read_json(request)
        key = request.match_info.get("key")
        specs = group_schemas.group_specs_set(key, body)
        await self.client_for(request).update_group_type(request.match_info["id"],
                                                         group_specs=specs)
        return json_response(body, status=202 if key is None else 200)

    async def group_spec_delete(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_TYPE_VERSION, "group specs")
        self._admin(request, "group:group_types_specs:delete")
        await self.client_for(request).update_group_type(
            request.match_info["id"], delete_specs=[request.match_info["key"]])
        return web.Response(status=202)

    # ---- groups (3.13) ---------------------------------------------------------------
    async def group_list(self, request: web.Request) -> web.Response:
        """``groups`` (each its id and name) and ``groups/detail``: the caller's, an
        admin's ``all_tenants`` every project's; by ``name`` and ``status``; a page
        with ``limit`` and ``marker`` (a group id), newest first."""
        self._need(request, GROUP_VERSION, "groups")
        q = request.query
        check_query(q, "group", {"list_volume"} | PAGING | ORDER | WHOSE)
        everyone, project = projects_asked(q, self.caller(request))
        groups = await self.client_for(request).list_groups(everyone, project)
        groups = marker_page([g for g in groups if ("name" not in q or g.name == q["name"])
                              and ("status" not in q or g.status.value == q["status"])], q)
        if not request.path.endswith("/detail"):
            return json_response({"groups": [{"id": g.id, "name": g.name} for g in groups]})
        version, admin = self.version(request), self.caller(request).admin
        listed = boolean_word(q.get("list_volume", False), "list_volume")
        return json_response({"groups": [
            group_schemas.group_view(g, version, admin, listed) for g in groups]})

    async def group_show(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_VERSION, "groups")
        check_query(request.query, None, {"list_volume"})
        group = await self.client_for(request).show_group(request.match_info["id"])
        listed = boolean_word(request.query.get("list_volume", False), "list_volume")
        return json_response({"group": group_schemas.group_view(
            group, self.version(request), self.caller(request).admin, listed)})

    async def group_create(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_VERSION, "groups")
        body = group_schemas.group_create(await read_json(request))
        made = await self.client_for(request).create_group(
            body.group_type, body.volume_types, name=body.name, description=body.description,
            availability_zone=body.availability_zone)
        return json_response({"group": {"id": made.id, "name": made.name}}, status=202)

    async def group_update(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_VERSION, "groups")
        body = group_schemas.group_update(request.match_info["id"], await read_json(request))
        await self.client_for(request).update_group(
            body.group_id, name=body.name, description=body.description,
            add_volumes=body.add_volumes, remove_volumes=body.remove_volumes)
        return web.Response(status=202)

    async def groups_action(self, request: web.Request) -> web.Response:
        """``POST /groups/action``: 3.14's ``create-from-src``."""
        self._need(request, GROUP_SNAPSHOT_VERSION, "create-from-src")
        body = group_schemas.group_create_from_src(await read_json(request))
        made = await self.client_for(request).create_group_from_src(
            group_snapshot_id=body.group_snapshot_id, source_group_id=body.source_group_id,
            name=body.name, description=body.description)
        return json_response({"group": {"id": made.id, "name": made.name}}, status=202)

    async def group_action(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_VERSION, "groups")
        action = group_schemas.group_action(request.match_info["id"], await read_json(request))
        client = self.client_for(request)
        if isinstance(action, GroupDelete):
            await client.delete_group(action.group_id, action.delete_volumes)
        else:
            self._need(request, "3.20", "a group's reset_status")
            self._admin(request, "group:reset_status")
            await client.reset_group_status(action.group_id, action.status)
        return web.Response(status=202)

    # ---- group snapshots (3.14) ------------------------------------------------------
    async def group_snapshot_list(self, request: web.Request) -> web.Response:
        """``group_snapshots`` (id, name, group type) and ``group_snapshots/detail``: the
        caller's (an admin's ``all_tenants``: every project's), by ``group_id``, ``name``
        and ``status``; a page with ``limit`` and ``marker``, newest first."""
        self._need(request, GROUP_SNAPSHOT_VERSION, "group snapshots")
        q = request.query
        check_query(q, "group_snapshot", PAGING | ORDER | WHOSE)
        everyone, project = projects_asked(q, self.caller(request))
        found = await self.client_for(request).list_group_snapshots(
            all_projects=everyone, project_id=project, group_id=q.get("group_id"))
        found = marker_page([g for g in found if ("name" not in q or g.name == q["name"])
                             and ("status" not in q or g.status == q["status"])], q)
        if not request.path.endswith("/detail"):
            return json_response({"group_snapshots": [
                group_schemas.group_snapshot_summary(g) for g in found]})
        version, admin = self.version(request), self.caller(request).admin
        return json_response({"group_snapshots": [
            group_schemas.group_snapshot_view(g, version, admin) for g in found]})

    async def group_snapshot_show(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_SNAPSHOT_VERSION, "group snapshots")
        found = await self.client_for(request).show_group_snapshot(request.match_info["id"])
        return json_response({"group_snapshot": group_schemas.group_snapshot_view(
            found, self.version(request), self.caller(request).admin)})

    async def group_snapshot_create(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_SNAPSHOT_VERSION, "group snapshots")
        body = group_schemas.group_snapshot_create(await read_json(request))
        made = await self.client_for(request).create_group_snapshot(
            body.group_id, name=body.name, description=body.description)
        return json_response({"group_snapshot": group_schemas.group_snapshot_summary(made)},
                             status=202)

    async def group_snapshot_delete(self, request: web.Request) -> web.Response:
        self._need(request, GROUP_SNAPSHOT_VERSION, "group snapshots")
        await self.client_for(request).delete_group_snapshot(request.match_info["id"])
        return web.Response(status=202)

    async def group_snapshot_action(self, request: web.Request) -> web.Response:
        """3.19's ``reset_status`` (an admin's): each of its snapshots' status."""
        self._need(request, "3.19", "a group snapshot's reset_status")
        action = group_schemas.group_snapshot_action(request.match_info["id"],
                                                     await read_json(request))
        self._admin(request, "group_snapshot:reset_status")
        await self.client_for(request).reset_group_snapshot_status(action.group_snapshot_id,
                                                                   action.status)
        return web.Response(status=202)

    # ---- projects' default types (3.62, an admin's) --------------------------------
    async def default_type_set(self, request: web.Request) -> web.Response:
        self._need(request, "3.62", "default-types")
        self._admin(request, "volume_extension:default_set_or_update")
        body = await read_json(request)
        only(body, {"default_type"})
        wanted = entity(body, "default_type")
        only(wanted, {"volume_type"}, "default_type")
        name = wanted.get("volume_type")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Invalid input for field/attribute volume_type: a name or an "
                              "id is required")
        client = self.client_for(request)
        try:
            made = await client.set_default_type(request.match_info["project"], name.strip())
        except NotFound as exc:  # Cinder's: a type it cannot find is a 400 here
            raise bad_request(exc.message) from exc
        return json_response({"default_type": views.default_type(made)})

    async def default_type_show(self, request: web.Request) -> web.Response:
        self._need(request, "3.62", "default-types")
        self._admin(request, "volume_extension:default_get")
        project = request.match_info.get("project")
        client = self.client_for(request)
        if project is None:
            found = await client.list_default_types()
            return json_response({"default_types": [views.default_type(d) for d in found]})
        shown = await client.show_default_type(project)
        return json_response({"default_type": views.default_type(shown)})

    async def default_type_unset(self, request: web.Request) -> web.Response:
        self._need(request, "3.62", "default-types")
        self._admin(request, "volume_extension:default_unset")
        await self.client_for(request).unset_default_type(request.match_info["project"])
        return web.Response(status=204)

    # ---- QoS specs (an admin's) ---------------------------------------------------
    async def qos_list(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:get_all")
        q = request.query
        found = await self.client_for(request).list_qos(page_limit(q), q.get("marker"))
        return json_response({"qos_specs": [views.qos_specs(s) for s in found],
                              **next_links(request, "qos_specs", found)})

    async def qos_show(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:get")
        found = await self.client_for(request).show_qos(request.match_info["id"])
        return self._qos_view(request, found)

    def _qos_view(self, request: web.Request, found: QosSpecs) -> web.Response:
        return json_response({"qos_specs": views.qos_specs(found),
                              "links": views.links(self.base(request), "qos-specs", found.id)})

    async def qos_create(self, request: web.Request) -> web.Response:
        """Cinder's create: ``name`` and ``consumer`` beside the specs, in one object."""
        self._admin(request, "volume_extension:qos_specs_manage:create")
        specs = dict(entity(await read_json(request), "qos_specs"))
        name, consumer = specs.pop("name", None), specs.pop("consumer", None)
        if not isinstance(name, str):
            raise bad_request("Invalid input for field/attribute name: a string is required")
        created = await self.client_for(request).create_qos(name, consumer, specs)
        return self._qos_view(request, created)

    async def qos_update(self, request: web.Request) -> web.Response:
        """Cinder's set: merge the specs (``consumer`` among them changes it); the
        answer is the body."""
        self._admin(request, "volume_extension:qos_specs_manage:update")
        body = await read_json(request)
        only(body, {"qos_specs"})
        specs = dict(entity(body, "qos_specs"))
        consumer = specs.pop("consumer", None)
        await self.client_for(request).update_qos(request.match_info["id"], consumer=consumer,
                                                  specs=specs)
        return json_response(body)

    async def qos_delete_keys(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:delete")
        body = await read_json(request)
        only(body, {"keys"})
        keys = body.get("keys")
        if (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
                or len(set(keys)) != len(keys)):
            raise bad_request("Invalid input for field/attribute keys: a list of different "
                              "strings is required")
        await self.client_for(request).update_qos(request.match_info["id"], delete_keys=keys)
        return web.Response(status=202)

    async def qos_delete(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:delete")
        await self.client_for(request).delete_qos(request.match_info["id"],
                                                  force=flag(request.query.get("force")))
        return web.Response(status=202)

    async def qos_associations(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:get_all")
        types = await self.client_for(request).qos_associations(request.match_info["id"])
        return json_response({"qos_associations": [views.qos_association(t) for t in types]})

    async def qos_associate(self, request: web.Request) -> web.Response:
        """``.../associate?vol_type_id=T`` and ``.../disassociate?vol_type_id=T`` (GETs,
        as Cinder's)."""
        self._admin(request, "volume_extension:qos_specs_manage:update")
        type_id = request.query.get("vol_type_id")
        if not type_id:
            raise bad_request("Volume Type id must not be None.")
        client, qos_id = self.client_for(request), request.match_info["id"]
        if request.path.endswith("/associate"):
            await client.associate_qos(qos_id, type_id)
        else:
            await client.disassociate_qos(qos_id, type_id)
        return web.Response(status=202)

    async def qos_disassociate_all(self, request: web.Request) -> web.Response:
        self._admin(request, "volume_extension:qos_specs_manage:update")
        await self.client_for(request).disassociate_qos(request.match_info["id"])
        return web.Response(status=202)

    # ---- quotas, limits, zones, pools, messages ----------------------------------
    async def quota_show(self, request: web.Request) -> web.Response:
        usage = flag(request.query.get("usage"))
        quota = await self.client_for(request).show_quota(request.match_info["project"])
        return json_response({"quota_set": views.quota_set(quota, usage)})

    async def quota_delete(self, request: web.Request) -> web.Response:
        """Cinder's quota delete: the project's limits are the defaults again."""
        await self.client_for(request).delete_quota(request.match_info["project"])
        return web.Response(status=200)

    async def quota_defaults(self, request: web.Request) -> web.Response:
        quota = await self.client_for(request).show_quota(request.match_info["project"],
                                                          defaults=True)
        return json_response({"quota_set": views.quota_set(quota, False)})

    async def quota_update(self, request: web.Request) -> web.Response:
        """Cinder's quota update. ``tenant_id`` and ``id`` are taken and ignored, as
        Cinder's ``NON_QUOTA_KEYS`` are: ``cinder quota-update`` sends ``tenant_id``."""
        limits = _quota_limits(entity(await read_json(request), "quota_set"))
        quota = await self.client_for(request).set_quota(request.match_info["project"],
                                                         **limits)
        view = views.quota_set(quota, False)
        view.pop("id")
        return json_response({"quota_set": view})

    async def quota_class_show(self, request: web.Request) -> web.Response:
        """Cinder's quota-class show (admin). cinderblock keeps one quota class,
        ``default``, whose limits are every project's without its own; a class never set
        shows them, as Cinder's does."""
        self._admin(request, "volume_extension:quota_classes")
        quota = await self.client_for(request).show_quota(None, defaults=True)
        view = views.quota_set(quota, False)
        view["id"] = request.match_info["class"]
        return json_response({"quota_class_set": view})

    async def quota_class_update(self, request: web.Request) -> web.Response:
        """Cinder's quota-class update (admin), of ``default``: the limits of every
        project without its own. Another class would hold no project here: refused."""
        self._admin(request, "volume_extension:quota_classes:update")
        name = request.match_info["class"]
        if name != "default":
            raise bad_request(f"Quota class {name!r} holds no project: cinderblock keeps "
                              "one quota class, 'default', every project's")
        limits = _quota_limits(entity(await read_json(request), "quota_class_set"))
        quota = await self.client_for(request).set_default_quotas(**limits)
        view = views.quota_set(quota, False)
        view.pop("id")
        return json_response({"quota_class_set": view})

    async def limits(self, request: web.Request) -> web.Response:
        quota = await self.client_for(request).show_quota(None)
        return json_response({"limits": {"rate": [], "absolute": views.absolute_limits(quota)}})

    async def zones(self, request: web.Request) -> web.Response:
        names = await self.client_for(request).list_zones()
        return json_response({"availabilityZoneInfo": [
            {"zoneName": n, "zoneState": {"available": True}} for n in names]})

    async def pools(self, request: web.Request) -> web.Response:
        self._admin(request, "scheduler_extension:scheduler_stats:get_pools")
        q = request.query
        check_query(q, "pool", {"detail"})
        client = self.client_for(request)
        backends = await client.list_backends()
        if "volume_type" in q:  # the pools that could hold a volume of it
            specs = _named_type(await client.list_types(), q["volume_type"]).extra_specs
            backends = [b for b in backends if satisfies(b.capabilities, specs)]
        detail = flag(q.get("detail"))
        pools = [views.pool(b, detail) for b in backends]
        return json_response({"pools": [p for p in pools
                                        if "name" not in q or p["name"] == q["name"]]})

    async def resource_filters(self, request: web.Request) -> web.Response:
        """3.33: which filters each listing honours (``cinder list-filters``); a query
        naming any other is refused (``filters.py``)."""
        self._need(request, "3.33", "resource filters")
        check_query(request.query, None, {"resource"})
        return json_response({"resource_filters": resource_filters(
            request.query.get("resource"))})

    async def clusters(self, request: web.Request) -> web.Response:
        """3.7's clusters (admin; ``cinder cluster-list``, ``openstack block storage
        cluster list``): Cinder groups the volume services an operator configures with
        one ``cluster`` name for active-active; every backend here is its own service,
        so there are none. The list is empty, its filters checked as Cinder checks
        them; a cluster named is not found, and so cannot be enabled or disabled."""
        self._need(request, "3.7", "clusters")
        name = request.match_info.get("name")
        self._admin(request, "clusters:update" if request.method == "PUT" else
                    "clusters:get" if name is not None else "clusters:get_all")
        if request.method == "PUT":
            body = await read_json(request)
            name = body.get("name")
            if not isinstance(name, str):
                raise bad_request("Invalid input for field/attribute name: 'name' is a "
                                  "required property of type 'string'")
        if name is not None:
            raise not_found(f"Cluster {name} could not be found (no backend here is in a "
                            "cluster: each is a service of its own, GET /os-services).")
        allowed = CLUSTER_FILTERS | (CLUSTER_REPLICATION_FILTERS
                                     if self.version(request).at_least("3.26") else set())
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise bad_request(f"Invalid input received: Invalid filter keys: "
                              f"{', '.join(unknown)}")
        for key in ("disabled", "is_up"):
            if key in request.query:
                boolean_word(request.query[key], key)
        return json_response({"clusters": []})

    async def work_cleanup(self, request: web.Request) -> web.Response:
        """Cinder's ``POST /workers/cleanup`` (3.24, an admin's; ``cinder work-cleanup``):
        the services the filters match (``workers.matching``) and are up, or the
        scheduler, are ``cleaning``: the gateway applies now, to the records their nodes
        hold (the scheduler's: those on no node yet), what the reconciler would apply at
        any age. The rest are ``unavailable``. A ``resource_id`` without a place is looked
        for first: its record's node (or the scheduler) is then the only service."""
        self._need(request, "3.24", "workers cleanup")
        self._admin(request, "workers:cleanup")
        req = workers.parse_request(await read_body(request))  # no body: no filter
        client = self.client_for(request)
        kind = req.resource_type.lower() if req.resource_type else None
        if req.resource_id is not None and not req.located:  # where is it?
            found = await client.work_cleanup(resource_id=req.resource_id, resource_type=kind)
            owner = found.resource_node
            req = replace(req, host=owner or workers.SCHEDULER_HOST,
                          binary="cinder-volume" if owner else "cinder-scheduler")
        try:
            backends, scheduler_up = await client.list_backends(), True
        except (Timeout, Unavailable):
            backends, scheduler_up = [], False
        matched = workers.matching(workers.services_of(backends, scheduler_up), req)
        cleaning = [s for s in matched if s.up or s.node is None]
        if cleaning:
            done = await client.work_cleanup(
                tuple(s.node for s in cleaning if s.node is not None),
                any(s.node is None for s in cleaning), req.resource_id, kind)
            log.info("work cleanup: %d looked at, %d mended (%s), nodes not answering: %s",
                     done.looked_at, len(done.mended),
                     ", ".join(f"{a.kind} {a.id} {a.action}" for a in done.mended) or "none",
                     ", ".join(done.unanswered) or "none")
        return json_response({
            "cleaning": [workers.view(s) for s in cleaning],
            "unavailable": [workers.view(s) for s in matched if s not in cleaning],
        }, status=202)

    async def extensions(self, request: web.Request) -> web.Response:
        """Cinder's ``/extensions`` (``cinder list-extensions``): the ones this front
        serves, each saying what of it; ``/extensions/{alias}`` one of them."""
        alias = request.match_info.get("alias")
        if alias is None:
            return json_response({"extensions": [views.extension(a)
                                                 for a in sorted(views.EXTENSIONS)]})
        if alias not in views.EXTENSIONS:
            raise not_found(f"Extension {alias} could not be found.")
        return json_response({"extension": views.extension(alias)})

    async def capabilities(self, request: web.Request) -> web.Response:
        """Cinder's capabilities of one backend (admin), named as ``os-services`` names
        its ``cinder-volume`` (``node-1@file``); the scheduler's ``backend.list`` holds
        what each node reported last."""
        self._admin(request, "volume_extension:capabilities")
        host = request.match_info["host"]
        backends = await self.client_for(request).list_backends()
        found = next((b for b in backends if b.backend == host), None)
        if found is None:
            raise not_found(f"Can't find service: {host}")
        return json_response(views.backend_capabilities(found, __version__))

    async def services(self, request: web.Request) -> web.Response:
        """Cinder's ``os-services`` (admin): the scheduler, each backend's
        ``cinder-volume`` and each node's ``cinder-backup`` (its node makes a volume's
        backups: ``views.backup_service``), filtered by ``host`` and ``binary``. The
        backends are the scheduler's (``backend.list``): a scheduler that does not answer
        is listed down, alone."""
        self._admin(request, "volume_extension:services:index")
        version = self._pair(request)
        try:  # the scheduler answers it: its answer is the scheduler's sign of life
            backends = await self.client_for(request).list_backends()
        except (Timeout, Unavailable):  # and without it, nobody knows the backends
            backends, answered = [], None
        else:
            answered = time.time()
        now = time.time()
        found = [views.scheduler_service(DEFAULT_ZONE, answered, version),
                 *(views.volume_service(b, now, version) for b in backends),
                 *(views.backup_service(b, now, version) for b in backends)]
        host, binary = request.query.get("host"), request.query.get("binary")
        return json_response({"services": [
            s for s in found
            if (host is None or s["host"] == host) and (binary is None or s["binary"] == binary)
        ]})

    async def service_update(self, request: web.Request) -> web.Response:
        """Cinder's ``os-services/{enable,disable,disable-log-reason}`` (admin): a
        backend's ``cinder-volume`` out of placement or back in. The scheduler is not
        disabled here (it places every volume)."""
        self._admin(request, "volume_extension:services:update")
        action = request.match_info["action"]
        if action in ("set-log", "get-log"):
            return await self._log_levels(request, action == "set-log")
        if action not in ("enable", "disable", "disable-log-reason"):
            raise not_found(f"Unknown action {action!r}: enable, disable, "
                            "disable-log-reason, set-log or get-log")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        host, binary = body.get("host"), body.get("binary") or body.get("service", "")
        if not isinstance(host, str) or not host:
            raise bad_request("Invalid input for field/attribute host: 'host' is a "
                              "required property")
        if binary != "cinder-volume":
            raise bad_request(f"Only a backend's cinder-volume is enabled or disabled here, "
                              f"not {binary!r}")
        reason = body.get("disabled_reason") if action == "disable-log-reason" else None
        if reason is not None and not isinstance(reason, str):
            raise bad_request("disabled_reason must be a string")
        state = await self.client_for(request).set_backend_enabled(
            host, action == "enable", reason)
        view: dict[str, Any] = {"host": host, "service": body.get("service", ""),
                                "binary": binary,
                                "status": "enabled" if state.enabled else "disabled",
                                "disabled": not state.enabled}
        if action == "disable-log-reason":
            view["disabled_reason"] = state.reason
        return json_response(view)

    async def _log_levels(self, request: web.Request, change: bool) -> web.Response:
        """3.32: ``set-log`` sets the loggers of ``prefix`` to ``level`` in the services
        ``binary`` and ``server`` name (``cinder-api``: this front's own process), until
        they restart; ``get-log`` shows their levels (``service_logs.py``)."""
        self._need(request, "3.32", "log levels")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        only(body, {"binary", "server", "prefix", "level"} if change
             else {"binary", "server", "prefix"})
        binary, server, prefix = body.get("binary"), body.get("server"), body.get("prefix")
        for field_name, value in (("binary", binary), ("server", server),
                                  ("prefix", prefix), ("level", body.get("level"))):
            if value is not None and not isinstance(value, str):
                raise bad_request(f"Invalid input for field/attribute {field_name}: a string "
                                  "or null is expected")
        here = binary in (None, "", "*", API_BINARY) and server in (None, "", self.name)
        prefix, level = check_prefix(prefix), str(body.get("level") or "")
        if change:
            check_level(level)
        found: list[dict[str, Any]] = []
        if binary != API_BINARY:
            client = self.client_for(request)
            asked = await (client.set_log_levels(level, binary, server, prefix) if change
                           else client.log_levels(binary, server, prefix))
            found = [{"binary": s.binary, "host": s.host, "levels": s.levels}
                     for s in asked.services]
        if here:  # this front's own loggers
            if change:
                set_levels(prefix, level)
                log.warning("rest %s: loggers of prefix %r set to %s by %s", self.name,
                            prefix, level.upper(), self.caller(request).user)
            found.insert(0, {"binary": API_BINARY, "host": self.name,
                             "levels": levels(prefix)})
        if change:
            return web.Response(status=202)
        return json_response({"log_levels": found})

    async def messages(self, request: web.Request) -> web.Response:
        self._need(request, "3.3", "messages")
        client, wanted = self.client_for(request), request.match_info.get("id")
        base = self.base(request)
        if wanted is not None:
            return json_response({"message": views.user_message(
                await client.show_message(wanted), base)})
        q = request.query
        check_query(q, "message", PAGING | ORDER | {"all_tenants"})
        everyone = self.caller(request).admin and flag(q.get("all_tenants"))
        found = await client.list_messages(
            q.get("resource_uuid"), everyone, limit=page_limit(q), marker=q.get("marker"),
            event_id=q.get("event_id"), request_id=q.get("request_id"),
            resource_type=q.get("resource_type"), message_level=q.get("message_level"),
            sort_dir=creation_order(sort_asked(q), q.get("sort_dir"), "messages"))
        return json_response({"messages": [views.user_message(m, base) for m in found],
                              **next_links(request, "messages", found)})

    async def message_delete(self, request: web.Request) -> web.Response:
        self._need(request, "3.3", "messages")
        await self.client_for(request).delete_message(request.match_info["id"])
        return web.Response(status=204)

    # ---- volume transfers (os-volume-transfer; volume-transfers from 3.55) -------------
    async def transfer_create(self, request: web.Request) -> web.Response:
        """Cinder's transfer create: 202 with the auth key, shown this once. What Cinder
        judges invalid (the volume or a snapshot not available) is 400, as there."""
        self._transfers_route(request)
        body = entity(await read_json(request), "transfer")
        # Cinder's schema: no_snapshots from 3.55 (before, a transfer asked to leave the
        # snapshots would have taken them)
        only(body, {"volume_id", "name"}
             | ({"no_snapshots"} if self.version(request).at_least("3.55") else set()),
             "transfer")
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str):
            raise bad_request("Invalid input for field/attribute volume_id: "
                              "'volume_id' is a required property")
        name = body.get("name")
        no_snapshots = boolean_word(body.get("no_snapshots", False), "no_snapshots")
        try:
            made = await self.client_for(request).create_transfer(
                volume_id, name.strip() if isinstance(name, str) else name, no_snapshots)
        except InvalidState as exc:
            raise bad_request(exc.message) from exc
        return json_response({"transfer": views.transfer(made, self.base(request),
                                                         self._pair(request))}, 202)

    async def transfer_list(self, request: web.Request) -> web.Response:
        """Cinder's order: oldest first before 3.59; from 3.59 pages (``limit``,
        ``marker``), newest first unless ``sort`` asks for ``created_at`` ascending."""
        self._transfers_route(request)
        q = request.query
        paged = self.version(request).at_least("3.59")
        check_query(q, "transfer", {"all_tenants"} | (PAGING | ORDER if paged else set()))
        everyone = self.caller(request).admin and flag(q.get("all_tenants"))
        found = await self.client_for(request).list_transfers(
            all_projects=everyone, volume_id=q.get("volume_id"), name=q.get("name"),
            limit=page_limit(q), marker=q.get("marker"),
            sort_dir=(creation_order(sort_asked(q), q.get("sort_dir"), "transfers")
                      or "desc") if paged else "asc")
        detail = request.path.endswith("/detail")
        return json_response({"transfers": [
            views.transfer(t, self.base(request), self._pair(request), detail)
            for t in found], **(next_links(request, "transfers", found) if paged else {})})

    async def transfer_show(self, request: web.Request) -> web.Response:
        self._transfers_route(request)
        found = await self.client_for(request).show_transfer(request.match_info["id"])
        return json_response({"transfer": views.transfer(found, self.base(request),
                                                         self._pair(request))})

    async def transfer_delete(self, request: web.Request) -> web.Response:
        self._transfers_route(request)
        await self.client_for(request).delete_transfer(request.match_info["id"])
        return web.Response(status=202)

    async def transfer_accept(self, request: web.Request) -> web.Response:
        """Cinder's accept: 202 with the transfer's summary; a wrong key or a volume no
        longer offered is 400, the accepting project's quota 413."""
        self._transfers_route(request)
        accept = entity(await read_json(request), "accept")
        only(accept, {"auth_key"}, "accept")
        key = accept.get("auth_key")
        if not isinstance(key, str):
            raise bad_request("Invalid input for field/attribute auth_key: 'auth_key' is a "
                              "required property")
        try:
            taken = await self.client_for(request).accept_transfer(request.match_info["id"],
                                                                   key)
        except InvalidState as exc:
            raise bad_request(exc.message) from exc
        return json_response({"transfer": views.transfer(
            taken, self.base(request), self._pair(request), detail=False)}, 202)

    def _transfers_route(self, request: web.Request) -> None:
        """``volume-transfers`` is 3.55's name; ``os-volume-transfer`` serves every version."""
        if "/volume-transfers" in request.path:
            self._need(request, "3.55", "volume-transfers")

    # ---- attachments (3.27) ---------------------------------------------------
    async def attachment_create(self, request: web.Request) -> web.Response:
        self._need(request, "3.27", "attachments")
        att = entity(await read_json(request), "attachment")
        # Cinder's schema: mode from 3.54 (before, an attachment asked to be read-only
        # would have been made read-write)
        only(att, {"instance_uuid", "connector", "volume_uuid"}
             | ({"mode"} if self.version(request).at_least("3.54") else set()), "attachment")
        volume_id = att.get("volume_uuid")
        if not isinstance(volume_id, str):
            raise bad_request("Invalid input for field/attribute volume_uuid: "
                              "'volume_uuid' is a required property")
        client = self.client_for(request)
        mode = att.get("mode") if self.version(request).at_least("3.54") else None
        created = await client.create_attachment(volume_id, att.get("instance_uuid"), mode)
        connector = att.get("connector")
        if connector:
            try:
                created = await client.update_attachment(created.id, connector)
            except CinderblockError:
                await client.delete_attachment(created.id)  # as Cinder: all or nothing
                raise
        return json_response({"attachment": views.attachment(created)})

    async def attachment_update(self, request: web.Request) -> web.Response:
        self._need(request, "3.27", "attachments")
        att = entity(await read_json(request), "attachment")
        only(att, {"connector"}, "attachment")
        if not isinstance(att.get("connector"), dict) or not att["connector"]:
            raise bad_request("Invalid input for field/attribute connector: 'connector' is a "
                              "required property, an object with at least one property")
        updated = await self.client_for(request).update_attachment(
            request.match_info["id"], att["connector"])
        return json_response({"attachment": views.attachment(updated)})

    async def attachment_action(self, request: web.Request) -> web.Response:
        self._need(request, "3.44", "attachment actions")
        body = await read_json(request)
        if "os-complete" not in body:
            raise bad_request(f"There is no such action: {', '.join(body)}")
        await self.client_for(request).complete_attachment(request.match_info["id"])
        return web.Response(status=204)

    async def attachment_show(self, request: web.Request) -> web.Response:
        self._need(request, "3.27", "attachments")
        att = await self.client_for(request).show_attachment(request.match_info["id"])
        return json_response({"attachment": views.attachment(att)})

    async def attachment_list(self, request: web.Request) -> web.Response:
        self._need(request, "3.27", "attachments")
        admin = self.caller(request).admin
        q = request.query
        check_query(q, "attachment", PAGING | ORDER | {"all_tenants"})
        limit, marker = page_limit(q), q.get("marker")
        everyone, client = admin and flag(q.get("all_tenants")), self.client_for(request)
        status, instance = q.get("status") or q.get("attach_status"), q.get("instance_id")
        sort_dir = creation_order(sort_asked(q), q.get("sort_dir"), "attachments")
        if "volume_id" in q:  # a volume's attachments, few: paged here
            atts = _after(await client.list_attachments(
                q["volume_id"], everyone, status=status, instance_id=instance,
                sort_dir=sort_dir), marker)
            atts = atts[:limit]
        else:
            atts = await client.list_attachments(None, everyone, limit=limit, marker=marker,
                                                 status=status, instance_id=instance,
                                                 sort_dir=sort_dir)
        out = [views.attachment(a) for a in atts]
        return json_response({"attachments": out, **next_links(request, "attachments", atts)})

    async def attachment_delete(self, request: web.Request) -> web.Response:
        self._need(request, "3.27", "attachments")
        att = await self.client_for(request).delete_attachment(request.match_info["id"])
        return json_response({"attachments": [views.attachment(att)]})

    def _times(self, request: web.Request, name: str) -> dict[str, float]:
        """A volume listing's ``created_at`` or ``updated_at`` comparisons, from 3.60 on
        (Cinder's before it drops them unread; here they are refused, not passed over)."""
        if not self.version(request).at_least("3.60"):
            raise bad_request(f"Invalid filters {name} are found in query options: a "
                              "listing is filtered by time from microversion 3.60 on")
        return time_comparisons(request.query[name], name)

    def _group_filter(self, request: web.Request) -> str | None:
        """A volume listing's ``group_id``, from 3.10 on (Cinder's before it drops it
        unread; here it is refused, not passed over)."""
        group_id = request.query.get("group_id")
        if group_id is not None and not self.version(request).at_least("3.10"):
            raise bad_request("Invalid filters group_id are found in query options: a "
                              "listing is filtered by group from microversion 3.10 on")
        return group_id

    def _with_count(self, request: web.Request) -> bool:
        """A listing's ``with_count``: a boolean's word, taken from 3.45 on."""
        raw = request.query.get("with_count")
        with_count = raw is not None and boolean_word(raw, "with_count")
        if with_count and not self.version(request).at_least("3.45"):
            raise bad_request("Invalid filters with_count are found in query options: "
                              "a listing is counted from microversion 3.45 on")
        return with_count

    def _need(self, request: web.Request, version: str, what: str) -> None:
        if not self.version(request).at_least(version):
            raise not_found(f"The resource could not be found ({what} need {version}).")


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


L = TypeVar("L", bound=_Identified)  # a volume, an attachment, a group ..., as listed
MANAGE_FIELDS = frozenset({  # Cinder's volume_manage_create schema (cluster: 3.16)
    "description", "availability_zone", "bootable", "volume_type", "name", "host", "ref",
    "metadata"})
CREATE_FIELDS = frozenset({
    "name", "description", "display_name", "display_description", "volume_type", "metadata",
    "snapshot_id", "source_volid", "consistencygroup_id", "size", "availability_zone",
    "multiattach", "image_id", "imageRef", "group_id", "backup_id",
})


HINTS = "OS-SCH-HNT:scheduler_hints"
HONOURED_HINTS = ("same_host", "different_host")


def scheduler_hints(hints: Any) -> dict[str, Any]:
    """A create's ``OS-SCH-HNT:scheduler_hints``: Cinder's affinity hints, as they came
    (the gateway checks their volume ids). Any other hint is refused naming it: Cinder
    passes over a hint no enabled filter reads, and a volume placed without regard to
    one cannot be told from one placed by it."""
    if hints is None:
        return {}
    if not isinstance(hints, dict):
        raise bad_request(f"Invalid input for field/attribute {HINTS}: a mapping is expected")
    other = sorted(set(hints) - set(HONOURED_HINTS))
    if other:
        raise bad_request(f"Scheduler hint(s) {', '.join(other)} are not honoured here: "
                          f"only {' and '.join(HONOURED_HINTS)} (volume ids) are")
    return {name: hints[name] for name in HONOURED_HINTS if hints.get(name) is not None}


def create_body(vol: dict[str, Any], hints: dict[str, Any]) -> VolumeCreate:
    """Cinder's create fields and affinity hints, as they came, in the gateway's message
    (which checks them)."""
    image = vol.get("imageRef", vol.get("image_id"))
    return VolumeCreate(
        size=vol.get("size"), name=vol.get("name"), description=vol.get("description"),
        volume_type=vol.get("volume_type"), availability_zone=vol.get("availability_zone"),
        metadata=vol.get("metadata", {}), snapshot_id=vol.get("snapshot_id"),
        source_volid=vol.get("source_volid"), display_name=vol.get("display_name"),
        display_description=vol.get("display_description"),
        multiattach=vol.get("multiattach"), image_ref=image, backup_id=vol.get("backup_id"),
        group_id=vol.get("group_id"), consistencygroup_id=vol.get("consistencygroup_id"),
        same_host=hints.get("same_host"), different_host=hints.get("different_host"),
    )


def _after(listed: list[L], marker: str | None) -> list[L]:
    """What comes after ``marker`` (an id) in this order; all without one."""
    if marker is None:
        return listed
    ids = [item.id for item in listed]
    if marker not in ids:
        raise bad_request(f"marker [{marker}] not found")
    return listed[ids.index(marker) + 1:]


def marker_page(items: Sequence[L], q: Mapping[str, str]) -> list[L]:
    """A page of a listing the gateway answers whole (groups, group snapshots): the
    items after ``marker`` (one of theirs, else Cinder's 400), at most ``limit``."""
    marker = q.get("marker")
    start = 0
    if marker is not None:
        ids = [item.id for item in items]
        if marker not in ids:
            raise bad_request(f"Marker {marker} could not be found.")
        start = ids.index(marker) + 1
    return list(items[start:start + page_limit(q)])


def page_limit(q: Any) -> int:
    """A listing's page: ``limit`` items, and never more than ``MAX_LIMIT`` (Cinder's
    ``osapi_max_limit``), also without one: a cloud's volumes are not one response."""
    limit = _int_param(q, "limit")
    return MAX_LIMIT if limit is None else min(limit, MAX_LIMIT)


def next_links(request: web.Request, collection: str, page: Sequence[_Identified]
               ) -> dict[str, list[dict[str, str]]]:
    """Cinder's ``<collection>_links``: a page as long as its limit may have more after
    it, so it links to the next (this request's query, its marker the page's last id);
    a shorter one is the last, and has none."""
    if not page or len(page) < page_limit(request.query):
        return {}
    href = request.url.update_query(marker=page[-1].id)
    return {f"{collection}_links": [{"rel": "next", "href": str(href)}]}


def _int_param(q: Any, name: str) -> int | None:
    raw = q.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_request(f"{name} param must be an integer")
    return int(raw)


def _dict_param(q: Any, name: str) -> dict[str, Any]:
    """A filter's mapping: JSON, or a Python literal as Cinder reads filters
    (``ast.literal_eval``: literals only, nothing run), which is what
    python-openstackclient sends for ``volume list --property k=v`` (``{'k': 'v'}``).
    The query line is bounded by the HTTP parser (8 KiB), and so is the parse."""
    raw = q[name]
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise bad_request(f"Invalid filter {name}: {raw[:80]!r} is neither JSON nor a "
                              "literal mapping") from None
    if not isinstance(value, dict):
        raise bad_request(f"Invalid filter {name}: a mapping is expected")
    return value


SORT_KEYS = {"created_at", "updated_at", "name", "size", "status", "id"}
# Cinder's column names, which python-cinderclient sends for ``--sort name``
SORT_ALIASES = {"display_name": "name"}


def sort_asked(q: Any) -> str | None:
    """The sort a listing's query asks for: ``sort``, or the older ``sort_key``; a
    ``sort_dir`` alone orders by Cinder's default key, ``created_at``."""
    return q.get("sort") or q.get("sort_key") or ("created_at" if q.get("sort_dir") else None)


def _first_key(sort: str | None, sort_dir: str | None) -> tuple[str, str]:
    """The first key of ``sort`` (later keys aside) and its direction: its own, else
    ``sort_dir``'s, else "desc"."""
    key, _, direction = (sort or "").split(",")[0].partition(":")
    return SORT_ALIASES.get(key, key), direction or sort_dir or "desc"


def by_creation(sort: str | None, sort_dir: str | None) -> str | None:
    """"desc" or "asc" when ``sort`` (and ``sort_dir``) ask for an order the gateway
    pages itself: none (newest first, Cinder's default), or ``created_at`` first either
    way (``_first_key``); ties go by id the same way, as Cinder's. None for any other
    sort."""
    if not sort:
        return "desc"
    key, direction = _first_key(sort, sort_dir)
    return direction if key == "created_at" and direction in ("asc", "desc") else None


def creation_order(sort: str | None, sort_dir: str | None, listed: str) -> str | None:
    """The direction (``by_creation``) of a listing ordered by creation only
    (attachments, messages, transfers): None when no sort is asked (the listing's own order); a
    400 naming what is taken for a sort by any other key."""
    if sort is None:
        return None
    order = by_creation(sort, sort_dir)
    if order is None:
        raise bad_request(f"Invalid sort {sort!r}: {listed} are sorted by created_at "
                          "(ties by id), asc or desc")
    return order


def newest_first_only(q: Any, listed: str) -> None:
    """A listing the gateway pages newest first only (backups): no sort, or
    ``created_at`` descending first (later keys aside, as ``by_creation``); any other is
    a 400 saying so, not an answer in an order other than the one asked for."""
    sort = sort_asked(q)
    if sort is not None and by_creation(sort, q.get("sort_dir")) != "desc":
        raise bad_request(f"Invalid sort {sort!r}: {listed} are listed newest first only "
                          "(created_at:desc, ties by id)")


def other_sort(sort: str | None, sort_dir: str | None) -> str:
    """The gateway's ``sort`` ("size:asc") for an order ``by_creation`` does not page:
    the first key given, in its direction (``_first_key``)."""
    key, direction = _first_key(sort, sort_dir)
    if key not in SORT_KEYS or direction not in ("asc", "desc"):
        raise bad_request(f"Invalid sort {sort!r}: keys are {sorted(SORT_KEYS)}, "
                          "directions asc and desc")
    return f"{key}:{direction}"


def _new_size(args: Any) -> int:
    raw = args.get("new_size") if isinstance(args, dict) else None
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if type(raw) is not int or raw < 1:
        raise bad_request(f"Invalid input for field/attribute new_size. Value: {raw}. "
                          "New size for extend must be an integer greater than 0.")
    return raw


def consumes_quota(q: Any) -> bool:
    """A listing's ``consumes_quota`` filter (Cinder's, shown from 3.65): every volume and
    snapshot here counts against its project's quota (none is a migration's or a
    backup's temporary one), so "false" lists none. True without the filter."""
    return "consumes_quota" not in q or boolean_word(q["consumes_quota"], "consumes_quota")


def _size_filter(raw: str) -> int:
    """A listing's ``size`` filter: a whole number of GiB."""
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Invalid filter size={raw}: a size is a whole number of GiB"
                          ) from None


def _quota_limits(body: dict[str, Any]) -> dict[str, int]:
    """The limits of a quota set (or class set) update. ``tenant_id``, ``id`` and
    ``class_name`` are taken and ignored, as Cinder's ``NON_QUOTA_KEYS``: ``cinder
    quota-update`` sends ``tenant_id``."""
    ignored = {"tenant_id", "id", "class_name"}
    limits = {k for k in body if k in views.QUOTA_RESOURCES or split_typed(k) is not None}
    unknown = set(body) - limits - ignored
    if unknown:
        raise bad_request(f"Bad key(s) in quota set: {', '.join(sorted(unknown))}")
    return {k: _quota_limit(k, v) for k, v in body.items() if k in limits}


def _quota_limit(name: str, value: Any) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int or value < -1:
        raise bad_request(f"Quota limit {value!r} for {name} must be an integer "
                          "greater than or equal to -1")
    return value


def snapshot_metadata(handler: Callable[[web.Request, str], Awaitable[web.Response]]
                      ) -> Handler:
    """A metadata handler serving a snapshot's metadata instead of a volume's."""
    async def serve(request: web.Request) -> web.Response:
        return await handler(request, "snapshot")
    return serve


def _host_asked(params: Mapping[str, Any]) -> str:
    """The ``host`` a manage names (a cluster is not: none here), as Cinder's
    ``get_cluster_host`` asks for one."""
    if params.get("cluster"):
        raise bad_request("There are no clusters here: name the host (a pool of "
                          "GET /scheduler-stats/get_pools)")
    host = params.get("host")
    if not isinstance(host, str) or not host:
        raise bad_request("Host field is missing.")
    return host


def projects_asked(q: Mapping[str, str], caller: Caller) -> tuple[bool, str | None]:
    """(every project's, the one named) a listing asks for: an admin's ``all_tenants``
    (or ``all_projects``), ``project_id`` naming one of them. Otherwise ``project_id``
    may name only the caller's own project: the listing would answer with the caller's
    own as if they were the other's. (``all_tenants`` of a member is passed over, as
    Cinder does: cinderclient sends it always.)"""
    everyone = caller.admin and flag(q.get("all_tenants") or q.get("all_projects"))
    wanted = q.get("project_id") or None
    if everyone:
        return True, wanted
    if wanted is not None and wanted != caller.project:
        raise bad_request("Invalid filters project_id are found in query options: only an "
                          "admin lists another project's, with all_tenants")
    return False, None


def _named_type(types: Iterable[VolumeType], wanted: str) -> VolumeType:
    """The type of `wanted` id or name among those the caller may see (else 404)."""
    for t in types:
        if wanted in (t.id, t.name):
            return t
    raise not_found(f"Volume type {wanted} could not be found.")


def extra_specs_filter(raw: str) -> dict[str, str]:
    """The ``extra_specs`` filter of volume types: a dict, in Python's notation as
    cinderclient sends it (``{'multiattach': '<is> True'}``) or JSON; its values as the
    specs hold them, strings."""
    try:
        wanted = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        wanted = None
    if isinstance(wanted, dict) and all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
            for k, v in wanted.items()):
        return {k: str(v) for k, v in wanted.items()}
    raise bad_request(f"Invalid extra_specs filter {raw!r}: a dict of extra specs, e.g. "
                      "{'multiattach': '<is> True'}")


def _is_public(raw: str | None) -> bool | None:
    """An admin's ``is_public`` filter of types, as Cinder parses it: none (or absent)
    for every type, else a boolean."""
    word = (raw or "none").strip().lower()
    if word == "none":
        return None
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise bad_request(f"Invalid is_public filter [{raw}]")


async def _image_metadata_action(client: Client, volume_id: str, body: dict[str, Any],
                                 action: str) -> dict[str, Any] | None:
    """Cinder's os-vol-image-meta actions: ``os-set_image_metadata`` merges items in
    and answers the whole; ``os-unset_image_metadata`` drops one key (a 404 if the
    volume has no such key) and answers nothing; ``os-show_image_metadata`` answers the
    whole. The gateway checks the items (keys as metadata's, string values)."""
    if action == "os-show_image_metadata":
        return {"metadata": (await client.show_volume(volume_id)).image_metadata}
    if action == "os-set_image_metadata":
        items = entity(body, action).get("metadata")
        if not isinstance(items, dict):
            raise bad_request("Invalid input for field/attribute metadata: 'metadata' is a "
                              "required property of type 'object'")
        changed = await client.modify_volume(volume_id, image_metadata=items)
        return {"metadata": changed.image_metadata}
    key = entity(body, action).get("key")
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise bad_request("Invalid input for field/attribute key: 'key' is a required "
                          "string of 1 to 255 characters")
    await client.modify_volume(volume_id, delete_image_metadata=(key,))
    return None


async def _legacy_attach_action(client: Client, volume_id: str, body: dict[str, Any],
                                action: str) -> dict[str, Any] | None:
    """Cinder's attach actions from before attachments (its schemas checked here, the
    rest by the gateway: ``actors/gateway/legacy_attach.py``). ``os-initialize_connection``
    answers ``connection_info``, with the connector's ``enforce_multipath`` as Cinder's
    API and manager add it; the others answer nothing (202)."""
    no_arguments = {"os-reserve": client.reserve_volume,
                    "os-unreserve": client.unreserve_volume,
                    "os-begin_detaching": client.begin_detaching,
                    "os-roll_detaching": client.roll_detaching}
    if action in no_arguments:
        _no_arguments(body, action)
        await no_arguments[action](volume_id)
        return None
    if action == "os-detach":  # null, or an object with an attachment id (or null)
        args = {} if body[action] is None else entity(body, action)
        only(args, {"attachment_id"}, action)
        await client.detach_volume(volume_id, _optional_text(args, "attachment_id", action))
        return None
    args = entity(body, action)
    if action == "os-attach":
        only(args, {"instance_uuid", "mountpoint", "host_name", "mode"}, action)
        mountpoint = _optional_text(args, "mountpoint", action)
        if mountpoint is None:
            raise bad_request(f"Invalid input for field/attribute {action}: 'mountpoint' is "
                              "a required property")
        mode = _optional_text(args, "mode", action)
        await client.attach_volume(volume_id, mountpoint,
                                   _optional_text(args, "instance_uuid", action),
                                   _optional_text(args, "host_name", action),
                                   "rw" if mode is None else mode)
        return None
    only(args, {"connector"}, action)
    if "connector" not in args:
        raise bad_request(f"Invalid input for field/attribute {action}: 'connector' is a "
                          "required property")
    connector = args["connector"]
    if action == "os-terminate_connection":
        await client.terminate_connection(volume_id, connector)
        return None
    attachment = await client.initialize_connection(volume_id, connector)
    multipath = connector.get("enforce_multipath") is True  # a map: the gateway checked it
    info = dict(attachment.connection_info)
    info["data"] = {**info.get("data", {}), "enforce_multipath": multipath}
    return {"connection_info": {**info, "enforce_multipath": multipath}}


def _optional_text(args: Mapping[str, Any], key: str, action: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"Invalid input for field/attribute {key}: {action}'s {key} must "
                          f"be a string, got {type(value).__name__}")
    return value


def _no_arguments(body: Mapping[str, Any], action: str) -> None:
    """An action that takes nothing: null or {} (openstacksdk sends null)."""
    if body[action] not in (None, {}):
        raise bad_request(f"Invalid input for field/attribute {action}: it takes no "
                          "arguments (null or {})")


def _source_name(ref: Any) -> str:
    """A manage's ``ref``: ``{"source-name": NAME}``, or NAME."""
    if isinstance(ref, str):
        return ref
    if not isinstance(ref, dict):
        raise bad_request("Invalid input for field/attribute ref: 'ref' is a required "
                          "property of type 'object' or 'string'")
    only(ref, {"source-name"}, "ref")
    name = ref.get("source-name")
    if not isinstance(name, str):
        raise bad_request("Manage existing volume failed due to invalid backend reference: "
                          "the backend names its data by source-name (a string)")
    return name


def _reset_status(args: dict[str, Any], volume: bool = True) -> str:
    """The status an ``os-reset_status`` asks for. Cinder's body may also reset a
    volume's ``attach_status`` and ``migration_status``: here a volume's attachments
    decide the first, so it is refused with what to do instead (rather than accepted
    and ignored), and a migration's end sets the second, so it may only say ``none``."""
    only(args, {"status", "attach_status", "migration_status"} if volume else {"status"},
         "os-reset_status")
    if "attach_status" in args:
        raise bad_request("attach_status is not reset here: a volume's attachments decide "
                          "whether it is attached; delete its attachments (DELETE "
                          "/attachments/{id}, admins may delete any) instead")
    if args.get("migration_status") not in (None, "none"):
        raise bad_request(f"Invalid migration_status {args['migration_status']!r}: a "
                          "migration's end sets it (os-migrate_volume), so it may only be "
                          "reset to 'none'")
    status = args.get("status")
    if not isinstance(status, str):
        raise bad_request("Invalid input for field/attribute os-reset_status: 'status' is a "
                          "required property of type 'string'")
    return status


async def _retype(client: Client, volume_id: str, args: dict[str, Any]) -> None:
    """Cinder's ``os-retype`` schema: ``new_type`` a string, ``migration_policy``
    ``never``, ``on-demand`` or null, nothing else."""
    only(args, {"new_type", "migration_policy"}, "os-retype")
    new_type, policy = args.get("new_type"), args.get("migration_policy")
    if not isinstance(new_type, str):
        raise bad_request("Invalid input for field/attribute new_type: 'new_type' is a "
                          "required property of type 'string'")
    if policy is not None and policy not in ("never", "on-demand"):
        raise bad_request(f"Invalid input for field/attribute migration_policy. Value: "
                          f"{policy}. {policy!r} is not one of ['on-demand', 'never']")
    await client.retype_volume(volume_id, new_type, policy or "never")


async def _migrate(client: Client, volume_id: str, args: dict[str, Any]) -> None:
    """Cinder's ``os-migrate_volume`` schema: ``host`` a string of at most 255
    characters, ``force_host_copy`` and ``lock_volume`` booleans; ``cluster`` (3.16) is
    refused with why (a backend here is one host's, in no cluster)."""
    only(args, {"host", "force_host_copy", "lock_volume", "cluster"}, "os-migrate_volume")
    if args.get("cluster") is not None:
        raise bad_request("Invalid input for field/attribute cluster: backends here belong "
                          "to no cluster; name the destination by its host")
    host = args.get("host")
    if not isinstance(host, str) or not 0 < len(host) <= 255:
        raise bad_request("Invalid input for field/attribute host: 'host' is a required "
                          "property: a string of 1 to 255 characters")
    await client.migrate_volume(
        volume_id, host, force_host_copy=boolean_word(args.get("force_host_copy", False),
                                                   "force_host_copy"),
        lock_volume=boolean_word(args.get("lock_volume", False), "lock_volume"))


def build_app(front: Front) -> web.Application:
    app = web.Application(middlewares=[front.middleware], client_max_size=front.max_body)
    r = app.router
    r.add_get("/", front.versions)
    r.add_get("/v3", front.v3_root)
    r.add_get("/v3/", front.v3_root)
    for prefix in ("/v3", "/v3/{project_id}"):
        _routes(r, prefix, front)
    return app


def _routes(r: web.UrlDispatcher, p: str, f: Front) -> None:
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/volumes", f.volume_create),
        ("GET", "/volumes", f.volume_list),
        ("GET", "/volumes/detail", f.volume_list),
        ("GET", "/volumes/summary", f.volume_summary),
        ("GET", "/volumes/{id}", f.volume_show),
        ("PUT", "/volumes/{id}", f.volume_update),
        ("DELETE", "/volumes/{id}", f.volume_delete),
        ("POST", "/volumes/{id}/action", f.volume_action),
        ("GET", "/volumes/{id}/metadata", f.metadata_show),
        ("POST", "/volumes/{id}/metadata", f.metadata_set),
        ("PUT", "/volumes/{id}/metadata", f.metadata_set),
        ("GET", "/volumes/{id}/metadata/{key}", f.metadata_show),
        ("PUT", "/volumes/{id}/metadata/{key}", f.metadata_set),
        ("DELETE", "/volumes/{id}/metadata/{key}", f.metadata_delete),
        ("POST", "/snapshots", f.snapshot_create),
        ("GET", "/snapshots", f.snapshot_list),
        ("GET", "/snapshots/detail", f.snapshot_list),
        ("GET", "/snapshots/{id}", f.snapshot_show),
        ("PUT", "/snapshots/{id}", f.snapshot_update),
        ("DELETE", "/snapshots/{id}", f.snapshot_delete),
        ("POST", "/snapshots/{id}/action", f.snapshot_action),
        ("GET", "/snapshots/{id}/metadata", snapshot_metadata(f.metadata_show)),
        ("POST", "/snapshots/{id}/metadata", snapshot_metadata(f.metadata_set)),
        ("PUT", "/snapshots/{id}/metadata", snapshot_metadata(f.metadata_set)),
        ("GET", "/snapshots/{id}/metadata/{key}", snapshot_metadata(f.metadata_show)),
        ("PUT", "/snapshots/{id}/metadata/{key}", snapshot_metadata(f.metadata_set)),
        ("DELETE", "/snapshots/{id}/metadata/{key}", snapshot_metadata(f.metadata_delete)),
        ("POST", "/backups", f.backup_create),
        ("GET", "/backups", f.backup_list),
        ("GET", "/backups/detail", f.backup_list),
        ("POST", "/backups/import_record", f.backup_import),
        ("GET", "/backups/{id}", f.backup_show),
        ("PUT", "/backups/{id}", f.backup_update),
        ("DELETE", "/backups/{id}", f.backup_delete),
        ("POST", "/backups/{id}/restore", f.backup_restore),
        ("POST", "/backups/{id}/action", f.backup_action),
        ("GET", "/backups/{id}/export_record", f.backup_export),
        ("GET", "/types", f.type_list),
        ("POST", "/types", f.type_create),
        ("GET", "/types/{id}", f.type_show),
        ("PUT", "/types/{id}", f.type_update),
        ("DELETE", "/types/{id}", f.type_delete),
        ("GET", "/types/{id}/extra_specs", f.type_extra_specs),
        ("POST", "/types/{id}/extra_specs", f.type_extra_specs_set),
        ("GET", "/types/{id}/extra_specs/{key}", f.type_extra_specs),
        ("PUT", "/types/{id}/extra_specs/{key}", f.type_extra_specs_set),
        ("DELETE", "/types/{id}/extra_specs/{key}", f.type_extra_spec_delete),
        ("GET", "/types/{id}/os-volume-type-access", f.type_access),
        ("POST", "/types/{id}/action", f.type_action),
        ("GET", "/group_types", f.group_type_list),
        ("POST", "/group_types", f.group_type_create),
        ("GET", "/group_types/{id}", f.group_type_show),
        ("PUT", "/group_types/{id}", f.group_type_update),
        ("DELETE", "/group_types/{id}", f.group_type_delete),
        ("GET", "/group_types/{id}/group_specs", f.group_specs_show),
        ("POST", "/group_types/{id}/group_specs", f.group_specs_set),
        ("GET", "/group_types/{id}/group_specs/{key}", f.group_specs_show),
        ("PUT", "/group_types/{id}/group_specs/{key}", f.group_specs_set),
        ("DELETE", "/group_types/{id}/group_specs/{key}", f.group_spec_delete),
        ("POST", "/groups", f.group_create),
        ("GET", "/groups", f.group_list),
        ("GET", "/groups/detail", f.group_list),
        ("POST", "/groups/action", f.groups_action),
        ("GET", "/groups/{id}", f.group_show),
        ("PUT", "/groups/{id}", f.group_update),
        ("POST", "/groups/{id}/action", f.group_action),
        ("POST", "/group_snapshots", f.group_snapshot_create),
        ("GET", "/group_snapshots", f.group_snapshot_list),
        ("GET", "/group_snapshots/detail", f.group_snapshot_list),
        ("GET", "/group_snapshots/{id}", f.group_snapshot_show),
        ("DELETE", "/group_snapshots/{id}", f.group_snapshot_delete),
        ("POST", "/group_snapshots/{id}/action", f.group_snapshot_action),
        ("GET", "/os-quota-sets/{project}", f.quota_show),
        ("PUT", "/os-quota-sets/{project}", f.quota_update),
        ("DELETE", "/os-quota-sets/{project}", f.quota_delete),
        ("GET", "/os-quota-sets/{project}/defaults", f.quota_defaults),
        ("GET", "/os-quota-class-sets/{class}", f.quota_class_show),
        ("PUT", "/os-quota-class-sets/{class}", f.quota_class_update),
        ("GET", "/limits", f.limits),
        ("GET", "/os-availability-zone", f.zones),
        ("GET", "/scheduler-stats/get_pools", f.pools),
        ("GET", "/resource_filters", f.resource_filters),
        ("POST", "/workers/cleanup", f.work_cleanup),
        ("GET", "/clusters", f.clusters),
        ("GET", "/clusters/detail", f.clusters),
        ("GET", "/clusters/{name}", f.clusters),
        ("PUT", "/clusters/enable", f.clusters),
        ("PUT", "/clusters/disable", f.clusters),
        ("GET", "/os-services", f.services),
        ("PUT", "/os-services/{action}", f.service_update),
        ("GET", "/capabilities/{host}", f.capabilities),
        ("GET", "/extensions", f.extensions),
        ("GET", "/extensions/{alias}", f.extensions),
        ("GET", "/messages", f.messages),
        ("GET", "/messages/{id}", f.messages),
        ("DELETE", "/messages/{id}", f.message_delete),
        *((method, f"/{name}{tail}", handler) for name in ("os-volume-transfer",
                                                          "volume-transfers")
          for method, tail, handler in (
              ("POST", "", f.transfer_create), ("GET", "", f.transfer_list),
              ("GET", "/detail", f.transfer_list), ("GET", "/{id}", f.transfer_show),
              ("DELETE", "/{id}", f.transfer_delete),
              ("POST", "/{id}/accept", f.transfer_accept))),
        ("GET", "/default-types", f.default_type_show),
        ("GET", "/default-types/{project}", f.default_type_show),
        ("PUT", "/default-types/{project}", f.default_type_set),
        ("DELETE", "/default-types/{project}", f.default_type_unset),
        ("GET", "/qos-specs", f.qos_list),
        ("POST", "/qos-specs", f.qos_create),
        ("GET", "/qos-specs/{id}", f.qos_show),
        ("PUT", "/qos-specs/{id}", f.qos_update),
        ("DELETE", "/qos-specs/{id}", f.qos_delete),
        ("PUT", "/qos-specs/{id}/delete_keys", f.qos_delete_keys),
        ("GET", "/qos-specs/{id}/associations", f.qos_associations),
        ("GET", "/qos-specs/{id}/associate", f.qos_associate),
        ("GET", "/qos-specs/{id}/disassociate", f.qos_associate),
        ("GET", "/qos-specs/{id}/disassociate_all", f.qos_disassociate_all),
        ("POST", "/os-volume-manage", f.volume_manage),
        ("POST", "/manageable_volumes", f.volume_manage),  # openstacksdk's, from 3.8
        ("POST", "/os-snapshot-manage", f.snapshot_manage),
        ("POST", "/manageable_snapshots", f.snapshot_manage),
        *(("GET", path, f.manageable_list) for path in (
            "/os-volume-manage", "/os-volume-manage/detail", "/manageable_volumes",
            "/manageable_volumes/detail", "/os-snapshot-manage", "/os-snapshot-manage/detail",
            "/manageable_snapshots", "/manageable_snapshots/detail")),
        ("POST", "/attachments", f.attachment_create),
        ("GET", "/attachments", f.attachment_list),
        ("GET", "/attachments/detail", f.attachment_list),
        ("GET", "/attachments/{id}", f.attachment_show),
        ("PUT", "/attachments/{id}", f.attachment_update),
        ("DELETE", "/attachments/{id}", f.attachment_delete),
        ("POST", "/attachments/{id}/action", f.attachment_action),
    ]
    for method, path, handler in routes:
        r.add_route(method, p + path, handler)


__all__ = ["MAX", "Front", "build_app"]

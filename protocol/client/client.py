"""The client library: the public face of cinderblock for programs.

    async with Client("tcp://127.0.0.1:5555", project="demo") as c:
        vol = await c.create_volume(1, name="firstvol", volume_type="FCVolumeType")
        vol = await c.wait_for_status(vol.id, VolumeStatus.AVAILABLE)

Every method is one operation; failures raise the typed exceptions of
``protocol.errors`` (``OverQuota``, ``NotFound``, ...). Waiting follows the
status changes the gateway pushes over the same connection (``volume.watch``)
rather than polling. ``SyncClient`` wraps the same calls for scripts.

With ``key`` (a ``NAME.key_secret`` file, else ``$CINDERBLOCK_KEY``) the client
speaks CURVE and the gateway knows it by that key: project, user and roles come
from the gateway's users file, and ``project``/``admin`` here are only what the
client expects. The gateway's public key is ``server_key``, else the
``gateway.key`` beside the key file (``<data-dir>/keys``). Without a key the
client speaks plaintext (a cluster run with ``security = false``).

``follow=DATA_DIR/endpoints.json`` (what the CLI passes when it found the gateway
there): before each call the client looks whether that file changed and, if its
gateway moved, goes there.

A call the gateway had not answered when its connection closed (the gateway
stopped or was restarted) fails within a tenth of a second with ``PeerGone``
(``connection_watch.py``) instead of waiting for its deadline, as does a wait for
a pushed status: the request may or may not have been carried out, so send it
again with its request id. The next call connects again.

Each create carries a request id (one is made if the caller gives none):
repeating a create with the same id returns the first volume.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import zmq

from cinderblock.protocol.client.attachments import AttachmentMethods, SyncAttachmentMethods
from cinderblock.protocol.client.backups import BackupMethods, SyncBackupMethods
from cinderblock.protocol.client.connection_watch import ConnectionWatch
from cinderblock.protocol.client.flows import FlowMethods, SyncFlowMethods
from cinderblock.protocol.client.groups import GroupMethods, SyncGroupMethods
from cinderblock.protocol.client.lifecycle import (
    LifecycleMethods,
    SnapshotError,
    SyncLifecycleMethods,
)
from cinderblock.protocol.client.manage import ManageMethods, SyncManageMethods
from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.client.qos import QosMethods, SyncQosMethods
from cinderblock.protocol.client.status_waits import StatusWaits, VolumeError
from cinderblock.protocol.client.transfers import SyncTransferMethods, TransferMethods
from cinderblock.protocol.messages.health import ActorStats, ClusterStats, Identity, StatusCounts
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.limits import MAX_QUOTA_LIMIT, MAX_SIZE_GB, check_range
from cinderblock.protocol.messages.log_levels import ServiceLogList, ServiceLogRequest
from cinderblock.protocol.messages.quota import (
    QUOTAS_MAX,
    QuotaDefaultsUpdate,
    QuotaDelete,
    QuotaSet,
    QuotaSets,
    QuotaShow,
    QuotaShowMany,
    QuotaUpdate,
)
from cinderblock.protocol.messages.quota_sync import QuotaSync, QuotaSyncResult
from cinderblock.protocol.messages.reconcile import WorkCleaned, WorkCleanup
from cinderblock.protocol.messages.scheduling import (
    BACKENDS_PAGE_MAX,
    Backend,
    BackendEnable,
    BackendList,
    BackendListRequest,
)
from cinderblock.protocol.messages.user_messages import (
    MessageList,
    MessageListRequest,
    MessageRef,
    UserMessage,
)
from cinderblock.protocol.messages.volumes import (
    Empty,
    TypeAccess,
    TypeAccessList,
    TypeCreate,
    TypeDefault,
    TypeDefaultList,
    TypeDefaultListRequest,
    TypeDefaultRef,
    TypeList,
    TypeRef,
    TypeUpdate,
    Volume,
    VolumeCreate,
    VolumeList,
    VolumeListRequest,
    VolumeModify,
    VolumeRef,
    VolumeResetState,
    VolumeSummary,
    VolumeSummaryRequest,
    VolumeType,
    VolumeWatch,
    ZoneList,
)
from cinderblock.protocol.states import (
    SNAPSHOT_ERRORS,
    VOLUME_ERRORS,
    VolumeStatus,
    statuses,
)
from cinderblock.protocol.wire.batching import Batcher
from cinderblock.protocol.wire.codec import (
    Context,
    Envelope,
    MalformedMessage,
    decode_frame,
    encode,
    next_id,
)
from cinderblock.protocol.wire.errors import Closed, InternalError, InvalidInput
from cinderblock.protocol.wire.keys import client_keys, curve_client
from cinderblock.protocol.wire.rpc import Calls
from cinderblock.protocol.wire.schema import dump_sparse, parse
from cinderblock.protocol.wire.transport import Channel, tune

__all__ = ["Client", "SyncClient", "VolumeError"]

T = TypeVar("T")
AVAILABLE: frozenset[StrEnum] = frozenset({VolumeStatus.AVAILABLE})
UNCHANGED: Any = object()  # modify_volume: leave this field as it is
CLEANUP_TIMEOUT_S = 20.0  # work_cleanup probes the nodes (5 s each at most, at once)


class Client(AttachmentMethods, LifecycleMethods, FlowMethods, TransferMethods, QosMethods,
             ManageMethods, BackupMethods, GroupMethods):
    def __init__(
        self,
        endpoint: str,
        project: str = "demo",
        user: str | None = None,
        admin: bool = False,
        timeout: float = 30.0,
        key: str | Path | None = None,
        server_key: str | bytes | None = None,
        follow: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._follow = follow  # an endpoints.json whose gateway entry this client follows
        self._followed_stamp: tuple[int, int] | None = None
        self.keys = client_keys(key, server_key)
        roles = ("admin", "member") if admin else ("member",)
        self.context = Context(project, user or project, roles)
        self._request_id: str | None = None  # acting_for: what this view's calls carry
        self._request_calls = 0
        self.timeout = timeout
        self._calls = Calls()
        self._channel: Channel | None = None
        self._out: Batcher | None = None  # this turn's requests go as one message
        self._watch: ConnectionWatch | None = None  # did the connection close meanwhile?
        self.volume_waits: StatusWaits[Volume] = StatusWaits(
            "volume", VolumeError, VOLUME_ERRORS, self._look_at_connection)
        self.snapshot_waits: StatusWaits[Snapshot] = StatusWaits(
            "snapshot", SnapshotError, SNAPSHOT_ERRORS, self._look_at_connection)

    def acting_for(self, project: str, user: str, roles: tuple[str, ...],
                   request_id: str | None = None) -> Client:
        """This client speaking for another user over the same connection and pending
        calls (a REST front: one connection, many callers). Close only the original.

        With ``request_id`` (an HTTP request's), the view's first call carries it and
        each later one ``<request_id>.<n>``: the gateway's log lines about them name the
        request the front logged, and no two calls share a retry key."""
        self._open()
        view = copy.copy(self)
        view.context = Context(project, user, roles)
        view._request_id, view._request_calls = request_id, 0
        return view

    def _next_request_id(self) -> str:
        if self._request_id is None:
            return f"req-{uuid.uuid4()}"
        self._request_calls += 1
        n = self._request_calls
        return self._request_id if n == 1 else f"{self._request_id}.{n}"

    async def __aenter__(self) -> Client:
        self._open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> Batcher:
        if self._follow is not None:
            self._follow_endpoints(self._follow)
        if self._channel is None:
            sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
            tune(sock)
            if self.keys is not None:
                curve_client(sock, *self.keys)
            self._watch = ConnectionWatch(sock, self._connection_closed, self._waiting)
            sock.connect(self.endpoint)
            self._channel = Channel(sock, self._on_frames)
            self._out = Batcher(self._channel, routed=False, on_lost=self._calls.fail)
        assert self._out is not None
        return self._out

    def _follow_endpoints(self, path: Path) -> None:
        """If the cluster's endpoints file changed (a cluster started again elsewhere),
        go to its gateway; calls already sent to the old one end by their deadline."""
        try:
            st = path.stat()
        except OSError:
            return  # no cluster published there now: keep the last known endpoint
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._followed_stamp:
            return
        self._followed_stamp = stamp
        try:
            endpoint = json.loads(path.read_text()).get("gateway")
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(endpoint, str) and endpoint != self.endpoint:
            self.endpoint = endpoint
            self._close_channel()

    def close(self) -> None:
        self._close_channel()
        self._calls.fail_all(Closed("the client was closed"))

    def _close_channel(self) -> None:
        if self._out is not None:
            self._out.flush()
            self._out = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # ---- plumbing ------------------------------------------------------
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        out = self._open()
        ctx = Context(self.context.project_id, self.context.user_id, self.context.roles,
                      request_id or self._next_request_id())
        msg_id = next_id()
        try:
            frame = encode(Envelope("req", msg_id, op, dump_sparse(body), ctx))
        except (OverflowError, ValueError, TypeError) as exc:  # msgpack cannot hold it
            raise InvalidInput(f"{op} cannot be sent: {exc}", {"op": op}) from None
        self._look_at_connection()
        fut = self._calls.start(msg_id, op, timeout or self.timeout)
        out.send(b"", frame, msg_id)
        try:
            return await fut
        finally:
            self._calls.forget(msg_id)

    def _on_frames(self, frames: list[bytes]) -> int:
        try:
            decoded = decode_frame(frames[-1])
        except MalformedMessage:
            return 1  # not from a cinderblock gateway; nothing to answer
        for env, _ in decoded:
            if isinstance(env, MalformedMessage):
                continue
            if env.kind == "rep":
                self._calls.settle(env)
            elif env.kind == "evt" and env.op == "volume.status":
                self.volume_waits.seen(parse(Volume, env.body, strict=False))
            elif env.kind == "evt" and env.op == "snapshot.status":
                self._on_snapshot_status(parse(Snapshot, env.body, strict=False))
        return len(decoded)

    def _connection_closed(self) -> None:
        """The connection to the gateway closed (it stopped, or cut us off): nothing sent
        before can be answered now, and the gateway's end of every watch is gone, so
        whoever waits for those hears it at once rather than at their deadline. The
        socket connects again by itself for the next call."""
        closed = f"the connection to the gateway at {self.endpoint} closed"
        self._calls.lost(f"{closed} before it answered (the request may or may not "
                         "have been carried out)")
        self.volume_waits.fail_all(closed)
        self.snapshot_waits.fail_all(closed)

    def _look_at_connection(self) -> None:
        """Before a call or a wait is registered: look at the connection while it lasts."""
        if self._watch is not None:
            self._watch.look_soon()

    def _waiting(self) -> bool:
        return bool(len(self._calls)) or self.volume_waits.waiting or \
            self.snapshot_waits.waiting

    # ---- volumes -------------------------------------------------------
    async def create_volume(
        self,
        size: int | None,
        *,
        name: str | None = None,
        description: str | None = None,
        volume_type: str | None = None,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
        request_id: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
        snapshot_id: str | None = None,
        source_volid: str | None = None,
        same_host: Sequence[str] | None = None,
        different_host: Sequence[str] | None = None,
        backup_id: str | None = None,
        group_id: str | None = None,
    ) -> Volume:
        """``same_host`` and ``different_host``: Cinder's affinity hints (volume ids of
        the caller's own): the volume goes on a backend holding one of the first, and on
        none holding any of the second. ``backup_id``: the new volume holds that backup's
        data (its size by default; Cinder's 3.47). ``group_id``: it is made in that group
        (of one of its volume types; on its backend; Cinder's 3.13)."""
        if size is not None:
            check_range("size", size, 1, MAX_SIZE_GB)
        body = VolumeCreate(size, name, description, volume_type, availability_zone,
                            metadata or {}, watch=wait, snapshot_id=snapshot_id,
                            source_volid=source_volid,
                            same_host=None if same_host is None else list(same_host),
                            different_host=None if different_host is None
                            else list(different_host), backup_id=backup_id,
                            group_id=group_id)
        raw = await self.call("volume.create", body, request_id, timeout)
        volume = parse(Volume, raw, strict=False)
        if not wait:
            return volume
        return await self.volume_waits.wait(volume, AVAILABLE, timeout or self.timeout)

    async def submit_create(
        self, body: VolumeCreate, request_id: str | None = None, timeout: float | None = None
    ) -> Volume:
        """Send a create exactly as given (a front relays its caller's fields: the gateway
        checks them as Cinder's API does); the answer is the ``creating`` volume."""
        raw = await self.call("volume.create", body, request_id, timeout)
        return parse(Volume, raw, strict=False)

    async def modify_volume(
        self, volume_id: str, *, name: Any = UNCHANGED, description: Any = UNCHANGED,
        metadata: dict[str, Any] | None = None, replace_metadata: bool = False,
        delete_metadata: Iterable[str] = (), bootable: bool | str | None = None,
        readonly: bool | str | None = None, image_metadata: dict[str, Any] | None = None,
        delete_image_metadata: Iterable[str] = (),
    ) -> Volume:
        """Rename, describe, merge (or with ``replace_metadata`` replace) metadata, drop
        metadata keys, set the bootable or read-only flag, merge image metadata in and
        drop its keys; a None name clears it."""
        fields = tuple(f for f, v in (("name", name), ("description", description))
                       if v is not UNCHANGED)
        body = VolumeModify(
            volume_id, fields, None if name is UNCHANGED else name,
            None if description is UNCHANGED else description, metadata, replace_metadata,
            tuple(delete_metadata), bootable, readonly, image_metadata,
            tuple(delete_image_metadata))
        return parse(Volume, await self.call("volume.modify", body), strict=False)

    async def volume_summary(self, all_projects: bool = False,
                             project_id: str | None = None) -> VolumeSummary:
        """How many volumes, how many GiB, and which metadata keys and values: this
        project's (an admin's ``all_projects``: every project's, or ``project_id``'s)."""
        raw = await self.call("volume.summary", VolumeSummaryRequest(all_projects, project_id))
        return parse(VolumeSummary, raw, strict=False)

    async def reset_volume_state(self, volume_id: str, status: str) -> Volume:
        """Admin: move a stuck volume to ``error`` (or ``available`` if it has a host)."""
        raw = await self.call("volume.reset_state", VolumeResetState(volume_id, status))
        return parse(Volume, raw, strict=False)

    async def show_volume(self, volume_id: str) -> Volume:
        return parse(Volume, await self.call("volume.show", VolumeRef(volume_id)), strict=False)

    async def list_volumes(
        self, all_projects: bool = False, status: str | None = None, limit: int | None = None,
        marker: str | None = None, name: str | None = None,
        metadata: dict[str, str] | None = None, oldest_first: bool = False,
        project_id: str | None = None, sort: str | None = None,
        bootable: bool | None = None, availability_zone: str | None = None,
        size: int | None = None, created_at: dict[str, float] | None = None,
        updated_at: dict[str, float] | None = None, migration_status: str | None = None,
        group_id: str | None = None,
    ) -> list[Volume]:
        """Newest first (or ``oldest_first``, or by ``sort``: ``size``, ``name``,
        ``status``, ``updated_at`` or ``id``, with ``:asc`` or ``:desc``): all of them,
        page by page, or the first ``limit`` after ``marker`` (a volume id from an
        earlier listing). An admin's ``all_projects`` with ``project_id``: that
        project's only. Filtered by ``status``, ``name``, ``metadata`` items,
        ``bootable``, ``availability_zone``, ``size`` (GiB) and ``created_at`` and
        ``updated_at`` comparisons (``{"gt": t, ...}``, Cinder's gt, gte, eq, neq, lt,
        lte, t in seconds since the epoch), ``migration_status`` (the volume's latest
        migration's: ``migrating``, ``completing``, ``success``, ``error``) and
        ``group_id`` (the group's volumes) when given."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[Volume, ...], str | None]:
            body = VolumeListRequest(all_projects, status, left, after, name, metadata,
                                     oldest_first, project_id, sort, bootable,
                                     availability_zone, size, created_at=created_at,
                                     updated_at=updated_at, migration_status=migration_status,
                                     group_id=group_id)
            reply = parse(VolumeList, await self.call("volume.list", body), strict=False)
            return reply.volumes, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def count_volumes(
        self, all_projects: bool = False, status: str | None = None, name: str | None = None,
        metadata: dict[str, str] | None = None, project_id: str | None = None,
        bootable: bool | None = None, availability_zone: str | None = None,
        size: int | None = None, created_at: dict[str, float] | None = None,
        updated_at: dict[str, float] | None = None, migration_status: str | None = None,
        group_id: str | None = None,
    ) -> int:
        """How many volumes ``list_volumes`` with these filters would list, counted by
        the gateway in one call (Cinder's ``with_count``)."""
        body = VolumeListRequest(all_projects, status, 0, None, name, metadata,
                                 project_id=project_id, bootable=bootable,
                                 availability_zone=availability_zone, size=size,
                                 with_count=True, created_at=created_at,
                                 updated_at=updated_at, migration_status=migration_status,
                                 group_id=group_id)
        reply = parse(VolumeList, await self.call("volume.list", body), strict=False)
        if reply.count is None:
            raise InternalError("the gateway answered a count without one")
        return reply.count

    async def wait_for_status(
        self, volume_id: str, status: str | Iterable[str] = VolumeStatus.AVAILABLE,
        timeout: float | None = None,
    ) -> Volume:
        """Wait until the volume has one of ``status``; raise VolumeError if it
        reaches an error status instead, Timeout if neither happens in time.
        ``status``: ``VolumeStatus`` members (or their words; an unknown one is
        InvalidInput)."""
        wanted: frozenset[StrEnum] = statuses(VolumeStatus, status)
        raw = await self.call("volume.watch", VolumeWatch((volume_id,)))
        (current,) = parse(VolumeList, raw, strict=False).volumes
        return await self.volume_waits.wait(current, wanted, timeout or self.timeout)

    # ---- types, zones, quotas, backends -------------------------------
    async def create_type(
        self, name: str, extra_specs: dict[str, str] | None = None,
        description: str | None = None, is_public: bool = True,
    ) -> VolumeType:
        body = TypeCreate(name, description, extra_specs or {}, is_public)
        return parse(VolumeType, await self.call("type.create", body), strict=False)

    async def list_types(self) -> list[VolumeType]:
        """The types this project may use (an admin: every type)."""
        return list(parse(TypeList, await self.call("type.list", Empty()), strict=False).types)

    async def delete_type(self, name_or_id: str) -> None:
        """Admin: delete a volume type no volume uses."""
        await self.call("type.delete", TypeRef(name_or_id))

    async def update_type(
        self, name_or_id: str, *, name: str | None = None, description: str | None = None,
        is_public: bool | None = None, extra_specs: dict[str, str] | None = None,
        delete_specs: Iterable[str] = (),
    ) -> VolumeType:
        """Admin: rename, describe, publish or hide a type; merge extra specs into it or
        drop some (the specs only of a type no volume has, as Cinder's)."""
        body = TypeUpdate(name_or_id, name, description, is_public, extra_specs or {},
                          tuple(delete_specs))
        return parse(VolumeType, await self.call("type.update", body), strict=False)

    async def type_access(self, name_or_id: str) -> list[str]:
        """Admin: the projects that may use a private type."""
        raw = await self.call("type.access_list", TypeRef(name_or_id))
        return list(parse(TypeAccessList, raw, strict=False).projects)

    async def set_type_access(self, name_or_id: str, project: str, allowed: bool) -> list[str]:
        """Admin: let ``project`` use a private type (or, ``allowed=False``, no longer)."""
        op = "type.access_add" if allowed else "type.access_remove"
        raw = await self.call(op, TypeAccess(name_or_id, project))
        return list(parse(TypeAccessList, raw, strict=False).projects)

    async def default_type(self) -> VolumeType:
        """The type a create of this project without a type gets (its own default, if an
        admin set one; the cluster's otherwise)."""
        return parse(VolumeType, await self.call("type.default", Empty()), strict=False)

    async def set_default_type(self, project: str, name_or_id: str) -> TypeDefault:
        """Admin: the project's creates without a type get this one (Cinder's 3.62)."""
        raw = await self.call("type.default_set", TypeDefault(project, name_or_id))
        return parse(TypeDefault, raw, strict=False)

    async def show_default_type(self, project: str) -> TypeDefault:
        """Admin: the project's own default type (not_found: it has none)."""
        raw = await self.call("type.default_show", TypeDefaultRef(project))
        return parse(TypeDefault, raw, strict=False)

    async def list_default_types(self, limit: int | None = None,
                                 marker: str | None = None) -> list[TypeDefault]:
        """Admin: the projects with a default type of their own, by project id, page by
        page (or the first ``limit`` after the project ``marker``)."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[TypeDefault, ...], str | None]:
            raw = await self.call("type.default_list", TypeDefaultListRequest(left, after))
            reply = parse(TypeDefaultList, raw, strict=False)
            return reply.defaults, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def unset_default_type(self, project: str) -> None:
        """Admin: the project's creates get the cluster's default type again."""
        await self.call("type.default_unset", TypeDefaultRef(project))

    async def list_zones(self) -> list[str]:
        zones = parse(ZoneList, await self.call("az.list", Empty()), strict=False).zones
        return [z.name for z in zones]

    async def show_quota(self, project: str | None = None, defaults: bool = False) -> QuotaSet:
        """A project's limits and usage (``defaults``: the limits a new project gets)."""
        raw = await self.call("quota.show", QuotaShow(project, defaults))
        return parse(QuotaSet, raw, strict=False)

    async def show_quotas(self, projects: Iterable[str]) -> list[QuotaSet]:
        """Each project's limits and usage, ``QUOTAS_MAX`` projects a call (a monitor's
        or an admin's: every project; a member's: its own)."""
        wanted, found = tuple(projects), list[QuotaSet]()
        for start in range(0, len(wanted), QUOTAS_MAX):
            found.extend(await self._quotas_of(wanted[start:start + QUOTAS_MAX]))
        return found

    async def _quotas_of(self, projects: tuple[str, ...]) -> list[QuotaSet]:
        """One ``quota.show_many``; a reply over a frame (projects with many volume
        types' own quotas) is asked for again in halves."""
        try:
            raw = await self.call("quota.show_many", QuotaShowMany(projects))
        except InternalError as exc:
            if len(projects) == 1 or "bytes" not in exc.details:  # not a reply's size
                raise
            half = len(projects) // 2
            return [*await self._quotas_of(projects[:half]),
                    *await self._quotas_of(projects[half:])]
        return list(parse(QuotaSets, raw, strict=False).quotas)

    async def set_quota(self, project: str, **limits: int) -> QuotaSet:
        """Admin: set limits (each -1, unlimited, to ``MAX_QUOTA_LIMIT``)."""
        for name, limit in limits.items():
            check_range(name, limit, -1, MAX_QUOTA_LIMIT)
        raw = await self.call("quota.set", QuotaUpdate(project, limits))
        return parse(QuotaSet, raw, strict=False)

    async def set_default_quotas(self, **limits: int) -> QuotaSet:
        """Admin: set limits of the default quota class, every project's that has no
        limit of its own (Cinder's quota-class update of ``default``)."""
        for name, limit in limits.items():
            check_range(name, limit, -1, MAX_QUOTA_LIMIT)
        raw = await self.call("quota.set_defaults", QuotaDefaultsUpdate(limits))
        return parse(QuotaSet, raw, strict=False)

    async def delete_quota(self, project: str) -> QuotaSet:
        """Admin: put the project back on the default limits (its usage stays)."""
        return parse(QuotaSet, await self.call("quota.delete", QuotaDelete(project)),
                     strict=False)

    async def sync_quota(self, project: str, dry_run: bool = False) -> QuotaSyncResult:
        """Admin: set the project's quota usage to what it has (``dry_run``: only compare)."""
        raw = await self.call("quota.sync", QuotaSync(project, dry_run))
        return parse(QuotaSyncResult, raw, strict=False)

    async def list_messages(self, resource_uuid: str | None = None,
                            all_projects: bool = False, limit: int | None = None,
                            marker: str | None = None, event_id: str | None = None,
                            request_id: str | None = None, resource_type: str | None = None,
                            message_level: str | None = None, sort_dir: str | None = None,
                            ) -> list[UserMessage]:
        """Why volumes went to an error status, newest first (Cinder's user messages),
        or oldest first (``sort_dir`` "asc"): all of them, page by page, or the first
        ``limit`` after ``marker``; only those with the ``event_id``, ``request_id``,
        ``resource_type`` or ``message_level`` given."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[UserMessage, ...], str | None]:
            body = MessageListRequest(resource_uuid, all_projects, left, after, event_id,
                                      request_id, resource_type, message_level, sort_dir)
            reply = parse(MessageList, await self.call("message.list", body), strict=False)
            return reply.messages, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def show_message(self, message_id: str) -> UserMessage:
        return parse(UserMessage, await self.call("message.show", MessageRef(message_id)),
                     strict=False)

    async def delete_message(self, message_id: str) -> None:
        await self.call("message.delete", MessageRef(message_id))

    async def list_backends(self, limit: int | None = None, marker: str | None = None
                            ) -> list[Backend]:
        """The backends by name (after ``marker``, at most ``limit``; all by default),
        read a page at a time."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[Sequence[Backend], str | None]:
            body = BackendListRequest(after, BACKENDS_PAGE_MAX if left is None
                                      else min(left, BACKENDS_PAGE_MAX))
            page = parse(BackendList, await self.call("backend.list", body), strict=False)
            return page.backends, page.next_marker

        return await read_pages(fetch, limit, marker)

    async def set_backend_enabled(self, backend: str, enabled: bool,
                                  reason: str | None = None) -> BackendEnable:
        """Admin: take a backend out of placement (``enabled=False``, with why) or put it
        back (Cinder's service disable and enable); its volumes are not touched."""
        raw = await self.call("backend.set_enabled", BackendEnable(backend, enabled, reason))
        return parse(BackendEnable, raw, strict=False)

    async def work_cleanup(self, nodes: tuple[str, ...] = (), unplaced: bool = False,
                           resource_id: str | None = None, resource_type: str | None = None,
                           every_node: bool = False, timeout: float | None = None,
                           ) -> WorkCleaned:
        """Admin: mend now what a crash left in a transitional status on these nodes (or
        ``every_node``; and, with ``unplaced``, on none yet), or only one volume or
        snapshot among them (Cinder's work cleanup): what holds at any age is done; the
        rest waits for the reconciler's rounds. Nodes are probed, so it may take
        ``PROBE_TIMEOUT_S``."""
        raw = await self.call("work.cleanup", WorkCleanup(nodes, unplaced, resource_id,
                                                          resource_type, every_node),
                              timeout=timeout or max(self.timeout, CLEANUP_TIMEOUT_S))
        return parse(WorkCleaned, raw, strict=False)

    async def ping(self, timeout: float | None = None) -> None:
        await self.call("ping", Empty(), timeout=timeout)

    async def whoami(self) -> Identity:
        """Whom the gateway takes this client for: with keys, the key's project, user and
        roles, whatever this client's ``project`` says."""
        return parse(Identity, await self.call("whoami", Empty()), strict=False)

    async def stats(self, timeout: float | None = None) -> ActorStats:
        """The statistics of the actor at this endpoint (admins and monitors)."""
        return parse(ActorStats, await self.call("stats", Empty(), timeout=timeout),
                     strict=False)

    async def cluster_stats(self, timeout: float | None = None) -> ClusterStats:
        """Every actor's statistics, gathered by the gateway (admins and monitors)."""
        raw = await self.call("cluster.stats", Empty(), timeout=timeout)
        return parse(ClusterStats, raw, strict=False)

    async def status_counts(self) -> StatusCounts:
        """Every project's volumes, snapshots and attachments by status (admins and
        monitors)."""
        return parse(StatusCounts, await self.call("cluster.counts", Empty()), strict=False)

    async def log_levels(self, binary: str | None = None, server: str | None = None,
                         prefix: str = "") -> ServiceLogList:
        """Admin: the log levels of the loggers of ``prefix`` in the services a binary
        (``cinder-volume``, ``cinder-scheduler``, ``cinderblock-gateway``,
        ``cinderblock-quota``; None: every one) and server (a host) name."""
        raw = await self.call("service.log_levels", ServiceLogRequest(binary, server, prefix))
        return parse(ServiceLogList, raw, strict=False)

    async def set_log_levels(self, level: str, binary: str | None = None,
                             server: str | None = None, prefix: str = "") -> ServiceLogList:
        """Admin: set those loggers to ``level`` (DEBUG, INFO, WARNING, ERROR) until
        their actor restarts; the answer is their levels after."""
        raw = await self.call("service.set_log_levels",
                              ServiceLogRequest(binary, server, prefix, level))
        return parse(ServiceLogList, raw, strict=False)


class SyncClient(SyncAttachmentMethods, SyncLifecycleMethods, SyncFlowMethods,
                 SyncTransferMethods, SyncQosMethods, SyncManageMethods, SyncBackupMethods,
                 SyncGroupMethods):
    """The same operations, blocking, for scripts and the CLI."""

    def __init__(self, endpoint: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = Client(endpoint, **kwargs)

    def _run(self, make: Callable[[Client], Awaitable[T]]) -> T:
        async def go() -> T:
            return await make(self._client)

        return self._loop.run_until_complete(go())

    def close(self) -> None:
        self._loop.run_until_complete(_close(self._client))
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_volume(self, size: int | None, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.create_volume(size, **kwargs))

    def modify_volume(self, volume_id: str, **kwargs: Any) -> Volume:
        return self._run(lambda c: c.modify_volume(volume_id, **kwargs))

    def reset_volume_state(self, volume_id: str, status: str) -> Volume:
        return self._run(lambda c: c.reset_volume_state(volume_id, status))

    def show_volume(self, volume_id: str) -> Volume:
        return self._run(lambda c: c.show_volume(volume_id))

    def list_volumes(self, **kwargs: Any) -> list[Volume]:
        return self._run(lambda c: c.list_volumes(**kwargs))

    def count_volumes(self, **kwargs: Any) -> int:
        return self._run(lambda c: c.count_volumes(**kwargs))

    def wait_for_status(self, volume_id: str, status: str | Iterable[str] = VolumeStatus.AVAILABLE,
                        timeout: float | None = None) -> Volume:
        return self._run(lambda c: c.wait_for_status(volume_id, status, timeout))

    def create_type(self, name: str, **kwargs: Any) -> VolumeType:
        return self._run(lambda c: c.create_type(name, **kwargs))

    def list_types(self) -> list[VolumeType]:
        return self._run(lambda c: c.list_types())

    def delete_type(self, name_or_id: str) -> None:
        self._run(lambda c: c.delete_type(name_or_id))

    def update_type(self, name_or_id: str, **kwargs: Any) -> VolumeType:
        return self._run(lambda c: c.update_type(name_or_id, **kwargs))

    def type_access(self, name_or_id: str) -> list[str]:
        return self._run(lambda c: c.type_access(name_or_id))

    def set_type_access(self, name_or_id: str, project: str, allowed: bool) -> list[str]:
        return self._run(lambda c: c.set_type_access(name_or_id, project, allowed))

    def default_type(self) -> VolumeType:
        return self._run(lambda c: c.default_type())

    def set_default_type(self, project: str, name_or_id: str) -> TypeDefault:
        return self._run(lambda c: c.set_default_type(project, name_or_id))

    def show_default_type(self, project: str) -> TypeDefault:
        return self._run(lambda c: c.show_default_type(project))

    def list_default_types(self, limit: int | None = None,
                           marker: str | None = None) -> list[TypeDefault]:
        return self._run(lambda c: c.list_default_types(limit, marker))

    def unset_default_type(self, project: str) -> None:
        self._run(lambda c: c.unset_default_type(project))

    def list_zones(self) -> list[str]:
        return self._run(lambda c: c.list_zones())

    def volume_summary(self, all_projects: bool = False,
                       project_id: str | None = None) -> VolumeSummary:
        return self._run(lambda c: c.volume_summary(all_projects, project_id))

    def show_quota(self, project: str | None = None, defaults: bool = False) -> QuotaSet:
        return self._run(lambda c: c.show_quota(project, defaults))

    def set_quota(self, project: str, **limits: int) -> QuotaSet:
        return self._run(lambda c: c.set_quota(project, **limits))

    def delete_quota(self, project: str) -> QuotaSet:
        return self._run(lambda c: c.delete_quota(project))

    def set_default_quotas(self, **limits: int) -> QuotaSet:
        return self._run(lambda c: c.set_default_quotas(**limits))

    def sync_quota(self, project: str, dry_run: bool = False) -> QuotaSyncResult:
        return self._run(lambda c: c.sync_quota(project, dry_run))

    def list_messages(self, **kwargs: Any) -> list[UserMessage]:
        return self._run(lambda c: c.list_messages(**kwargs))

    def show_message(self, message_id: str) -> UserMessage:
        return self._run(lambda c: c.show_message(message_id))

    def delete_message(self, message_id: str) -> None:
        self._run(lambda c: c.delete_message(message_id))

    def list_backends(self, limit: int | None = None, marker: str | None = None
                      ) -> list[Backend]:
        return self._run(lambda c: c.list_backends(limit, marker))

    def set_backend_enabled(self, backend: str, enabled: bool, reason: str | None = None
                            ) -> BackendEnable:
        return self._run(lambda c: c.set_backend_enabled(backend, enabled, reason))

    def work_cleanup(self, nodes: tuple[str, ...] = (), unplaced: bool = False,
                     resource_id: str | None = None, resource_type: str | None = None,
                     every_node: bool = False) -> WorkCleaned:
        return self._run(lambda c: c.work_cleanup(nodes, unplaced, resource_id, resource_type,
                                                   every_node))

    def ping(self, timeout: float | None = None) -> None:
        self._run(lambda c: c.ping(timeout))

    def whoami(self) -> Identity:
        return self._run(lambda c: c.whoami())

    def stats(self, timeout: float | None = None) -> ActorStats:
        return self._run(lambda c: c.stats(timeout))

    def cluster_stats(self, timeout: float | None = None) -> ClusterStats:
        return self._run(lambda c: c.cluster_stats(timeout))

    def status_counts(self) -> StatusCounts:
        return self._run(lambda c: c.status_counts())

    def log_levels(self, binary: str | None = None, server: str | None = None,
                   prefix: str = "") -> ServiceLogList:
        return self._run(lambda c: c.log_levels(binary, server, prefix))

    def set_log_levels(self, level: str, binary: str | None = None, server: str | None = None,
                       prefix: str = "") -> ServiceLogList:
        return self._run(lambda c: c.set_log_levels(level, binary, server, prefix))


async def _close(client: Client) -> None:
    client.close()

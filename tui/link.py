"""The dashboard's link to the gateway: is the cluster up, and what does it hold?

``GatewayLink.run`` loops for as long as the dashboard runs. Each session opens a
client, pings it with a short timeout, catches up (volumes, snapshots, backups,
groups, group snapshots, backends, volume types, and the flows the actors remember: running, failed,
and those done recently enough to be still on screen) into the model, and then keeps
pinging; the backends are re-read now and then, which keeps their up/down and age
honest even when their events were dropped. It catches up again whenever the event
stream (re)connects (``stream_connects`` moves), once more ``settle_s`` after a
session starts (a restarted actor's first events can be lost while its publisher
joins the hub), and every ``resync_s``: PUB/SUB may drop events, and this heals
whatever was lost. When a ping or a call fails the model says the cluster is down,
the client is thrown away (queued requests to a dead peer must not reach its
successor), and a new session starts after ``retry_s``.

Every ``health_s`` it asks the gateway for every actor's statistics (``cluster.stats``)
for the health line; a user who may not read them (not an admin) sees why instead.
``endpoint`` may change between sessions (the dashboard follows endpoints.json).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import CinderblockError, Forbidden, InvalidInput
from cinderblock.tui.model.items import (
    backup_record,
    group_record,
    group_snapshot_record,
    snapshot_record,
)
from cinderblock.tui.model.model import Model

CATCH_UP_LIMIT = 1000  # newest volumes read on (re)connecting; one reply stays small


class GatewayLink:
    def __init__(self, model: Model, endpoint: str, project: str = "demo", admin: bool = True,
                 clock: Callable[[], float] = time.time, ping_s: float = 1.0,
                 ping_timeout_s: float = 1.5, retry_s: float = 1.0,
                 backends_s: float = 5.0, settle_s: float = 2.0, resync_s: float = 30.0,
                 health_s: float = 2.0,
                 stream_connects: Callable[[], int] = lambda: 0, key: str | Path | None = None,
                 ) -> None:
        self.key = key
        self.model = model
        self.endpoint = endpoint
        self.project = project
        self.admin = admin
        self.clock = clock
        self.ping_s = ping_s
        self.ping_timeout_s = ping_timeout_s
        self.retry_s = retry_s
        self.backends_s = backends_s
        self.settle_s = settle_s
        self.resync_s = resync_s
        self.health_s = health_s
        self.stream_connects = stream_connects
        self._synced_connects = -1
        self.client: Client | None = None  # set while the gateway answers
        self.sessions = 0

    async def run(self) -> None:
        while True:
            client = Client(self.endpoint, project=self.project, admin=self.admin, timeout=5.0,
                            key=self.key)
            try:
                await self._session(client)
            except CinderblockError as exc:
                self.model.link.mark(False, self.clock(), f"{exc.code}: {exc}")
            finally:
                self.client = None
                client.close()
            await asyncio.sleep(self.retry_s)

    async def _session(self, client: Client) -> None:
        await client.ping(timeout=self.ping_timeout_s)
        await self.catch_up(client)
        self.sessions += 1
        self.client = client
        self.model.link.mark(True, self.clock())
        backends_due = time.monotonic() + self.backends_s
        resync_due = time.monotonic() + self.settle_s
        health_due = time.monotonic()
        while True:
            if time.monotonic() >= health_due:
                await self.check_health(client)
                health_due = time.monotonic() + self.health_s
            await asyncio.sleep(self.ping_s)
            await client.ping(timeout=self.ping_timeout_s)
            if self.stream_connects() != self._synced_connects \
                    or time.monotonic() >= resync_due:
                await self.catch_up(client)
                resync_due = time.monotonic() + self.resync_s
            elif time.monotonic() >= backends_due:
                self.model.load_backends(await client.list_backends(), self.clock())
                backends_due = time.monotonic() + self.backends_s

    async def check_health(self, client: Client) -> None:
        try:
            stats = await client.cluster_stats(timeout=self.ping_timeout_s + 2.0)
        except Forbidden:
            self.model.health.unavailable = "for admins"
            return
        except InvalidInput as exc:
            if exc.details.get("op") != "cluster.stats":
                raise
            self.model.health.unavailable = "not offered by this gateway"
            return
        self.model.health.load(stats, self.clock())

    async def catch_up(self, client: Client) -> None:
        self._synced_connects = self.stream_connects()
        asked = self.clock()
        volumes = await client.list_volumes(all_projects=self.admin, limit=CATCH_UP_LIMIT)
        self.model.load_volumes(volumes, asked, complete=len(volumes) < CATCH_UP_LIMIT)
        await self.catch_up_items(client)
        self.model.load_backends(await client.list_backends(), self.clock())
        self.model.load_types(await client.list_types())
        await self.catch_up_flows(client)
        self.model.link.synced_at = self.clock()

    async def catch_up_items(self, client: Client) -> None:
        """Snapshots and backups (the newest ``CATCH_UP_LIMIT`` of each), groups and
        group snapshots."""
        model, limit, everyone = self.model, CATCH_UP_LIMIT, self.admin
        asked = self.clock()
        snapshots = await client.list_snapshots(all_projects=everyone, limit=limit)
        model.snapshots.load((snapshot_record(s, asked) for s in snapshots), asked,
                             complete=len(snapshots) < limit)
        asked = self.clock()
        backups = await client.list_backups(all_projects=everyone, limit=limit)
        model.backups.load((backup_record(b, asked) for b in backups), asked,
                           complete=len(backups) < limit)
        asked = self.clock()
        groups = await client.list_groups(all_projects=everyone)
        model.groups.load((group_record(g, asked) for g in groups), asked, complete=True)
        asked = self.clock()
        taken = await client.list_group_snapshots(all_projects=everyone)
        model.group_snapshots.load((group_snapshot_record(g, asked) for g in taken), asked,
                                   complete=True)

    async def catch_up_flows(self, client: Client) -> None:
        asked = self.clock()
        try:
            history = await client.flow_history(all_projects=self.admin,
                                                done_within_s=self.model.flows.fade_s)
        except InvalidInput as exc:
            if exc.details.get("op") != "flow.history":
                raise
            return  # a gateway older than flow history: live flows only
        self.model.load_flows(history.flows, asked)

"""How listing, creating, memory and restart cost grow with the number of volumes.

    python -m cinderblock.bench.scale [--volumes N] [--json]

Starts a real cluster (null backend, 2 nodes) in a temporary directory and measures,
first on the empty cluster and again once it holds N volumes (default 1,000,000). The
fill goes through the client library, pipelined (``--fill client``: it takes N / fill
rate seconds), or, with ``--fill direct``, writes the rows into the stopped gateway's
``gateway.db`` in one transaction, each a copy of a volume a create made (new id, request
id and creation time) and older than it, and starts the gateway again (quota is
unlimited in this cluster, so the quota actor's usage need not count them):

* ``page_ms``: the median time of one ``volume.list`` page of 20, as a user's own
  project first page, the same at a deep marker (the volume in the middle of the
  project's listing), an admin's all-projects page with a status filter, an admin's
  page of the benchmark's project (``admin_one_project``); and both
  a user's page and an admin's all-projects page filtered by a status no volume has
  (``error``: a page that finds nothing must not cost more than one that fills), and a
  user's listing filtered by a name and by a metadata item no volume has (no index
  serves them: a page looks at a bounded number of rows, and the client reads on until
  none follows), and one such page (``a_page_named``, ``a_page_metadata``,
  ``a_page_bootable``);
* ``count_ms``: the median time of a listing's count (``with_count``), the user's
  project's and an admin's of every project with a status, and of the counts of every
  project's volumes, snapshots and attachments by status (``by_status``, what the metrics
  exporter asks) (SQLite counts the rows, aside: it grows with the listing; kept apart
  from ``page_ms`` and its ratios);
* ``sorted_page_ms``: the median time of a user's page of 20 by ``size:asc`` and by
  ``name:desc`` after the first page (no index holds these orders: SQLite reads every
  row of the project's listing, aside when it has more than 1,000, so this grows with
  the project; kept apart from ``page_ms`` and its ratios);
* ``neighbour_sorted_page_ms``: the median time of another project's page of 20 by
  ``size:asc`` (it has 3 volumes), alone and while 16 tasks of the benchmark's project
  ask for such pages without pause (what one project's flood of sorted pages costs
  another's: a large listing's are read aside one at a time, those waiting by turns of
  the project asking; a small listing's, on the loop);
* creates/s and p99 with nobody listing, then while a lister pages continuously;
* the gateway's resident memory per volume (RSS after the fill minus before, over N;
  with ``--fill direct``, of the gateway started again empty and started again full);
* the time from a gateway restart (SIGTERM, start again on the same endpoint) to its
  first answer.

With ``--attached M`` (direct fill only), the newest M of the N volumes are written in
use, one attachment each, whose rows are shaped like a real one's (a connector, and
connection info with an NBD export's TLS credentials: about 2 KB packed); the restart
and the memory then include them, and ``attachments`` reports the median time of a page
of 20 attachments and of the attachments of 20 volumes in use (what the REST front's
``GET /volumes/detail`` asks for a page of volumes). With ``--snapshots K`` (direct
fill only), the oldest K volumes get a snapshot each (``available``, as a create leaves
it); ``snapshots`` reports the median time of a page of 20 and of one volume's.

Every figure comes from one run on one machine; compare the empty and full columns of
the same run, never figures of different runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cinderblock.actors.runtime.cluster import Cluster, with_quota_defaults
from cinderblock.actors.runtime.config import embedded
from cinderblock.actors.runtime.keyring import add_user
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import VolumeListRequest
from cinderblock.protocol.wire.errors import CinderblockError

PROJECT = "scale"
NEIGHBOUR = "neighbour"  # another project, whose pages are timed beside the benchmark's
PAGE = 20
FLOODERS = 16


@dataclass(frozen=True)
class Target:
    """The cluster's gateway and the keys the benchmark speaks with."""

    endpoint: str
    key: Path | None  # the benchmark project's user
    admin_key: Path | None
    neighbour_key: Path | None = None  # a user of the NEIGHBOUR project

    def client(self, admin: bool = False, timeout: float = 300.0) -> Client:
        return Client(self.endpoint, project="admin" if admin else PROJECT, admin=admin,
                      timeout=timeout, key=self.admin_key if admin else self.key)

    def neighbour(self, timeout: float = 300.0) -> Client:
        return Client(self.endpoint, project=NEIGHBOUR, timeout=timeout, key=self.neighbour_key)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(target: Target, volumes: int, concurrency: int = 256,
               neighbour: bool = False) -> float:
    """Create ``volumes`` volumes without waiting for each (the benchmark's project's, or
    with ``neighbour`` the NEIGHBOUR project's); return the fill rate."""
    left = iter(range(volumes))
    start = time.perf_counter()
    async with target.neighbour() if neighbour else target.client() as client:

        async def worker() -> None:
            for _ in left:
                await client.create_volume(1)

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
        while await client.list_volumes(status="creating", limit=1):
            await asyncio.sleep(0.2)
    return volumes / (time.perf_counter() - start)


VOLUME_COLUMNS = (
    "id, project_id, user_id, name, description, size, status, volume_type_id, "
    "availability_zone, host, metadata, created_at, updated_at, reason, request_id, request_fp"
)


SNAPSHOT_COLUMNS = (
    "id, project_id, user_id, volume_id, name, description, size, status, host, "
    "volume_type_id, metadata, created_at, updated_at, reason, request_id, request_fp"
)
ATTACHMENT_COLUMNS = (
    "id, volume_id, project_id, instance_id, status, attach_mode, host, connector, "
    "connection_info, created_at, updated_at, attached_at"
)
CONNECTOR = json.dumps({"host": "compute-1", "initiator": "iqn.1993-08.org.debian:01:c0ffee",
                        "mountpoint": "/dev/vdb"})


def _connection_info(volume_id: str, attachment_id: str) -> str:
    """What a node's export answers, in size: a PEM CA and client certificate (P-256) and
    a key."""
    pem = "-----BEGIN CERTIFICATE-----\n" + "A" * 64 * 9 + "\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\n" + "B" * 64 * 3 + "\n-----END PRIVATE KEY-----\n"
    return json.dumps({"driver_volume_type": "nbd", "data": {
        "host": "127.0.0.1", "port": 10809, "export_name": f"volume-{volume_id}.{attachment_id}",
        "tls": True, "ca_cert": pem, "client_cert": pem, "client_key": key}})


def _attachment(volume: list[Any]) -> tuple[Any, ...]:
    aid, when = str(uuid.uuid4()), volume[11]
    return (aid, volume[0], volume[1], str(uuid.uuid4()), "attached", "rw", "compute-1",
            CONNECTOR, _connection_info(volume[0], aid), when, when, when)


def _snapshot(volume: list[Any]) -> tuple[Any, ...]:
    when = volume[11] + 0.0005  # after its volume, before the next one
    return (str(uuid.uuid4()), volume[1], volume[2], volume[0], None, None, volume[5],
            "available", volume[9], volume[7], "{}", when, when, None, None, None)


def fill_direct(cluster: Cluster, target: Target, volumes: int, attached: int = 0,
                snapshots: int = 0) -> tuple[float, int]:
    """Write ``volumes`` rows into the stopped gateway's file, copies of the newest volume
    a create made (the newest ``attached`` of them in use, an attachment each; the oldest
    ``snapshots`` with a snapshot each), and start it again; return the fill rate and the
    gateway's new pid."""
    cluster.stop_actor("gateway")
    start = time.perf_counter()
    conn = sqlite3.connect(cluster.cfg.path("gateway.db"))
    try:
        template = list(conn.execute(
            f"SELECT {VOLUME_COLUMNS} FROM volumes WHERE project_id=? AND status='available' "
            "ORDER BY created_at DESC LIMIT 1", (PROJECT,)).fetchone())
        oldest = conn.execute("SELECT min(created_at) FROM volumes").fetchone()[0]
        rows = (_copy(template, oldest - (volumes - n) * 0.001) for n in range(volumes))
        in_use: list[list[Any]] = []
        snapped: list[list[Any]] = []

        def noted(row: list[Any], n: int) -> list[Any]:
            if n >= volumes - attached:
                row[6] = "in-use"
                in_use.append(row)
            if n < snapshots:
                snapped.append(row)
            return row

        conn.executemany(
            f"INSERT INTO volumes ({VOLUME_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            (noted(row, n) for n, row in enumerate(rows)))
        conn.executemany(
            f"INSERT INTO attachments ({ATTACHMENT_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (_attachment(row) for row in in_use))
        conn.executemany(
            f"INSERT INTO snapshots ({SNAPSHOT_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            (_snapshot(row) for row in snapped))
        conn.commit()
    finally:
        conn.close()
    rate = volumes / (time.perf_counter() - start)
    asyncio.run(restart_to_first_answer(cluster, target, stopped=True))
    return rate, cluster.pids()["gateway"]


def _copy(template: list[Any], created_at: float) -> list[Any]:
    row = list(template)
    row[0], row[11], row[12], row[14] = (
        str(uuid.uuid4()), created_at, created_at, f"req-{uuid.uuid4()}")
    return row


async def _median_ms(call: Callable[[], Awaitable[object]], times: int = 30) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 3)


async def page_times(target: Target, held: int) -> dict[str, float]:
    """Median ms of one page of 20: first page, at a marker half way down the
    project's ``held`` volumes, and an admin's all-projects page with a filter."""
    marker = await deep_marker(target, held // 2)
    async with target.client() as user, \
            target.client(admin=True) as admin:
        return {
            "first_page": await _median_ms(lambda: user.list_volumes(limit=PAGE)),
            "deep_marker": await _median_ms(
                lambda: user.list_volumes(limit=PAGE, marker=marker)),
            "admin_all_projects_available": await _median_ms(
                lambda: admin.list_volumes(all_projects=True, status="available",
                                           limit=PAGE)),
            # an admin's page of one project (`openstack volume list --project`)
            "admin_one_project": await _median_ms(
                lambda: admin.list_volumes(all_projects=True, project_id=PROJECT,
                                           limit=PAGE)),
            # a status no volume has: what a page with a rare status costs
            "own_project_error": await _median_ms(
                lambda: user.list_volumes(status="error", limit=PAGE)),
            "admin_all_projects_error": await _median_ms(
                lambda: admin.list_volumes(all_projects=True, status="error", limit=PAGE)),
            # a name and a metadata item no volume has, filters no index serves: the whole
            # listing (the client reads page after page) and one page of it
            "own_project_named": await _median_ms(
                lambda: user.list_volumes(name="no-such-name", limit=PAGE), times=5),
            "own_project_metadata": await _median_ms(
                lambda: user.list_volumes(metadata={"no": "such"}, limit=PAGE), times=5),
            "a_page_named": await _median_ms(lambda: user.call(
                "volume.list", VolumeListRequest(limit=PAGE, name="no-such-name"))),
            "a_page_metadata": await _median_ms(lambda: user.call(
                "volume.list", VolumeListRequest(limit=PAGE, metadata={"no": "such"}))),
            # bootable (none is): no index serves it either, a page is bounded the same way
            "a_page_bootable": await _median_ms(lambda: user.call(
                "volume.list", VolumeListRequest(limit=PAGE, bootable=True))),
        }


async def count_times(target: Target) -> dict[str, float]:
    """Median ms of a listing's count (``with_count``): the user's own project, and an
    admin's of every project with a status; and the user's count itself (``counted``).
    SQLite counts the rows (aside, in a thread of the gateway's), so this grows with the
    listing; kept apart from ``page_ms``."""
    async with target.client() as user, target.client(admin=True) as admin:
        return {
            "own_project": await _median_ms(lambda: user.count_volumes(), times=5),
            "admin_all_projects_available": await _median_ms(
                lambda: admin.count_volumes(all_projects=True, status="available"), times=5),
            "counted": float(await user.count_volumes()),
            # every project's volumes, snapshots and attachments by status (the metrics
            # exporter's, every 15 s)
            "by_status": await _median_ms(lambda: admin.status_counts(), times=5),
        }


async def sorted_page_times(target: Target) -> dict[str, float]:
    """Median ms of a user's page of 20 in another order than by creation, after the
    first page's marker: no index holds such an order, so SQLite reads every row of the
    listing (aside, in a thread of the gateway's, past 1,000 rows); it grows with the
    project."""
    async with target.client() as user:
        found = {}
        for sort in ("size:asc", "name:desc"):
            first = await user.list_volumes(sort=sort, limit=PAGE)
            marker = first[-1].id if first else None
            found[sort.replace(":", "_")] = await _median_ms(
                partial(user.list_volumes, sort=sort, limit=PAGE, marker=marker), times=5)
        return found


async def sorted_page_beside_a_flood(target: Target) -> dict[str, float]:
    """Median ms of another project's page of 20 by ``size:asc`` (of its few volumes),
    alone and while ``FLOODERS`` tasks of the benchmark's project ask for such pages
    without pause, each of which reads every row of that project's listing: what one
    project's flood of sorted pages costs another's (such pages are read one at a time,
    those waiting by turns of the project asking)."""
    stop = asyncio.Event()
    async with target.client() as flooder, target.neighbour() as neighbour:
        page = partial(neighbour.list_volumes, sort="size:asc", limit=PAGE)
        alone = await _median_ms(page, times=10)

        async def flood() -> None:
            while not stop.is_set():
                await flooder.list_volumes(sort="size:asc", limit=PAGE)

        floods = [asyncio.create_task(flood()) for _ in range(FLOODERS)]
        try:
            await asyncio.sleep(0.5)
            beside = await _median_ms(page, times=10)
        finally:
            stop.set()
            await asyncio.gather(*floods)
    return {"alone": alone, "beside_a_flood": beside}


async def deep_marker(target: Target, depth: int) -> str | None:
    """The id of the volume ``depth`` places down the project's listing."""
    async with target.client() as client:
        seen, marker = 0, None
        while seen < depth:
            page = await client.list_volumes(limit=min(1000, depth - seen), marker=marker)
            if not page:
                break
            seen += len(page)
            marker = page[-1].id
        return marker


async def creates_while(target: Target, creates: int, listing: bool) -> dict[str, float]:
    """Creates/s and p99 (to ``available``), with or without a lister paging meanwhile."""
    latencies: list[float] = []
    stop = asyncio.Event()
    pages = 0
    async with target.client() as client:

        async def lister() -> None:
            nonlocal pages
            while not stop.is_set():
                await client.list_volumes(limit=PAGE)
                pages += 1

        left = iter(range(creates))

        async def worker() -> None:
            for _ in left:
                start = time.perf_counter()
                await client.create_volume(1, wait=True)
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            listing_task = tg.create_task(lister()) if listing else None
            async with asyncio.TaskGroup() as workers:
                for _ in range(64):
                    workers.create_task(worker())
            stop.set()
            if listing_task is not None:
                await listing_task
        elapsed = time.perf_counter() - start
    return {"creates_per_s": round(creates / elapsed, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "pages_listed": pages}


async def restart_to_first_answer(cluster: Cluster, target: Target,
                                  stopped: bool = False) -> float:
    """Seconds from starting a stopped gateway again to its first answer."""
    if not stopped:
        cluster.stop_actor("gateway")
    start = time.perf_counter()
    cluster.spawn("gateway")
    async with target.client(timeout=2.0) as client:
        while True:
            try:
                await client.list_volumes(limit=1)
                return round(time.perf_counter() - start, 3)
            except CinderblockError:  # not up yet: try again
                if time.perf_counter() - start > 600:
                    raise
                await asyncio.sleep(0.02)


async def attachment_pages(target: Target, attached: int) -> dict[str, Any]:
    """How many attachments a page of 20 holds, and the median ms of such a page and of
    the attachments of 20 volumes in use (the volumes of that page)."""
    async with target.client() as user:
        page_of_volumes = [a.volume_id for a in await user.list_attachments(limit=PAGE)]
        return {"count": attached, "page_holds": len(page_of_volumes), "page_ms": {
            "page": await _median_ms(lambda: user.list_attachments(limit=PAGE)),
            "of_a_page_of_volumes": await _median_ms(
                lambda: user.list_attachments(volume_ids=page_of_volumes)),
        }}


async def snapshot_pages(target: Target, snapshots: int) -> dict[str, Any]:
    """How many snapshots a page of 20 holds, and the median ms of such a page and of
    one volume's snapshots."""
    async with target.client() as user:
        first = await user.list_snapshots(limit=PAGE)
        volume_id = first[0].volume_id
        return {"count": snapshots, "page_holds": len(first), "page_ms": {
            "page": await _median_ms(lambda: user.list_snapshots(limit=PAGE)),
            "of_a_volume": await _median_ms(
                lambda: user.list_snapshots(volume_id=volume_id, limit=PAGE)),
        }}


def run(volumes: int, creates: int, fill_with: str = "client", attached: int = 0,
        snapshots: int = 0) -> dict[str, Any]:
    if (attached or snapshots) and fill_with != "direct":
        raise ValueError("attached volumes and snapshots are written by the direct fill only")
    with tempfile.TemporaryDirectory(prefix="cinderblock-scale-") as tmp:
        cfg = with_quota_defaults(embedded(Path(tmp), backend="null", nodes=2),
                                  volumes=-1, gigabytes=-1)
        with Cluster(cfg) as cluster:
            for project in (PROJECT, NEIGHBOUR):
                add_user(Path(tmp), project, project, ("member",))
            target = Target(cfg.gateway, cluster.key(PROJECT), cluster.key("admin"),
                            cluster.key(NEIGHBOUR))
            gateway_pid = cluster.pids()["gateway"]
            result: dict[str, Any] = {"volumes": volumes, "fill": fill_with}
            asyncio.run(fill(target, PAGE * 2))
            asyncio.run(fill(target, 3, neighbour=True))
            result["empty"] = {
                "page_ms": asyncio.run(page_times(target, PAGE * 2)),
                "sorted_page_ms": asyncio.run(sorted_page_times(target)),
                "count_ms": asyncio.run(count_times(target)),
                "neighbour_sorted_page_ms": asyncio.run(sorted_page_beside_a_flood(target)),
                "no_lister": asyncio.run(creates_while(target, creates, False)),
                "with_lister": asyncio.run(creates_while(target, creates, True)),
            }
            if fill_with == "direct":
                asyncio.run(restart_to_first_answer(cluster, target))
                gateway_pid = cluster.pids()["gateway"]
                asyncio.run(page_times(target, 0))
            rss0 = rss_bytes(gateway_pid)
            if fill_with == "direct":
                rate, gateway_pid = fill_direct(cluster, target, volumes, attached, snapshots)
                asyncio.run(page_times(target, 0))
            else:
                rate = asyncio.run(fill(target, volumes))
            result["fill_creates_per_s"] = round(rate, 1)
            result["gateway_bytes_per_volume"] = round(
                (rss_bytes(gateway_pid) - rss0) / volumes, 1)
            held = PAGE * 2 + 2 * creates + volumes
            result["full"] = {
                "page_ms": asyncio.run(page_times(target, held)),
                "sorted_page_ms": asyncio.run(sorted_page_times(target)),
                "count_ms": asyncio.run(count_times(target)),
                "neighbour_sorted_page_ms": asyncio.run(sorted_page_beside_a_flood(target)),
                "no_lister": asyncio.run(creates_while(target, creates, False)),
                "with_lister": asyncio.run(creates_while(target, creates, True)),
            }
            if attached:
                result["attachments"] = asyncio.run(attachment_pages(target, attached))
            if snapshots:
                result["snapshots"] = asyncio.run(snapshot_pages(target, snapshots))
            result["restart_to_first_answer_s"] = asyncio.run(
                restart_to_first_answer(cluster, target))
    full, empty = result["full"]["page_ms"], result["empty"]["page_ms"]
    result["page_full_over_empty"] = {k: round(full[k] / empty[k], 2) for k in full}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cinderblock.bench.scale",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--volumes", type=int, default=1_000_000)
    p.add_argument("--creates", type=int, default=2000,
                   help="creates timed with and without a lister, empty and full")
    p.add_argument("--fill", choices=("client", "direct"), default="client",
                   help="create the volumes through the client library, or write their "
                        "rows into the stopped gateway's file (fast)")
    p.add_argument("--attached", type=int, default=0,
                   help="with --fill direct: how many of the volumes are in use, an "
                        "attachment each")
    p.add_argument("--snapshots", type=int, default=0,
                   help="with --fill direct: how many of the volumes have a snapshot")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.volumes < 1 or args.creates < 1:
        p.error("--volumes and --creates must be at least 1")
    for name in ("attached", "snapshots"):
        wanted = getattr(args, name)
        if not 0 <= wanted <= args.volumes or (wanted and args.fill != "direct"):
            p.error(f"--{name} takes 0 to --volumes, with --fill direct")
    result = run(args.volumes, args.creates, args.fill, args.attached, args.snapshots)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

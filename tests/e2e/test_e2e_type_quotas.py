"""A volume type's own quota (Cinder's ``volumes_<type>``, ``gigabytes_<type>``,
``snapshots_<type>``), end to end on two file nodes: set by the type's name through the
client library and ``cinder quota-update --volume-type``; counted by every change of a
volume's life (create, snapshot, extend, retype, transfer, delete), as ``quota show``,
``cinder quota-show`` and the REST front show it; refused over it with Cinder's words;
left exact, as ``quota sync`` counts it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cinderblock.protocol.client.client import Client, SyncClient
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.wire.errors import InvalidInput, OverQuota
from tests.cluster_invariants import settled_violations
from tests.conftest import E2ECluster, eventually, make_config, running_cluster
from tests.e2e.test_rest_api import Api, fault
from tests.e2e.test_rest_clients import run, table, tool, wait_for


@pytest.fixture(scope="module")
def rest_cluster(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(rest_fronts=1)


@pytest.fixture
async def admin_of(rest_cluster: E2ECluster) -> AsyncIterator[Client]:
    async with rest_cluster.client("admin", admin=True) as c:
        yield c


@pytest.fixture
async def gold(admin_of: Client) -> AsyncIterator[VolumeType]:
    made = await admin_of.create_type(f"gold_{uuid.uuid4().hex[:6]}",
                                      extra_specs={"volume_backend_name": "file"})
    yield made
    await admin_of.delete_type(made.id)


async def test_a_type_s_own_quota_counts_every_change_and_refuses_past_its_limit(
    rest_cluster: E2ECluster, admin_of: Client, gold: VolumeType,
) -> None:
    c, project = rest_cluster, f"tq-{uuid.uuid4().hex[:8]}"
    vols, snaps = f"volumes_{gold.name}", f"snapshots_{gold.name}"
    gigs = f"gigabytes_{gold.name}"
    plain = "volumes___DEFAULT__"
    async with c.client(project) as member:
        shown = await member.show_quota()
        assert (shown.limits[vols], shown.in_use[vols], shown.limits[plain]) == (-1, 0, -1)
        set_ = await admin_of.set_quota(project, **{vols: 1, gigs: 3})
        assert (set_.limits[vols], set_.limits[gigs], set_.limits["volumes"]) == (1, 3, 10)

        first = await member.create_volume(1, volume_type=gold.name, wait=True)
        with pytest.raises(OverQuota, match=f"Quota exceeded for resources: {vols}\\b"):
            await member.create_volume(1, volume_type=gold.name)
        other = await member.create_volume(2, wait=True)  # the default type: not gold's
        snap = await member.create_snapshot(first.id, wait=True)
        with pytest.raises(OverQuota, match=gigs):  # 1 + 1 + 2 > 3
            await member.extend_volume(first.id, 3, wait=True)
        await member.extend_volume(first.id, 2, wait=True)
        q = await member.show_quota()
        assert {r: q.in_use[r] for r in (vols, gigs, snaps, plain, "volumes", "gigabytes")} == {
            vols: 1, gigs: 3, snaps: 1, plain: 1, "volumes": 2, "gigabytes": 5}

        # a retype reserves the new type's own and gives the old type's back
        with pytest.raises(OverQuota, match=vols):
            await member.retype_volume(other.id, gold.name)
        await admin_of.set_quota(project, **{vols: 2, gigs: -1})
        await member.retype_volume(other.id, gold.name)
        await eventually(lambda: _in_use(member, vols, 2))
        q = await member.show_quota()
        assert (q.in_use[gigs], q.in_use[plain], q.in_use["gigabytes___DEFAULT__"]) == (5, 0, 0)
        assert q.reserved[vols] == 0

        synced = await admin_of.sync_quota(project, dry_run=True)
        assert synced.before == synced.after, (synced.before, synced.after)
        assert synced.after[vols] == 2

        await member.delete_snapshot(snap.id, wait=True)
        for vol in (first, other):
            await member.delete_volume(vol.id, wait=True)
        await eventually(lambda: _in_use(member, vols, 0))
        assert (await member.show_quota()).in_use[gigs] == 0
    assert await settled_violations(c, admin_of, [project]) == []


async def _in_use(client: Client, resource: str, amount: int) -> bool:
    return (await client.show_quota()).in_use.get(resource) == amount


async def test_a_transfer_moves_the_type_s_own_usage_and_the_taker_s_limit_holds(
    rest_cluster: E2ECluster, admin_of: Client, gold: VolumeType,
) -> None:
    c = rest_cluster
    donor, taker = (f"tq-{uuid.uuid4().hex[:8]}" for _ in range(2))
    vols = f"volumes_{gold.name}"
    await admin_of.set_quota(taker, **{vols: 0})
    async with c.client(donor) as giver, c.client(taker) as receiver:
        vol = await giver.create_volume(1, volume_type=gold.name, wait=True)
        offer = await giver.create_transfer(vol.id)
        assert offer.auth_key is not None
        with pytest.raises(OverQuota, match=vols):
            await receiver.accept_transfer(offer.id, offer.auth_key)
        await admin_of.set_quota(taker, **{vols: 1})
        await receiver.accept_transfer(offer.id, offer.auth_key)
        await eventually(lambda: _in_use(giver, vols, 0))
        assert (await receiver.show_quota()).in_use[vols] == 1
        await receiver.delete_volume(vol.id, wait=True)
    assert await settled_violations(c, admin_of, [donor, taker]) == []


async def test_a_type_that_does_not_exist_is_a_bad_key(
    rest_cluster: E2ECluster, admin_of: Client,
) -> None:
    with pytest.raises(InvalidInput, match=r"Bad key.*volumes_bronze_nowhere"):
        await admin_of.set_quota("anyone", volumes_bronze_nowhere=1)
    api = Api(rest_cluster.rest_url, "admin:admin")
    fault(api.call("PUT", "/v3/os-quota-sets/anyone",
                   {"quota_set": {"volumes_bronze-nowhere": 1}}), 400, "badRequest",
          "Bad key(s) in quota set: volumes_bronze-nowhere")
    fault(api.call("PUT", "/v3/os-quota-sets/anyone", {"quota_set": {"floppies_x": 1}}),
          400, "badRequest", "Bad key(s) in quota set: floppies_x")


async def test_cinder_sets_and_shows_a_type_s_own_quota(
    rest_cluster: E2ECluster, admin_of: Client, gold: VolumeType,
) -> None:
    c, project = rest_cluster, f"tq-{uuid.uuid4().hex[:8]}"
    admin = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
             "--os-project-id", "admin", "--os-endpoint", c.rest_url]
    member = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", project,
              "--os-project-id", project, "--os-endpoint", c.rest_url]
    run([*admin, "quota-update", "--volume-type", gold.name, "--volumes", "1", project])
    shown = table(run([*admin, "quota-show", project]))
    assert (shown[f"volumes_{gold.name}"], shown[f"gigabytes_{gold.name}"]) == ("1", "-1")
    run([*member, "create", "--volume-type", gold.name, "1"])
    refused = subprocess.run([*member, "create", "--volume-type", gold.name, "1"],
                             capture_output=True, text=True, timeout=60, check=False,
                             env={k: v for k, v in os.environ.items()
                                  if not k.startswith(("OS_", "CINDER_"))})
    assert refused.returncode != 0
    assert (f"Maximum number of volumes allowed (1) exceeded for quota 'volumes_{gold.name}'"
            in refused.stderr), refused.stderr
    usage = run([*admin, "quota-usage", project])  # Type | In_use | Reserved | Limit | ...
    row = next(line for line in usage.splitlines() if f" volumes_{gold.name} " in line)
    assert [cell.strip() for cell in row.strip("|").split("|")][:4] == [
        f"volumes_{gold.name}", "1", "0", "1"], usage

    api = Api(c.rest_url, "admin:admin")
    body = api.call("GET", f"/v3/os-quota-sets/{project}?usage=true").body["quota_set"]
    assert body[f"volumes_{gold.name}"] == {"limit": 1, "in_use": 1, "reserved": 0,
                                            "allocated": 0}
    defaults = api.call("GET", f"/v3/os-quota-sets/{project}/defaults").body["quota_set"]
    assert defaults[f"volumes_{gold.name}"] == -1

    async with c.client(project) as owner:
        for vol in await owner.list_volumes():
            await owner.delete_volume(vol.id, wait=True)
    assert await settled_violations(c, admin_of, [project]) == []


TYPES_OWN_QUOTA_VERSION = 13  # gateway.db's version that counts types' own quota


def test_a_cluster_from_before_types_own_quota_counts_it_once_after_its_start(
    tmp_path: Path,
) -> None:
    """An upgrade: gateway.db of the version before (no ``types_own_quota_uncounted``)
    and quota.db without any type's own usage, as the cluster left them. After the
    start each project's types' own usage is what it has, counted once, the general
    usage untouched, and the table of projects to count is empty."""
    cfg = make_config(tmp_path / "data", backend="null")
    with running_cluster(cfg) as c, SyncClient(c.gateway, project="demo",
                                               key=c.user_key("demo")) as demo:
        vol = demo.create_volume(2, wait=True, timeout=30.0)
        demo.create_volume(1, volume_type="FCVolumeType", wait=True, timeout=30.0)
        demo.create_snapshot(vol.id, wait=True, timeout=30.0)
    gateway_db, quota_db = (Path(cfg.data_dir) / name for name in ("gateway.db", "quota.db"))
    with sqlite3.connect(gateway_db) as db:  # as version 12, the one before, left it
        db.execute("DROP TABLE types_own_quota_uncounted")
        db.execute("DROP TABLE attachment_requests")  # version 14's
        db.execute(f"PRAGMA user_version={TYPES_OWN_QUOTA_VERSION - 1}")
    with sqlite3.connect(quota_db) as db:
        db.execute("DELETE FROM quota_usages WHERE resource NOT IN "
                   "('volumes', 'gigabytes', 'snapshots')")
    with running_cluster(cfg) as c, SyncClient(c.gateway, project="demo",
                                               key=c.user_key("demo")) as demo:
        def counted() -> dict[str, int] | None:
            in_use = demo.show_quota().in_use
            return in_use if in_use.get("volumes___DEFAULT__") else None

        in_use = wait_for(counted, timeout=30.0)
        assert {r: in_use[r] for r in ("volumes", "gigabytes", "snapshots",
                                       "volumes___DEFAULT__", "gigabytes___DEFAULT__",
                                       "snapshots___DEFAULT__", "volumes_FCVolumeType",
                                       "gigabytes_FCVolumeType")} == {
            "volumes": 2, "gigabytes": 5, "snapshots": 1, "volumes___DEFAULT__": 1,
            "gigabytes___DEFAULT__": 4, "snapshots___DEFAULT__": 1,
            "volumes_FCVolumeType": 1, "gigabytes_FCVolumeType": 1}
    with sqlite3.connect(gateway_db) as db:
        assert db.execute("SELECT count(*) FROM types_own_quota_uncounted").fetchone() == (0,)
